//! The drive motors' driver: applies the motion controller's outputs unless the safety
//! watchdog's e-stop is engaged, and stops the motors whenever it starts or stops.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::bus::{Bus, Delivery, Drive, EStop};
use crate::drill::{Ballast, DrillMsg};
use crate::hw::{self, Shared};

/// Messages of the [`Motors`] driver.
pub enum MotorsMsg {
    /// An output of the motion controller.
    Drive(Delivery<Drive>),
    /// An e-stop change.
    EStop(Delivery<EStop>),
    /// A fault drill.
    Drill(DrillMsg),
}

crate::drill_variant!(MotorsMsg);

/// The motors driver.
#[derive(Clone)]
pub struct Motors {
    /// The motors, shared with later incarnations.
    pub device: Shared<dyn hw::Drive>,
    /// The bus.
    pub bus: Bus,
}

/// State of the [`Motors`] driver.
pub struct MotorsState {
    estop: bool,
    ballast: Ballast,
}

impl Motors {
    fn set(&self, left: f64, right: f64) -> Result<(), ActorProcessingErr> {
        self.device.lock().set_power(left, right)?;
        Ok(())
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
        self.set(0.0, 0.0)?;
        self.bus
            .drive
            .subscribe("motors", myself.clone(), MotorsMsg::Drive);
        self.bus.estop.subscribe("motors", myself, MotorsMsg::EStop);
        Ok(MotorsState {
            estop: false,
            ballast: Ballast::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<MotorsMsg>,
        msg: MotorsMsg,
        state: &mut MotorsState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MotorsMsg::Drive(d) if !state.estop => self.set(d.left, d.right)?,
            MotorsMsg::Drive(_) => {}
            MotorsMsg::EStop(e) => {
                state.estop = e.engaged;
                if e.engaged {
                    self.set(0.0, 0.0)?;
                    tracing::warn!(reason = %e.reason, "e-stop: motors stopped");
                } else {
                    tracing::info!(reason = %e.reason, "e-stop released");
                }
            }
            MotorsMsg::Drill(d) => state.ballast.apply(d, &myself.get_cell()).await?,
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<MotorsMsg>,
        _: &mut MotorsState,
    ) -> Result<(), ActorProcessingErr> {
        self.set(0.0, 0.0)
    }
}
