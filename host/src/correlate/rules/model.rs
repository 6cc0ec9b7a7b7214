//! The rule model: what a YAML rule file deserializes into, with every field documented
//! (this is the rule author's reference), and the compiled form the matcher runs.

use std::time::Duration;

use serde::Deserialize;
use tapio_plugin_api::config::duration;

/// A rule file: `rules:` followed by a list of rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rules of this file.
    pub rules: Vec<Rule>,
}

/// One rule: the steps it matches, how they are grouped and ordered, and what a group means.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique id (`memory-pressure-cascade`); a user rule with a built-in's id replaces it.
    pub id: String,
    /// The intent a group is labelled with (`memory_pressure_cascade`).
    pub intent: String,
    /// One sentence for people.
    #[serde(default)]
    pub description: String,
    /// `false` disables the rule (e.g. to switch off a built-in from a user file).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What members must share: `workload` (pod, else container, else systemd unit, else
    /// cgroup, else process), `unit`, `peer` (network peer address or DNS name), `node`
    /// (everything on this node) or `attr:<key>` (an attribute's value).
    #[serde(default = "workload")]
    pub group_by: String,
    /// A group collects members for this long after its first event, and closes when it is
    /// complete or this long after its last member.
    #[serde(with = "duration", default = "five_minutes")]
    pub window: Duration,
    /// Once every step matched, the group stays open this long for late members (journal
    /// lines after a failure, more restarts) before it is delivered.
    #[serde(with = "duration", default = "five_seconds")]
    pub linger: Duration,
    /// The event patterns, in their usual causal order.
    pub steps: Vec<Step>,
    /// Ordered causal relationships `earlier -> later` between step ids: the earlier step's
    /// first event must come before the later one's (same group entity, within the window).
    #[serde(default)]
    pub causes: Vec<String>,
    /// At least one of these steps must have matched for the group to be reported (empty:
    /// any step).
    #[serde(default)]
    pub confirm: Vec<String>,
    /// Least number of distinct steps matched for the group to be reported.
    #[serde(default = "two")]
    pub min_steps: usize,
    /// Severity of a group: `info`, `low`, `medium`, `high`, `critical`.
    #[serde(default = "high")]
    pub severity: String,
    /// Impact weights.
    #[serde(default)]
    pub impact: ImpactSpec,
    /// Weights of the confidence formula.
    #[serde(default)]
    pub confidence: ConfidenceWeights,
    /// A prediction computed from the members' data.
    #[serde(default)]
    pub prediction: Option<PredictionSpec>,
    /// What to do about it, copied into the group.
    #[serde(default)]
    pub prevention: Vec<String>,
}

fn yes() -> bool {
    true
}
fn workload() -> String {
    "workload".to_owned()
}
fn five_minutes() -> Duration {
    Duration::from_secs(300)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}
fn two() -> usize {
    2
}
fn high() -> String {
    "high".to_owned()
}

/// One event pattern.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Step id, used in `causes` and `confirm`.
    pub id: String,
    /// Event types (exact, or a prefix ending in `*`: `k8s.pod.*`).
    pub types: Vec<String>,
    /// Conditions on attributes, all of which must hold.
    #[serde(default, rename = "where")]
    pub conditions: Vec<Condition>,
    /// Least severity (`info` .. `critical`).
    #[serde(default)]
    pub min_severity: Option<String>,
    /// The step counts once this many matching events arrived within the window
    /// (aggregation: "3 refused connects").
    #[serde(default = "one")]
    pub min_count: u32,
    /// Span name of this step in the group's trace (default: the step id).
    #[serde(default)]
    pub name: Option<String>,
}

fn one() -> u32 {
    1
}

/// A condition on one attribute (or an envelope field: `pid`, `container_id`, `source`,
/// `severity`): exactly one operator.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Attribute key.
    pub attr: String,
    /// Equal (text or number).
    #[serde(default)]
    pub eq: Option<serde_yaml_ng::Value>,
    /// Not equal.
    #[serde(default)]
    pub ne: Option<serde_yaml_ng::Value>,
    /// Greater than (number).
    #[serde(default)]
    pub gt: Option<f64>,
    /// Greater or equal.
    #[serde(default)]
    pub gte: Option<f64>,
    /// Less than.
    #[serde(default)]
    pub lt: Option<f64>,
    /// Less or equal.
    #[serde(default)]
    pub lte: Option<f64>,
    /// One of these values.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<serde_yaml_ng::Value>>,
    /// Text contains.
    #[serde(default)]
    pub contains: Option<String>,
    /// Text starts with.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The attribute is present (`true`) or absent (`false`).
    #[serde(default)]
    pub exists: Option<bool>,
}

/// Impact weights of a rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImpactSpec {
    /// `low`, `medium` or `high`: how likely this spreads further.
    pub cascade_risk: String,
    /// Weight of this rule in the business impact (0..1).
    pub weight: f64,
}

impl Default for ImpactSpec {
    fn default() -> Self {
        ImpactSpec {
            cascade_risk: "medium".to_owned(),
            weight: 0.5,
        }
    }
}

/// Weights of the confidence formula `coverage*matched_steps/steps + order*causes_in_order/
/// causes_seen + evidence*min(1, members/steps)`; they must sum to 1.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfidenceWeights {
    /// Weight of step coverage.
    pub coverage: f64,
    /// Weight of causal order.
    pub order: f64,
    /// Weight of the amount of evidence.
    pub evidence: f64,
}

impl Default for ConfidenceWeights {
    fn default() -> Self {
        ConfidenceWeights {
            coverage: 0.5,
            order: 0.3,
            evidence: 0.2,
        }
    }
}

/// What a rule predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionKind {
    /// Fit a line through the samples of `value_attr` and report when it reaches the limit.
    TimeToLimit,
    /// Fit the intervals between `sample_steps` events and report the next one.
    CrashLoop,
}

/// A prediction computed from member data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionSpec {
    /// The method.
    pub kind: PredictionKind,
    /// The steps whose events are samples.
    pub sample_steps: Vec<String>,
    /// `time_to_limit`: the attribute holding the current usage (bytes).
    #[serde(default)]
    pub value_attr: Option<String>,
    /// `time_to_limit`: an attribute holding an earlier usage (`memory.rss.from_bytes`),
    /// with `from_age_attr` its age in ns: one event then gives two samples.
    #[serde(default)]
    pub from_value_attr: Option<String>,
    /// Age of `from_value_attr` in nanoseconds before the event.
    #[serde(default)]
    pub from_age_attr: Option<String>,
    /// `time_to_limit`: the attribute holding the limit (bytes).
    #[serde(default)]
    pub limit_attr: Option<String>,
    /// `time_to_limit`: also take the limit from the entity's cgroup `memory.max` (read off
    /// the pipeline thread by the resolver).
    #[serde(default)]
    pub limit_from_cgroup: bool,
    /// Report only predictions within this horizon.
    #[serde(with = "duration", default = "ten_minutes")]
    pub horizon: Duration,
    /// Least samples before a fit (2..).
    #[serde(default = "two")]
    pub min_samples: usize,
    /// Text; `{entity}`, `{eta}`, `{value}`, `{limit}` and `{rate}` are filled in.
    pub text: String,
}

fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}
