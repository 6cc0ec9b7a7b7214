//! What one etcd endpoint's polls mean, as pure logic: each poll result goes in, the events
//! it causes come out, and the endpoint's health is kept. No I/O, no clock (the caller
//! passes the time), so every transition is unit-tested.
//!
//! Condition events (`unreachable`, `unhealthy`, `health.slow`, `leader.missing`,
//! `db.size_exceeded`, `wal.fsync_slow`) are emitted when the condition starts, not on
//! every poll; the periodic `etcd.endpoint.status` carries the current values and the
//! severity of the worst active condition.

use std::time::Duration;

use tapio_plugin_api::Severity;

use crate::client::HealthReply;
use crate::endpoint::Endpoint;
use crate::metrics::Snapshot;
use tapio_event_buffer::{OwnedEvent, Value};

/// Limits above which the monitor raises warnings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Slow `/health` answer.
    pub health_latency: Duration,
    /// Large backend database, bytes.
    pub db_size_bytes: u64,
    /// Slow WAL fsync p99 over one poll interval.
    pub wal_fsync_p99: Duration,
}

/// The outcome of one poll.
#[derive(Debug, Clone)]
pub enum Observation {
    /// `/health` could not be fetched.
    Unreachable {
        /// `error.type` class.
        kind: &'static str,
        /// The error with its causes.
        message: String,
    },
    /// `/health` answered; `/metrics` was fetched after it.
    Reached {
        /// What `/health` said.
        health: HealthReply,
        /// The parsed metrics, or why they could not be fetched.
        metrics: Result<Snapshot, String>,
    },
}

/// Reachability of the endpoint as last seen.
#[derive(Debug, Clone, PartialEq)]
enum Reach {
    /// Not polled yet.
    Unknown,
    /// Answered and healthy.
    Up,
    /// Answered `/health` with `false`.
    Unhealthy { since_ns: u64, reason: String },
    /// Did not answer.
    Down {
        since_ns: u64,
        kind: &'static str,
        message: String,
    },
}

/// The health of one endpoint, for the plugin's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointHealth {
    /// Not polled yet.
    Pending,
    /// Reachable, healthy, with a leader.
    Healthy,
    /// Something is wrong; the reason names the endpoint.
    Unhealthy(String),
}

/// Per-endpoint state.
#[derive(Debug)]
pub struct Monitor {
    endpoint: Endpoint,
    thresholds: Thresholds,
    emit_status: bool,
    reach: Reach,
    previous: Option<Snapshot>,
    member_id: Option<String>,
    version: Option<String>,
    consecutive_failures: u32,
    latency_slow: bool,
    no_leader: bool,
    db_over: bool,
    fsync_slow: bool,
}

impl Monitor {
    /// A monitor for `endpoint`.
    pub fn new(endpoint: Endpoint, thresholds: Thresholds, emit_status: bool) -> Self {
        Monitor {
            endpoint,
            thresholds,
            emit_status,
            reach: Reach::Unknown,
            previous: None,
            member_id: None,
            version: None,
            consecutive_failures: 0,
            latency_slow: false,
            no_leader: false,
            db_over: false,
            fsync_slow: false,
        }
    }

    /// Polls that failed in a row (0 when the last one reached the endpoint).
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// The endpoint's health after the last observation.
    pub fn health(&self) -> EndpointHealth {
        let url = &self.endpoint.url;
        match &self.reach {
            Reach::Unknown => EndpointHealth::Pending,
            Reach::Down { message, .. } => EndpointHealth::Unhealthy(format!(
                "etcd endpoint {url} unreachable ({} failed polls): {message}",
                self.consecutive_failures
            )),
            Reach::Unhealthy { reason, .. } => EndpointHealth::Unhealthy(format!(
                "etcd endpoint {url} reports unhealthy: {reason}"
            )),
            Reach::Up if self.no_leader => {
                EndpointHealth::Unhealthy(format!("etcd endpoint {url} has no leader"))
            }
            Reach::Up => EndpointHealth::Healthy,
        }
    }

    /// Takes one poll's outcome at `now_ns`; returns the events it causes.
    pub fn observe(&mut self, now_ns: u64, observation: Observation) -> Vec<OwnedEvent> {
        let mut out = Vec::new();
        match observation {
            Observation::Unreachable { kind, message } => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if !matches!(self.reach, Reach::Down { .. }) {
                    let mut attrs = self.base_attrs();
                    attrs.push(("error.type", Value::Str(kind.to_owned())));
                    attrs.push(("error.message", Value::Str(message.clone())));
                    out.push(self.event(
                        now_ns,
                        "etcd.endpoint.unreachable",
                        Severity::Error,
                        attrs,
                    ));
                    self.reach = Reach::Down {
                        since_ns: now_ns,
                        kind,
                        message,
                    };
                } else if let Reach::Down {
                    kind: k,
                    message: m,
                    ..
                } = &mut self.reach
                {
                    *k = kind;
                    *m = message;
                }
            }
            Observation::Reached { health, metrics } => {
                self.consecutive_failures = 0;
                if let Ok(snapshot) = &metrics {
                    self.member_id = snapshot.member_id.clone().or(self.member_id.take());
                    self.version = snapshot.version.clone().or(self.version.take());
                }
                self.reached_health(now_ns, &health, &mut out);
                if let Ok(snapshot) = &metrics {
                    self.reached_metrics(now_ns, snapshot, &mut out);
                }
                if self.emit_status {
                    out.push(self.status_event(now_ns, &health, &metrics));
                }
                if let Ok(snapshot) = metrics {
                    self.previous = Some(snapshot);
                }
            }
        }
        out
    }

    fn reached_health(&mut self, now_ns: u64, health: &HealthReply, out: &mut Vec<OwnedEvent>) {
        let previous = std::mem::replace(&mut self.reach, Reach::Up);
        if health.healthy {
            let from = match previous {
                Reach::Down { since_ns, .. } => Some(("unreachable", since_ns)),
                Reach::Unhealthy { since_ns, .. } => Some(("unhealthy", since_ns)),
                Reach::Up | Reach::Unknown => None,
            };
            if let Some((state, since_ns)) = from {
                let mut attrs = self.base_attrs();
                attrs.push(("etcd.recovered_from", Value::Str(state.to_owned())));
                attrs.push((
                    "etcd.outage.duration_ms",
                    Value::Float(now_ns.saturating_sub(since_ns) as f64 / 1e6),
                ));
                out.push(self.event(now_ns, "etcd.endpoint.recovered", Severity::Info, attrs));
            }
        } else {
            let reason = health
                .reason
                .clone()
                .unwrap_or_else(|| "health is false".to_owned());
            self.reach = match previous {
                Reach::Unhealthy { since_ns, .. } => Reach::Unhealthy { since_ns, reason },
                _ => {
                    let mut attrs = self.base_attrs();
                    attrs.push(("error.type", Value::Str("unhealthy".to_owned())));
                    attrs.push(("error.message", Value::Str(reason.clone())));
                    attrs.push(latency_attr(health.latency));
                    out.push(self.event(now_ns, "etcd.endpoint.unhealthy", Severity::Error, attrs));
                    Reach::Unhealthy {
                        since_ns: now_ns,
                        reason,
                    }
                }
            };
        }
        let slow = health.latency > self.thresholds.health_latency;
        if slow && !self.latency_slow {
            let mut attrs = self.base_attrs();
            attrs.push(latency_attr(health.latency));
            attrs.push(threshold_ms(self.thresholds.health_latency));
            out.push(self.event(now_ns, "etcd.health.slow", Severity::Warning, attrs));
        }
        self.latency_slow = slow;
    }

    fn reached_metrics(&mut self, now_ns: u64, now: &Snapshot, out: &mut Vec<OwnedEvent>) {
        let previous = self.previous.take();
        // A new process start time means the member restarted: its counters started over,
        // so they are compared from this scrape on.
        let restarted = match (
            previous.as_ref().and_then(|p| p.process_start_time),
            now.process_start_time,
        ) {
            (Some(before), Some(after)) => before != after,
            _ => false,
        };
        if restarted {
            let mut attrs = self.base_attrs();
            attrs.push((
                "etcd.process.start_time_s",
                Value::Float(now.process_start_time.unwrap_or_default()),
            ));
            out.push(self.event(now_ns, "etcd.member.restarted", Severity::Warning, attrs));
        }
        let baseline = previous.filter(|_| !restarted);

        if let (Some(before), Some(total)) = (
            baseline.as_ref().and_then(|p| p.leader_changes),
            now.leader_changes,
        ) {
            if total > before {
                let mut attrs = self.base_attrs();
                attrs.push(("etcd.leader.changes", Value::UInt(total - before)));
                attrs.push(("etcd.leader.changes_total", Value::UInt(total)));
                if let Some(is_leader) = now.is_leader {
                    attrs.push(("etcd.leader.is_self", Value::Bool(is_leader)));
                }
                out.push(self.event(now_ns, "etcd.leader.changed", Severity::High, attrs));
            }
        }

        match now.has_leader {
            Some(false) if !self.no_leader => {
                self.no_leader = true;
                let attrs = self.base_attrs();
                out.push(self.event(now_ns, "etcd.leader.missing", Severity::Critical, attrs));
            }
            Some(true) => self.no_leader = false,
            _ => {}
        }

        if let Some(size) = now.db_size_bytes {
            let over = size > self.thresholds.db_size_bytes;
            if over && !self.db_over {
                let mut attrs = self.base_attrs();
                attrs.push(("etcd.db.size_bytes", Value::UInt(size)));
                attrs.push((
                    "etcd.db.threshold_bytes",
                    Value::UInt(self.thresholds.db_size_bytes),
                ));
                if let Some(quota) = now.quota_bytes {
                    attrs.push(("etcd.db.quota_bytes", Value::UInt(quota)));
                }
                out.push(self.event(now_ns, "etcd.db.size_exceeded", Severity::Warning, attrs));
            }
            self.db_over = over;
        }

        let window = match (
            &now.wal_fsync,
            baseline.as_ref().and_then(|p| p.wal_fsync.as_ref()),
        ) {
            (Some(now), Some(before)) => now.since(before),
            _ => None,
        };
        if let Some(window) = window.filter(|w| w.count > 0.0) {
            let p99 = window.quantile(0.99).unwrap_or_default();
            let slow = p99 > self.thresholds.wal_fsync_p99.as_secs_f64();
            if slow && !self.fsync_slow {
                let mut attrs = self.base_attrs();
                attrs.push(("etcd.wal.fsync.p99_ms", Value::Float(p99 * 1e3)));
                attrs.push(("etcd.wal.fsync.count", Value::UInt(window.count as u64)));
                attrs.push(threshold_ms(self.thresholds.wal_fsync_p99));
                out.push(self.event(now_ns, "etcd.wal.fsync_slow", Severity::Warning, attrs));
            }
            self.fsync_slow = slow;
        }
        // Kept for the status event built right after.
        self.previous = baseline;
    }

    fn status_event(
        &self,
        now_ns: u64,
        health: &HealthReply,
        metrics: &Result<Snapshot, String>,
    ) -> OwnedEvent {
        let mut attrs = self.base_attrs();
        attrs.push(("etcd.healthy", Value::Bool(health.healthy)));
        attrs.push(latency_attr(health.latency));
        match metrics {
            Ok(s) => {
                if let Some(v) = s.has_leader {
                    attrs.push(("etcd.leader.present", Value::Bool(v)));
                }
                if let Some(v) = s.is_leader {
                    attrs.push(("etcd.leader.is_self", Value::Bool(v)));
                }
                if let Some(v) = s.leader_changes {
                    attrs.push(("etcd.leader.changes_total", Value::UInt(v)));
                }
                if let Some(v) = s.db_size_bytes {
                    attrs.push(("etcd.db.size_bytes", Value::UInt(v)));
                }
                if let Some(v) = s.db_size_in_use_bytes {
                    attrs.push(("etcd.db.size_in_use_bytes", Value::UInt(v)));
                }
                if let Some(v) = s.quota_bytes {
                    attrs.push(("etcd.db.quota_bytes", Value::UInt(v)));
                }
                if let Some(h) = &s.wal_fsync {
                    attrs.push(("etcd.wal.fsync.count_total", Value::UInt(h.count as u64)));
                    // Latency over the last interval; absent on the first scrape, after a
                    // restart, or when no fsync happened.
                    let window = self
                        .previous
                        .as_ref()
                        .and_then(|p| p.wal_fsync.as_ref())
                        .and_then(|before| h.since(before))
                        .filter(|w| w.count > 0.0);
                    if let Some(w) = window {
                        attrs.push(("etcd.wal.fsync.count", Value::UInt(w.count as u64)));
                        if let Some(mean) = w.mean() {
                            attrs.push(("etcd.wal.fsync.avg_ms", Value::Float(mean * 1e3)));
                        }
                        if let Some(p99) = w.quantile(0.99) {
                            attrs.push(("etcd.wal.fsync.p99_ms", Value::Float(p99 * 1e3)));
                        }
                    }
                }
            }
            Err(why) => attrs.push(("etcd.metrics.error", Value::Str(why.clone()))),
        }
        let severity = if self.no_leader {
            Severity::Critical
        } else if !health.healthy {
            Severity::Error
        } else if self.latency_slow || self.db_over || self.fsync_slow {
            Severity::Warning
        } else {
            Severity::Info
        };
        self.event(now_ns, "etcd.endpoint.status", severity, attrs)
    }

    fn base_attrs(&self) -> Vec<(&'static str, Value)> {
        let mut attrs = vec![
            ("etcd.endpoint", Value::Str(self.endpoint.url.clone())),
            ("server.address", Value::Str(self.endpoint.host.clone())),
            ("server.port", Value::UInt(self.endpoint.port.into())),
        ];
        if let Some(id) = &self.member_id {
            attrs.push(("etcd.member.id", Value::Str(id.clone())));
        }
        if let Some(v) = &self.version {
            attrs.push(("etcd.version", Value::Str(v.clone())));
        }
        attrs
    }

    fn event(
        &self,
        timestamp_ns: u64,
        event_type: &'static str,
        severity: Severity,
        attrs: Vec<(&'static str, Value)>,
    ) -> OwnedEvent {
        OwnedEvent::new(timestamp_ns, event_type, severity).with_attributes(attrs)
    }
}

fn latency_attr(latency: Duration) -> (&'static str, Value) {
    (
        "etcd.health.latency_ms",
        Value::Float(latency.as_secs_f64() * 1e3),
    )
}

fn threshold_ms(threshold: Duration) -> (&'static str, Value) {
    (
        "etcd.threshold_ms",
        Value::Float(threshold.as_secs_f64() * 1e3),
    )
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
