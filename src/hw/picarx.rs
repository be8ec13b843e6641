//! The real PiCar-X on a SunFounder Robot HAT.
//!
//! The wire protocol itself (registers, formulas) is in [`protocol`]; how its bytes
//! reach the devices, or a recording of them, is in [`transport`].

pub mod protocol;
pub mod transport;
