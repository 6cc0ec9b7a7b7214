//! Findings from one poll of the kubelet, and the reporter that turns findings into events
//! only when they appear or change.
//!
//! Pure: no I/O, time injected.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use tapio_k8s_support::{owned_event, OwnedEvent};
use tapio_plugin_api::{EventTypeInfo, Severity};

use crate::summary::{FsStats, Summary};

/// A container restarted more than the threshold.
pub const CRASH_LOOP: &str = "kubelet.container.crash_loop";
/// A container is waiting for a reason other than normal start-up.
pub const WAITING: &str = "kubelet.container.waiting";
/// A container terminated with a non-zero exit code.
pub const TERMINATED: &str = "kubelet.container.terminated";
/// A running pod has not been ready for longer than the grace period.
pub const NOT_READY: &str = "kubelet.pod.not_ready";
/// The node's available memory fell below the threshold.
pub const MEMORY_PRESSURE: &str = "kubelet.node.memory_pressure";
/// A pod's ephemeral storage use crossed the threshold.
pub const POD_EPHEMERAL: &str = "kubelet.pod.ephemeral_storage";
/// The node filesystem's use crossed the threshold.
pub const NODE_EPHEMERAL: &str = "kubelet.node.ephemeral_storage";

/// Every event type, for `INFO`.
pub const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(
        CRASH_LOOP,
        "A container restarted more times than the threshold (critical)",
    ),
    EventTypeInfo::new(
        WAITING,
        "A container is waiting (ImagePullBackOff, CrashLoopBackOff, ...)",
    ),
    EventTypeInfo::new(
        TERMINATED,
        "A container terminated with a non-zero exit code",
    ),
    EventTypeInfo::new(
        NOT_READY,
        "A pod has not been ready for longer than the grace period",
    ),
    EventTypeInfo::new(
        MEMORY_PRESSURE,
        "The node's available memory is below the threshold",
    ),
    EventTypeInfo::new(
        POD_EPHEMERAL,
        "A pod uses more ephemeral storage than the threshold",
    ),
    EventTypeInfo::new(
        NODE_EPHEMERAL,
        "The node filesystem is fuller than the threshold",
    ),
];

/// Waiting reasons that are part of a normal start.
const BENIGN_WAITING: &[&str] = &["ContainerCreating", "PodInitializing"];

/// Detection thresholds.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// More restarts than this is a crash loop.
    pub crash_loop_restarts: u64,
    /// Not ready for longer than this (ns) is reported.
    pub not_ready_grace_ns: u64,
    /// Available memory below this is memory pressure.
    pub memory_available_bytes: u64,
    /// Ephemeral storage use above this fraction (0..1) is reported.
    pub ephemeral_storage_ratio: f64,
}

/// Something worth reporting, with what identifies it across polls.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Identity (kind + pod + container ...).
    pub key: String,
    /// Changes when the finding is news again (a new restart count, a new reason).
    pub fingerprint: String,
    /// The event to report.
    pub event: OwnedEvent,
}

fn pod_event(event_type: &'static str, severity: Severity, ts: u64, pod: &Pod) -> OwnedEvent {
    let mut e = owned_event(event_type, severity, ts);
    let meta = &pod.metadata;
    e.push_str("k8s.pod.name", meta.name.clone().unwrap_or_default())
        .push_str(
            "k8s.namespace.name",
            meta.namespace.clone().unwrap_or_default(),
        )
        .push_str("k8s.pod.uid", meta.uid.clone().unwrap_or_default())
        .push_str(
            "k8s.node.name",
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default(),
        );
    e
}

fn container_event(
    event_type: &'static str,
    severity: Severity,
    ts: u64,
    pod: &Pod,
    c: &ContainerStatus,
) -> OwnedEvent {
    let mut e = pod_event(event_type, severity, ts, pod);
    let id = c.container_id.as_deref().unwrap_or_default();
    let bare = id.split_once("://").map_or(id, |(_, b)| b).to_owned();
    e.container_id = bare.clone();
    e.push_str("k8s.container.name", c.name.clone())
        .push_str("container.id", bare)
        .push_str("container.image.name", c.image.clone())
        .push_uint(
            "k8s.container.restart_count",
            u64::try_from(c.restart_count).unwrap_or(0),
        );
    e
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

fn nanos(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> u64 {
    u64::try_from(t.0.as_nanosecond()).unwrap_or(0)
}

/// Parses a Kubernetes quantity (`1Gi`, `500M`, `1.5e9`) into bytes.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("m", 1e-3),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|v| v * factor);
        }
    }
    q.parse::<f64>().ok()
}

/// The pod's ephemeral-storage limit: the sum of its containers' limits, if each has one.
fn ephemeral_limit(pod: &Pod) -> Option<f64> {
    let containers = &pod.spec.as_ref()?.containers;
    let mut total = 0.0;
    for c in containers {
        let q = c
            .resources
            .as_ref()?
            .limits
            .as_ref()?
            .get("ephemeral-storage")?;
        total += parse_quantity(&q.0)?;
    }
    (total > 0.0).then_some(total)
}

fn containers(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let status = pod.status.as_ref();
    let regular = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let init = status
        .and_then(|s| s.init_container_statuses.as_deref())
        .unwrap_or_default();
    init.iter().chain(regular)
}

/// Findings about pods and their containers (`/pods`).
pub fn pod_findings(pods: &[Pod], t: &Thresholds, now_ns: u64, out: &mut Vec<Finding>) {
    for pod in pods {
        let pod_uid = uid(pod);
        for c in containers(pod) {
            let restarts = u64::try_from(c.restart_count).unwrap_or(0);
            let state = c.state.as_ref();
            if restarts > t.crash_loop_restarts {
                let mut e = container_event(CRASH_LOOP, Severity::Critical, now_ns, pod, c);
                if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
                    e.push_str(
                        "k8s.container.waiting.reason",
                        w.reason.clone().unwrap_or_default(),
                    );
                }
                if let Some(last) = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
                    e.push_int("process.exit.code", i64::from(last.exit_code))
                        .push_str(
                            "k8s.container.terminated.reason",
                            last.reason.clone().unwrap_or_default(),
                        );
                }
                out.push(Finding {
                    key: format!("crash_loop/{pod_uid}/{}", c.name),
                    fingerprint: restarts.to_string(),
                    event: e,
                });
            }
            if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
                let reason = w.reason.clone().unwrap_or_default();
                if !reason.is_empty() && !BENIGN_WAITING.contains(&reason.as_str()) {
                    let mut e = container_event(WAITING, Severity::Warning, now_ns, pod, c);
                    e.push_str("k8s.container.waiting.reason", reason.clone())
                        .push_str(
                            "k8s.container.waiting.message",
                            w.message.clone().unwrap_or_default(),
                        );
                    out.push(Finding {
                        key: format!("waiting/{pod_uid}/{}", c.name),
                        fingerprint: reason,
                        event: e,
                    });
                }
            }
            let terminations = [
                state.and_then(|s| s.terminated.as_ref()),
                c.last_state.as_ref().and_then(|s| s.terminated.as_ref()),
            ];
            for term in terminations
                .into_iter()
                .flatten()
                .filter(|t| t.exit_code != 0)
            {
                let ts = term.finished_at.as_ref().map(nanos).unwrap_or(now_ns);
                let mut e = container_event(TERMINATED, Severity::Error, ts, pod, c);
                let reason = term.reason.clone().unwrap_or_default();
                e.push_int("process.exit.code", i64::from(term.exit_code))
                    .push_str("k8s.container.terminated.reason", reason.clone())
                    .push_str(
                        "k8s.container.terminated.message",
                        term.message.clone().unwrap_or_default(),
                    )
                    .push_bool("container.oom_killed", reason == "OOMKilled");
                if let Some(sig) = term.signal {
                    e.push_int("process.exit.signal", i64::from(sig));
                }
                // One termination = one container id (or finish time): reported once, whether
                // seen as the current or the last state.
                let which = term
                    .container_id
                    .clone()
                    .or_else(|| term.finished_at.as_ref().map(|f| f.0.to_string()))
                    .unwrap_or_default();
                out.push(Finding {
                    key: format!("terminated/{pod_uid}/{}/{which}", c.name),
                    fingerprint: String::new(),
                    event: e,
                });
            }
        }
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or_default();
        if phase == "Running" || phase == "Pending" {
            let ready = status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
            if let Some(cond) = ready.filter(|c| c.status != "True") {
                let since = cond
                    .last_transition_time
                    .as_ref()
                    .map(nanos)
                    .unwrap_or(now_ns);
                if now_ns.saturating_sub(since) >= t.not_ready_grace_ns {
                    let mut e = pod_event(NOT_READY, Severity::Warning, now_ns, pod);
                    let reason = cond.reason.clone().unwrap_or_default();
                    e.push_str("k8s.pod.phase", phase)
                        .push_str("k8s.pod.not_ready.reason", reason.clone())
                        .push_str(
                            "k8s.pod.not_ready.message",
                            cond.message.clone().unwrap_or_default(),
                        )
                        .push_float(
                            "k8s.pod.not_ready.duration_s",
                            now_ns.saturating_sub(since) as f64 / 1e9,
                        );
                    out.push(Finding {
                        key: format!("not_ready/{pod_uid}"),
                        fingerprint: reason,
                        event: e,
                    });
                }
            }
        }
    }
}

fn fs_ratio(fs: &FsStats) -> Option<(u64, u64, f64)> {
    let used = fs.used_bytes?;
    let capacity = fs.capacity_bytes.filter(|c| *c > 0)?;
    Some((used, capacity, used as f64 / capacity as f64))
}

/// Findings about the node and pod resource use (`/stats/summary`).
pub fn summary_findings(
    summary: &Summary,
    pods: &[Pod],
    t: &Thresholds,
    now_ns: u64,
    out: &mut Vec<Finding>,
) {
    let node_name = summary.node.node_name.clone();
    if let Some(mem) = &summary.node.memory {
        if let Some(available) = mem
            .available_bytes
            .filter(|a| *a < t.memory_available_bytes)
        {
            let mut e = owned_event(MEMORY_PRESSURE, Severity::High, now_ns);
            e.push_str("k8s.node.name", node_name.clone())
                .push_uint("k8s.node.memory.available_bytes", available)
                .push_uint("k8s.node.memory.threshold_bytes", t.memory_available_bytes);
            if let Some(ws) = mem.working_set_bytes {
                e.push_uint("k8s.node.memory.working_set_bytes", ws);
            }
            out.push(Finding {
                key: "memory_pressure".into(),
                fingerprint: String::new(),
                event: e,
            });
        }
    }
    if let Some((used, capacity, ratio)) = summary.node.fs.as_ref().and_then(fs_ratio) {
        if ratio > t.ephemeral_storage_ratio {
            let mut e = owned_event(NODE_EPHEMERAL, Severity::Warning, now_ns);
            e.push_str("k8s.node.name", node_name.clone())
                .push_uint("k8s.node.filesystem.usage_bytes", used)
                .push_uint("k8s.node.filesystem.capacity_bytes", capacity)
                .push_float("k8s.node.filesystem.utilization", ratio);
            out.push(Finding {
                key: "node_fs".into(),
                fingerprint: String::new(),
                event: e,
            });
        }
    }
    let by_uid: HashMap<&str, &Pod> = pods.iter().map(|p| (uid(p), p)).collect();
    for ps in &summary.pods {
        let Some(fs) = &ps.ephemeral_storage else {
            continue;
        };
        let Some(used) = fs.used_bytes else { continue };
        let pod = by_uid.get(ps.pod_ref.uid.as_str());
        let (basis, limit) = match pod.and_then(|p| ephemeral_limit(p)) {
            Some(limit) => ("limit", limit),
            None => match fs.capacity_bytes.filter(|c| *c > 0) {
                Some(c) => ("node_capacity", c as f64),
                None => continue,
            },
        };
        let ratio = used as f64 / limit;
        if ratio <= t.ephemeral_storage_ratio {
            continue;
        }
        let mut e = owned_event(POD_EPHEMERAL, Severity::Warning, now_ns);
        e.push_str("k8s.pod.name", ps.pod_ref.name.clone())
            .push_str("k8s.namespace.name", ps.pod_ref.namespace.clone())
            .push_str("k8s.pod.uid", ps.pod_ref.uid.clone())
            .push_str("k8s.node.name", node_name.clone())
            .push_uint("k8s.pod.ephemeral_storage.usage_bytes", used)
            .push_float("k8s.pod.ephemeral_storage.limit_bytes", limit)
            .push_str("k8s.pod.ephemeral_storage.basis", basis)
            .push_float("k8s.pod.ephemeral_storage.utilization", ratio);
        out.push(Finding {
            key: format!("ephemeral/{}", ps.pod_ref.uid),
            fingerprint: String::new(),
            event: e,
        });
    }
}

/// Reports a finding when it first appears or its fingerprint changes; forgets findings
/// that are gone (so a problem that returns is reported again).
#[derive(Debug, Default)]
pub struct Reporter {
    active: HashMap<String, String>,
}

impl Reporter {
    /// The events to emit for this poll's findings.
    pub fn report(&mut self, findings: Vec<Finding>) -> Vec<OwnedEvent> {
        let present: HashSet<String> = findings.iter().map(|f| f.key.clone()).collect();
        self.active.retain(|k, _| present.contains(k));
        let mut events = Vec::new();
        for f in findings {
            if self.active.get(&f.key) != Some(&f.fingerprint) {
                self.active.insert(f.key, f.fingerprint);
                events.push(f.event);
            }
        }
        events
    }

    /// Findings currently active.
    pub fn active(&self) -> usize {
        self.active.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("1Gi"), Some(1_073_741_824.0));
        assert_eq!(parse_quantity("500M"), Some(5e8));
        assert_eq!(parse_quantity("1.5e3"), Some(1500.0));
        assert_eq!(parse_quantity("12345"), Some(12345.0));
        assert_eq!(parse_quantity("lots"), None);
    }

    #[test]
    fn reporter_reports_new_and_changed_only() {
        let f = |key: &str, fp: &str| Finding {
            key: key.into(),
            fingerprint: fp.into(),
            event: owned_event(CRASH_LOOP, Severity::Critical, 1),
        };
        let mut r = Reporter::default();
        assert_eq!(r.report(vec![f("a", "4"), f("b", "")]).len(), 2);
        assert_eq!(r.report(vec![f("a", "4"), f("b", "")]).len(), 0);
        assert_eq!(r.report(vec![f("a", "5")]).len(), 1, "more restarts");
        assert_eq!(
            r.report(vec![f("a", "5"), f("b", "")]).len(),
            1,
            "b came back"
        );
        assert_eq!(r.active(), 2);
    }
}
