//! Template collector: counts the entries of a directory every `interval` and emits one
//! `dircount.sample` event per count. Start your own plugin from this file: it shows the
//! config schema, health, metrics, logging and backpressure a real collector needs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tapio_plugin_api::{
    config::duration, export_plugin, log, Attribute, Collector, Config, ConfigField, Event,
    EventSink, EventTypeInfo, Health, HostHandle, Metric, PluginError, PluginInfo, Severity,
};

/// The config the host validated against `INFO.config` (defaults filled in).
#[derive(serde::Deserialize)]
struct Settings {
    path: PathBuf,
    #[serde(with = "duration")]
    interval: Duration,
}

/// State shared with the worker thread: counters for `metrics`, the last error for `health`.
#[derive(Default)]
struct Shared {
    samples: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// The collector: settings, shared state and, while running, the worker thread.
pub struct DirCount {
    settings: Settings,
    shared: Arc<Shared>,
    worker: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Collector for DirCount {
    const INFO: PluginInfo =
        PluginInfo::new("dircount", "Counts the entries of a directory every interval")
            .event_types(&[EventTypeInfo::new(
                "dircount.sample",
                "Number of entries of the watched directory",
            )])
            .config(&[
                ConfigField::string("path", "", "Directory to count.").required(),
                ConfigField::duration("interval", "10s", "Time between two counts."),
            ]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        // Parse and check here; start nothing (the host may create a replacement while the
        // old instance still runs).
        let settings: Settings = config.parse()?;
        if settings.interval.is_zero() {
            return Err(PluginError::config("interval must be greater than zero"));
        }
        Ok(DirCount {
            settings,
            shared: Arc::default(),
            worker: None,
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (path, interval) = (self.settings.path.clone(), self.settings.interval);
        let shared = Arc::clone(&self.shared);
        let handle = std::thread::Builder::new()
            .name("dircount".into())
            .spawn(move || loop {
                sample(&path, &sink, &shared);
                match stop_rx.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            })
            .map_err(|e| PluginError::other(format!("cannot spawn thread: {e}")))?;
        self.worker = Some((stop_tx, handle));
        // Reaches the host log, attributed to this plugin.
        log::info!("counting {} every {:?}", self.settings.path.display(), interval);
        Ok(())
    }

    fn health(&self) -> Health {
        match self.shared.last_error.lock().unwrap().as_deref() {
            Some(reason) => Health::degraded(reason),
            None => Health::healthy(),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![
            Metric::counter(
                "samples",
                "Counts emitted.",
                self.shared.samples.load(Ordering::Relaxed),
            ),
            Metric::counter(
                "dropped",
                "Counts the host refused (ring full).",
                self.shared.dropped.load(Ordering::Relaxed),
            ),
        ]
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        // Stop and JOIN every thread started by `start`.
        if let Some((stop_tx, handle)) = self.worker.take() {
            drop(stop_tx);
            handle
                .join()
                .map_err(|_| PluginError::other("dircount thread panicked"))?;
        }
        Ok(())
    }
}

/// One count: an event on success, a degraded health on failure.
fn sample(path: &std::path::Path, sink: &EventSink, shared: &Shared) {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            *shared.last_error.lock().unwrap() = None;
            let count = entries.count() as u64;
            let shown = path.display().to_string();
            let attrs = [
                Attribute::str("file.directory", &shown),
                Attribute::uint("dircount.entries", count),
            ];
            let event = Event::new("dircount.sample", Severity::Info).with_attributes(&attrs);
            // Backpressure: the host copies what fits into its ring and counts the rest as
            // dropped; a collector producing faster than that should slow down.
            let outcome = sink.emit_one(event);
            shared
                .samples
                .fetch_add(u64::from(outcome.accepted), Ordering::Relaxed);
            shared
                .dropped
                .fetch_add(u64::from(outcome.dropped), Ordering::Relaxed);
        }
        Err(e) => {
            let reason = format!("cannot read {}: {e}", path.display());
            log::warn!("{reason}");
            *shared.last_error.lock().unwrap() = Some(reason);
        }
    }
}

export_plugin!(DirCount);
