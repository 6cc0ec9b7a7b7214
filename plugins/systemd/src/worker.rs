//! The collector's thread: its own tokio runtime running bus sessions one after the other,
//! with a growing backoff between failed attempts, the health that says why it is not
//! connected, and the counters.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tapio_plugin_api::{log, EventSink, Health, Metric, PluginError};

use crate::bus::{self, SessionObserver};
use crate::config::{backoff, Settings};
use crate::error::chain;
use crate::pattern::Patterns;
use crate::tracker::Tracker;
use tapio_event_buffer::{emit_all, OwnedEvent};

/// What the thread shares with `health` and `metrics`.
struct Shared {
    health: Mutex<Health>,
    sessions: AtomicU64,
    failures: AtomicU64,
    units: AtomicU64,
    events: AtomicU64,
    dropped: AtomicU64,
    bad_signals: AtomicU64,
    stale_signals: AtomicU64,
    resyncs: AtomicU64,
}

impl Shared {
    fn set_health(&self, health: Health) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = health;
    }
}

/// The running thread.
pub struct Worker {
    stop: tokio::sync::watch::Sender<bool>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread and its runtime.
    pub fn start(
        settings: Settings,
        patterns: Patterns,
        sink: EventSink,
    ) -> Result<Self, PluginError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PluginError::other(format!("cannot build the tokio runtime: {e}")))?;
        let shared = Arc::new(Shared {
            health: Mutex::new(Health::degraded(format!(
                "connecting to {}",
                settings.bus_address
            ))),
            sessions: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            units: AtomicU64::new(0),
            events: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            bad_signals: AtomicU64::new(0),
            stale_signals: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("systemd-dbus".into())
            .spawn(move || runtime.block_on(run(settings, patterns, sink, s, stopped)))
            .map_err(|e| PluginError::other(format!("cannot spawn the D-Bus thread: {e}")))?;
        Ok(Worker {
            stop,
            shared,
            thread: Some(thread),
        })
    }

    /// Healthy while subscribed; failed with the reason and the next retry otherwise.
    pub fn health(&self) -> Health {
        self.shared
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counters.
    pub fn metrics(&self) -> Vec<Metric> {
        let s = &self.shared;
        vec![
            Metric::counter(
                "sessions_total",
                "Successful subscriptions to systemd (1 + reconnections).",
                s.sessions.load(Relaxed),
            ),
            Metric::counter(
                "connection_failures_total",
                "Bus sessions that failed or ended (each followed by a backoff).",
                s.failures.load(Relaxed),
            ),
            Metric::gauge(
                "watched_units",
                "Units matching the patterns known to the collector.",
                s.units.load(Relaxed) as f64,
            ),
            Metric::counter("events_total", "Events emitted.", s.events.load(Relaxed)),
            Metric::counter(
                "dropped_events_total",
                "Events the host's ring refused.",
                s.dropped.load(Relaxed),
            ),
            Metric::counter(
                "bad_signals_total",
                "Signals from systemd that could not be decoded.",
                s.bad_signals.load(Relaxed),
            ),
            Metric::counter(
                "resyncs_total",
                "New subscriptions and snapshots after systemd re-executed or reloaded.",
                s.resyncs.load(Relaxed),
            ),
            Metric::counter(
                "stale_signals_total",
                "Signals older than the snapshot they raced with (ignored).",
                s.stale_signals.load(Relaxed),
            ),
        ]
    }

    /// Stops the session and joins the thread.
    pub fn stop(mut self) -> Result<(), PluginError> {
        let _ = self.stop.send(true);
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(PluginError::other("the D-Bus thread panicked")),
            _ => Ok(()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Feeds session output to the sink and the shared state.
struct Observer<'a> {
    sink: &'a EventSink,
    shared: &'a Shared,
    subscribed: bool,
}

impl SessionObserver for Observer<'_> {
    fn subscribed(&mut self, units: usize) {
        self.subscribed = true;
        self.shared.sessions.fetch_add(1, Relaxed);
        self.shared.units.store(units as u64, Relaxed);
        self.shared.set_health(Health::healthy());
    }

    fn resynced(&mut self, units: usize) {
        self.shared.resyncs.fetch_add(1, Relaxed);
        self.shared.units.store(units as u64, Relaxed);
    }

    fn events(&mut self, events: Vec<OwnedEvent>) {
        let outcome = emit_all(self.sink, &events);
        self.shared
            .events
            .fetch_add(outcome.accepted.into(), Relaxed);
        self.shared
            .dropped
            .fetch_add(outcome.dropped.into(), Relaxed);
    }

    fn bad_signal(&mut self, why: String) {
        if self.shared.bad_signals.fetch_add(1, Relaxed) == 0 {
            log::warn!("{why}");
        }
    }
}

async fn run(
    settings: Settings,
    patterns: Patterns,
    sink: EventSink,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut tracker = Tracker::new(patterns);
    let mut failures = 0u32;
    loop {
        let mut observer = Observer {
            sink: &sink,
            shared: &shared,
            subscribed: false,
        };
        let ended = tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            e = bus::run(&settings, &mut tracker, &mut observer) => e,
        };
        shared.stale_signals.store(tracker.stale_signals(), Relaxed);
        if ended.is_resync() {
            log::info!("{ended}; subscribing again");
            shared.resyncs.fetch_add(1, Relaxed);
            failures = 0;
            continue;
        }
        if observer.subscribed {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        shared.failures.fetch_add(1, Relaxed);
        let wait = backoff(settings.min_backoff, settings.max_backoff, failures);
        let reason = chain(&ended);
        if failures == 1 {
            log::warn!("systemd collector disconnected: {reason}");
        }
        shared.set_health(Health::failed(format!(
            "{reason} (bus {}; attempt {failures} failed, next in {wait:?})",
            settings.bus_address
        )));
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
