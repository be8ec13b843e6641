//! The steering servo's driver: applies the motion controller's steering angle, and
//! centres the wheels whenever it starts or stops.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::bus::{Bus, Delivery, Drive};
use crate::hw::{self, Shared};
use crate::robot::safety::DeadMan;

/// Messages of the [`Steering`] driver.
pub enum SteeringMsg {
    /// An output of the motion controller.
    Drive(Delivery<Drive>),
    /// Does nothing: any number of them is harmless, so a mailbox flood (a fault
    /// injected into the tree) is made of them.
    Noop,
}

/// The steering driver.
#[derive(Clone)]
pub struct Steering {
    /// The servo, shared with later incarnations.
    pub device: Shared<dyn hw::Steering>,
    /// Whether device calls may block ([`hw::Hardware::blocking`]): then they run off
    /// the async workers.
    pub blocking: bool,
    /// The bus.
    pub bus: Bus,
    /// The dead-man at the motors: it stops them when this driver stops handling
    /// commands, or stops.
    pub deadman: DeadMan,
}

/// State of the [`Steering`] driver: the angle last applied, so an unchanged angle is not
/// sent again.
pub struct SteeringState {
    angle: f64,
}

impl Actor for Steering {
    type Msg = SteeringMsg;
    type State = SteeringState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<SteeringMsg>,
        _: (),
    ) -> Result<SteeringState, ActorProcessingErr> {
        self.centre().await?;
        self.bus
            .drive
            .subscribe("steering", myself, SteeringMsg::Drive);
        Ok(SteeringState { angle: 0.0 })
    }

    async fn handle(
        &self,
        _: ActorRef<SteeringMsg>,
        msg: SteeringMsg,
        state: &mut SteeringState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SteeringMsg::Drive(d) => {
                self.deadman.steered();
                if d.steer_deg != state.angle {
                    let angle = d.steer_deg;
                    self.device
                        .run(self.blocking, move |s| s.set_angle(angle))
                        .await?;
                    state.angle = d.steer_deg;
                }
            }
            SteeringMsg::Noop => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<SteeringMsg>,
        _: &mut SteeringState,
    ) -> Result<(), ActorProcessingErr> {
        self.deadman.halt("steering stopped");
        self.centre().await
    }
}

impl Steering {
    async fn centre(&self) -> Result<(), ActorProcessingErr> {
        self.device.run(self.blocking, |s| s.set_angle(0.0)).await
    }
}
