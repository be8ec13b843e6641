//! How bytes reach the HAT: the [`Transport`] trait and its two implementations.
//!
//! - [`Rppal`] talks to the real devices: `/dev/i2c-N` through `rppal::i2c::I2c` and the
//!   GPIO header through `rppal::gpio::Gpio`. Opening fails with [`HwError::Open`] naming
//!   the device (`i2c-1@0x14`, `gpio`, `gpio 23`) and keeping the OS error text; on a
//!   machine that is not a Pi that is what happens, never a panic.
//! - [`Recording`] records every transaction as a [`Transaction`]. Alone it is the dry
//!   run: writes go nowhere, reads answer from a queue the caller fills and then 0, and
//!   delays return at once. Over another transport ([`Recording::tap`]) it forwards each
//!   call and records what crossed the wire, real read values included.
//!
//! A transaction serialises as one flat JSON object:
//! `{"bus": "i2c", "op": "write", "addr": "0x14", "wire": "22 00 5a"}` (the bytes after the
//! address, lowercase hex), `{"bus": "i2c", "op": "read", "addr": "0x14", "wire": "00"}`,
//! `{"bus": "gpio", "op": "write", "bcm": 23, "level": 0}`, `{"bus": "gpio", "op": "read",
//! "bcm": 22, "level": 0}`, and for an echo measurement `{"bus": "gpio", "op": "pulse",
//! "bcm": 22, "timeout_us": 25000, "width_us": 5831}` (`width_us` absent on timeout).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::protocol::Level;
use crate::hw::HwError;

/// Byte and pin access to the HAT, one call per bus transaction. Implementations are
/// used behind a `Mutex`: a caller that needs several transactions to stay together
/// (an ADC select and its two reads) holds the lock across them.
pub trait Transport: Send {
    /// Writes `bytes` to the I2C device at `addr` in one transfer.
    fn i2c_write(&mut self, addr: u16, bytes: &[u8]) -> Result<(), HwError>;
    /// Reads one byte from the I2C device at `addr` (an SMBus receive byte).
    fn i2c_read_byte(&mut self, addr: u16) -> Result<u8, HwError>;
    /// Drives an output pin (BCM numbering) to `level`.
    fn gpio_write(&mut self, bcm: u8, level: Level) -> Result<(), HwError>;
    /// Reads the level of an input pin (BCM numbering).
    fn gpio_read(&mut self, bcm: u8) -> Result<Level, HwError>;
    /// Waits for input pin `bcm` to go high, then times how long it stays high. `None`
    /// when it does not rise, or does not fall again, within `timeout` of the call: the
    /// wait is bounded, whatever the pin does.
    fn echo_pulse(&mut self, bcm: u8, timeout: Duration) -> Result<Option<Duration>, HwError>;
    /// Waits `duration` (a settle time the hardware needs); a dry run returns at once.
    fn delay(&mut self, duration: Duration);
}

/// One transaction on the HAT's buses, as a trace records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Flat", try_from = "Flat")]
pub enum Transaction {
    /// Bytes written to an I2C device.
    I2cWrite {
        /// 7-bit device address.
        addr: u16,
        /// The bytes after the address.
        bytes: Vec<u8>,
    },
    /// One byte read from an I2C device.
    I2cRead {
        /// 7-bit device address.
        addr: u16,
        /// The byte read.
        byte: u8,
    },
    /// An output pin driven to a level.
    GpioWrite {
        /// BCM pin number.
        bcm: u8,
        /// The level written.
        level: Level,
    },
    /// An input pin's level read.
    GpioRead {
        /// BCM pin number.
        bcm: u8,
        /// The level read.
        level: Level,
    },
    /// An echo pulse timed on an input pin.
    GpioPulse {
        /// BCM pin number.
        bcm: u8,
        /// How long the measurement could wait, in µs.
        timeout_us: u64,
        /// The pulse width in µs; `None` on timeout.
        width_us: Option<u64>,
    },
}

/// The JSON shape of a [`Transaction`]: one flat object whose keys depend on bus and op.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Flat {
    bus: FlatBus,
    op: FlatOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wire: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bcm: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    level: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    width_us: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FlatBus {
    I2c,
    Gpio,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FlatOp {
    Write,
    Read,
    Pulse,
}

impl Flat {
    fn new(bus: FlatBus, op: FlatOp) -> Self {
        Self {
            bus,
            op,
            addr: None,
            wire: None,
            bcm: None,
            level: None,
            timeout_us: None,
            width_us: None,
        }
    }
}

/// Bytes as a trace shows them: lowercase hex pairs separated by spaces (`22 00 5a`).
pub fn hex_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn parse_hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    text.split_whitespace()
        .map(|pair| u8::from_str_radix(pair, 16).map_err(|e| format!("bad byte {pair:?}: {e}")))
        .collect()
}

fn parse_addr(text: &str) -> Result<u16, String> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| format!("address {text:?} must start with 0x"))?;
    u16::from_str_radix(digits, 16).map_err(|e| format!("bad address {text:?}: {e}"))
}

impl From<Transaction> for Flat {
    fn from(t: Transaction) -> Self {
        match t {
            Transaction::I2cWrite { addr, bytes } => Flat {
                addr: Some(format!("0x{addr:02x}")),
                wire: Some(hex_bytes(&bytes)),
                ..Flat::new(FlatBus::I2c, FlatOp::Write)
            },
            Transaction::I2cRead { addr, byte } => Flat {
                addr: Some(format!("0x{addr:02x}")),
                wire: Some(hex_bytes(&[byte])),
                ..Flat::new(FlatBus::I2c, FlatOp::Read)
            },
            Transaction::GpioWrite { bcm, level } => Flat {
                bcm: Some(bcm),
                level: Some(level.bit()),
                ..Flat::new(FlatBus::Gpio, FlatOp::Write)
            },
            Transaction::GpioRead { bcm, level } => Flat {
                bcm: Some(bcm),
                level: Some(level.bit()),
                ..Flat::new(FlatBus::Gpio, FlatOp::Read)
            },
            Transaction::GpioPulse {
                bcm,
                timeout_us,
                width_us,
            } => Flat {
                bcm: Some(bcm),
                timeout_us: Some(timeout_us),
                width_us,
                ..Flat::new(FlatBus::Gpio, FlatOp::Pulse)
            },
        }
    }
}

impl TryFrom<Flat> for Transaction {
    type Error = String;

    fn try_from(f: Flat) -> Result<Self, String> {
        let need = |name: &str| format!("missing {name}");
        match (f.bus, f.op) {
            (FlatBus::I2c, FlatOp::Write) => Ok(Transaction::I2cWrite {
                addr: parse_addr(&f.addr.ok_or_else(|| need("addr"))?)?,
                bytes: parse_hex_bytes(&f.wire.ok_or_else(|| need("wire"))?)?,
            }),
            (FlatBus::I2c, FlatOp::Read) => {
                let bytes = parse_hex_bytes(&f.wire.ok_or_else(|| need("wire"))?)?;
                let [byte] = bytes[..] else {
                    return Err(format!("an i2c read holds one byte, not {}", bytes.len()));
                };
                Ok(Transaction::I2cRead {
                    addr: parse_addr(&f.addr.ok_or_else(|| need("addr"))?)?,
                    byte,
                })
            }
            (FlatBus::Gpio, FlatOp::Write) => Ok(Transaction::GpioWrite {
                bcm: f.bcm.ok_or_else(|| need("bcm"))?,
                level: Level::from_bit(f.level.ok_or_else(|| need("level"))?),
            }),
            (FlatBus::Gpio, FlatOp::Read) => Ok(Transaction::GpioRead {
                bcm: f.bcm.ok_or_else(|| need("bcm"))?,
                level: Level::from_bit(f.level.ok_or_else(|| need("level"))?),
            }),
            (FlatBus::Gpio, FlatOp::Pulse) => Ok(Transaction::GpioPulse {
                bcm: f.bcm.ok_or_else(|| need("bcm"))?,
                timeout_us: f.timeout_us.ok_or_else(|| need("timeout_us"))?,
                width_us: f.width_us,
            }),
            (FlatBus::I2c, FlatOp::Pulse) => Err("an i2c bus has no pulse op".to_owned()),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The dry-run transport, or a recorder over a real one: every call becomes a
/// [`Transaction`] in order.
///
/// Dry answers are deterministic: I2C reads pop [`Recording::queue_i2c_reads`] and then
/// answer 0; GPIO reads answer low; echo pulses pop [`Recording::queue_echo`] and then
/// time out. Over a real transport the queues are ignored and the real answers recorded.
#[derive(Default)]
pub struct Recording {
    inner: Option<Box<dyn Transport>>,
    log: Vec<Transaction>,
    i2c_reads: VecDeque<u8>,
    echoes: VecDeque<Option<Duration>>,
}

impl Recording {
    /// A dry run: nothing leaves the process.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the transactions of `inner` while passing them through.
    pub fn tap(inner: Box<dyn Transport>) -> Self {
        Self {
            inner: Some(inner),
            ..Self::default()
        }
    }

    /// Bytes the next dry I2C reads answer, in order, before falling back to 0.
    pub fn queue_i2c_reads(&mut self, bytes: &[u8]) {
        self.i2c_reads.extend(bytes);
    }

    /// The width the next dry echo measurement answers (`None`: a timeout).
    pub fn queue_echo(&mut self, width: Option<Duration>) {
        self.echoes.push_back(width);
    }

    /// Everything recorded so far, oldest first.
    pub fn transactions(&self) -> &[Transaction] {
        &self.log
    }

    /// Takes everything recorded so far, leaving the log empty (one operation's worth).
    pub fn take(&mut self) -> Vec<Transaction> {
        std::mem::take(&mut self.log)
    }
}

impl Transport for Recording {
    fn i2c_write(&mut self, addr: u16, bytes: &[u8]) -> Result<(), HwError> {
        if let Some(inner) = &mut self.inner {
            inner.i2c_write(addr, bytes)?;
        }
        self.log.push(Transaction::I2cWrite {
            addr,
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    fn i2c_read_byte(&mut self, addr: u16) -> Result<u8, HwError> {
        let byte = match &mut self.inner {
            Some(inner) => inner.i2c_read_byte(addr)?,
            None => self.i2c_reads.pop_front().unwrap_or(0),
        };
        self.log.push(Transaction::I2cRead { addr, byte });
        Ok(byte)
    }

    fn gpio_write(&mut self, bcm: u8, level: Level) -> Result<(), HwError> {
        if let Some(inner) = &mut self.inner {
            inner.gpio_write(bcm, level)?;
        }
        self.log.push(Transaction::GpioWrite { bcm, level });
        Ok(())
    }

    fn gpio_read(&mut self, bcm: u8) -> Result<Level, HwError> {
        let level = match &mut self.inner {
            Some(inner) => inner.gpio_read(bcm)?,
            None => Level::Low,
        };
        self.log.push(Transaction::GpioRead { bcm, level });
        Ok(level)
    }

    fn echo_pulse(&mut self, bcm: u8, timeout: Duration) -> Result<Option<Duration>, HwError> {
        let width = match &mut self.inner {
            Some(inner) => inner.echo_pulse(bcm, timeout)?,
            None => self.echoes.pop_front().flatten(),
        };
        self.log.push(Transaction::GpioPulse {
            bcm,
            timeout_us: micros(timeout),
            width_us: width.map(micros),
        });
        Ok(width)
    }

    fn delay(&mut self, duration: Duration) {
        if let Some(inner) = &mut self.inner {
            inner.delay(duration);
        }
    }
}

/// How [`Rppal`] sets up a pin at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinMode {
    /// An output, driven low at open.
    OutputLow,
    /// An output, driven high at open (an active-low reset line stays released).
    OutputHigh,
    /// An input with the internal pull-down (an echo line idles low).
    InputPullDown,
}

/// The real devices: one I2C bus and the GPIO pins the caller asked for, held open.
pub struct Rppal {
    i2c: rppal::i2c::I2c,
    i2c_name: String,
    bus: u8,
    addr: u16,
    outputs: HashMap<u8, rppal::gpio::OutputPin>,
    inputs: HashMap<u8, rppal::gpio::InputPin>,
}

/// The name errors give an I2C device: `i2c-1@0x14`.
pub fn i2c_device_name(bus: u8, addr: u16) -> String {
    format!("i2c-{bus}@0x{addr:02x}")
}

/// The OS text of an rppal I2C error (`No such file or directory (os error 2)`), or its
/// own description when the OS said nothing.
pub(crate) fn i2c_reason(e: &rppal::i2c::Error) -> String {
    match e {
        rppal::i2c::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// The OS text of an rppal GPIO error, or its own description.
pub(crate) fn gpio_reason(e: &rppal::gpio::Error) -> String {
    match e {
        rppal::gpio::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// Our level as rppal's.
pub(crate) fn rppal_level(level: Level) -> rppal::gpio::Level {
    match level {
        Level::Low => rppal::gpio::Level::Low,
        Level::High => rppal::gpio::Level::High,
    }
}

fn our_level(level: rppal::gpio::Level) -> Level {
    match level {
        rppal::gpio::Level::Low => Level::Low,
        rppal::gpio::Level::High => Level::High,
    }
}

impl Rppal {
    /// Opens `/dev/i2c-{bus}` addressed to `addr`, then the GPIO pins in `pins`.
    ///
    /// # Errors
    ///
    /// [`HwError::Open`] naming the device that failed: `i2c-1@0x14` (no such bus, no
    /// permission), `gpio` (not a Raspberry Pi, no `/dev/gpiomem`) or `gpio 23` (pin busy
    /// or missing), with the OS error text.
    pub fn open(bus: u8, addr: u16, pins: &[(u8, PinMode)]) -> Result<Self, HwError> {
        let i2c_name = i2c_device_name(bus, addr);
        let open_err = |device: &str, reason: String| HwError::Open {
            device: device.to_owned(),
            reason,
        };
        let mut i2c =
            rppal::i2c::I2c::with_bus(bus).map_err(|e| open_err(&i2c_name, i2c_reason(&e)))?;
        i2c.set_slave_address(addr)
            .map_err(|e| open_err(&i2c_name, i2c_reason(&e)))?;

        let gpio = rppal::gpio::Gpio::new().map_err(|e| open_err("gpio", gpio_reason(&e)))?;
        let mut outputs = HashMap::new();
        let mut inputs = HashMap::new();
        for &(bcm, mode) in pins {
            let pin = gpio
                .get(bcm)
                .map_err(|e| open_err(&format!("gpio {bcm}"), gpio_reason(&e)))?;
            match mode {
                PinMode::OutputLow => {
                    outputs.insert(bcm, pin.into_output_low());
                }
                PinMode::OutputHigh => {
                    outputs.insert(bcm, pin.into_output_high());
                }
                PinMode::InputPullDown => {
                    inputs.insert(bcm, pin.into_input_pulldown());
                }
            }
        }
        Ok(Self {
            i2c,
            i2c_name,
            bus,
            addr,
            outputs,
            inputs,
        })
    }

    fn i2c_io(&self, reason: String) -> HwError {
        HwError::Io {
            device: self.i2c_name.clone(),
            reason,
        }
    }

    /// Points the bus at `addr` if a call names another device than the last one.
    fn address(&mut self, addr: u16) -> Result<(), HwError> {
        if addr != self.addr {
            self.i2c.set_slave_address(addr).map_err(|e| HwError::Io {
                device: i2c_device_name(self.bus, addr),
                reason: i2c_reason(&e),
            })?;
            self.addr = addr;
            self.i2c_name = i2c_device_name(self.bus, addr);
        }
        Ok(())
    }

    fn input(&self, bcm: u8) -> Result<&rppal::gpio::InputPin, HwError> {
        self.inputs.get(&bcm).ok_or_else(|| HwError::Io {
            device: format!("gpio {bcm}"),
            reason: "not opened as an input".to_owned(),
        })
    }
}

impl Transport for Rppal {
    fn i2c_write(&mut self, addr: u16, bytes: &[u8]) -> Result<(), HwError> {
        self.address(addr)?;
        let sent = self
            .i2c
            .write(bytes)
            .map_err(|e| self.i2c_io(i2c_reason(&e)))?;
        if sent != bytes.len() {
            return Err(self.i2c_io(format!("short write: {sent} of {} bytes", bytes.len())));
        }
        Ok(())
    }

    fn i2c_read_byte(&mut self, addr: u16) -> Result<u8, HwError> {
        self.address(addr)?;
        let mut buf = [0u8; 1];
        let got = self
            .i2c
            .read(&mut buf)
            .map_err(|e| self.i2c_io(i2c_reason(&e)))?;
        if got != 1 {
            return Err(self.i2c_io("short read: 0 of 1 byte".to_owned()));
        }
        Ok(buf[0])
    }

    fn gpio_write(&mut self, bcm: u8, level: Level) -> Result<(), HwError> {
        let pin = self.outputs.get_mut(&bcm).ok_or_else(|| HwError::Io {
            device: format!("gpio {bcm}"),
            reason: "not opened as an output".to_owned(),
        })?;
        pin.write(rppal_level(level));
        Ok(())
    }

    fn gpio_read(&mut self, bcm: u8) -> Result<Level, HwError> {
        Ok(our_level(self.input(bcm)?.read()))
    }

    fn echo_pulse(&mut self, bcm: u8, timeout: Duration) -> Result<Option<Duration>, HwError> {
        let pin = self.input(bcm)?;
        // Poll rather than wait on an edge interrupt: the echo is a few ms at most and
        // the wake-up latency of an interrupt would cost centimetres. Both loops end at
        // the deadline whatever the pin does.
        let deadline = Instant::now() + timeout;
        let rise = loop {
            let now = Instant::now();
            if pin.is_high() {
                break now;
            }
            if now >= deadline {
                return Ok(None);
            }
            std::hint::spin_loop();
        };
        loop {
            let now = Instant::now();
            if pin.is_low() {
                return Ok(Some(now - rise));
            }
            if now >= deadline {
                return Ok(None);
            }
            std::hint::spin_loop();
        }
    }

    fn delay(&mut self, duration: Duration) {
        // The scheduler's sleep overshoots by tens of µs; short waits (a trigger pulse)
        // spin instead so they stay close to what the sensor expects.
        if duration < Duration::from_millis(1) {
            let end = Instant::now() + duration;
            while Instant::now() < end {
                std::hint::spin_loop();
            }
        } else {
            std::thread::sleep(duration);
        }
    }
}

/// Transactions as tests spell them: `write(&[0x22, 0, 0x5a])`, `read(0)`, `gpio(23, Low)`.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::Transaction;
    use crate::hw::picarx::protocol::{Level, I2C_ADDRESS};

    /// An I2C write of `bytes` to the HAT.
    pub(crate) fn write(bytes: &[u8]) -> Transaction {
        Transaction::I2cWrite {
            addr: I2C_ADDRESS,
            bytes: bytes.to_vec(),
        }
    }

    /// A single-byte I2C read from the HAT that returned `byte`.
    pub(crate) fn read(byte: u8) -> Transaction {
        Transaction::I2cRead {
            addr: I2C_ADDRESS,
            byte,
        }
    }

    /// A GPIO write.
    pub(crate) fn gpio(bcm: u8, level: Level) -> Transaction {
        Transaction::GpioWrite { bcm, level }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn i2c_write_serialises_as_hex_wire() {
        let t = Transaction::I2cWrite {
            addr: 0x14,
            bytes: vec![0x22, 0x00, 0x5a],
        };
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"bus": "i2c", "op": "write", "addr": "0x14", "wire": "22 00 5a"})
        );
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"bus":"i2c","op":"write","addr":"0x14","wire":"22 00 5a"}"#
        );
    }

    #[test]
    fn i2c_read_serialises_one_byte() {
        let t = Transaction::I2cRead {
            addr: 0x14,
            byte: 0xab,
        };
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"bus": "i2c", "op": "read", "addr": "0x14", "wire": "ab"})
        );
    }

    #[test]
    fn gpio_write_serialises_bcm_and_level() {
        let t = Transaction::GpioWrite {
            bcm: 23,
            level: Level::Low,
        };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"bus":"gpio","op":"write","bcm":23,"level":0}"#
        );
    }

    #[test]
    fn pulse_omits_width_on_timeout() {
        let t = Transaction::GpioPulse {
            bcm: 22,
            timeout_us: 25_000,
            width_us: None,
        };
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"bus": "gpio", "op": "pulse", "bcm": 22, "timeout_us": 25000})
        );
    }

    #[test]
    fn transactions_round_trip() {
        let all = vec![
            Transaction::I2cWrite {
                addr: 0x14,
                bytes: vec![0x17, 0, 0],
            },
            Transaction::I2cRead {
                addr: 0x14,
                byte: 0x0f,
            },
            Transaction::GpioWrite {
                bcm: 24,
                level: Level::High,
            },
            Transaction::GpioRead {
                bcm: 22,
                level: Level::Low,
            },
            Transaction::GpioPulse {
                bcm: 22,
                timeout_us: 25_000,
                width_us: Some(5_831),
            },
        ];
        let text = serde_json::to_string(&all).unwrap();
        let back: Vec<Transaction> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, all);
    }

    #[test]
    fn malformed_transactions_are_rejected() {
        for bad in [
            json!({"bus": "i2c", "op": "write", "addr": "14", "wire": "00"}),
            json!({"bus": "i2c", "op": "write", "addr": "0x14", "wire": "zz"}),
            json!({"bus": "i2c", "op": "read", "addr": "0x14", "wire": "00 01"}),
            json!({"bus": "gpio", "op": "write", "bcm": 23}),
            json!({"bus": "i2c", "op": "pulse"}),
            json!({"bus": "gpio", "op": "write", "bcm": 23, "level": 0, "extra": 1}),
        ] {
            assert!(
                serde_json::from_value::<Transaction>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn hex_bytes_format() {
        assert_eq!(hex_bytes(&[]), "");
        assert_eq!(hex_bytes(&[0x0a]), "0a");
        assert_eq!(hex_bytes(&[0x2d, 0x02, 0x58]), "2d 02 58");
    }

    #[test]
    fn recording_answers_deterministically() {
        let mut rec = Recording::new();
        rec.queue_i2c_reads(&[0x0f, 0xff]);
        rec.queue_echo(Some(Duration::from_micros(5_831)));
        assert_eq!(rec.i2c_read_byte(0x14).unwrap(), 0x0f);
        assert_eq!(rec.i2c_read_byte(0x14).unwrap(), 0xff);
        assert_eq!(rec.i2c_read_byte(0x14).unwrap(), 0, "queue empty: 0");
        assert_eq!(rec.gpio_read(22).unwrap(), Level::Low);
        let t = Duration::from_millis(25);
        assert_eq!(
            rec.echo_pulse(22, t).unwrap(),
            Some(Duration::from_micros(5_831))
        );
        assert_eq!(rec.echo_pulse(22, t).unwrap(), None, "queue empty: timeout");
        rec.delay(Duration::from_secs(3600)); // returns at once
        assert_eq!(rec.transactions().len(), 6);
    }

    #[test]
    fn recording_keeps_order_and_take_empties() {
        let mut rec = Recording::new();
        rec.gpio_write(23, Level::Low).unwrap();
        rec.i2c_write(0x14, &[0x2d, 0x02, 0x58]).unwrap();
        assert_eq!(
            rec.take(),
            vec![
                Transaction::GpioWrite {
                    bcm: 23,
                    level: Level::Low
                },
                Transaction::I2cWrite {
                    addr: 0x14,
                    bytes: vec![0x2d, 0x02, 0x58]
                },
            ]
        );
        assert!(rec.transactions().is_empty());
    }

    /// A transport that answers 0x42 and fails every GPIO write, to see what a tap does.
    struct Fake;

    impl Transport for Fake {
        fn i2c_write(&mut self, _: u16, _: &[u8]) -> Result<(), HwError> {
            Ok(())
        }
        fn i2c_read_byte(&mut self, _: u16) -> Result<u8, HwError> {
            Ok(0x42)
        }
        fn gpio_write(&mut self, bcm: u8, _: Level) -> Result<(), HwError> {
            Err(HwError::Io {
                device: format!("gpio {bcm}"),
                reason: "fake failure".to_owned(),
            })
        }
        fn gpio_read(&mut self, _: u8) -> Result<Level, HwError> {
            Ok(Level::High)
        }
        fn echo_pulse(&mut self, _: u8, _: Duration) -> Result<Option<Duration>, HwError> {
            Ok(Some(Duration::from_micros(100)))
        }
        fn delay(&mut self, _: Duration) {}
    }

    #[test]
    fn tap_records_real_answers_and_not_failures() {
        let mut rec = Recording::tap(Box::new(Fake));
        rec.queue_i2c_reads(&[7]); // ignored over a real transport
        assert_eq!(rec.i2c_read_byte(0x14).unwrap(), 0x42);
        assert_eq!(rec.gpio_read(22).unwrap(), Level::High);
        assert!(rec.gpio_write(23, Level::High).is_err());
        assert_eq!(
            rec.take(),
            vec![
                Transaction::I2cRead {
                    addr: 0x14,
                    byte: 0x42
                },
                Transaction::GpioRead {
                    bcm: 22,
                    level: Level::High
                },
            ]
        );
    }

    #[test]
    fn rppal_open_fails_naming_the_bus() {
        // No machine has bus 250, so this holds on a Pi too, and touches nothing there.
        let err = Rppal::open(250, 0x14, &[(23, PinMode::OutputLow)])
            .err()
            .expect("bus 250 cannot open");
        match err {
            HwError::Open { device, reason } => {
                assert_eq!(device, "i2c-250@0x14");
                assert!(reason.contains("os error"), "{reason}");
            }
            other => panic!("expected Open, got {other:?}"),
        }
    }

    #[test]
    fn device_names() {
        assert_eq!(i2c_device_name(1, 0x14), "i2c-1@0x14");
        assert_eq!(i2c_device_name(3, 0x7), "i2c-3@0x07");
    }
}
