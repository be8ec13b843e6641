//! The real PiCar-X on a SunFounder Robot HAT.
//!
//! The wire protocol itself (registers, formulas) is in [`protocol`].

pub mod protocol;
