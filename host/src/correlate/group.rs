//! Building a closed group's output: the root cause (walked back through causal links up to
//! a bound), the causal chain, contributing factors, the confidence and its formula, the
//! impact, the prediction, and the group's trace as spans; then the
//! `tapio.correlation.group` and `tapio.correlation.prediction` events.

use std::collections::HashSet;

use compact_str::CompactString;
use foldhash::fast::RandomState;
use serde_json::json;

use crate::correlate::engine::{CloseReason, Member, OpenGroup, PredictionOut};
use crate::correlate::entity::EntityGraph;
use crate::correlate::impact::{self, BusinessWeights, Impact};
use crate::correlate::rules::compiled::CompiledRule;
use crate::correlate::vocab::types;
use crate::event::{hex, Attribute, Event, Severity, TraceContext, Value};

/// Most causal links followed back from the effect to the root cause.
pub const MAX_CAUSAL_HOPS: usize = 16;

/// The explanation of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Step index of the root cause.
    pub root_step: usize,
    /// The root cause event.
    pub root: Member,
    /// Steps on the causal path from the root, in order.
    pub chain: Vec<usize>,
    /// Matched steps off the causal path.
    pub contributing: Vec<usize>,
    /// Confidence 0..1.
    pub confidence: f64,
    /// How it was computed.
    pub confidence_formula: String,
}

fn first_of(g: &OpenGroup, s: usize) -> Option<&Member> {
    g.members
        .iter()
        .filter(|m| m.step == s)
        .min_by_key(|m| m.ts)
}

fn last_of(g: &OpenGroup, s: usize) -> Option<&Member> {
    g.members
        .iter()
        .filter(|m| m.step == s)
        .max_by_key(|m| m.ts)
}

/// Finds the root cause, the chain and the confidence of a group.
pub fn explain(g: &OpenGroup, rule: &CompiledRule) -> Option<Explanation> {
    let matched = |s: usize| first_of(g, s).is_some();
    let first_ts = |s: usize| first_of(g, s).map_or(u64::MAX, |m| m.ts);
    // The effect: the first confirming step that matched, else the latest matched step.
    let start = rule
        .confirm
        .iter()
        .copied()
        .find(|&s| matched(s))
        .or_else(|| {
            (0..rule.steps.len())
                .filter(|&s| matched(s))
                .max_by_key(|&s| first_ts(s))
        })?;
    let mut cur = start;
    for _ in 0..MAX_CAUSAL_HOPS {
        let latest = last_of(g, cur).map_or(0, |m| m.end_ns.max(m.ts));
        let pred = rule
            .causes
            .iter()
            .filter(|(a, b)| *b == cur && matched(*a) && first_ts(*a) <= latest)
            .map(|(a, _)| *a)
            .min_by_key(|&a| first_ts(a));
        match pred {
            Some(p) => cur = p,
            None => break,
        }
    }
    let root_step = cur;
    let root = first_of(g, root_step)?.clone();
    let mut chain = vec![root_step];
    loop {
        let here = *chain.last()?;
        let next = rule
            .causes
            .iter()
            .filter(|(a, b)| *a == here && matched(*b) && !chain.contains(b))
            .map(|(_, b)| *b)
            .min_by_key(|&b| first_ts(b));
        match next {
            Some(n) if chain.len() < rule.steps.len() => chain.push(n),
            _ => break,
        }
    }
    let contributing: Vec<usize> = (0..rule.steps.len())
        .filter(|s| matched(*s) && !chain.contains(s))
        .collect();

    let steps = rule.steps.len();
    let done = (0..steps).filter(|&s| g.step_done(rule, s)).count();
    let coverage = done as f64 / steps as f64;
    let applicable: Vec<&(usize, usize)> = rule
        .causes
        .iter()
        .filter(|(a, b)| matched(*a) && matched(*b))
        .collect();
    let in_order = applicable
        .iter()
        .filter(|(a, b)| first_ts(*a) <= last_of(g, *b).map_or(0, |m| m.end_ns.max(m.ts)))
        .count();
    let order = if applicable.is_empty() {
        1.0
    } else {
        in_order as f64 / applicable.len() as f64
    };
    let members = g.members.len() as u64 + g.dropped_members;
    let evidence = (members as f64 / steps as f64).min(1.0);
    let w = &rule.confidence;
    let confidence = w.coverage * coverage + w.order * order + w.evidence * evidence;
    let confidence = (confidence * 1000.0).round() / 1000.0;
    let confidence_formula = format!(
        "{:.2}*coverage({done}/{steps} steps) + {:.2}*order({in_order}/{} causal pairs in order) + {:.2}*evidence(min(1, {members} events/{steps} steps)) = {confidence:.3}",
        w.coverage,
        w.order,
        applicable.len(),
        w.evidence,
    );
    Some(Explanation {
        root_step,
        root,
        chain,
        contributing,
        confidence,
        confidence_formula,
    })
}

/// Assesses the impact of a group. Runs on the pipeline thread when the group closes, so
/// each distinct entity, peer and (namespace, entity) pair is looked up once however many
/// members share it, and services are matched through the graph's selector index.
pub fn assess(
    g: &OpenGroup,
    rule: &CompiledRule,
    graph: &EntityGraph,
    weights: &BusinessWeights,
) -> Impact {
    let mut entities: Vec<String> = Vec::new();
    let mut seen_entities: HashSet<&str, RandomState> = HashSet::default();
    let mut dependents: Vec<String> = Vec::new();
    let mut seen_dependents: HashSet<CompactString, RandomState> = HashSet::default();
    let mut seen_services: HashSet<String, RandomState> = HashSet::default();
    let mut seen_peers: HashSet<&str, RandomState> = HashSet::default();
    let mut seen_weighed: HashSet<(Option<&str>, Option<&str>), RandomState> = HashSet::default();
    let mut critical: Vec<String> = Vec::new();
    let mut business = (0.0f64, String::from("no entity"));
    let mut selectors = None;
    let mut add_dependents = |found: Vec<CompactString>, out: &mut Vec<String>| {
        for d in found {
            if !seen_dependents.contains(&d) {
                out.push(d.to_string());
                seen_dependents.insert(d);
            }
        }
    };
    for m in &g.members {
        let entity = m.entity.as_deref();
        if let Some(e) = entity {
            if seen_entities.insert(e) {
                entities.push(e.to_owned());
                if let Some(uid) = e.strip_prefix("pod/") {
                    let index = selectors.get_or_insert_with(|| graph.service_selectors());
                    for s in graph.services_of_pod(uid, index) {
                        let s = format!("service/{s}");
                        if seen_services.insert(s.clone()) {
                            entities.push(s);
                        }
                    }
                }
            }
        }
        if let Some(peer) = m.peer.as_deref() {
            if seen_peers.insert(peer) {
                add_dependents(graph.dependents(None, Some(peer)), &mut dependents);
            }
        }
        let names: Vec<&str> = m.names.iter().map(CompactString::as_str).collect();
        if let Some(why) =
            impact::system_critical(m.namespace.as_deref(), &names, &m.event_type, m.peer_port)
        {
            if !critical.contains(&why) {
                critical.push(why);
            }
        }
        if seen_weighed.insert((m.namespace.as_deref(), entity)) {
            let labels = entity
                .and_then(|e| e.strip_prefix("pod/"))
                .and_then(|uid| graph.pod_labels(uid));
            let (w, why) = weights.weight(m.namespace.as_deref(), labels.as_deref());
            if w > business.0 || business.1 == "no entity" {
                business = (w, why);
            }
        }
    }
    for e in &entities {
        add_dependents(graph.dependents(Some(e), None), &mut dependents);
    }
    let entity_set: HashSet<&str, RandomState> = entities.iter().map(String::as_str).collect();
    dependents.retain(|d| !entity_set.contains(d.as_str()));
    if entities.is_empty() {
        entities.push(g.key.to_string());
    }
    entities.sort();
    dependents.sort();
    let mut cascade_risk = rule.cascade_risk.clone();
    if !dependents.is_empty() {
        cascade_risk = impact::raise_risk(&cascade_risk).to_owned();
    }
    let severity = if critical.is_empty() {
        rule.severity
    } else {
        Severity::Critical
    };
    let score = ((rule.weight * business.0) * 1000.0).round() / 1000.0;
    Impact {
        severity,
        entities,
        dependents,
        cascade_risk,
        business: score,
        business_formula: format!(
            "rule weight {:.2} * entity weight {:.2} ({}) = {score:.3}",
            rule.weight, business.0, business.1
        ),
        system_critical: critical,
    }
}

fn push(e: &mut Event, key: &str, value: Value) {
    e.attributes.push(Attribute {
        key: CompactString::new(key),
        value,
    });
}

fn s(v: impl Into<CompactString>) -> Value {
    Value::Str(v.into())
}

/// The spans of the group's trace: the root cause is the root span; every other member's
/// parent is its causal predecessor's span (else the root span).
pub fn spans(g: &OpenGroup, rule: &CompiledRule, x: &Explanation) -> serde_json::Value {
    let mut members: Vec<&Member> = g.members.iter().collect();
    members.sort_by_key(|m| (m.ts, m.event_id));
    let out: Vec<serde_json::Value> = members
        .iter()
        .map(|m| {
            let parent = if m.event_id == x.root.event_id {
                String::new()
            } else {
                g.causal_parent(rule, m.step, m.ts)
                    .filter(|p| p.event_id != m.event_id)
                    .map_or_else(|| hex(&x.root.span_id), |p| hex(&p.span_id))
            };
            json!({
                "span_id": hex(&m.span_id),
                "parent_span_id": parent,
                "name": format!("{}: {}", rule.steps[m.step].name, m.event_type),
                "start_ns": m.ts,
                "end_ns": m.end_ns.max(m.ts),
                "event_id": m.event_id.to_string(),
                "event_trace_id": hex(&m.trace_id),
                "early": m.early,
            })
        })
        .collect();
    serde_json::Value::Array(out)
}

/// The members that joined before the group was confirmed: they were delivered untagged,
/// in their own traces, so each is listed with the trace and span it carries (a backend
/// joins them to the group's trace by these ids; every later member carries the group's
/// trace id itself).
pub fn early_members(g: &OpenGroup) -> serde_json::Value {
    let mut early: Vec<&Member> = g.members.iter().filter(|m| m.early).collect();
    early.sort_by_key(|m| (m.ts, m.event_id));
    serde_json::Value::Array(
        early
            .iter()
            .map(|m| {
                json!({
                    "event_id": m.event_id.to_string(),
                    "event_type": m.event_type.as_str(),
                    "trace_id": hex(&m.trace_id),
                    "span_id": hex(&m.span_id),
                })
            })
            .collect(),
    )
}

/// Everything needed to turn closed groups into events.
pub struct Builder<'a> {
    /// The rule of the group.
    pub rule: &'a CompiledRule,
    /// The entity graph (services, dependents, labels).
    pub graph: &'a EntityGraph,
    /// Business weights.
    pub weights: &'a BusinessWeights,
}

impl Builder<'_> {
    /// The `tapio.correlation.group` event of a closed group (`None` when it has no member).
    pub fn group_event(&self, g: &OpenGroup, why: CloseReason) -> Option<Event> {
        let rule = self.rule;
        let x = explain(g, rule)?;
        let imp = assess(g, rule, self.graph, self.weights);
        let mut e = Event::new(types::GROUP, "correlation", imp.severity, g.last_ns);
        e.trace = Some(TraceContext {
            trace_id: g.trace_id,
            span_id: x.root.span_id,
            parent_span_id: [0; 8],
            flags: 1,
        });
        let step_json = |s: usize, caused_by: Option<usize>| {
            let first = first_of(g, s);
            json!({
                "step": rule.steps[s].id,
                "name": rule.steps[s].name,
                "event_id": first.map(|m| m.event_id.to_string()),
                "event_type": first.map(|m| m.event_type.to_string()),
                "time_ns": first.map(|m| m.ts),
                "count": g.counts[s],
                "caused_by": caused_by.map(|c| rule.steps[c].id.clone()),
            })
        };
        let chain: Vec<serde_json::Value> = x
            .chain
            .iter()
            .enumerate()
            .map(|(i, &s)| step_json(s, i.checked_sub(1).map(|p| x.chain[p])))
            .collect();
        let contributing: Vec<serde_json::Value> =
            x.contributing.iter().map(|&s| step_json(s, None)).collect();
        push(&mut e, "tapio.group.id", s(g.id()));
        push(&mut e, "tapio.group.intent", s(rule.intent.as_str()));
        push(&mut e, "tapio.group.rule", s(rule.id.as_str()));
        push(&mut e, "tapio.group.rule.origin", s(rule.origin.as_str()));
        push(
            &mut e,
            "tapio.group.description",
            s(rule.description.as_str()),
        );
        push(&mut e, "tapio.group.entity", s(g.key.clone()));
        push(&mut e, "tapio.group.start_ns", Value::UInt(g.first_ns));
        push(&mut e, "tapio.group.end_ns", Value::UInt(g.last_ns));
        push(
            &mut e,
            "tapio.group.close_reason",
            s(format!("{why:?}").to_lowercase()),
        );
        push(
            &mut e,
            "tapio.group.members",
            Value::UInt(g.members.len() as u64 + g.dropped_members),
        );
        push(&mut e, "tapio.group.confidence", Value::Float(x.confidence));
        push(
            &mut e,
            "tapio.group.confidence.formula",
            s(x.confidence_formula.as_str()),
        );
        push(
            &mut e,
            "tapio.group.root_cause.event_id",
            s(x.root.event_id.to_string()),
        );
        push(
            &mut e,
            "tapio.group.root_cause.event_type",
            s(x.root.event_type.clone()),
        );
        push(
            &mut e,
            "tapio.group.root_cause.step",
            s(rule.steps[x.root_step].id.as_str()),
        );
        push(
            &mut e,
            "tapio.group.chain",
            s(serde_json::Value::Array(chain).to_string()),
        );
        push(
            &mut e,
            "tapio.group.contributing_factors",
            s(serde_json::Value::Array(contributing).to_string()),
        );
        push(
            &mut e,
            "tapio.group.impact.severity",
            s(imp.severity.as_str()),
        );
        push(
            &mut e,
            "tapio.group.impact.blast_radius",
            Value::UInt(imp.blast_radius() as u64),
        );
        push(
            &mut e,
            "tapio.group.impact.entities",
            s(json!(imp.entities).to_string()),
        );
        push(
            &mut e,
            "tapio.group.impact.dependents",
            s(json!(imp.dependents).to_string()),
        );
        push(
            &mut e,
            "tapio.group.impact.cascade_risk",
            s(imp.cascade_risk.as_str()),
        );
        push(
            &mut e,
            "tapio.group.impact.business",
            Value::Float(imp.business),
        );
        push(
            &mut e,
            "tapio.group.impact.business.formula",
            s(imp.business_formula.as_str()),
        );
        push(
            &mut e,
            "tapio.group.impact.system_critical",
            Value::Bool(!imp.system_critical.is_empty()),
        );
        push(
            &mut e,
            "tapio.group.impact.system_critical.entities",
            s(json!(imp.system_critical).to_string()),
        );
        if let (Some(p), Some((spec, _))) = (&g.prediction, &rule.prediction) {
            push(&mut e, "tapio.group.prediction.kind", s(p.kind()));
            push(
                &mut e,
                "tapio.group.prediction.text",
                s(p.render(&spec.text, &g.key)),
            );
            push(
                &mut e,
                "tapio.group.prediction.eta_s",
                Value::Float((p.eta_s() * 10.0).round() / 10.0),
            );
            push(
                &mut e,
                "tapio.group.prediction.at_ns",
                Value::UInt(p.at_ns()),
            );
            push(&mut e, "tapio.group.prediction.formula", s(p.formula()));
            if let Some(id) = g.prediction_event {
                push(&mut e, "tapio.group.prediction.event_id", s(id.to_string()));
            }
        }
        push(
            &mut e,
            "tapio.group.prevention",
            s(json!(rule.prevention).to_string()),
        );
        push(
            &mut e,
            "tapio.group.spans",
            s(spans(g, rule, &x).to_string()),
        );
        push(
            &mut e,
            "tapio.group.early_members",
            s(early_members(g).to_string()),
        );
        Some(e)
    }

    /// The `tapio.correlation.prediction` event of an open group's first prediction.
    pub fn prediction_event(&self, g: &OpenGroup) -> Option<Event> {
        let rule = self.rule;
        let p = g.prediction.as_ref()?;
        let (spec, _) = rule.prediction.as_ref()?;
        let mut e = Event::new(
            types::PREDICTION,
            "correlation",
            Severity::Warning,
            p.at_ns(),
        );
        e.trace = Some(TraceContext {
            trace_id: g.trace_id,
            span_id: [0; 8],
            parent_span_id: [0; 8],
            flags: 1,
        });
        push(&mut e, "tapio.group.id", s(g.id()));
        push(&mut e, "tapio.group.rule", s(rule.id.as_str()));
        push(&mut e, "tapio.group.intent", s(rule.intent.as_str()));
        push(&mut e, "tapio.group.entity", s(g.key.clone()));
        push(&mut e, "tapio.prediction.kind", s(p.kind()));
        push(
            &mut e,
            "tapio.prediction.text",
            s(p.render(&spec.text, &g.key)),
        );
        push(
            &mut e,
            "tapio.prediction.eta_s",
            Value::Float((p.eta_s() * 10.0).round() / 10.0),
        );
        push(&mut e, "tapio.prediction.formula", s(p.formula()));
        push(
            &mut e,
            "tapio.prediction.prevention",
            s(json!(rule.prevention).to_string()),
        );
        if let PredictionOut::Limit(l) = p {
            push(&mut e, "tapio.prediction.value", Value::Float(l.value));
            push(&mut e, "tapio.prediction.limit", Value::Float(l.limit));
        }
        Some(e)
    }
}
