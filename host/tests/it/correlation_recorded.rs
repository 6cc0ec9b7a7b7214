//! Scenario tests on event streams RECORDED from the live tests (`correlation_record.rs`,
//! `TAPIO_RECORD_FIXTURES=1`), replayed through the correlation stage with an injected
//! clock: the OOM-killed workload forms the memory cascade with its early prediction; the
//! refused connects land in the application's span.

use std::path::Path;

use tapio_host::correlate::replay;
use tapio_host::correlate::resolver::Resolver;
use tapio_host::correlate::rules::{load_builtin, RuleSet};
use tapio_host::correlate::{CorrelationStage, Settings};
use tapio_host::event::{hex, Event, Value};
use tapio_host::pipeline::stage::Stage;

use crate::correlation_support::{
    assert_span_tree, chain_steps, f, find, groups, json, member_ids, replay_through, rules_of, s,
    stage, trace_hex, Limits, MIB, S,
};

/// `memory.max` of the recorded run's test cgroups (`LimitedCgroup::create(96 << 20)`).
const RECORDED_LIMITS: Limits = Limits {
    applies: |path| path.starts_with("/tapio-it-corr-"),
    max: 96 * MIB,
};

/// A recorded live run (`correlation_record.rs`), replayed with the rules of that run (the
/// built-ins, the memory cascade replaced by the live test's fast one) and an injected
/// clock: each event's own time, then an hour later.
fn replay_recorded(name: &str) -> Vec<Event> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/correlation/recorded")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let events = replay::parse_stream(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let fast =
        tapio_host::correlate::rules::load_text("fast.yaml", crate::correlation_live::FAST_CASCADE)
            .expect("the live test's rule");
    let mut rules: Vec<_> = load_builtin()
        .expect("built-in rules")
        .into_iter()
        .filter(|r| r.id != "memory-pressure-cascade")
        .collect();
    rules.extend(fast);
    let st = CorrelationStage::new(
        Settings {
            attach_delay: std::time::Duration::ZERO,
            ..Settings::default()
        },
        RuleSet::new(rules),
        Resolver::inline(RECORDED_LIMITS),
        fastrand::Rng::with_seed(11),
    );
    replay_through(st, events)
}

#[test]
fn recorded_live_oom_kill_replays_to_a_memory_cascade_with_an_early_prediction() {
    let out = replay_recorded("memory_cascade_oom.jsonl");
    let oom = find(&out, "container.oom", 0);
    let cid = oom
        .container_id
        .clone()
        .expect("the OOM kill names its container");
    // Only our container forms a group: the other processes' memory growth recorded in the
    // same run (compilers of the machine) stays out.
    let gs = groups(&out);
    assert_eq!(gs.len(), 1, "{:#?}", rules_of(&out));
    let g = gs[0];
    assert_eq!(s(g, "tapio.group.rule"), "memory-pressure-cascade");
    assert_eq!(s(g, "tapio.group.entity"), format!("container/{cid}"));
    assert_eq!(&chain_steps(g)[..3], ["pressure", "oom", "sigkill"]);
    let root_id = s(g, "tapio.group.root_cause.event_id");
    let root = out
        .iter()
        .find(|e| e.id.to_string() == root_id)
        .expect("root cause delivered");
    assert_eq!(root.event_type, "memory.rss_growth");
    assert_eq!(root.container_id.as_deref(), Some(&*cid));
    let ids = member_ids(g);
    for e in out
        .iter()
        .filter(|e| e.event_type == "memory.rss_growth" && e.container_id.as_deref() != Some(&*cid))
    {
        assert!(
            !ids.contains(&e.id.to_string()),
            "unrelated {} joined",
            e.id
        );
    }
    // The prediction: against the cgroup's 96 MiB, delivered before the OOM kill.
    let pred = find(&out, "tapio.correlation.prediction", 0);
    assert_eq!(s(pred, "tapio.group.id"), s(g, "tapio.group.id"));
    assert_eq!(f(pred, "tapio.prediction.limit"), (96 * MIB) as f64);
    let eta = f(pred, "tapio.prediction.eta_s");
    assert!(eta > 0.0 && eta < 10.0, "eta {eta}");
    let pos = |id| out.iter().position(|e| e.id == id).unwrap();
    assert!(pos(pred.id) < pos(oom.id), "prediction before the kill");
    assert!(pred.timestamp_ns < oom.timestamp_ns);
    // The kill and the SIGKILL exit carry the group; the growth before confirmation is
    // listed as early members with its own traces.
    assert_eq!(s(oom, "tapio.group.id"), s(g, "tapio.group.id"));
    let exit = find(&out, "container.exit", 0);
    assert_eq!(s(exit, "tapio.group.id"), s(g, "tapio.group.id"));
    assert_eq!(trace_hex(exit), s(g, "tapio.group.id"));
    let early = json(g, "tapio.group.early_members");
    let early = early.as_array().unwrap();
    assert!(!early.is_empty());
    assert!(early.iter().any(|m| m["event_id"] == root_id));
    assert_span_tree(g);
}

#[test]
fn recorded_live_refused_connects_replay_into_the_application_span() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/correlation/recorded/refused_connects_in_span.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut events = replay::parse_stream(&text).expect("recorded stream");
    // The sink wrote the kernel events after the attachment delay; replay them as the stage
    // received them: kernel events at their time, spans when they end.
    let arrival = |e: &Event| {
        let dur = e
            .attribute("otel.span.duration_ns")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0) as u64;
        e.timestamp_ns + if e.event_type == "otel.span" { dur } else { 0 }
    };
    events.sort_by_key(|e| arrival(e));
    let mut st = stage(Settings {
        // As the live run (`correlation.otel_attach_delay: 3s`).
        attach_delay: std::time::Duration::from_secs(3),
        ..Settings::default()
    });
    let mut out = Vec::new();
    for e in events {
        let now = arrival(&e);
        let mut batch = vec![e];
        st.process(&mut batch, now);
        out.append(&mut batch);
    }
    let last = out.iter().map(|e| e.timestamp_ns).max().unwrap();
    st.tick(last + 3600 * S);
    st.drain(&mut out);
    let call = out
        .iter()
        .find(|e| e.event_type == "otel.span" && s(e, "otel.span.name") == "call-backend")
        .expect("the application's call-backend span");
    let pid = call
        .attribute("process.pid")
        .and_then(Value::as_i64)
        .expect("span pid") as u32;
    let ct = call.trace.unwrap();
    let refused: Vec<&Event> = out
        .iter()
        .filter(|e| e.event_type == "kernel.network.connect_refused" && e.pid == Some(pid))
        .collect();
    assert_eq!(refused.len(), 3, "the three refused connects of the run");
    for k in &refused {
        let t = k.trace.unwrap();
        assert_eq!(t.trace_id, ct.trace_id, "inside the application's trace");
        assert_eq!(
            t.parent_span_id, ct.span_id,
            "child of the call-backend span"
        );
        assert_eq!(s(k, "tapio.otel.attached_span_id"), hex(&ct.span_id));
    }
    // Other processes' network events of the same run stay outside every application trace.
    for e in out
        .iter()
        .filter(|e| e.source == "network" && e.pid != Some(pid))
    {
        assert!(
            e.attribute("tapio.otel.attached_span_id").is_none(),
            "{e:?}"
        );
    }
}
