//! The robot's behaviour nodes, in `rest_for_one` order: the motion controller, then the
//! behaviours that command it. Each node is a pure state machine (inputs: bus messages
//! and ticks with their timestamps; outputs: bus messages), wrapped in a thin actor.
//! The pure part is what `nevil replay` runs over a recording, so a replay computes
//! exactly what the robot computed.

pub mod line_follower;
pub mod motion;
pub mod obstacle_avoidance;
