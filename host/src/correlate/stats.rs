//! Counters and gauges of correlation, written by the pipeline thread (relaxed stores once
//! per batch) and read by `/metrics` and the status line.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Correlation counters (monotonic) and gauges (current values).
#[derive(Debug, Default)]
pub struct CorrelationStats {
    /// Groups opened (candidates, before confirmation).
    pub groups_opened: AtomicU64,
    /// Groups confirmed by their rule.
    pub groups_confirmed: AtomicU64,
    /// Confirmed groups closed and delivered.
    pub groups_closed: AtomicU64,
    /// Candidates closed without confirmation.
    pub groups_discarded: AtomicU64,
    /// Groups closed early by the open-group limit.
    pub groups_evicted: AtomicU64,
    /// Member events not kept because a group was full (still delivered, only not listed).
    pub members_dropped: AtomicU64,
    /// Events that matched a rule step.
    pub rule_matches: AtomicU64,
    /// Matching events without the entity key their rule groups by.
    pub unkeyed_matches: AtomicU64,
    /// Predictions emitted.
    pub predictions: AtomicU64,
    /// Events attached to an application span's trace.
    pub attached_events: AtomicU64,
    /// Events held in the OTel delay line.
    pub delayed_events: AtomicU64,
    /// Events released early because the delay line was full.
    pub delay_overflow: AtomicU64,
    /// `/proc` fallback requests sent to the resolver thread.
    pub resolver_requests: AtomicU64,
    /// `/proc` fallback requests dropped (queue full).
    pub resolver_dropped: AtomicU64,
    /// Answers applied from the resolver.
    pub resolver_answers: AtomicU64,
    /// Rule reloads applied.
    pub rule_reloads: AtomicU64,
    /// Rule reloads refused (invalid files; the old rules stay).
    pub rule_reload_errors: AtomicU64,
    /// Active rules.
    pub rules: AtomicU64,
    /// Open groups.
    pub open_groups: AtomicU64,
    /// Entity table sizes: processes.
    pub entities_processes: AtomicU64,
    /// Cgroups.
    pub entities_cgroups: AtomicU64,
    /// Containers.
    pub entities_containers: AtomicU64,
    /// Pods.
    pub entities_pods: AtomicU64,
    /// Services, ReplicaSets, nodes.
    pub entities_objects: AtomicU64,
    /// Network peers and IP owners.
    pub entities_peers: AtomicU64,
    /// Entity entries evicted (TTL or size).
    pub entities_evicted: AtomicU64,
    /// Matches per rule id.
    pub matches_per_rule: Mutex<Vec<(String, u64)>>,
}

/// Stores a value with relaxed ordering.
pub fn set(a: &AtomicU64, v: u64) {
    a.store(v, Ordering::Relaxed);
}

/// Loads a value with relaxed ordering.
pub fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}
