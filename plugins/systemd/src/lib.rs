//! systemd collector: unit state changes over D-Bus (`org.freedesktop.systemd1`).
//!
//! It subscribes to the manager's signals on the configured bus, takes a snapshot of the
//! loaded units matching the configured globs, and turns each `PropertiesChanged` of those
//! units into events: active/sub state transitions, failures with the result and the exit
//! status of the main process, restarts with the restart count, and the main PID.
//!
//! A bus or manager that cannot be reached makes the collector unhealthy with the reason;
//! it retries with a doubling backoff and recovers by itself.

mod bus;
mod config;
mod error;
mod pattern;
mod tracker;
mod unit_path;
mod worker;

use tapio_plugin_api::{
    export_plugin, Collector, Config, EventSink, EventTypeInfo, Health, HostHandle, Metric,
    PluginError, PluginInfo, RStr,
};

use crate::config::Settings;
use crate::pattern::Patterns;
use crate::worker::Worker;

/// The systemd collector.
pub struct SystemdCollector {
    settings: Settings,
    patterns: Patterns,
    worker: Option<Worker>,
}

static TAGS: [RStr<'static>; 1] = [RStr::from_str("systemd")];

const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(
        tracker::STATE_CHANGE,
        "A watched unit's ActiveState or SubState changed (with the previous state).",
    ),
    EventTypeInfo::new(
        tracker::FAILED,
        "A watched unit entered `failed`, or its main process failed and it will restart \
         (Result, exit code or signal, pid).",
    ),
    EventTypeInfo::new(
        tracker::RESTART,
        "systemd restarted a watched service (NRestarts grew).",
    ),
];

impl Collector for SystemdCollector {
    const INFO: PluginInfo = PluginInfo::new(
        "systemd",
        "systemd unit state changes, failures and restarts over D-Bus",
    )
    .tags(&TAGS)
    .event_types(EVENT_TYPES)
    .config(config::SCHEMA);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        let patterns = settings
            .validate()
            .map_err(|problems| PluginError::config(problems.join("; ")))?;
        Ok(SystemdCollector {
            settings,
            patterns,
            worker: None,
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        if self.worker.is_some() {
            return Err(PluginError::other("already started"));
        }
        self.worker = Some(Worker::start(
            self.settings.clone(),
            self.patterns.clone(),
            sink,
        )?);
        Ok(())
    }

    fn health(&self) -> Health {
        match &self.worker {
            Some(w) => w.health(),
            None => Health::healthy(),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        self.worker
            .as_ref()
            .map(Worker::metrics)
            .unwrap_or_default()
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        match self.worker.take() {
            Some(w) => w.stop(),
            None => Ok(()),
        }
    }
}

export_plugin!(SystemdCollector);
