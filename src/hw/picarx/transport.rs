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
//! # Locking
//!
//! A transport is used behind one `Mutex` (the HAT's [`super::Link`]): every I2C transfer
//! and GPIO write takes it, and a caller that needs several transactions to stay together
//! (an ADC select and its two reads; a direction pin and its PWM value) holds it across
//! them. The ultrasonic echo wait is the exception, because it lasts up to its timeout
//! (25 ms by default) while motor and steering PWM writes must not wait behind it: the
//! ranger takes its echo pin out once with [`Transport::echo_line`] and times pulses on
//! that [`EchoLine`] without the transport's lock. Only the trigger pulse (three GPIO
//! writes, microseconds) is sent under the lock. [`Rppal`] keeps each input pin behind a
//! lock of its own, so a [`Transport::gpio_read`] of the echo pin waits for a ranging in
//! progress, and nothing else does. [`Recording`] shares its log with the lines it hands
//! out, so a trace keeps every transaction in the order it completed.
//!
//! A transaction serialises as one flat JSON object:
//! `{"bus": "i2c", "op": "write", "addr": "0x14", "wire": "22 00 5a"}` (the bytes after the
//! address, lowercase hex), `{"bus": "i2c", "op": "read", "addr": "0x14", "wire": "00"}`,
//! `{"bus": "gpio", "op": "write", "bcm": 23, "level": 0}`, `{"bus": "gpio", "op": "read",
//! "bcm": 22, "level": 0}`, and for an echo measurement `{"bus": "gpio", "op": "pulse",
//! "bcm": 22, "timeout_us": 25000, "rose": true, "width_us": 5831}` (`rose: false`: the
//! line never rose, see [`Echo::NoRise`]; `rose: true` without `width_us`: it rose and
//! was still high at the timeout, [`Echo::NoFall`]). A trace written before `rose`
//! existed reads a pulse without `width_us` as no rise.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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
    /// Input pin `bcm` as an [`EchoLine`], which times pulses without this transport (and
    /// so without its lock). May be called again for the same pin; the lines share it.
    fn echo_line(&mut self, bcm: u8) -> Result<Box<dyn EchoLine>, HwError>;
    /// Waits `duration` (a settle time the hardware needs); a dry run returns at once.
    fn delay(&mut self, duration: Duration);
}

/// What one echo measurement saw on its input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// The line never went high within the timeout: nothing answered the trigger. The
    /// echo pin idles low (pulled down), so this is what a missing, unplugged,
    /// unpowered or broken sensor gives.
    NoRise,
    /// The line went high and was still high at the timeout: an echo pulse longer than
    /// the timeout allows, i.e. nothing within range (an HC-SR04 that hears nothing holds
    /// the line high for about 38 ms).
    NoFall,
    /// The line was high for this long.
    Pulse(Duration),
}

/// An input line for timing echo pulses, handed out by [`Transport::echo_line`] and used
/// without the transport's lock (see the module docs).
pub trait EchoLine: Send {
    /// Times one echo: waits for the line to go high, then for it to go low again, both
    /// within `timeout` of the call. Bounded by `timeout` whatever the line does.
    ///
    /// # Errors
    ///
    /// [`HwError::Io`] if the pin cannot be read.
    fn pulse(&mut self, timeout: Duration) -> Result<Echo, HwError>;
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
        /// Whether the line went high within the timeout.
        rose: bool,
        /// The pulse width in µs; `None` when the line did not rise, or did not fall
        /// again, within the timeout.
        width_us: Option<u64>,
    },
}

impl Transaction {
    /// The pulse transaction of one echo measurement.
    pub fn pulse(bcm: u8, timeout: Duration, echo: Echo) -> Self {
        let (rose, width_us) = match echo {
            Echo::NoRise => (false, None),
            Echo::NoFall => (true, None),
            Echo::Pulse(width) => (true, Some(micros(width))),
        };
        Self::GpioPulse {
            bcm,
            timeout_us: micros(timeout),
            rose,
            width_us,
        }
    }
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
    rose: Option<bool>,
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
            rose: None,
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
                rose,
                width_us,
            } => Flat {
                bcm: Some(bcm),
                timeout_us: Some(timeout_us),
                rose: Some(rose),
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
            (FlatBus::Gpio, FlatOp::Pulse) => {
                // Older traces have no `rose`: a width means it rose; none, that it did not.
                let rose = f.rose.unwrap_or(f.width_us.is_some());
                if !rose && f.width_us.is_some() {
                    return Err("a pulse that did not rise has no width".to_owned());
                }
                Ok(Transaction::GpioPulse {
                    bcm: f.bcm.ok_or_else(|| need("bcm"))?,
                    timeout_us: f.timeout_us.ok_or_else(|| need("timeout_us"))?,
                    rose,
                    width_us: f.width_us,
                })
            }
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
/// answer 0; GPIO reads answer low; echo measurements pop [`Recording::queue_echo`] and
/// then answer [`Echo::NoFall`] (a sensor that hears nothing within range). Over a real
/// transport the queues are ignored and the real answers recorded. The echo lines it
/// hands out record into the same log, when their measurement ends.
#[derive(Default)]
pub struct Recording {
    inner: Option<Box<dyn Transport>>,
    tape: Arc<Mutex<Tape>>,
    i2c_reads: VecDeque<u8>,
}

/// What a [`Recording`] shares with its echo lines.
#[derive(Default)]
struct Tape {
    log: Vec<Transaction>,
    echoes: VecDeque<Echo>,
}

fn tape(tape: &Mutex<Tape>) -> MutexGuard<'_, Tape> {
    // Every update is one push or pop: a panic elsewhere leaves the tape consistent.
    tape.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// What the next dry echo measurement sees.
    pub fn queue_echo(&mut self, echo: Echo) {
        tape(&self.tape).echoes.push_back(echo);
    }

    /// A copy of everything recorded so far, oldest first.
    pub fn transactions(&self) -> Vec<Transaction> {
        tape(&self.tape).log.clone()
    }

    /// Takes everything recorded so far, leaving the log empty (one operation's worth).
    pub fn take(&mut self) -> Vec<Transaction> {
        std::mem::take(&mut tape(&self.tape).log)
    }

    fn record(&self, t: Transaction) {
        tape(&self.tape).log.push(t);
    }
}

impl Transport for Recording {
    fn i2c_write(&mut self, addr: u16, bytes: &[u8]) -> Result<(), HwError> {
        if let Some(inner) = &mut self.inner {
            inner.i2c_write(addr, bytes)?;
        }
        self.record(Transaction::I2cWrite {
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
        self.record(Transaction::I2cRead { addr, byte });
        Ok(byte)
    }

    fn gpio_write(&mut self, bcm: u8, level: Level) -> Result<(), HwError> {
        if let Some(inner) = &mut self.inner {
            inner.gpio_write(bcm, level)?;
        }
        self.record(Transaction::GpioWrite { bcm, level });
        Ok(())
    }

    fn gpio_read(&mut self, bcm: u8) -> Result<Level, HwError> {
        let level = match &mut self.inner {
            Some(inner) => inner.gpio_read(bcm)?,
            None => Level::Low,
        };
        self.record(Transaction::GpioRead { bcm, level });
        Ok(level)
    }

    fn echo_line(&mut self, bcm: u8) -> Result<Box<dyn EchoLine>, HwError> {
        let inner = match &mut self.inner {
            Some(inner) => Some(inner.echo_line(bcm)?),
            None => None,
        };
        Ok(Box::new(RecordedLine {
            bcm,
            inner,
            tape: self.tape.clone(),
        }))
    }

    fn delay(&mut self, duration: Duration) {
        if let Some(inner) = &mut self.inner {
            inner.delay(duration);
        }
    }
}

/// An echo line of a [`Recording`]: the inner transport's line, or the dry queue.
struct RecordedLine {
    bcm: u8,
    inner: Option<Box<dyn EchoLine>>,
    tape: Arc<Mutex<Tape>>,
}

impl EchoLine for RecordedLine {
    fn pulse(&mut self, timeout: Duration) -> Result<Echo, HwError> {
        let echo = match &mut self.inner {
            Some(inner) => inner.pulse(timeout)?,
            None => tape(&self.tape).echoes.pop_front().unwrap_or(Echo::NoFall),
        };
        tape(&self.tape)
            .log
            .push(Transaction::pulse(self.bcm, timeout, echo));
        Ok(echo)
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
    /// Each behind a lock of its own, shared with the [`EchoLine`]s handed out.
    inputs: HashMap<u8, Arc<Mutex<rppal::gpio::InputPin>>>,
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

/// Writes `bytes` to `i2c` in one transfer; what went wrong otherwise (a short write
/// included), for the caller to name its device.
pub(crate) fn i2c_write_all(i2c: &mut rppal::i2c::I2c, bytes: &[u8]) -> Result<(), String> {
    let sent = i2c.write(bytes).map_err(|e| i2c_reason(&e))?;
    if sent != bytes.len() {
        return Err(format!("short write: {sent} of {} bytes", bytes.len()));
    }
    Ok(())
}

/// Reads one byte from `i2c` (an SMBus receive byte); what went wrong otherwise.
pub(crate) fn i2c_read_one(i2c: &mut rppal::i2c::I2c) -> Result<u8, String> {
    let mut buf = [0u8; 1];
    let got = i2c.read(&mut buf).map_err(|e| i2c_reason(&e))?;
    if got != 1 {
        return Err("short read: 0 of 1 byte".to_owned());
    }
    Ok(buf[0])
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
                    inputs.insert(bcm, Arc::new(Mutex::new(pin.into_input_pulldown())));
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

    fn input(&self, bcm: u8) -> Result<&Arc<Mutex<rppal::gpio::InputPin>>, HwError> {
        self.inputs.get(&bcm).ok_or_else(|| HwError::Io {
            device: format!("gpio {bcm}"),
            reason: "not opened as an input".to_owned(),
        })
    }
}

impl Transport for Rppal {
    fn i2c_write(&mut self, addr: u16, bytes: &[u8]) -> Result<(), HwError> {
        self.address(addr)?;
        i2c_write_all(&mut self.i2c, bytes).map_err(|reason| self.i2c_io(reason))
    }

    fn i2c_read_byte(&mut self, addr: u16) -> Result<u8, HwError> {
        self.address(addr)?;
        i2c_read_one(&mut self.i2c).map_err(|reason| self.i2c_io(reason))
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
        Ok(our_level(lock_pin(self.input(bcm)?).read()))
    }

    fn echo_line(&mut self, bcm: u8) -> Result<Box<dyn EchoLine>, HwError> {
        Ok(Box::new(RppalEcho(self.input(bcm)?.clone())))
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

fn lock_pin(pin: &Mutex<rppal::gpio::InputPin>) -> MutexGuard<'_, rppal::gpio::InputPin> {
    // Reading a pin leaves nothing half-done: a poisoned lock is taken over.
    pin.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An input pin of [`Rppal`], timed under its own lock only.
struct RppalEcho(Arc<Mutex<rppal::gpio::InputPin>>);

impl EchoLine for RppalEcho {
    fn pulse(&mut self, timeout: Duration) -> Result<Echo, HwError> {
        let pin = lock_pin(&self.0);
        // Poll rather than wait on an edge interrupt: the echo is a few ms at most and
        // the wake-up latency of an interrupt would cost centimetres. One deadline for
        // both edges, counted from the call (as the vendor's library does from the end of
        // the trigger); both loops end at it whatever the pin does.
        let deadline = Instant::now() + timeout;
        let rise = loop {
            let now = Instant::now();
            if pin.is_high() {
                break now;
            }
            if now >= deadline {
                return Ok(Echo::NoRise);
            }
            std::hint::spin_loop();
        };
        loop {
            let now = Instant::now();
            if pin.is_low() {
                return Ok(Echo::Pulse(now - rise));
            }
            if now >= deadline {
                return Ok(Echo::NoFall);
            }
            std::hint::spin_loop();
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
    fn pulse_says_whether_the_line_rose_and_for_how_long() {
        let t = Duration::from_millis(25);
        let pulse = |echo| serde_json::to_value(Transaction::pulse(22, t, echo)).unwrap();
        assert_eq!(
            pulse(Echo::NoRise),
            json!({"bus": "gpio", "op": "pulse", "bcm": 22, "timeout_us": 25000, "rose": false})
        );
        assert_eq!(
            pulse(Echo::NoFall),
            json!({"bus": "gpio", "op": "pulse", "bcm": 22, "timeout_us": 25000, "rose": true})
        );
        assert_eq!(
            pulse(Echo::Pulse(Duration::from_micros(5_831))),
            json!({"bus": "gpio", "op": "pulse", "bcm": 22, "timeout_us": 25000, "rose": true,
                   "width_us": 5831})
        );
    }

    #[test]
    fn a_pulse_without_rose_reads_as_before() {
        let old = |v| serde_json::from_value::<Transaction>(v).unwrap();
        let timeout = Duration::from_millis(25);
        assert_eq!(
            old(json!({"bus": "gpio", "op": "pulse", "bcm": 22, "timeout_us": 25000})),
            Transaction::pulse(22, timeout, Echo::NoRise)
        );
        assert_eq!(
            old(
                json!({"bus": "gpio", "op": "pulse", "bcm": 22, "timeout_us": 25000,
                       "width_us": 7})
            ),
            Transaction::pulse(22, timeout, Echo::Pulse(Duration::from_micros(7)))
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
                rose: true,
                width_us: Some(5_831),
            },
            Transaction::GpioPulse {
                bcm: 22,
                timeout_us: 25_000,
                rose: true,
                width_us: None,
            },
            Transaction::GpioPulse {
                bcm: 22,
                timeout_us: 25_000,
                rose: false,
                width_us: None,
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
            json!({"bus": "gpio", "op": "pulse", "bcm": 22, "timeout_us": 1, "rose": false,
                   "width_us": 7}),
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
        rec.queue_echo(Echo::Pulse(Duration::from_micros(5_831)));
        rec.queue_echo(Echo::NoRise);
        assert_eq!(rec.i2c_read_byte(0x14).unwrap(), 0x0f);
        assert_eq!(rec.i2c_read_byte(0x14).unwrap(), 0xff);
        assert_eq!(rec.i2c_read_byte(0x14).unwrap(), 0, "queue empty: 0");
        assert_eq!(rec.gpio_read(22).unwrap(), Level::Low);
        let t = Duration::from_millis(25);
        let mut line = rec.echo_line(22).unwrap();
        assert_eq!(
            line.pulse(t).unwrap(),
            Echo::Pulse(Duration::from_micros(5_831))
        );
        assert_eq!(line.pulse(t).unwrap(), Echo::NoRise);
        assert_eq!(line.pulse(t).unwrap(), Echo::NoFall, "queue empty: no fall");
        rec.delay(Duration::from_secs(3600)); // returns at once
        let log = rec.transactions();
        assert_eq!(log.len(), 7);
        assert_eq!(
            log[4],
            Transaction::pulse(22, t, Echo::Pulse(Duration::from_micros(5_831)))
        );
        assert_eq!(log[5], Transaction::pulse(22, t, Echo::NoRise));
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
        fn echo_line(&mut self, _: u8) -> Result<Box<dyn EchoLine>, HwError> {
            Ok(Box::new(FakeLine))
        }
        fn delay(&mut self, _: Duration) {}
    }

    /// An echo line that always sees a 100 µs pulse.
    struct FakeLine;

    impl EchoLine for FakeLine {
        fn pulse(&mut self, _: Duration) -> Result<Echo, HwError> {
            Ok(Echo::Pulse(Duration::from_micros(100)))
        }
    }

    #[test]
    fn tap_records_real_answers_and_not_failures() {
        let mut rec = Recording::tap(Box::new(Fake));
        rec.queue_i2c_reads(&[7]); // ignored over a real transport
        assert_eq!(rec.i2c_read_byte(0x14).unwrap(), 0x42);
        assert_eq!(rec.gpio_read(22).unwrap(), Level::High);
        assert!(rec.gpio_write(23, Level::High).is_err());
        rec.queue_echo(Echo::NoRise); // ignored over a real transport
        let t = Duration::from_millis(25);
        let width = Duration::from_micros(100);
        assert_eq!(
            rec.echo_line(22).unwrap().pulse(t).unwrap(),
            Echo::Pulse(width)
        );
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
                Transaction::pulse(22, t, Echo::Pulse(width)),
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
