//! Arbitrary plugin events through the correlation stage: whatever a third-party plugin
//! sends (any type, any attribute with a value of any kind, ids and times at their
//! extremes, time going backwards), the stage neither panics nor loses an event, and its
//! tables stay within their limits.
//!
//! Streams are drawn from fixed seeds, so a failure names the seed that reproduces it
//! (`TAPIO_FUZZ_SEEDS` runs more of them).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use compact_str::CompactString;
use tapio_host::config::CorrelationMode;
use tapio_host::correlate::engine::EngineLimits;
use tapio_host::correlate::entity::EntityLimits;
use tapio_host::correlate::resolver::Resolver;
use tapio_host::correlate::rules::{load_builtin, RuleSet};
use tapio_host::correlate::{CorrelationStage, Settings};
use tapio_host::event::{Attribute, Event, Severity, TraceContext, Value};
use tapio_host::pipeline::stage::Stage;

use crate::correlation_support::POD_LIMITS;

/// The attribute that numbers each input event (the stage never writes it).
const SEQ: &str = "fuzz.seq";
const S: u64 = 1_000_000_000;

/// Small limits, so a stream of a few thousand events evicts from every table.
const LIMITS: EntityLimits = EntityLimits {
    max_processes: 64,
    max_workloads: 24,
    max_peers: 16,
    ttl_ns: 30 * S,
};

/// What a stream is drawn from: the built-in rules' event types and attribute keys, the
/// entity vocabulary, and some of nobody's.
struct Vocabulary {
    types: Vec<String>,
    keys: Vec<String>,
}

impl Vocabulary {
    fn new() -> Self {
        let rules = load_builtin().expect("built-in rules");
        let mut types = vec![
            "kernel.process.exec".to_owned(),
            "kernel.process.exit".to_owned(),
            "k8s.pod.added".to_owned(),
            "k8s.pod.deleted".to_owned(),
            "k8s.service.added".to_owned(),
            "k8s.replicaset.added".to_owned(),
            "otel.span".to_owned(),
            "tapio.correlation.group".to_owned(),
            "unknown".to_owned(),
            "x".repeat(300),
            "é.ünïcode.型".to_owned(),
        ];
        let mut keys: Vec<String> = [
            "process.pid",
            "process.parent_pid",
            "process.executable.name",
            "process.executable.path",
            "container.id",
            "cgroup.path",
            "cgroup.id",
            "k8s.pod.uid",
            "k8s.pod.name",
            "k8s.namespace.name",
            "k8s.node.name",
            "k8s.pod.ip",
            "k8s.object.kind",
            "k8s.object.name",
            "k8s.object.uid",
            "k8s.object.labels",
            "k8s.owner.kind",
            "k8s.owner.name",
            "k8s.deployment.name",
            "k8s.replicaset.name",
            "k8s.service.name",
            "k8s.service.selector",
            "k8s.service.cluster_ip",
            "systemd.unit",
            "network.peer.address",
            "network.peer.port",
            "server.address",
            "dns.question.name",
            "otel.span.duration_ns",
            "otel.span.name",
            "tapio.group.id",
            "memory.limit_bytes",
            "memory.rss.bytes",
            "memory.rss.from_bytes",
            "memory.rss.growth_over_ns",
            "",
        ]
        .map(str::to_owned)
        .to_vec();
        for rule in &rules {
            for step in &rule.steps {
                types.extend(step.types.iter().cloned());
                types.extend(step.prefixes.iter().map(|p| format!("{p}anything")));
                keys.extend(step.conds.iter().map(|c| c.attr.clone()));
            }
        }
        types.sort();
        types.dedup();
        keys.sort();
        keys.dedup();
        Vocabulary { types, keys }
    }
}

fn pick<T: Clone>(rng: &mut fastrand::Rng, from: &[T]) -> T {
    from[rng.usize(..from.len())].clone()
}

/// Text as plugins send it: ids, names, paths, numbers, empty, long, not ASCII.
fn text(rng: &mut fastrand::Rng) -> CompactString {
    let pods = ["7f0c1d2e-0000-1111-2222-333344445555", "pod-uid-b", ""];
    match rng.u8(..12) {
        0 => CompactString::default(),
        1 => CompactString::new("a".repeat(rng.usize(1..400))),
        2 => CompactString::new("ünïcödé/路径/ðŸ"),
        3 => compact_str::format_compact!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{:064x}.scope",
            pick(rng, &pods).replace('-', "_"),
            rng.u64(..8)
        ),
        4 => compact_str::format_compact!("/system.slice/unit-{}.service", rng.u8(..6)),
        5 => compact_str::format_compact!("{:064x}", rng.u64(..8)),
        6 => CompactString::new(pick(rng, &pods)),
        7 => compact_str::format_compact!("10.0.{}.{}", rng.u8(..2), rng.u8(..8)),
        8 => CompactString::new(pick(
            rng,
            &["Pod", "Service", "ReplicaSet", "Deployment", "StatefulSet", "Job", "Node"],
        )),
        9 => compact_str::format_compact!("app={},tier=web", rng.u8(..4)),
        10 => compact_str::format_compact!("{}", rng.i64(..)),
        _ => compact_str::format_compact!("name-{}", rng.u8(..10)),
    }
}

fn value(rng: &mut fastrand::Rng) -> Value {
    match rng.u8(..9) {
        0..=2 => Value::Str(text(rng)),
        3 => {
            let any = rng.i64(..);
            Value::Int(pick(rng, &[0, -1, 1, i64::MIN, i64::MAX, any]))
        }
        4 => {
            let (any, small) = (rng.u64(..), rng.u64(..1 << 32));
            Value::UInt(pick(rng, &[0, u64::MAX, any, small]))
        }
        5 => {
            let any = rng.f64() * 1e9;
            Value::Float(pick(rng, &[f64::NAN, f64::INFINITY, -0.0, 1e300, any]))
        }
        6 => Value::Bool(rng.bool()),
        7 => Value::Bytes((0..rng.usize(..40)).map(|_| rng.u8(..)).collect()),
        _ => Value::Int(rng.i64(0..1 << 31)),
    }
}

/// An event time: mostly moving forward from `base`, sometimes at an extreme or behind.
fn time(rng: &mut fastrand::Rng, base: u64) -> u64 {
    match rng.u8(..20) {
        0 => 0,
        1 => u64::MAX,
        2 => u64::MAX - rng.u64(..S),
        3 => base.saturating_sub(rng.u64(..3600 * S)),
        _ => base.saturating_add(rng.u64(..2 * S)),
    }
}

fn event(rng: &mut fastrand::Rng, vocab: &Vocabulary, base: u64, seq: u64) -> Event {
    let severity = pick(
        rng,
        &[
            Severity::Info,
            Severity::Low,
            Severity::Warning,
            Severity::High,
            Severity::Critical,
        ],
    );
    let ty = pick(rng, &vocab.types);
    let at = time(rng, base);
    let mut e = Event::new(&ty, "fuzz", severity, at);
    if rng.u8(..4) != 0 {
        let pid = rng.u32(..200);
        e.pid = Some(pick(rng, &[0, 1, u32::MAX, pid]));
    }
    if rng.bool() {
        let id = rng.u64(..100);
        e.cgroup_id = Some(pick(rng, &[0, 1, u64::MAX, id]));
    }
    if rng.u8(..3) == 0 {
        e.container_id = Some(Arc::from(text(rng).as_str()));
    }
    if rng.u8(..5) == 0 {
        e.trace = Some(TraceContext {
            trace_id: if rng.bool() {
                [0; 16]
            } else {
                rng.u128(..).to_be_bytes()
            },
            span_id: rng.u64(..).to_be_bytes(),
            parent_span_id: rng.u64(..).to_be_bytes(),
            flags: rng.u8(..),
        });
    }
    for _ in 0..rng.usize(..12) {
        e.attributes.push(Attribute {
            key: CompactString::new(pick(rng, &vocab.keys)),
            value: value(rng),
        });
    }
    e.attributes.push(Attribute {
        key: CompactString::const_new(SEQ),
        value: Value::UInt(seq),
    });
    e
}

fn settings(mode: CorrelationMode) -> Settings {
    Settings {
        mode,
        trace_window: Duration::from_secs(5),
        max_trace_entities: 32,
        entities: LIMITS,
        engine: EngineLimits {
            max_open_groups: 12,
            max_members: 8,
            max_samples: 8,
        },
        attach_delay: Duration::from_millis(500),
        max_delayed: 16,
        ..Settings::default()
    }
}

/// One stream of `events` drawn from `seed`, through a stage in `mode`: batches of 1-64,
/// the clock as the stream's own, ticks now and then, then a shutdown. Checks that every
/// input event came out exactly once and that the tables kept their limits. Returns what
/// the stage delivered.
fn run_stream(seed: u64, mode: CorrelationMode, events: u64, vocab: &Vocabulary) -> Vec<Event> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut st = CorrelationStage::new(
        settings(mode),
        RuleSet::new(load_builtin().expect("built-in rules")),
        Resolver::inline(POD_LIMITS),
        fastrand::Rng::with_seed(seed),
    );
    let mut out = Vec::new();
    let mut base = 1_700_000_000 * S;
    let mut seq = 0;
    while seq < events {
        let n = rng.u64(1..=64).min(events - seq);
        let mut batch: Vec<Event> = (seq..seq + n)
            .map(|i| event(&mut rng, vocab, base, i))
            .collect();
        seq += n;
        let now = time(&mut rng, base);
        st.process(&mut batch, now);
        out.append(&mut batch);
        if rng.u8(..8) == 0 {
            st.tick(time(&mut rng, base));
            st.drain(&mut out);
        }
        base = base.saturating_add(rng.u64(..3 * S));
        let sizes = st.graph().sizes();
        assert!(
            sizes.processes <= LIMITS.max_processes
                && sizes.cgroups <= LIMITS.max_workloads
                && sizes.containers <= LIMITS.max_workloads
                && sizes.pods <= LIMITS.max_workloads
                && sizes.peers <= 2 * LIMITS.max_peers,
            "seed {seed} {mode:?}: tables beyond their limits: {sizes:?}"
        );
        assert!(
            st.engine().open_groups() <= 12,
            "seed {seed} {mode:?}: {} open groups",
            st.engine().open_groups()
        );
    }
    st.shutdown(u64::MAX);
    st.drain(&mut out);
    // Every input event exactly once (group and prediction events come on top).
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for e in &out {
        let numbered = e.attributes.iter().filter(|a| a.key == SEQ);
        for a in numbered {
            let Value::UInt(i) = a.value else {
                panic!("seed {seed}: {SEQ} changed kind: {:?}", a.value)
            };
            *seen.entry(i).or_default() += 1;
        }
    }
    let lost: Vec<u64> = (0..events).filter(|i| !seen.contains_key(i)).collect();
    let repeated: Vec<u64> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(i, _)| *i)
        .collect();
    assert!(
        lost.is_empty() && repeated.is_empty(),
        "seed {seed} {mode:?}: lost {lost:?}, delivered twice {repeated:?}"
    );
    out
}

/// Group events the stage made (a plugin may send events of that type too).
fn made_groups(out: &[Event]) -> impl Iterator<Item = &Event> {
    out.iter()
        .filter(|e| e.source == "correlation" && e.event_type == "tapio.correlation.group")
}

fn seeds() -> u64 {
    std::env::var("TAPIO_FUZZ_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

#[test]
fn arbitrary_events_neither_panic_the_semantic_stage_nor_get_lost() {
    let vocab = Vocabulary::new();
    let groups: usize = (0..seeds())
        .map(|seed| {
            made_groups(&run_stream(seed, CorrelationMode::Semantic, 3_000, &vocab)).count()
        })
        .sum();
    // The streams reach the engine's group paths, not only its refusals.
    assert!(groups > 0, "no stream formed a group");
    println!("{groups} group events from {} streams", seeds());
}

#[test]
fn arbitrary_events_neither_panic_the_basic_stage_nor_get_lost() {
    let vocab = Vocabulary::new();
    for seed in 0..seeds() {
        run_stream(1000 + seed, CorrelationMode::Basic, 3_000, &vocab);
    }
}

/// Every encoding an event meets after the stage, on what the stage made of arbitrary
/// input: the JSON Lines sink's JSON parses back, the console line is one line, the gRPC
/// exporter's hand-written protobuf is byte for byte prost's encoding of the same message,
/// the OTLP log record is made, and every group event the stage made exports as spans.
#[test]
fn every_sink_and_exporter_encodes_what_the_stage_puts_out() {
    use prost::Message;
    use tapio_host::export::{encode, otlp_map, proto as pb, wire};
    use tapio_host::sink::{console, json::JsonEvent};

    let vocab = Vocabulary::new();
    let mut scratch = Vec::new();
    let (mut checked, mut groups) = (0, 0);
    for seed in 0..seeds().min(8) {
        for mode in [CorrelationMode::Semantic, CorrelationMode::Basic] {
            let out = run_stream(2000 + seed, mode, 1_500, &vocab);
            for e in &out {
                let line = serde_json::to_string(&JsonEvent {
                    event: e,
                    host: "node-1",
                })
                .unwrap_or_else(|err| panic!("seed {seed}: JSON of {e:?}: {err}"));
                let back: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|err| panic!("seed {seed}: {line}: {err}"));
                assert_eq!(back["type"], e.event_type.as_str());
                assert!(
                    !console::format_line(e).contains('\n'),
                    "seed {seed}: {e:?}"
                );
                let mut bytes = Vec::new();
                encode::append_event(e, "node-1", &mut bytes, &mut scratch);
                let expected = pb::EventBatch {
                    sequence: 0,
                    events: vec![wire::to_proto(e, "node-1")],
                };
                assert_eq!(bytes, expected.encode_to_vec(), "seed {seed}: {e:?}");
                otlp_map::log_record(e, 1);
                checked += 1;
            }
            for g in made_groups(&out) {
                let spans = otlp_map::group_spans(g)
                    .unwrap_or_else(|err| panic!("seed {seed}: {err}: {g:?}"));
                assert!(!spans.is_empty());
                groups += 1;
            }
        }
    }
    assert!(groups > 0, "no group event was checked");
    println!("{checked} events and {groups} group events encoded");
}
