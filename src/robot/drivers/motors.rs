//! The drive motors' driver: applies the motion controller's outputs unless the e-stop
//! is engaged or the safety watchdog's heartbeat is stale, and stops the motors whenever
//! it starts or stops.
//!
//! It reads the shared [`EStopLatch`] on every command and in `pre_start`, so a restart
//! cannot forget an engaged e-stop; an `EStop` message stops the motors at once without
//! waiting for the next command. After each command it tells the [`DeadMan`], which
//! zeroes the motors by itself if commands stop coming (this driver died or wedged).
//! Device calls go through [`Shared::run`]: off the async workers on real hardware.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::bus::{Bus, Delivery, Drive, EStop};
use crate::hw::{self, Shared};
use crate::robot::safety::{DeadMan, EStopLatch};

/// Messages of the [`Motors`] driver.
pub enum MotorsMsg {
    /// An output of the motion controller.
    Drive(Delivery<Drive>),
    /// An e-stop change.
    EStop(Delivery<EStop>),
    /// Does nothing: any number of them is harmless, so a mailbox flood (a fault
    /// injected into the tree) is made of them.
    Noop,
}

/// The motors driver.
#[derive(Clone)]
pub struct Motors {
    /// The motors, shared with later incarnations.
    pub device: Shared<dyn hw::Drive>,
    /// Whether device calls may block ([`hw::Hardware::blocking`]).
    pub blocking: bool,
    /// The bus.
    pub bus: Bus,
    /// The e-stop.
    pub latch: EStopLatch,
    /// The dead-man watching this driver's commands.
    pub deadman: DeadMan,
}

/// State of the [`Motors`] driver.
pub struct MotorsState {
    /// Whether the last power applied was not zero (held zeros are not re-sent).
    powered: bool,
}

impl Motors {
    /// Applies a power; whether it is not zero.
    async fn set(&self, left: f64, right: f64) -> Result<bool, ActorProcessingErr> {
        self.device
            .run(self.blocking, move |d| d.set_power(left, right))
            .await?;
        let powered = left != 0.0 || right != 0.0;
        self.deadman.commanded(powered);
        Ok(powered)
    }

    /// Zeroes the motors unless they are known to be at zero already.
    async fn stop(&self, state: &mut MotorsState) -> Result<(), ActorProcessingErr> {
        if state.powered {
            state.powered = self.set(0.0, 0.0).await?;
        }
        Ok(())
    }

    /// Whether the motors may be powered now.
    fn permitted(&self) -> bool {
        !self.latch.engaged() && self.deadman.permits()
    }
}

impl Actor for Motors {
    type Msg = MotorsMsg;
    type State = MotorsState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<MotorsMsg>,
        _: (),
    ) -> Result<MotorsState, ActorProcessingErr> {
        self.set(0.0, 0.0).await?;
        if let Some(reasons) = self.latch.reasons() {
            tracing::warn!(%reasons, "starting with the e-stop engaged: motors held at zero");
        }
        self.bus
            .drive
            .subscribe("motors", myself.clone(), MotorsMsg::Drive);
        self.bus.estop.subscribe("motors", myself, MotorsMsg::EStop);
        Ok(MotorsState { powered: false })
    }

    async fn handle(
        &self,
        _: ActorRef<MotorsMsg>,
        msg: MotorsMsg,
        state: &mut MotorsState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MotorsMsg::Drive(d) if self.permitted() => {
                state.powered = self.set(d.left, d.right).await?;
            }
            MotorsMsg::Drive(_) => self.stop(state).await?,
            MotorsMsg::EStop(e) => {
                if e.engaged {
                    self.stop(state).await?;
                }
            }
            MotorsMsg::Noop => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<MotorsMsg>,
        _: &mut MotorsState,
    ) -> Result<(), ActorProcessingErr> {
        self.set(0.0, 0.0).await.map(drop)
    }
}
