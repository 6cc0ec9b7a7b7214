//! journald collector: journal entries as `journald.entry` events.
//!
//! It reads the system journal (or a configured directory or files) through libsystemd's
//! sd-journal, filtered by unit, priority and `FIELD=value` matches, follows new entries,
//! and persists the cursor of the last emitted entry in the plugin's state directory after
//! every batch, so that a restart resumes exactly after it: no entry lost, none repeated.
//!
//! Why libsystemd (the `systemd` crate) rather than a pure-Rust reader: its cursors are the
//! journal's own (`journalctl --after-cursor` accepts them; `__CURSOR` shows them), its
//! matches and follow mode are exactly `journalctl`'s, and it reads every journal format
//! version and compression that systemd writes. The cost is a dependency on libsystemd.so.0,
//! present on every systemd host.

mod config;
mod cursor_store;
mod entry;
mod error;
mod reader;

use std::path::PathBuf;

use tapio_plugin_api::{
    export_plugin, Collector, Config, EventSink, EventTypeInfo, Health, HostHandle, Metric,
    PluginError, PluginInfo, RStr,
};

use crate::config::{Plan, Settings};
use crate::cursor_store::CursorStore;
use crate::reader::Reader;

/// The journald collector.
pub struct JournaldCollector {
    plan: Plan,
    state_dir: PathBuf,
    reader: Option<Reader>,
}

static TAGS: [RStr<'static>; 1] = [RStr::from_str("journald")];

const EVENT_TYPES: &[EventTypeInfo] = &[EventTypeInfo::new(
    entry::ENTRY,
    "One journal entry: message, unit, priority (as severity), identifier, pid, boot id, \
     cursor and the configured extra fields.",
)];

impl Collector for JournaldCollector {
    const INFO: PluginInfo = PluginInfo::new(
        "journald",
        "Journal entries with unit, priority, identifier, pid, boot id and a persisted cursor",
    )
    .tags(&TAGS)
    .event_types(EVENT_TYPES)
    .config(config::SCHEMA);

    fn create(host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        let plan = settings
            .plan()
            .map_err(|problems| PluginError::config(problems.join("; ")))?;
        Ok(JournaldCollector {
            plan,
            state_dir: host.state_dir(),
            reader: None,
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        if self.reader.is_some() {
            return Err(PluginError::other("already started"));
        }
        let store = CursorStore::new(&self.state_dir);
        self.reader = Some(Reader::start(self.plan.clone(), store, sink)?);
        Ok(())
    }

    fn health(&self) -> Health {
        match &self.reader {
            Some(r) => r.health(),
            None => Health::healthy(),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        self.reader
            .as_ref()
            .map(Reader::metrics)
            .unwrap_or_default()
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        match self.reader.take() {
            Some(r) => r.stop(),
            None => Ok(()),
        }
    }
}

export_plugin!(JournaldCollector);
