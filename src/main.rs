//! `nevil`: the onboard runtime of a small robot.
//!
//! The robot application (CLI, hardware, drivers, nodes) is built on the supervision
//! trees of `nevil-actors`; until it lands this binary only reports its version.

fn main() {
    println!("nevil {}", env!("CARGO_PKG_VERSION"));
}
