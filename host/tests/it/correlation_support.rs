//! The harness of the correlation scenario tests: a stage over the built-in rules with an
//! injected clock and cgroup limits, fixture replay, and accessors for group events.

use std::path::Path;

use tapio_host::correlate::replay;
use tapio_host::correlate::resolver::{ProcSource, Resolver};
use tapio_host::correlate::rules::{load_builtin, RuleSet};
use tapio_host::correlate::{CorrelationStage, Settings};
use tapio_host::event::{hex, Event, Value};
use tapio_host::pipeline::stage::Stage;

pub(crate) const T0: u64 = 1_700_000_000_000_000_000;
pub(crate) const S: u64 = 1_000_000_000;
pub(crate) const MIB: u64 = 1024 * 1024;

/// Cgroup limits as the resolver thread would read them from `memory.max`: `max` bytes for
/// the cgroups whose path `applies`, none elsewhere.
pub(crate) struct Limits {
    pub(crate) applies: fn(&str) -> bool,
    pub(crate) max: u64,
}

impl ProcSource for Limits {
    fn cgroup_of(&self, _: u32) -> Option<String> {
        None
    }
    fn cgroup_id(&self, _: &str) -> Option<u64> {
        None
    }
    fn memory_max(&self, path: &str) -> Option<u64> {
        (self.applies)(path).then_some(self.max)
    }
}

/// The fixtures' pods: 512 MiB under `kubepods`.
pub(crate) const POD_LIMITS: Limits = Limits {
    applies: |path| path.contains("kubepods"),
    max: 512 * MIB,
};

pub(crate) fn stage(settings: Settings) -> CorrelationStage {
    let rules = RuleSet::new(load_builtin().expect("built-in rules"));
    CorrelationStage::new(
        settings,
        rules,
        Resolver::inline(POD_LIMITS),
        fastrand::Rng::with_seed(7),
    )
}

/// Replays a fixture one event per batch, the clock at each event's time, then advances the
/// clock an hour so idle groups close. Returns everything the stage delivered, in order.
pub(crate) fn replay_fixture(name: &str) -> Vec<Event> {
    replay_with(
        name,
        Settings {
            attach_delay: std::time::Duration::ZERO,
            ..Settings::default()
        },
    )
}

pub(crate) fn replay_with(name: &str, settings: Settings) -> Vec<Event> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/correlation")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let events = replay::parse_stream(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    replay_through(stage(settings), events)
}

/// Feeds `events` to `st` one per batch, the clock at the latest event time so far, then
/// advances the clock an hour so idle groups close. Returns everything delivered, in order.
pub(crate) fn replay_through(mut st: CorrelationStage, events: Vec<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    let mut last = 0;
    for e in events {
        last = last.max(e.timestamp_ns);
        let mut batch = vec![e];
        st.process(&mut batch, last);
        out.append(&mut batch);
    }
    st.tick(last + 3600 * S);
    st.drain(&mut out);
    assert_eq!(st.open_groups(), 0, "every group closed");
    out
}

pub(crate) fn s<'a>(e: &'a Event, key: &str) -> &'a str {
    e.attribute(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{} has no text {key}", e.event_type))
}

pub(crate) fn f(e: &Event, key: &str) -> f64 {
    match e.attribute(key) {
        Some(Value::Float(v)) => *v,
        other => panic!("{key}: {other:?}"),
    }
}

pub(crate) fn groups(out: &[Event]) -> Vec<&Event> {
    out.iter()
        .filter(|e| e.event_type == "tapio.correlation.group")
        .collect()
}

pub(crate) fn json(e: &Event, key: &str) -> serde_json::Value {
    serde_json::from_str(s(e, key)).unwrap_or_else(|err| panic!("{key}: {err}"))
}

pub(crate) fn chain_steps(g: &Event) -> Vec<String> {
    json(g, "tapio.group.chain")
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn find<'a>(out: &'a [Event], ty: &str, nth: usize) -> &'a Event {
    out.iter()
        .filter(|e| e.event_type == ty)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {ty} #{nth}"))
}

pub(crate) fn member_ids(g: &Event) -> Vec<String> {
    json(g, "tapio.group.spans")
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The spans form one tree: one root (the root cause), every parent is a span of the group.
pub(crate) fn assert_span_tree(g: &Event) -> serde_json::Value {
    let spans = json(g, "tapio.group.spans");
    let list = spans.as_array().unwrap();
    let ids: Vec<&str> = list
        .iter()
        .map(|s| s["span_id"].as_str().unwrap())
        .collect();
    let roots: Vec<_> = list.iter().filter(|s| s["parent_span_id"] == "").collect();
    assert_eq!(roots.len(), 1, "one root span: {spans:#}");
    assert_eq!(
        roots[0]["event_id"],
        s(g, "tapio.group.root_cause.event_id")
    );
    for sp in list {
        let p = sp["parent_span_id"].as_str().unwrap();
        assert!(
            p.is_empty() || ids.contains(&p),
            "parent {p} is a span of the group: {spans:#}"
        );
        assert_eq!(sp["span_id"].as_str().unwrap().len(), 16);
    }
    assert_eq!(
        hex(&g.trace.unwrap().trace_id),
        s(g, "tapio.group.id"),
        "the group event carries the group trace"
    );
    spans
}
pub(crate) fn only_group<'a>(out: &'a [Event], rule: &str) -> &'a Event {
    let gs: Vec<&Event> = groups(out)
        .into_iter()
        .filter(|g| s(g, "tapio.group.rule") == rule)
        .collect();
    assert_eq!(gs.len(), 1, "one {rule} group");
    gs[0]
}

pub(crate) fn rules_of(out: &[Event]) -> Vec<String> {
    let mut r: Vec<String> = groups(out)
        .iter()
        .map(|g| s(g, "tapio.group.rule").to_owned())
        .collect();
    r.sort();
    r
}

pub(crate) fn trace_hex(e: &Event) -> String {
    hex(&e.trace.expect("every delivered event has a trace").trace_id)
}

pub(crate) fn span_hex(e: &Event) -> String {
    hex(&e.trace.expect("every delivered event has a trace").span_id)
}

/// The element of `tapio.group.spans` of event `id`.
pub(crate) fn span_of(g: &Event, id: &str) -> serde_json::Value {
    json(g, "tapio.group.spans")
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["event_id"] == id)
        .unwrap_or_else(|| panic!("{id} is no span of {}", s(g, "tapio.group.rule")))
        .clone()
}
