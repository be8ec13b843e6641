//! Logging for every subcommand: text or JSON lines on stderr, and panics as events.
//! The filter can be changed while running ([`set_filter`]: `log.level` on reload).

use std::sync::OnceLock;

use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

use crate::bus::net::Refusals;

use super::LogFormat;

/// Replaces the installed subscriber's filter.
type Reload = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// The filter the process started with (as text) and how to replace it; set by [`init`].
static FILTER: OnceLock<(String, Reload)> = OnceLock::new();

/// What Zenoh (the bridge to process-placed groups) may log by default: its warnings,
/// less two that every start of a bridge prints and that say nothing wrong (gossip is
/// off on purpose; a peer's second link attempt on a unix socket it is already linked
/// through). A bridge that fails says so itself, as nevil's own error.
const ZENOH_QUIET: &str =
    "zenoh=warn,zenoh::net::routing::hat::peer=error,zenoh_link_unixsock_stream=error";

/// Logs to stderr in `format` at `default_level` unless `RUST_LOG` says otherwise, and
/// turns panics into log events (`log_panic`). A peer refused in a TLS handshake, on
/// either side, is logged as nevil's own warning ([`Refusals`]).
///
/// The filter is the output's own (per-layer), not global: [`Refusals`] reads zenoh's
/// connector debug events through its own filter while the output shows none of them.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},{ZENOH_QUIET}")));
    let start = filter.to_string();
    let (filter, handle) = reload::Layer::new(filter);
    let output = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let output = match format {
        LogFormat::Text => output.boxed(),
        LogFormat::Json => output.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(output.with_filter(filter))
        .with(Refusals.with_filter(Refusals::targets()))
        .init();
    let reload: Reload = Box::new(move |f| handle.reload(f).map_err(|e| e.to_string()));
    let _ = FILTER.set((start, reload));
    std::panic::set_hook(Box::new(log_panic));
}

/// Sets the log filter to `filter` (`log.level`), or back to the one the process
/// started with when `None`.
///
/// # Errors
///
/// `filter` is not a valid filter, or logging was not set up by [`init`].
pub fn set_filter(filter: Option<&str>) -> Result<(), String> {
    let (start, reload) = FILTER.get().ok_or("logging is not set up")?;
    let text = filter.unwrap_or(start);
    let parsed = EnvFilter::builder()
        .parse(text)
        .map_err(|e| format!("{text:?}: {e}"))?;
    reload(parsed)?;
    tracing::info!(filter = text, "log filter changed");
    Ok(())
}

/// Logs a panic as one error event instead of the default hook's loose stderr lines:
/// `--log-format json` output stays one JSON object per line, and a panic inside an
/// actor carries that actor's path (the hook runs in the panicking handler's span).
/// The supervisor catches the panic and logs the exit and restart separately.
fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    // First, before anything that allocates: a panic may be the start of the process
    // going down, and the wheels must not keep turning (docs/safety.md). A supervised
    // actor's panic stops them for one control period; the controller's next command
    // drives them again.
    crate::robot::safety::emergency::stop_motors();
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-text payload");
    let location = info.location().map(ToString::to_string);
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("unnamed");
    // Captured only when RUST_BACKTRACE (or RUST_LIB_BACKTRACE) asks for it.
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        tracing::error!(panic = message, location, thread, %backtrace, "panicked");
    } else {
        tracing::error!(panic = message, location, thread, "panicked");
    }
}
