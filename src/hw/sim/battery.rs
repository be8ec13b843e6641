//! The simulated 2S Li-ion pack: charge drains with the current drawn, and the terminal
//! voltage is the open-circuit voltage of the remaining charge minus the sag across the
//! internal resistance. Pure and deterministic; the reading's noise is added by the world.

use super::config::BatteryConfig;

/// Open-circuit voltage of one Li-ion cell against state of charge (0–1), a typical
/// discharge curve; linear in between.
const CELL_OCV: [(f64, f64); 8] = [
    (0.00, 3.00),
    (0.05, 3.30),
    (0.10, 3.50),
    (0.20, 3.62),
    (0.40, 3.72),
    (0.60, 3.82),
    (0.80, 3.97),
    (1.00, 4.20),
];

/// Cells in series.
const CELLS: f64 = 2.0;

/// The pack's state and parameters.
#[derive(Debug, Clone)]
pub(crate) struct Pack {
    capacity_as: f64,
    charge_as: f64,
    idle_a: f64,
    motor_a: f64,
    internal_ohm: f64,
}

impl Pack {
    pub(crate) fn new(cfg: &BatteryConfig) -> Self {
        let capacity_as = (cfg.capacity_mah * 3.6).max(f64::MIN_POSITIVE);
        Self {
            capacity_as,
            charge_as: capacity_as * cfg.initial_charge.clamp(0.0, 1.0),
            idle_a: cfg.idle_a,
            motor_a: cfg.motor_a,
            internal_ohm: cfg.internal_ohm,
        }
    }

    /// Current drawn, amperes, with the motors at `load` (mean |power| / 100, 0–1).
    fn current(&self, load: f64) -> f64 {
        self.idle_a + self.motor_a * load
    }

    /// Drains the pack for `dt` seconds at `load`.
    pub(crate) fn drain(&mut self, load: f64, dt: f64) {
        self.charge_as = (self.charge_as - self.current(load) * dt).max(0.0);
    }

    /// State of charge, 0–1.
    pub(crate) fn charge(&self) -> f64 {
        (self.charge_as / self.capacity_as).clamp(0.0, 1.0)
    }

    /// Terminal voltage at `load`, volts.
    pub(crate) fn voltage(&self, load: f64) -> f64 {
        let soc = self.charge();
        let mut ocv = CELL_OCV[0].1;
        for pair in CELL_OCV.windows(2) {
            let ((s0, v0), (s1, v1)) = (pair[0], pair[1]);
            if soc >= s0 {
                ocv = v0 + (v1 - v0) * ((soc - s0) / (s1 - s0)).min(1.0);
            }
        }
        CELLS * ocv - self.current(load) * self.internal_ohm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_pack_reads_8v4_at_rest_and_sags_under_load() {
        let cfg = BatteryConfig {
            idle_a: 0.0,
            ..BatteryConfig::default()
        };
        let pack = Pack::new(&cfg);
        assert!((pack.voltage(0.0) - 8.4).abs() < 1e-12);
        assert!(pack.voltage(1.0) < pack.voltage(0.0));
    }

    #[test]
    fn voltage_falls_as_charge_drains_down_to_empty() {
        let mut pack = Pack::new(&BatteryConfig::default());
        let mut last = pack.voltage(0.0);
        for _ in 0..100 {
            pack.drain(1.0, 60.0);
            let v = pack.voltage(0.0);
            assert!(v <= last, "{v} > {last}");
            last = v;
        }
        assert_eq!(pack.charge(), 0.0);
        let empty = 6.0 - BatteryConfig::default().idle_a * 0.15;
        assert!((last - empty).abs() < 1e-12, "{last}");
    }
}
