//! Per-plugin counters and the latest health, shared by the plugin's sink, its host
//! services, the manager and the metrics endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tapio_plugin_api::{Health, HealthStatus, Metric};

/// Counters of one plugin name, kept across reloads of that plugin (Prometheus counters must
/// not go backwards when a new build replaces the old one).
#[derive(Debug, Default)]
pub struct PluginStats {
    /// Events accepted into the ring.
    pub emitted: AtomicU64,
    /// Events refused because the ring was full (or the instance was stopped).
    pub dropped: AtomicU64,
    /// Error-level log records and failed lifecycle calls.
    pub errors: AtomicU64,
    /// Panics reported by the plugin's panic hook.
    pub panics: AtomicU64,
    /// Times a new build of the plugin replaced a running one.
    pub reloads: AtomicU64,
    /// Stop calls that missed the deadline.
    pub stop_timeouts: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Default)]
struct State {
    running: bool,
    version: String,
    health: Option<(HealthStatus, String)>,
    panic: Option<String>,
    custom: Vec<Metric>,
}

/// A copy of what the status line and the metrics endpoint show.
#[derive(Debug, Clone)]
pub struct PluginSnapshot {
    /// Whether an instance is running.
    pub running: bool,
    /// Version of the running (or last) instance.
    pub version: String,
    /// Effective health: a reported panic overrides what the plugin says.
    pub health: HealthStatus,
    /// Reason when not healthy.
    pub reason: String,
    /// Counters.
    pub emitted: u64,
    /// Counters.
    pub dropped: u64,
    /// Counters.
    pub errors: u64,
    /// Counters.
    pub panics: u64,
    /// Counters.
    pub reloads: u64,
    /// Counters.
    pub stop_timeouts: u64,
    /// Plugin-specific metrics from the last poll.
    pub custom: Vec<Metric>,
}

impl PluginStats {
    /// Records that an instance of `version` started (clears the previous instance's panic
    /// and health).
    pub fn set_running(&self, version: &str) {
        let mut s = self.state.lock();
        s.running = true;
        s.version = version.to_owned();
        s.health = None;
        s.panic = None;
        s.custom.clear();
    }

    /// Records that no instance runs any more.
    pub fn set_stopped(&self) {
        let mut s = self.state.lock();
        s.running = false;
        s.custom.clear();
    }

    /// Stores the health and metrics of the last poll.
    pub fn set_polled(&self, health: Health, metrics: Vec<Metric>) {
        let mut s = self.state.lock();
        s.health = Some((health.status, health.reason.into_string()));
        s.custom = metrics;
    }

    /// Marks the plugin failed with `reason` (a failed call, a missed deadline).
    pub fn set_failed(&self, reason: String) {
        self.state.lock().health = Some((HealthStatus::Failed, reason));
    }

    /// Records a panic; the plugin counts as failed until a new instance starts.
    pub fn record_panic(&self, message: String) {
        self.panics.fetch_add(1, Ordering::Relaxed);
        self.state.lock().panic = Some(message);
    }

    /// The current values.
    pub fn snapshot(&self) -> PluginSnapshot {
        let s = self.state.lock().clone();
        let (health, reason) = match (&s.panic, &s.health) {
            (Some(panic), _) => (HealthStatus::Failed, panic.clone()),
            (None, Some((status, reason))) => (*status, reason.clone()),
            (None, None) if s.running => (HealthStatus::Healthy, String::new()),
            (None, None) => (HealthStatus::Failed, "not running".to_owned()),
        };
        PluginSnapshot {
            running: s.running,
            version: s.version,
            health,
            reason,
            emitted: self.emitted.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            reloads: self.reloads.load(Ordering::Relaxed),
            stop_timeouts: self.stop_timeouts.load(Ordering::Relaxed),
            custom: s.custom,
        }
    }
}

/// Stats of every plugin name seen since the host started, by name.
#[derive(Debug, Default)]
pub struct StatsRegistry {
    by_name: Mutex<std::collections::BTreeMap<&'static str, std::sync::Arc<PluginStats>>>,
}

impl StatsRegistry {
    /// The stats of `name`, created on first use.
    pub fn get(&self, name: &'static str) -> std::sync::Arc<PluginStats> {
        std::sync::Arc::clone(self.by_name.lock().entry(name).or_default())
    }

    /// Every plugin's name and stats, sorted by name.
    pub fn all(&self) -> Vec<(&'static str, std::sync::Arc<PluginStats>)> {
        self.by_name
            .lock()
            .iter()
            .map(|(name, stats)| (*name, std::sync::Arc::clone(stats)))
            .collect()
    }
}
