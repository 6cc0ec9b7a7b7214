//! `correlation:`: the correlation stage's settings (rules, limits, business weights).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tapio_plugin_api::config::duration;

use crate::config::CorrelationMode;

fn opt_duration_ser<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(d) => duration::serialize(d, s),
        None => s.serialize_none(),
    }
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration::deserialize(d).map(Some)
}

/// `correlation:`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Correlation {
    /// `semantic` or `basic`; when set it replaces `pipeline.correlation` (the
    /// `--correlation` flag still wins).
    pub mode: Option<CorrelationMode>,
    /// Events of one entity within this window share a trace id (basic mode); when set it
    /// replaces `pipeline.trace_window`.
    #[serde(deserialize_with = "opt_duration", serialize_with = "opt_duration_ser")]
    #[schemars(with = "Option<String>", extend("format" = "duration"))]
    pub window: Option<Duration>,
    /// Load the built-in rules (embedded in the binary; sources in `packaging/rules/`).
    pub builtin_rules: bool,
    /// Directory of user rule files (`*.yaml`), reloaded on SIGHUP; a rule with a built-in's
    /// id replaces it.
    pub rules_dir: Option<PathBuf>,
    /// How long events of processes that send OTLP spans wait for their spans before they
    /// are matched (0s: never wait).
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub otel_attach_delay: Duration,
    /// Ask `/proc/<pid>/cgroup` (off the pipeline thread) about processes no event placed.
    pub proc_fallback: bool,
    /// Memory bounds.
    pub limits: CorrelationLimits,
    /// Business impact weights.
    pub business: BusinessWeightsConfig,
}

impl Default for Correlation {
    fn default() -> Self {
        Correlation {
            mode: None,
            window: None,
            builtin_rules: true,
            rules_dir: None,
            otel_attach_delay: Duration::from_secs(2),
            proc_fallback: true,
            limits: CorrelationLimits::default(),
            business: BusinessWeightsConfig::default(),
        }
    }
}

/// `correlation.limits:`: every table is bounded; sizes are in `/metrics`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationLimits {
    /// Most processes in the entity graph.
    pub max_processes: usize,
    /// Most cgroups, containers, pods (each).
    pub max_workloads: usize,
    /// Most network peers and DNS names (each).
    pub max_peers: usize,
    /// Entities unseen this long are forgotten.
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub entity_ttl: Duration,
    /// Most open groups (the least recently active closes first, counted).
    pub max_open_groups: usize,
    /// Most members listed per group (further members are counted).
    pub max_members: usize,
    /// Most events waiting in the OTel delay line.
    pub max_delayed: usize,
}

impl Default for CorrelationLimits {
    fn default() -> Self {
        CorrelationLimits {
            max_processes: 200_000,
            max_workloads: 50_000,
            max_peers: 50_000,
            entity_ttl: Duration::from_secs(900),
            max_open_groups: 10_000,
            max_members: 64,
            max_delayed: 100_000,
        }
    }
}

/// `correlation.business:`: weights 0..1 of namespaces and pod labels (`key=value`).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BusinessWeightsConfig {
    /// Weight per namespace; replaces the defaults (production 1, staging 0.6, dev/test 0.2).
    pub namespaces: Option<BTreeMap<String, f64>>,
    /// Weight per label; replaces the defaults (`env=production` 1, ... `env=dev` 0.2).
    pub labels: Option<BTreeMap<String, f64>>,
    /// Weight of everything else.
    pub default: f64,
}

impl Default for BusinessWeightsConfig {
    fn default() -> Self {
        BusinessWeightsConfig {
            namespaces: None,
            labels: None,
            default: 0.5,
        }
    }
}

impl BusinessWeightsConfig {
    /// The weights, defaults filled in.
    pub fn weights(&self) -> crate::correlate::impact::BusinessWeights {
        let mut w = crate::correlate::impact::BusinessWeights::default();
        if let Some(ns) = &self.namespaces {
            w.namespaces = ns.clone();
        }
        if let Some(l) = &self.labels {
            w.labels = l.clone();
        }
        w.default = self.default;
        w
    }

    /// Every weight outside 0..1, as `(field, value)`.
    pub fn out_of_range(&self) -> Vec<(String, f64)> {
        let mut bad = Vec::new();
        let mut check = |field: String, v: f64| {
            if !(0.0..=1.0).contains(&v) {
                bad.push((field, v));
            }
        };
        check("correlation.business.default".into(), self.default);
        for (k, v) in self.namespaces.iter().flatten() {
            check(format!("correlation.business.namespaces.{k}"), *v);
        }
        for (k, v) in self.labels.iter().flatten() {
            check(format!("correlation.business.labels.{k}"), *v);
        }
        bad
    }
}
