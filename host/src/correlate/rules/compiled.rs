//! Compiled rules: steps with parsed conditions, causal edges as step indices, and a
//! [`RuleSet`] indexed by event type so an event is tested only against steps that name its
//! type.

use std::collections::HashMap;

use compact_str::CompactString;
use foldhash::fast::RandomState;

use crate::correlate::rules::model::{ConfidenceWeights, PredictionSpec};
use crate::event::{Event, Severity, Value};

/// What members of a group share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// Pod, else container, else systemd unit, else cgroup, else process.
    Workload,
    /// systemd unit.
    Unit,
    /// Network peer address or DNS name.
    Peer,
    /// The whole node.
    Node,
    /// An attribute's value.
    Attr(String),
}

/// A literal in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// Text.
    Str(String),
    /// Number.
    Num(f64),
    /// Boolean.
    Bool(bool),
}

impl Lit {
    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (Lit::Str(s), Value::Str(v)) => s == v.as_str(),
            (Lit::Num(n), v) => number(v) == Some(*n),
            (Lit::Bool(b), Value::Bool(v)) => b == v,
            (Lit::Str(s), v) => number(v).is_some_and(|n| s.parse::<f64>().ok() == Some(n)),
            _ => false,
        }
    }
}

/// A value as a number (text that parses as one included).
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        Value::Str(s) => s.parse().ok(),
        Value::Bool(_) | Value::Bytes(_) => None,
    }
}

/// A condition's operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Equal.
    Eq(Lit),
    /// Not equal (absent counts as not equal).
    Ne(Lit),
    /// Greater than.
    Gt(f64),
    /// Greater or equal.
    Gte(f64),
    /// Less than.
    Lt(f64),
    /// Less or equal.
    Lte(f64),
    /// One of.
    In(Vec<Lit>),
    /// Text contains.
    Contains(String),
    /// Text starts with.
    Prefix(String),
    /// Present or absent.
    Exists(bool),
}

/// One compiled condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    /// Attribute key (or envelope field).
    pub attr: String,
    /// Operator.
    pub op: Op,
}

fn envelope(e: &Event, key: &str) -> Option<Value> {
    match key {
        "pid" => e.pid.map(|p| Value::Int(i64::from(p))),
        "container_id" => e.container_id.as_deref().map(|c| Value::Str(c.into())),
        "cgroup_id" => e.cgroup_id.map(Value::UInt),
        "source" => Some(Value::Str(CompactString::new(e.source))),
        "severity" => Some(Value::Str(CompactString::new(e.severity.as_str()))),
        _ => None,
    }
}

impl Cond {
    /// Whether `e` satisfies the condition.
    pub fn holds(&self, e: &Event) -> bool {
        let owned;
        let v = match e.attribute(&self.attr) {
            Some(v) => Some(v),
            None => {
                owned = envelope(e, &self.attr);
                owned.as_ref()
            }
        };
        match (&self.op, v) {
            (Op::Exists(want), v) => v.is_some() == *want,
            (Op::Ne(l), Some(v)) => !l.matches(v),
            (Op::Ne(_), None) => true,
            (_, None) => false,
            (Op::Eq(l), Some(v)) => l.matches(v),
            (Op::Gt(n), Some(v)) => number(v).is_some_and(|x| x > *n),
            (Op::Gte(n), Some(v)) => number(v).is_some_and(|x| x >= *n),
            (Op::Lt(n), Some(v)) => number(v).is_some_and(|x| x < *n),
            (Op::Lte(n), Some(v)) => number(v).is_some_and(|x| x <= *n),
            (Op::In(ls), Some(v)) => ls.iter().any(|l| l.matches(v)),
            (Op::Contains(s), Some(v)) => v.as_str().is_some_and(|t| t.contains(s.as_str())),
            (Op::Prefix(s), Some(v)) => v.as_str().is_some_and(|t| t.starts_with(s.as_str())),
        }
    }
}

/// A compiled step.
#[derive(Debug, Clone)]
pub struct CompiledStep {
    /// Step id.
    pub id: String,
    /// Span name in the group trace.
    pub name: String,
    /// Exact types.
    pub types: Vec<String>,
    /// Type prefixes (`k8s.pod.` from `k8s.pod.*`).
    pub prefixes: Vec<String>,
    /// Conditions, all must hold.
    pub conds: Vec<Cond>,
    /// Least severity.
    pub min_severity: Option<Severity>,
    /// Matching events needed within the window.
    pub min_count: u32,
}

impl CompiledStep {
    /// Whether `e` matches the step's conditions and severity (its type is already known
    /// to match).
    pub fn accepts(&self, e: &Event) -> bool {
        self.min_severity.is_none_or(|s| e.severity >= s) && self.conds.iter().all(|c| c.holds(e))
    }
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// Rule id.
    pub id: String,
    /// Intent.
    pub intent: String,
    /// Description.
    pub description: String,
    /// Where it came from (`builtin:memory-cascade.yaml` or a path).
    pub origin: String,
    /// Grouping.
    pub group_by: GroupBy,
    /// Window.
    pub window_ns: u64,
    /// Time a complete group waits for late members.
    pub linger_ns: u64,
    /// Steps.
    pub steps: Vec<CompiledStep>,
    /// Causal edges (earlier step index, later step index).
    pub causes: Vec<(usize, usize)>,
    /// At least one of these steps must match (empty: any step).
    pub confirm: Vec<usize>,
    /// Whether the rule runs (`false` only to switch off a built-in of the same id).
    pub enabled: bool,
    /// Least distinct steps.
    pub min_steps: usize,
    /// Group severity.
    pub severity: Severity,
    /// `low` / `medium` / `high`.
    pub cascade_risk: String,
    /// Business weight of the rule.
    pub weight: f64,
    /// Confidence weights.
    pub confidence: ConfidenceWeights,
    /// Prediction, with step indices of its samples.
    pub prediction: Option<(PredictionSpec, Vec<usize>)>,
    /// Prevention actions.
    pub prevention: Vec<String>,
}

/// The active rules, indexed by event type.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Rules, in load order.
    pub rules: Vec<CompiledRule>,
    by_type: HashMap<String, Vec<(usize, usize)>, RandomState>,
    by_prefix: Vec<(String, usize, usize)>,
}

impl RuleSet {
    /// Indexes `rules`.
    pub fn new(rules: Vec<CompiledRule>) -> Self {
        let mut set = RuleSet {
            rules: rules.into_iter().filter(|r| r.enabled).collect(),
            ..RuleSet::default()
        };
        for (r, rule) in set.rules.iter().enumerate() {
            for (s, step) in rule.steps.iter().enumerate() {
                for t in &step.types {
                    set.by_type.entry(t.clone()).or_default().push((r, s));
                }
                for p in &step.prefixes {
                    set.by_prefix.push((p.clone(), r, s));
                }
            }
        }
        set
    }

    /// The (rule, step) pairs whose type patterns name `event_type`.
    pub fn candidates(&self, event_type: &str, out: &mut Vec<(usize, usize)>) {
        out.clear();
        if let Some(v) = self.by_type.get(event_type) {
            out.extend_from_slice(v);
        }
        for (p, r, s) in &self.by_prefix {
            if event_type.starts_with(p.as_str()) {
                out.push((*r, *s));
            }
        }
    }

    /// Whether any of `candidates` (from [`RuleSet::candidates`]) is a sample step of a
    /// `time_to_limit` prediction that reads the cgroup's limit (the event's cgroup path is
    /// then resolved, and its limit asked for).
    pub fn reads_cgroup_limit(&self, candidates: &[(usize, usize)]) -> bool {
        candidates.iter().any(|&(r, s)| {
            self.rules[r]
                .prediction
                .as_ref()
                .is_some_and(|(spec, steps)| spec.limit_from_cgroup && steps.contains(&s))
        })
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
