//! The robot's behaviour nodes, in `rest_for_one` order: the motion controller, then the
//! behaviours that command it. Each node is a pure state machine (inputs: bus messages
//! and ticks with their timestamps; outputs: bus messages), wrapped in a thin actor.
//! The pure part is what `nevil replay` runs over a recording, so a replay computes
//! exactly what the robot computed. The behaviours share one actor, [`BehaviourActor`].

pub mod line_follower;
pub mod motion;
pub mod obstacle_avoidance;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::bus::{Bus, Command, Delivery, Topic};
use crate::config::reload::LiveConfig;
use crate::config::BehaviourConfig;

/// A behaviour: turns the readings of one topic into motion commands. Pure; the
/// [`BehaviourActor`] runs it.
pub trait Behaviour: Clone + Send + Sync + 'static {
    /// The reading it consumes.
    type Input: Clone + Send + Sync + 'static;
    /// Its name on the bus.
    const NAME: &'static str;
    /// The topic it listens to.
    fn topic(bus: &Bus) -> &Topic<Self::Input>;
    /// The command for a reading, if it has one.
    fn on_input(&mut self, input: &Self::Input) -> Option<Command>;
    /// Takes the thresholds a reload put in force (`cruise_power`, the distances,
    /// `line_threshold`; not the mode, which changes the tree and needs a restart).
    fn retune(&mut self, cfg: &BehaviourConfig);
}

/// Messages of a [`BehaviourActor`].
pub enum BehaviourMsg<T> {
    /// A reading.
    Input(Delivery<T>),
    /// Does nothing: any number of them is harmless, so a mailbox flood (a fault
    /// injected into the tree) is made of them.
    Noop,
}

/// Runs a [`Behaviour`]: each incarnation starts from `node` as configured.
#[derive(Clone)]
pub struct BehaviourActor<B> {
    /// The behaviour in its initial state.
    pub node: B,
    /// The bus.
    pub bus: Bus,
    /// The configuration in force: a (re)started behaviour starts with its thresholds,
    /// and takes a reload's at its next reading.
    pub live: LiveConfig,
}

/// State of a [`BehaviourActor`].
pub struct BehaviourState<B> {
    node: B,
    live: LiveConfig,
}

impl<B: Behaviour> Actor for BehaviourActor<B> {
    type Msg = BehaviourMsg<B::Input>;
    type State = BehaviourState<B>;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        _: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        B::topic(&self.bus).subscribe(B::NAME, myself, BehaviourMsg::Input);
        let mut live = self.live.clone();
        let mut node = self.node.clone();
        // A reload since the tree started: this incarnation starts under it.
        if let Some(config) = live.changed() {
            node.retune(&config.behaviour);
        }
        Ok(BehaviourState { node, live })
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            BehaviourMsg::Input(input) => {
                if let Some(config) = state.live.changed() {
                    state.node.retune(&config.behaviour);
                }
                if let Some(c) = state.node.on_input(&input) {
                    self.bus.command.publish(c);
                }
            }
            BehaviourMsg::Noop => {}
        }
        Ok(())
    }
}
