//! The Robot HAT wire protocol as pure functions: register addresses, byte layouts and
//! the servo, motor and ADC formulas. Nothing here touches a device; [`super::Hat`]
//! sends what these functions compute, so every byte the robot emits is testable here.
//!
//! Semantics, as SunFounder's `robot_hat` library drives the HAT MCU (I2C bus 1, address
//! 0x14) and as `DESIGN.md` fixes them:
//! - Every register write is three bytes `[reg, hi, lo]`: a 16-bit value, high byte first.
//! - PWM: a 72 MHz clock feeds 7 timers. At 50 Hz the vendor's search picks
//!   prescaler = period = 1200 (√(72 MHz / 50 Hz) = 1200 divides exactly). The prescaler
//!   register holds `prescaler − 1` (1199); the period (ARR) register holds the period
//!   itself (1200), as robot-hat 2.x writes it (1.x wrote `period − 1`). A channel's value
//!   register holds ticks of that period: 1200 ticks = the whole 20 ms frame.
//! - ADC: 12 bits over 3.3 V. Select channel N with `[(7 − N) | 0x10, 0, 0]`, then read two
//!   single bytes, high then low. The select and the reads must not be interleaved with
//!   other transfers; the caller holds the bus for all three.
//!
//! ```
//! use nevil::hw::picarx::protocol::{pwm_write, servo_ticks, STEERING_CHANNEL};
//! // Steering straight ahead: 1500 µs = 90 ticks, written to channel register 0x22.
//! assert_eq!(pwm_write(STEERING_CHANNEL, servo_ticks(0.0)), Some([0x22, 0x00, 0x5a]));
//! ```

/// I2C bus the HAT MCU sits on (`/dev/i2c-1`).
pub const I2C_BUS: u8 = 1;
/// 7-bit I2C address of the HAT MCU.
pub const I2C_ADDRESS: u16 = 0x14;

/// Clock feeding the MCU's PWM timers, in Hz.
pub const PWM_CLOCK_HZ: u32 = 72_000_000;
/// PWM frequency nevil runs every timer at, in Hz: one 20 ms servo frame.
pub const PWM_FREQ_HZ: u32 = 50;
/// Length of one PWM frame at [`PWM_FREQ_HZ`], in microseconds.
pub const FRAME_US: f64 = 20_000.0;
/// Timer prescaler at 50 Hz (the register holds one less).
pub const PRESCALER: u16 = 1200;
/// Timer period at 50 Hz in ticks: the full-scale channel value.
pub const PERIOD: u16 = 1200;

/// First channel value register; channel N is at `REG_CHANNEL + N`.
pub const REG_CHANNEL: u8 = 0x20;
/// Prescaler register of timer 0; timers 0–3 are at `+ timer`.
pub const REG_PRESCALER: u8 = 0x40;
/// Period (ARR) register of timer 0; timers 0–3 are at `+ timer`.
pub const REG_PERIOD: u8 = 0x44;
/// Prescaler register of timer 4; timers 4–6 are at `+ (timer − 4)`.
pub const REG_PRESCALER_HIGH: u8 = 0x50;
/// Period (ARR) register of timer 4; timers 4–6 are at `+ (timer − 4)`.
pub const REG_PERIOD_HIGH: u8 = 0x54;
/// Number of PWM channels (P0–P19).
pub const CHANNELS: u8 = 20;
/// Number of PWM timers (0–6).
pub const TIMERS: u8 = 7;

/// ADC full scale: 12 bits.
pub const ADC_MAX: u16 = 4095;
/// ADC reference voltage, in volts.
pub const ADC_VREF: f64 = 3.3;
/// Number of ADC channels (A0–A7).
pub const ADC_CHANNELS: u8 = 8;
/// ADC channel of the battery monitor.
pub const BATTERY_ADC: u8 = 4;
/// The battery divider: the ADC sees a third of the pack voltage.
pub const BATTERY_DIVIDER: f64 = 3.0;
/// ADC channels of the grayscale sensor, left to right.
pub const GRAYSCALE_ADC: [u8; 3] = [0, 1, 2];

/// PWM channel of the steering servo (P2).
pub const STEERING_CHANNEL: u8 = 2;
/// Steering limit either side of straight ahead, in degrees.
pub const STEERING_LIMIT_DEG: f64 = 30.0;
/// Servo pulse at −90°, in microseconds.
pub const SERVO_MIN_US: f64 = 500.0;
/// Servo pulse at +90°, in microseconds.
pub const SERVO_MAX_US: f64 = 2500.0;

/// Header pin D2 (BCM 27): ultrasonic trigger.
pub const D2: u8 = 27;
/// Header pin D3 (BCM 22): ultrasonic echo.
pub const D3: u8 = 22;
/// Header pin D4 (BCM 23): left motor direction.
pub const D4: u8 = 23;
/// Header pin D5 (BCM 24): right motor direction.
pub const D5: u8 = 24;
/// BCM pin of the HAT MCU's reset line (active low).
pub const MCU_RESET: u8 = 5;
/// BCM pin of the USER button.
pub const USER_BUTTON: u8 = 25;
/// BCM pin of the LED.
pub const LED: u8 = 26;
/// Ultrasonic trigger pin (BCM).
pub const ULTRASONIC_TRIGGER: u8 = D2;
/// Ultrasonic echo pin (BCM).
pub const ULTRASONIC_ECHO: u8 = D3;
/// Speed of sound used for ranging, in m/s.
pub const SPEED_OF_SOUND_M_S: f64 = 343.0;

/// A GPIO level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// 0 V.
    Low,
    /// 3.3 V.
    High,
}

impl Level {
    /// The level as the bit a trace shows: 0 or 1.
    pub fn bit(self) -> u8 {
        match self {
            Level::Low => 0,
            Level::High => 1,
        }
    }

    /// The level of a bit: 0 is low, anything else high.
    pub fn from_bit(bit: u8) -> Self {
        if bit == 0 {
            Level::Low
        } else {
            Level::High
        }
    }

    /// The other level.
    pub const fn inverted(self) -> Self {
        match self {
            Level::Low => Level::High,
            Level::High => Level::Low,
        }
    }
}

/// How one drive motor is wired: its PWM channel, its direction pin and the direction
/// level that drives the car forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MotorWiring {
    /// Name used in errors and traces, e.g. `left motor`.
    pub name: &'static str,
    /// PWM channel of the speed signal.
    pub pwm_channel: u8,
    /// BCM pin of the direction signal.
    pub dir_bcm: u8,
    /// Direction level that drives the car forward.
    pub forward: Level,
}

/// The left motor: PWM P13, direction D4, forward = low.
pub const LEFT_MOTOR: MotorWiring = MotorWiring {
    name: "left motor",
    pwm_channel: 13,
    dir_bcm: D4,
    forward: Level::Low,
};

/// The right motor: PWM P12, direction D5, forward = high (it is mounted mirrored).
pub const RIGHT_MOTOR: MotorWiring = MotorWiring {
    name: "right motor",
    pwm_channel: 12,
    dir_bcm: D5,
    forward: Level::High,
};

/// The timers nevil programs at start: those of the steering servo (0) and the motors (3).
pub const PWM_TIMERS: [u8; 2] = [0, 3];

/// The timer driving a PWM channel: channel/4 for P0–P15; P16–P17 → 4, P18 → 5, P19 → 6
/// (robot-hat 2.x); `None` past P19.
pub fn timer_of(channel: u8) -> Option<u8> {
    match channel {
        0..=15 => Some(channel / 4),
        16 | 17 => Some(4),
        18 => Some(5),
        19 => Some(6),
        _ => None,
    }
}

/// The prescaler register of a timer: 0x40 + timer for 0–3, 0x50 + (timer − 4) for 4–6.
pub fn prescaler_register(timer: u8) -> Option<u8> {
    match timer {
        0..=3 => Some(REG_PRESCALER + timer),
        4..=6 => Some(REG_PRESCALER_HIGH + timer - 4),
        _ => None,
    }
}

/// The period (ARR) register of a timer: 0x44 + timer for 0–3, 0x54 + (timer − 4) for 4–6.
pub fn period_register(timer: u8) -> Option<u8> {
    match timer {
        0..=3 => Some(REG_PERIOD + timer),
        4..=6 => Some(REG_PERIOD_HIGH + timer - 4),
        _ => None,
    }
}

/// The value register of a PWM channel: 0x20 + channel.
pub fn channel_register(channel: u8) -> Option<u8> {
    (channel < CHANNELS).then(|| REG_CHANNEL + channel)
}

/// A 16-bit register write as it goes on the wire: `[reg, hi, lo]`.
pub fn write16(reg: u8, value: u16) -> [u8; 3] {
    let [hi, lo] = value.to_be_bytes();
    [reg, hi, lo]
}

/// The write that sets a timer's prescaler for 50 Hz: the register holds 1199.
pub fn prescaler_write(timer: u8) -> Option<[u8; 3]> {
    Some(write16(prescaler_register(timer)?, PRESCALER - 1))
}

/// The write that sets a timer's period for 50 Hz: the register holds 1200, as
/// robot-hat 2.x writes it (the counter then runs 0..=1200; 49.96 Hz, which servos
/// and motor drivers do not notice).
pub fn period_write(timer: u8) -> Option<[u8; 3]> {
    Some(write16(period_register(timer)?, PERIOD))
}

/// The write that sets a PWM channel's value in ticks of [`PERIOD`].
pub fn pwm_write(channel: u8, value: u16) -> Option<[u8; 3]> {
    Some(write16(channel_register(channel)?, value))
}

/// A servo's pulse for an angle (−90..=90°, clamped), in µs, rounded half to even as
/// Python's `round()` does: 500 + (angle + 90) / 180 · 2000.
pub fn servo_pulse_us(angle_deg: f64) -> f64 {
    let angle = angle_deg.clamp(-90.0, 90.0);
    (SERVO_MIN_US + (angle + 90.0) / 180.0 * (SERVO_MAX_US - SERVO_MIN_US)).round_ties_even()
}

/// A servo's channel value for an angle: pulse / 20 000 · 1200, rounded half to even
/// (−30° → 70, 0° → 90, +30° → 110).
pub fn servo_ticks(angle_deg: f64) -> u16 {
    let ticks = (servo_pulse_us(angle_deg) / FRAME_US * f64::from(PERIOD)).round_ties_even();
    // The pulse is at most 2500 µs, so ticks ≤ 150: the cast cannot truncate.
    ticks as u16
}

/// A motor's channel value for a power in percent (sign ignored, |power| ≤ 100 expected):
/// duty = trunc(|power| / 100 · 100), value = trunc(duty / 100 · 1200), in f64 in that
/// order as the vendor computes it (29 → duty 28 → 336, not 348).
pub fn motor_value(power: f64) -> u16 {
    let duty = (power.abs() / 100.0 * 100.0).trunc();
    let value = (duty / 100.0 * f64::from(PERIOD)).trunc();
    // `as` saturates: a power past 100 % gives at most u16::MAX, never wraps.
    value as u16
}

/// The direction level for a power: forward for > 0, the other level for < 0, `None`
/// for 0 (the pin is left as it is).
pub fn motor_direction(wiring: &MotorWiring, power: f64) -> Option<Level> {
    if power > 0.0 {
        Some(wiring.forward)
    } else if power < 0.0 {
        Some(wiring.forward.inverted())
    } else {
        None
    }
}

/// The level that holds the HAT MCU in reset on [`MCU_RESET`]: the line is active low
/// (the vendor's `reset_mcu` drives it low, then high again to let the MCU boot).
pub const MCU_RESET_ACTIVE: Level = Level::Low;

/// The channel value that sends no pulse at all: a motor's driver sees 0 % duty and
/// stops; a servo gets no pulse and stops driving (no holding torque: it is released
/// where it stands rather than moved).
pub const PWM_OFF: u16 = 0;

/// The direction pins of both drive motors (D4, D5), left first.
pub const MOTOR_DIRECTION_PINS: [u8; 2] = [LEFT_MOTOR.dir_bcm, RIGHT_MOTOR.dir_bcm];

/// The PWM channels of both drive motors (P13, P12), left first.
pub const MOTOR_CHANNELS: [u8; 2] = [LEFT_MOTOR.pwm_channel, RIGHT_MOTOR.pwm_channel];

/// The writes that set every PWM channel, P0 to P19 in order, to [`PWM_OFF`]:
/// `[0x20 + N, 0x00, 0x00]`. What `nevil hw-stop` sends to leave nothing driven.
pub fn all_channels_off() -> [[u8; 3]; CHANNELS as usize] {
    std::array::from_fn(|n| {
        // n < CHANNELS (20), so it fits a u8 and the register is 0x20..=0x33.
        write16(REG_CHANNEL + n as u8, PWM_OFF)
    })
}

/// The write that selects ADC channel N (0–7): `[(7 − N) | 0x10, 0, 0]` (A0 → `17 00 00`).
pub fn adc_select(channel: u8) -> Option<[u8; 3]> {
    (channel < ADC_CHANNELS).then(|| [(7 - channel) | 0x10, 0, 0])
}

/// The raw reading from the two bytes read after a select, high byte first.
pub fn adc_raw(hi: u8, lo: u8) -> u16 {
    u16::from_be_bytes([hi, lo])
}

/// Volts at the ADC pin for a raw reading: raw · 3.3 / 4095.
pub fn adc_volts(raw: u16) -> f64 {
    f64::from(raw) * ADC_VREF / f64::from(ADC_MAX)
}

/// Battery volts for a raw reading of [`BATTERY_ADC`]: the pin volts times the divider, 3.
pub fn battery_volts(raw: u16) -> f64 {
    adc_volts(raw) * BATTERY_DIVIDER
}

/// Distance to an echo in metres for the echo pulse width in seconds: out and back at
/// 343 m/s.
pub fn echo_distance_m(echo_s: f64) -> f64 {
    echo_s * SPEED_OF_SOUND_M_S / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_and_address() {
        assert_eq!(I2C_BUS, 1);
        assert_eq!(I2C_ADDRESS, 0x14);
    }

    #[test]
    fn fifty_hz_from_72_mhz() {
        assert_eq!(
            PWM_CLOCK_HZ / u32::from(PRESCALER) / u32::from(PERIOD),
            PWM_FREQ_HZ
        );
        assert_eq!(1_000_000.0 / f64::from(PWM_FREQ_HZ), FRAME_US);
    }

    #[test]
    fn channel_to_timer() {
        assert_eq!(timer_of(0), Some(0));
        assert_eq!(timer_of(STEERING_CHANNEL), Some(0));
        assert_eq!(timer_of(3), Some(0));
        assert_eq!(timer_of(4), Some(1));
        assert_eq!(timer_of(RIGHT_MOTOR.pwm_channel), Some(3));
        assert_eq!(timer_of(LEFT_MOTOR.pwm_channel), Some(3));
        assert_eq!(timer_of(15), Some(3));
        assert_eq!(timer_of(16), Some(4));
        assert_eq!(timer_of(17), Some(4));
        assert_eq!(timer_of(18), Some(5));
        assert_eq!(timer_of(19), Some(6));
        assert_eq!(timer_of(20), None);
    }

    #[test]
    fn timers_in_use_are_those_of_steering_and_motors() {
        let mut used: Vec<u8> = [
            STEERING_CHANNEL,
            RIGHT_MOTOR.pwm_channel,
            LEFT_MOTOR.pwm_channel,
        ]
        .iter()
        .filter_map(|&c| timer_of(c))
        .collect();
        used.dedup();
        assert_eq!(used, PWM_TIMERS);
    }

    #[test]
    fn prescaler_registers() {
        assert_eq!(prescaler_register(0), Some(0x40));
        assert_eq!(prescaler_register(3), Some(0x43));
        assert_eq!(prescaler_register(4), Some(0x50));
        assert_eq!(prescaler_register(6), Some(0x52));
        assert_eq!(prescaler_register(7), None);
    }

    #[test]
    fn period_registers() {
        assert_eq!(period_register(0), Some(0x44));
        assert_eq!(period_register(3), Some(0x47));
        assert_eq!(period_register(4), Some(0x54));
        assert_eq!(period_register(6), Some(0x56));
        assert_eq!(period_register(7), None);
    }

    #[test]
    fn channel_registers() {
        assert_eq!(channel_register(0), Some(0x20));
        assert_eq!(channel_register(STEERING_CHANNEL), Some(0x22));
        assert_eq!(channel_register(12), Some(0x2c));
        assert_eq!(channel_register(13), Some(0x2d));
        assert_eq!(channel_register(19), Some(0x33));
        assert_eq!(channel_register(20), None);
    }

    #[test]
    fn sixteen_bit_writes_are_high_byte_first() {
        assert_eq!(write16(0x22, 0x005a), [0x22, 0x00, 0x5a]);
        assert_eq!(write16(0x2d, 600), [0x2d, 0x02, 0x58]);
        assert_eq!(write16(0x40, 0xabcd), [0x40, 0xab, 0xcd]);
    }

    #[test]
    fn prescaler_register_holds_prescaler_minus_one() {
        assert_eq!(prescaler_write(0), Some([0x40, 0x04, 0xaf])); // 1199
        assert_eq!(prescaler_write(3), Some([0x43, 0x04, 0xaf]));
        assert_eq!(prescaler_write(4), Some([0x50, 0x04, 0xaf]));
        assert_eq!(prescaler_write(7), None);
    }

    #[test]
    fn period_register_holds_the_period() {
        assert_eq!(period_write(0), Some([0x44, 0x04, 0xb0])); // 1200
        assert_eq!(period_write(3), Some([0x47, 0x04, 0xb0]));
        assert_eq!(period_write(4), Some([0x54, 0x04, 0xb0]));
        assert_eq!(period_write(7), None);
    }

    #[test]
    fn servo_pulse_rounds_half_to_even() {
        assert_eq!(servo_pulse_us(-90.0), 500.0);
        assert_eq!(servo_pulse_us(-30.0), 1167.0); // 1166.67
        assert_eq!(servo_pulse_us(0.0), 1500.0);
        assert_eq!(servo_pulse_us(30.0), 1833.0); // 1833.33
        assert_eq!(servo_pulse_us(90.0), 2500.0);
        assert_eq!(servo_pulse_us(120.0), 2500.0, "clamped to +90");
        // Exact ties, checked against Python's round(): 1500.5 → 1500, 1501.5 → 1502.
        assert_eq!(servo_pulse_us(0.045), 1500.0);
        assert_eq!(servo_pulse_us(0.135), 1502.0);
    }

    #[test]
    fn servo_ticks_of_steering_angles() {
        assert_eq!(servo_ticks(-30.0), 70);
        assert_eq!(servo_ticks(0.0), 90);
        assert_eq!(servo_ticks(30.0), 110);
        assert_eq!(servo_ticks(-90.0), 30);
        assert_eq!(servo_ticks(90.0), 150);
        // Tick ties, checked against Python's round(): 70.5 → 70, 91.5 → 92, 88.5 → 88.
        assert_eq!(servo_ticks(-29.25), 70);
        assert_eq!(servo_ticks(2.25), 92);
        assert_eq!(servo_ticks(-2.25), 88);
    }

    #[test]
    fn motor_value_truncates_in_vendor_order() {
        assert_eq!(motor_value(0.0), 0);
        assert_eq!(motor_value(50.0), 600);
        assert_eq!(motor_value(-50.0), 600);
        assert_eq!(motor_value(29.0), 336, "29/100*100 = 28.999… → duty 28");
        assert_eq!(motor_value(100.0), 1200);
        assert_eq!(motor_value(-100.0), 1200);
        assert_eq!(motor_value(0.5), 0);
    }

    #[test]
    fn motor_direction_levels() {
        assert_eq!(motor_direction(&LEFT_MOTOR, 50.0), Some(Level::Low));
        assert_eq!(motor_direction(&LEFT_MOTOR, -50.0), Some(Level::High));
        assert_eq!(motor_direction(&RIGHT_MOTOR, 50.0), Some(Level::High));
        assert_eq!(motor_direction(&RIGHT_MOTOR, -50.0), Some(Level::Low));
        assert_eq!(motor_direction(&LEFT_MOTOR, 0.0), None);
        assert_eq!(motor_direction(&RIGHT_MOTOR, -0.0), None);
    }

    #[test]
    fn motor_wiring() {
        assert_eq!((LEFT_MOTOR.pwm_channel, LEFT_MOTOR.dir_bcm), (13, 23));
        assert_eq!((RIGHT_MOTOR.pwm_channel, RIGHT_MOTOR.dir_bcm), (12, 24));
    }

    #[test]
    fn mcu_reset_is_active_low() {
        assert_eq!(MCU_RESET_ACTIVE, Level::Low);
        assert_eq!(MCU_RESET, 5);
    }

    #[test]
    fn pwm_off_is_a_zero_value() {
        assert_eq!(PWM_OFF, 0);
        assert_eq!(motor_value(0.0), PWM_OFF);
        assert_eq!(
            pwm_write(STEERING_CHANNEL, PWM_OFF),
            Some([0x22, 0x00, 0x00])
        );
    }

    #[test]
    fn motor_pins_and_channels_left_first() {
        assert_eq!(MOTOR_DIRECTION_PINS, [23, 24]);
        assert_eq!(MOTOR_CHANNELS, [13, 12]);
    }

    #[test]
    fn all_channels_off_covers_p0_to_p19_in_order() {
        let writes = all_channels_off();
        assert_eq!(CHANNELS, 20);
        assert_eq!(writes.len(), 20);
        assert_eq!(writes[0], [0x20, 0x00, 0x00]);
        assert_eq!(writes[2], [0x22, 0x00, 0x00], "steering P2");
        assert_eq!(writes[12], [0x2c, 0x00, 0x00], "right motor P12");
        assert_eq!(writes[13], [0x2d, 0x00, 0x00], "left motor P13");
        assert_eq!(writes[19], [0x33, 0x00, 0x00]);
        for (n, w) in (0u8..).zip(writes) {
            assert_eq!(Some(w), pwm_write(n, 0), "P{n}");
        }
    }

    #[test]
    fn adc_select_bytes() {
        assert_eq!(adc_select(0), Some([0x17, 0, 0]));
        assert_eq!(adc_select(1), Some([0x16, 0, 0]));
        assert_eq!(adc_select(2), Some([0x15, 0, 0]));
        assert_eq!(adc_select(BATTERY_ADC), Some([0x13, 0, 0]));
        assert_eq!(adc_select(7), Some([0x10, 0, 0]));
        assert_eq!(adc_select(8), None);
    }

    #[test]
    fn adc_raw_is_high_byte_first() {
        assert_eq!(adc_raw(0x0f, 0xff), 4095);
        assert_eq!(adc_raw(0x01, 0x02), 0x0102);
        assert_eq!(adc_raw(0, 0), 0);
    }

    #[test]
    fn adc_volts_over_3v3() {
        assert_eq!(adc_volts(0), 0.0);
        assert!((adc_volts(4095) - 3.3).abs() < 1e-12);
        assert!((adc_volts(2048) - 1.650_403).abs() < 1e-6);
    }

    #[test]
    fn battery_is_three_times_a4() {
        assert!((battery_volts(4095) - 9.9).abs() < 1e-12);
        assert!((battery_volts(2730) - 6.6).abs() < 1e-3);
        assert_eq!(battery_volts(0), 0.0);
    }

    #[test]
    fn header_pins_to_bcm() {
        assert_eq!([D2, D3, D4, D5], [27, 22, 23, 24]);
        assert_eq!([MCU_RESET, USER_BUTTON, LED], [5, 25, 26]);
    }

    #[test]
    fn echo_distance() {
        assert_eq!(echo_distance_m(0.0), 0.0);
        assert!((echo_distance_m(0.01) - 1.715).abs() < 1e-12);
    }

    #[test]
    fn levels() {
        assert_eq!(Level::Low.bit(), 0);
        assert_eq!(Level::High.bit(), 1);
        assert_eq!(Level::from_bit(0), Level::Low);
        assert_eq!(Level::from_bit(7), Level::High);
        assert_eq!(Level::Low.inverted(), Level::High);
    }
}
