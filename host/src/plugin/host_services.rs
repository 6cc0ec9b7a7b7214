//! The `HostApi` implementation each plugin instance receives: its log lines go to the host
//! log tagged with the plugin's name, its panics are counted and mark it failed.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use abi_stable::std_types::{RStr, RString};
use tapio_plugin_api::{HostApi, LogLevel};

use crate::plugin::stats::PluginStats;

/// Host services for one plugin instance.
#[derive(Clone)]
pub struct HostServices {
    plugin: &'static str,
    stats: Arc<PluginStats>,
    state_dir: PathBuf,
    max_level: LogLevel,
}

impl HostServices {
    /// Services for `plugin`; `state_dir` is created on first request.
    pub fn new(plugin: &'static str, stats: Arc<PluginStats>, state_dir: PathBuf) -> Self {
        HostServices {
            plugin,
            stats,
            state_dir,
            max_level: current_max_level(),
        }
    }
}

/// The most verbose level the host's tracing subscriber lets through.
fn current_max_level() -> LogLevel {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF | LevelFilter::ERROR => LogLevel::Error,
        LevelFilter::WARN => LogLevel::Warn,
        LevelFilter::INFO => LogLevel::Info,
        LevelFilter::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

impl HostApi for HostServices {
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        let (plugin, target, message) = (self.plugin, target.as_str(), message.as_str());
        match level {
            LogLevel::Error => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(plugin, target, "{message}")
            }
            LogLevel::Warn => tracing::warn!(plugin, target, "{message}"),
            LogLevel::Info => tracing::info!(plugin, target, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, target, "{message}"),
            LogLevel::Trace => tracing::trace!(plugin, target, "{message}"),
        }
    }

    fn max_log_level(&self) -> LogLevel {
        self.max_level
    }

    fn report_panic(&self, thread: RStr<'_>, message: RStr<'_>, location: RStr<'_>) {
        let text = format!(
            "panicked on thread '{}' at {}: {}",
            thread, location, message
        );
        tracing::error!(
            plugin = self.plugin,
            thread = thread.as_str(),
            location = location.as_str(),
            "plugin {text}"
        );
        self.stats.record_panic(text);
    }

    fn state_dir(&self) -> RString {
        if let Err(e) = std::fs::create_dir_all(&self.state_dir) {
            tracing::warn!(plugin = self.plugin, dir = %self.state_dir.display(), error = %e, "cannot create the plugin state directory");
        }
        RString::from(self.state_dir.to_string_lossy().into_owned())
    }
}
