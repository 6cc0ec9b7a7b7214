//! Health and metrics a running plugin reports to the host.
//!
//! Ownership: values returned to the host are owned (`RString`, `RVec`); the host drops them.

use abi_stable::{
    std_types::{RString, RVec, Tuple2},
    StableAbi,
};

/// Coarse health of a plugin instance.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthStatus {
    /// Working as configured.
    Healthy = 0,
    /// Working, but partially (a source is slow, some events are lost).
    Degraded = 1,
    /// Not working.
    Failed = 2,
}

impl HealthStatus {
    /// Lowercase label (`"degraded"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Failed => "failed",
        }
    }
}

/// Health with the reason when not healthy.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
    /// Why, when not healthy (empty when healthy).
    pub reason: RString,
}

impl Health {
    /// Healthy.
    pub fn healthy() -> Self {
        Health {
            status: HealthStatus::Healthy,
            reason: RString::new(),
        }
    }
    /// Degraded, with the reason.
    pub fn degraded(reason: impl Into<String>) -> Self {
        Health {
            status: HealthStatus::Degraded,
            reason: RString::from(reason.into()),
        }
    }
    /// Failed, with the reason.
    pub fn failed(reason: impl Into<String>) -> Self {
        Health {
            status: HealthStatus::Failed,
            reason: RString::from(reason.into()),
        }
    }
}

/// Whether a metric only grows or may go up and down.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic total since the plugin was created (name ends in `_total`).
    Counter = 0,
    /// A current value.
    Gauge = 1,
}

/// One plugin-specific metric (kernel-side drops, reconnects, ...). The host exports it as
/// `tapio_plugin_<name>{plugin="<plugin>", <labels>}`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Metric {
    /// `snake_case` name, unit suffix included (`kernel_dropped_events_total`).
    pub name: RString,
    /// One sentence for the Prometheus `# HELP` line.
    pub help: RString,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The value.
    pub value: f64,
    /// Extra labels, `(name, value)`.
    pub labels: RVec<Tuple2<RString, RString>>,
}

impl Metric {
    /// A counter.
    pub fn counter(name: &str, help: &str, value: u64) -> Self {
        Metric {
            name: name.into(),
            help: help.into(),
            kind: MetricKind::Counter,
            value: value as f64,
            labels: RVec::new(),
        }
    }
    /// A gauge.
    pub fn gauge(name: &str, help: &str, value: f64) -> Self {
        Metric {
            name: name.into(),
            help: help.into(),
            kind: MetricKind::Gauge,
            value,
            labels: RVec::new(),
        }
    }
    /// Adds a label.
    pub fn with_label(mut self, name: &str, value: &str) -> Self {
        self.labels.push(Tuple2(name.into(), value.into()));
        self
    }
}
