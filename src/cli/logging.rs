//! Logging for every subcommand: text or JSON lines on stderr, and panics as events.

use super::LogFormat;

/// Logs to stderr in `format` at `default_level` unless `RUST_LOG` says otherwise, and
/// turns panics into log events (`log_panic`).
pub fn init(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    std::panic::set_hook(Box::new(log_panic));
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
