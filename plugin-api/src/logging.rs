//! Routes a plugin's logs and panics to the host.
//!
//! Each plugin library carries its own copy of `std`, `log` and `tracing`: without this
//! module a plugin's `log::info!` or `tracing::info!` would go nowhere and its panics would
//! print to stderr unseen. [`install`] (called by the export macro before `create`) points
//! all three at the host: `log` records and `tracing` events become host log lines attributed
//! to the plugin, and the panic hook reports every panic, on any plugin thread, to the host.

use std::fmt::Write as _;
use std::sync::{Once, RwLock};

use crate::{HostHandle, LogLevel};

/// The host this library reports to. Replaced on every `create` (a library can be created
/// again after its file was removed and re-added).
static HOST: RwLock<Option<HostHandle>> = RwLock::new(None);
static INSTALL_GLOBALS: Once = Once::new();

/// Points this library's `log`, `tracing` and panic hook at `host`.
pub fn install(host: HostHandle) {
    let max = host.max_log_level();
    if let Ok(mut slot) = HOST.write() {
        *slot = Some(host);
    }
    INSTALL_GLOBALS.call_once(|| {
        let _ = log::set_boxed_logger(Box::new(LogForwarder));
        let _ = tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(
            TracingForwarder,
        ));
        std::panic::set_hook(Box::new(report_panic));
    });
    log::set_max_level(to_log_filter(max));
}

/// Sends one record to the host, if one is installed.
pub fn forward(level: LogLevel, target: &str, message: &str) {
    if let Ok(slot) = HOST.read() {
        if let Some(host) = slot.as_ref() {
            host.log(level, target, message);
        }
    }
}

fn max_level() -> LogLevel {
    HOST.read()
        .ok()
        .and_then(|slot| slot.as_ref().map(HostHandle::max_log_level))
        .unwrap_or(LogLevel::Info)
}

fn report_panic(info: &std::panic::PanicHookInfo<'_>) {
    let message = crate::collector::panic_message(info.payload());
    let location = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_default();
    let thread = std::thread::current();
    let thread_name = thread.name().unwrap_or("<unnamed>");
    match HOST.read().ok().and_then(|slot| slot.clone()) {
        Some(host) => host.report_panic(thread_name, &message, &location),
        None => eprintln!("plugin panicked on thread {thread_name} at {location}: {message}"),
    }
}

fn to_log_filter(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    }
}

fn from_log_level(level: log::Level) -> LogLevel {
    match level {
        log::Level::Error => LogLevel::Error,
        log::Level::Warn => LogLevel::Warn,
        log::Level::Info => LogLevel::Info,
        log::Level::Debug => LogLevel::Debug,
        log::Level::Trace => LogLevel::Trace,
    }
}

struct LogForwarder;

impl log::Log for LogForwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        from_log_level(metadata.level()) <= max_level()
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let message = record.args().to_string();
            forward(from_log_level(record.level()), record.target(), &message);
        }
    }
    fn flush(&self) {}
}

/// A minimal `tracing` subscriber: events become host log lines (`message key=value ...`);
/// spans are accepted and ignored.
struct TracingForwarder;

fn from_tracing_level(level: &tracing_core::Level) -> LogLevel {
    match *level {
        tracing_core::Level::ERROR => LogLevel::Error,
        tracing_core::Level::WARN => LogLevel::Warn,
        tracing_core::Level::INFO => LogLevel::Info,
        tracing_core::Level::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

impl tracing_core::Subscriber for TracingForwarder {
    fn enabled(&self, metadata: &tracing_core::Metadata<'_>) -> bool {
        from_tracing_level(metadata.level()) <= max_level()
    }
    fn new_span(&self, _: &tracing_core::span::Attributes<'_>) -> tracing_core::span::Id {
        tracing_core::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing_core::span::Id, _: &tracing_core::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing_core::span::Id, _: &tracing_core::span::Id) {}
    fn event(&self, event: &tracing_core::Event<'_>) {
        let mut text = FieldText::default();
        event.record(&mut text);
        let metadata = event.metadata();
        forward(
            from_tracing_level(metadata.level()),
            metadata.target(),
            &text.finish(),
        );
    }
    fn enter(&self, _: &tracing_core::span::Id) {}
    fn exit(&self, _: &tracing_core::span::Id) {}
}

/// Renders `message` first, then the other fields as `key=value`.
#[derive(Default)]
struct FieldText {
    message: String,
    fields: String,
}

impl FieldText {
    fn finish(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else if self.message.is_empty() {
            self.fields.trim_start().to_owned()
        } else {
            format!("{}{}", self.message, self.fields)
        }
    }
}

impl tracing_core::field::Visit for FieldText {
    fn record_str(&mut self, field: &tracing_core::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &tracing_core::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}
