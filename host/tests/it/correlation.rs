//! Correlation scenarios on recorded event streams (`tests/fixtures/correlation/*.jsonl`)
//! with an injected clock: each built-in rule forms the expected group, root cause, chain,
//! scores and prediction; unrelated events stay out; interleaved scenarios stay separate.

use tapio_host::correlate::Settings;
use tapio_host::event::{hex, Event, Value};
use tapio_host::pipeline::stage::Stage;

use crate::correlation_support::*;

#[test]
fn memory_cascade_forms_one_group_with_root_cause_chain_scores_and_prediction() {
    let out = replay_fixture("memory_cascade.jsonl");
    let gs = groups(&out);
    assert_eq!(
        gs.len(),
        1,
        "{:#?}",
        gs.iter()
            .map(|g| s(g, "tapio.group.rule"))
            .collect::<Vec<_>>()
    );
    let g = gs[0];
    assert_eq!(s(g, "tapio.group.rule"), "memory-pressure-cascade");
    assert_eq!(s(g, "tapio.group.intent"), "memory_pressure_cascade");
    assert_eq!(g.source, "correlation");
    let first_growth = find(&out, "memory.rss_growth", 0);
    assert_eq!(
        s(g, "tapio.group.root_cause.event_id"),
        first_growth.id.to_string()
    );
    assert_eq!(s(g, "tapio.group.root_cause.step"), "pressure");
    assert_eq!(
        chain_steps(g),
        ["pressure", "oom", "sigkill", "container_exit", "restart"]
    );
    assert_eq!(f(g, "tapio.group.confidence"), 1.0);
    assert!(
        s(g, "tapio.group.confidence.formula").contains("coverage(5/5 steps)"),
        "{}",
        s(g, "tapio.group.confidence.formula")
    );
    assert!(s(g, "tapio.group.confidence.formula").contains("order(4/4 causal pairs in order)"));
    assert_eq!(s(g, "tapio.group.close_reason"), "complete");
    // Impact: the pod and its service; the client seen retransmitting to the pod IP.
    assert_eq!(s(g, "tapio.group.impact.severity"), "critical");
    let uid = "1b2c3d4e-0000-1111-2222-333344445555";
    assert_eq!(
        json(g, "tapio.group.impact.entities"),
        serde_json::json!([format!("pod/{uid}"), "service/production/api"])
    );
    assert_eq!(
        json(g, "tapio.group.impact.dependents"),
        serde_json::json!(["cgroup/77"])
    );
    assert_eq!(f(g, "tapio.group.impact.business"), 1.0);
    assert!(s(g, "tapio.group.impact.business.formula").contains("namespace production"));
    assert_eq!(s(g, "tapio.group.impact.cascade_risk"), "high");
    // Prediction: samples 300, 350, 400 MiB at 0/10/20 s (5 MiB/s) against the 512 MiB
    // memory.max: (512 - 400) / 5 = 22.4 s, computed at the second sample, before the kill.
    assert_eq!(s(g, "tapio.group.prediction.kind"), "time_to_limit");
    assert_eq!(f(g, "tapio.group.prediction.eta_s"), 22.4);
    let oom = find(&out, "container.oom", 0);
    let predicted_at = match g.attribute("tapio.group.prediction.at_ns") {
        Some(Value::UInt(v)) => *v,
        other => panic!("{other:?}"),
    };
    assert_eq!(predicted_at, T0 + 20 * S);
    assert!(predicted_at < oom.timestamp_ns);
    let p = find(&out, "tapio.correlation.prediction", 0);
    let p_index = out.iter().position(|e| e.id == p.id).unwrap();
    let oom_index = out.iter().position(|e| e.id == oom.id).unwrap();
    assert!(
        p_index < oom_index,
        "the prediction was delivered before the OOM kill"
    );
    assert_eq!(s(p, "tapio.group.id"), s(g, "tapio.group.id"));
    assert_eq!(s(g, "tapio.group.prediction.event_id"), p.id.to_string());
    assert!(
        s(p, "tapio.prediction.text").contains("limit reached in 22s"),
        "{}",
        s(p, "tapio.prediction.text")
    );
    // The group's trace: root = first growth sample; OOM's parent = the latest pressure
    // event before it; SIGKILL's parent = the OOM.
    let spans = assert_span_tree(g);
    let span_of = |e: &Event| hex(&e.trace.unwrap().span_id);
    let by_event = |e: &Event| {
        spans
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["event_id"] == e.id.to_string())
            .cloned()
            .unwrap()
    };
    let pressure = find(&out, "container.memory_pressure", 0);
    let pressure = if pressure.container_id.as_deref() == Some(&"c0ffee00".repeat(8)) {
        pressure
    } else {
        find(&out, "container.memory_pressure", 1)
    };
    assert_eq!(by_event(oom)["parent_span_id"], span_of(pressure));
    let kill = find(&out, "container.exit", 0);
    assert_eq!(by_event(kill)["parent_span_id"], span_of(oom));
    // Members delivered after confirmation carry the group id and trace.
    for e in [
        oom,
        kill,
        find(&out, "cri.container.exited", 0),
        find(&out, "k8s.event", 0),
    ] {
        assert_eq!(
            s(e, "tapio.group.id"),
            s(g, "tapio.group.id"),
            "{}",
            e.event_type
        );
        assert_eq!(e.trace.unwrap().trace_id, g.trace.unwrap().trace_id);
    }
    assert_eq!(hex(&kill.trace.unwrap().parent_span_id), span_of(oom));
    // Entity enrichment: the OOM event names the pod, namespace and deployment.
    assert_eq!(s(oom, "k8s.pod.name"), "api-5d8f-x2");
    assert_eq!(s(oom, "k8s.namespace.name"), "production");
    assert_eq!(s(oom, "k8s.deployment.name"), "api");
    // Unrelated events stay out.
    let members = member_ids(g);
    for e in out.iter().filter(|e| {
        matches!(e.pid, Some(777 | 888 | 999)) || e.event_type == "kernel.network.retransmit"
    }) {
        assert!(
            e.attribute("tapio.group.id").is_none(),
            "{} joined a group",
            e.event_type
        );
        assert!(
            !members.contains(&e.id.to_string()),
            "{} listed in the group",
            e.event_type
        );
    }
}

#[test]
fn interleaved_cascades_on_different_pods_stay_separate() {
    let out = replay_fixture("interleaved.jsonl");
    let gs = groups(&out);
    assert_eq!(gs.len(), 2);
    let entities: Vec<&str> = gs.iter().map(|g| s(g, "tapio.group.entity")).collect();
    assert!(
        entities.contains(&"pod/1b2c3d4e-0000-1111-2222-333344445555"),
        "{entities:?}"
    );
    assert!(
        entities.contains(&"pod/9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff"),
        "{entities:?}"
    );
    assert_ne!(s(gs[0], "tapio.group.id"), s(gs[1], "tapio.group.id"));
    let (a, b) = (member_ids(gs[0]), member_ids(gs[1]));
    assert!(a.iter().all(|id| !b.contains(id)), "no shared member");
    for g in gs {
        assert_eq!(chain_steps(g).len(), 5);
        assert_eq!(f(g, "tapio.group.confidence"), 1.0);
        assert_span_tree(g);
        // Each group's members are of its own pod.
        let pod = s(g, "tapio.group.entity")
            .trim_start_matches("pod/")
            .to_owned();
        let members = out
            .iter()
            .filter(|e| e.source != "correlation")
            .filter(|e| {
                e.attribute("tapio.group.id").and_then(Value::as_str)
                    == Some(s(g, "tapio.group.id"))
            });
        for e in members {
            assert_eq!(s(e, "k8s.pod.uid"), pod, "{}", e.event_type);
        }
    }
}

#[test]
fn crash_loop_predicts_the_next_crash_from_growing_backoff() {
    let out = replay_fixture("crash_loop.jsonl");
    assert_eq!(rules_of(&out), ["crash-loop"]);
    let g = only_group(&out, "crash-loop");
    assert_eq!(
        s(g, "tapio.group.root_cause.event_id"),
        find(&out, "cri.container.exited", 0).id.to_string()
    );
    assert_eq!(chain_steps(g), ["exit", "restart"]);
    let contributing: Vec<String> = json(g, "tapio.group.contributing_factors")
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(contributing, ["backoff", "backoff_event"]);
    assert_eq!(f(g, "tapio.group.confidence"), 1.0);
    // Exits at 10, 20, 40, 80 s: intervals 10, 20, 40 double, so the next is 40 * 2 = 80 s.
    assert_eq!(s(g, "tapio.group.prediction.kind"), "crash_loop");
    assert_eq!(f(g, "tapio.group.prediction.eta_s"), 80.0);
    assert!(s(g, "tapio.group.prediction.formula").contains("back-off ratio 2.00"));
    // The first prediction came at the third crash (intervals 10, 20: next 40 s).
    let p = find(&out, "tapio.correlation.prediction", 0);
    assert_eq!(p.timestamp_ns, T0 + 40 * S);
    assert_eq!(f(p, "tapio.prediction.eta_s"), 40.0);
    // dev namespace: business 0.8 * 0.2.
    assert_eq!(f(g, "tapio.group.impact.business"), 0.16);
    assert_eq!(s(g, "tapio.group.impact.severity"), "high");
    assert_span_tree(g);
}

#[test]
fn service_failure_joins_refused_connects_and_failing_spans() {
    let out = replay_fixture("service_failure.jsonl");
    assert_eq!(rules_of(&out), ["service-failure"]);
    let g = only_group(&out, "service-failure");
    let refused = find(&out, "kernel.network.connect_refused", 0);
    assert_eq!(
        s(g, "tapio.group.root_cause.event_id"),
        refused.id.to_string()
    );
    assert_eq!(chain_steps(g), ["refused", "span_error"]);
    // 0.5 * 2/4 + 0.3 * 1/1 + 0.2 * min(1, 2/4) = 0.65
    assert_eq!(f(g, "tapio.group.confidence"), 0.65);
    assert_eq!(s(g, "tapio.group.close_reason"), "idle");
    assert_eq!(
        json(g, "tapio.group.impact.entities"),
        serde_json::json!(["unit/checkout.service"])
    );
    let error_span = find(&out, "otel.span", 0);
    assert_eq!(s(error_span, "tapio.group.id"), s(g, "tapio.group.id"));
    assert_eq!(
        hex(&error_span.trace.unwrap().trace_id),
        "0af7651916cd43dd8448eb211c80319c",
        "the application's trace is kept"
    );
    assert!(
        find(&out, "otel.span", 1)
            .attribute("tapio.group.id")
            .is_none(),
        "the OK span is not a member"
    );
    assert_span_tree(g);
}

#[test]
fn network_failure_groups_per_peer_and_dns_name() {
    let out = replay_fixture("network_failure.jsonl");
    assert_eq!(rules_of(&out), ["network-failure", "network-failure"]);
    let gs = groups(&out);
    let peer = gs
        .iter()
        .find(|g| s(g, "tapio.group.entity") == "10.1.2.3")
        .expect("peer group");
    let dns = gs
        .iter()
        .find(|g| s(g, "tapio.group.entity") == "db.internal")
        .expect("dns group");
    assert_eq!(chain_steps(peer), ["retransmit", "reset"]);
    assert_eq!(
        s(peer, "tapio.group.root_cause.event_id"),
        find(&out, "kernel.network.retransmit", 0).id.to_string()
    );
    // 0.5 * 2/4 + 0.3 * 1/1 + 0.2 * min(1, 5/4) = 0.75
    assert_eq!(f(peer, "tapio.group.confidence"), 0.75);
    assert_eq!(
        json(peer, "tapio.group.impact.entities"),
        serde_json::json!(["cgroup/4100", "cgroup/4101"])
    );
    assert_eq!(
        s(dns, "tapio.group.impact.severity"),
        "critical",
        "DNS is system-critical"
    );
    assert_eq!(
        json(dns, "tapio.group.impact.system_critical.entities"),
        serde_json::json!(["dns"])
    );
    let other_peer = out
        .iter()
        .find(|e| e.attribute("network.peer.address").and_then(Value::as_str) == Some("10.9.9.9"))
        .unwrap();
    assert!(
        other_peer.attribute("tapio.group.id").is_none(),
        "one retransmit is not a group"
    );
}

#[test]
fn disk_pressure_predicts_time_to_full_from_ephemeral_storage() {
    let out = replay_fixture("disk_pressure.jsonl");
    assert_eq!(rules_of(&out), ["disk-pressure"]);
    let g = only_group(&out, "disk-pressure");
    assert_eq!(
        s(g, "tapio.group.root_cause.event_id"),
        find(&out, "kubelet.pod.ephemeral_storage", 0)
            .id
            .to_string()
    );
    assert_eq!(chain_steps(g), ["ephemeral", "enospc"]);
    // 6, 7, 8 GiB at 10, 70, 130 s (1 GiB/min) of 10 GiB: (10 - 8) GiB / (1 GiB/60 s) = 120 s.
    assert_eq!(f(g, "tapio.group.prediction.eta_s"), 120.0);
    assert!(
        s(g, "tapio.group.prediction.text").contains("full in 2m00s"),
        "{}",
        s(g, "tapio.group.prediction.text")
    );
    // 0.5 * 2/3 + 0.3 * 1/1 + 0.2 * min(1, 4/3) = 0.833
    assert_eq!(f(g, "tapio.group.confidence"), 0.833);
    // staging: 0.8 * 0.6
    assert_eq!(f(g, "tapio.group.impact.business"), 0.48);
    assert_eq!(
        s(find(&out, "kernel.syscall.error", 0), "tapio.group.id"),
        s(g, "tapio.group.id")
    );
}

#[test]
fn cpu_starvation_beside_a_slow_span() {
    let out = replay_fixture("cpu_starvation.jsonl");
    assert_eq!(rules_of(&out), ["cpu-starvation"]);
    let g = only_group(&out, "cpu-starvation");
    assert_eq!(
        s(g, "tapio.group.root_cause.event_id"),
        find(&out, "resource.noisy_neighbor", 0).id.to_string()
    );
    assert_eq!(
        chain_steps(g),
        ["noisy_neighbor", "starvation", "slow_span"]
    );
    // 0.5 * 3/4 + 0.3 * 2/2 + 0.2 * min(1, 3/4) = 0.825
    assert_eq!(f(g, "tapio.group.confidence"), 0.825);
    assert_span_tree(g);
}

#[test]
fn systemd_unit_failure_collects_the_units_journal_errors() {
    let out = replay_fixture("systemd_unit_failure.jsonl");
    assert_eq!(rules_of(&out), ["systemd-unit-failure"]);
    let g = only_group(&out, "systemd-unit-failure");
    assert_eq!(s(g, "tapio.group.entity"), "payments.service");
    let exit = out
        .iter()
        .find(|e| e.event_type == "kernel.process.exit" && e.pid == Some(8100))
        .unwrap();
    assert_eq!(s(g, "tapio.group.root_cause.event_id"), exit.id.to_string());
    assert_eq!(chain_steps(g), ["exit", "failed", "journal"]);
    assert_eq!(f(g, "tapio.group.confidence"), 1.0);
    let members = member_ids(g);
    assert_eq!(members.len(), 4, "exit, failed, two journal errors");
    let info = out
        .iter()
        .find(|e| {
            e.attribute("log.body").and_then(Value::as_str)
                == Some("info line that is not an error")
        })
        .unwrap();
    assert!(!members.contains(&info.id.to_string()));
    assert_eq!(s(g, "tapio.group.close_reason"), "complete");
}

#[test]
fn etcd_trouble_beside_api_errors() {
    let out = replay_fixture("etcd_trouble.jsonl");
    assert_eq!(rules_of(&out), ["etcd-trouble"]);
    let g = only_group(&out, "etcd-trouble");
    assert_eq!(
        chain_steps(g),
        ["slow_fsync", "leader", "unhealthy", "api_errors"]
    );
    assert_eq!(
        s(g, "tapio.group.root_cause.event_id"),
        find(&out, "etcd.wal.fsync_slow", 0).id.to_string()
    );
    assert_eq!(f(g, "tapio.group.confidence"), 1.0);
    assert!(s(g, "tapio.group.confidence.formula").contains("order(5/5"));
    assert_eq!(s(g, "tapio.group.impact.severity"), "critical");
    assert_eq!(
        json(g, "tapio.group.impact.system_critical.entities"),
        serde_json::json!(["etcd"])
    );
}

#[test]
fn basic_mode_enriches_and_traces_without_groups() {
    let out = replay_with(
        "memory_cascade.jsonl",
        Settings {
            mode: tapio_host::config::CorrelationMode::Basic,
            ..Settings::default()
        },
    );
    assert!(groups(&out).is_empty());
    assert!(out.iter().all(|e| e.trace.is_some() && e.id.seq > 0));
    let oom = find(&out, "container.oom", 0);
    let kill = find(&out, "container.exit", 0);
    assert_eq!(s(oom, "k8s.deployment.name"), "api");
    assert_eq!(
        oom.trace.unwrap().trace_id,
        kill.trace.unwrap().trace_id,
        "one entity, one window, one trace"
    );
    assert!(oom.attribute("tapio.group.id").is_none());
}

#[test]
fn kernel_events_join_the_application_span_that_arrives_later() {
    use tapio_host::event::{Attribute, Severity, TraceContext};
    let mut st = stage(Settings {
        attach_delay: std::time::Duration::from_secs(2),
        ..Settings::default()
    });
    let span = |start: u64, dur: u64, id: u8| {
        let mut e = Event::new("otel.span", "otel", Severity::Info, start);
        e.attributes.push(Attribute {
            key: "process.pid".into(),
            value: Value::Int(3100),
        });
        e.attributes.push(Attribute {
            key: "otel.span.duration_ns".into(),
            value: Value::Int(dur as i64),
        });
        e.trace = Some(TraceContext {
            trace_id: [0xaa; 16],
            span_id: [id; 8],
            parent_span_id: [0; 8],
            flags: 1,
        });
        e
    };
    let mut out = Vec::new();
    // An earlier span marks pid 3100 as instrumented.
    let mut b = vec![span(T0, S / 10, 1)];
    st.process(&mut b, T0 + S / 10);
    out.append(&mut b);
    // A refused connect during the next request: held, the span is not known yet.
    let mut refused = Event::new(
        "kernel.network.connect_refused",
        "network",
        Severity::Warning,
        T0 + 10 * S + S / 10,
    );
    refused.pid = Some(3100);
    let mut b = vec![refused];
    st.process(&mut b, T0 + 10 * S + S / 10);
    assert!(b.is_empty(), "held for its span");
    // The request's span ends and arrives 0.5 s later.
    let mut b = vec![span(T0 + 10 * S, S / 2, 2)];
    st.process(&mut b, T0 + 10 * S + S / 2);
    out.append(&mut b);
    st.tick(T0 + 13 * S);
    st.drain(&mut out);
    let k = find(&out, "kernel.network.connect_refused", 0);
    let t = k.trace.unwrap();
    assert_eq!(t.trace_id, [0xaa; 16], "inside the application's trace");
    assert_eq!(t.parent_span_id, [2; 8], "child of the request span");
    assert_eq!(s(k, "tapio.otel.attached_span_id"), hex(&[2; 8]));
    let stats = st.stats();
    assert_eq!(
        stats
            .attached_events
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn a_batch_keeps_its_order_around_held_events_and_an_overflow_goes_out_where_it_happened() {
    use tapio_host::event::{Attribute, Severity, TraceContext};
    let mut st = stage(Settings {
        attach_delay: std::time::Duration::from_secs(2),
        max_delayed: 1,
        ..Settings::default()
    });
    let span = |pid: i64, id: u8| {
        let mut e = Event::new("otel.span", "otel", Severity::Info, T0);
        e.attributes.push(Attribute {
            key: "process.pid".into(),
            value: Value::Int(pid),
        });
        e.attributes.push(Attribute {
            key: "otel.span.duration_ns".into(),
            value: Value::Int((S / 10) as i64),
        });
        e.trace = Some(TraceContext {
            trace_id: [id; 16],
            span_id: [id; 8],
            parent_span_id: [0; 8],
            flags: 1,
        });
        e
    };
    // Spans mark pids 3100 and 3200 as instrumented.
    let mut b = vec![span(3100, 1), span(3200, 2)];
    st.process(&mut b, T0 + S / 10);
    assert_eq!(b.len(), 2);
    let at = T0 + 10 * S;
    let ev = |ty: &str, pid: u32| {
        let mut e = Event::new(ty, "test", Severity::Info, at);
        e.pid = Some(pid);
        e
    };
    let mut b = vec![
        ev("test.a", 1),
        ev("test.b", 3100),
        ev("test.c", 2),
        ev("test.d", 3200),
        ev("test.e", 3),
    ];
    st.process(&mut b, at);
    let types: Vec<&str> = b.iter().map(|e| e.event_type.as_str()).collect();
    // b is held; holding d overflows the line of one, so b goes out where d was.
    assert_eq!(types, ["test.a", "test.c", "test.b", "test.e"]);
    assert!(b.iter().all(|e| e.trace.is_some() && e.id.seq > 0));
    let mut out = Vec::new();
    st.tick(at + 3 * S);
    st.drain(&mut out);
    let mut b = Vec::new();
    st.process(&mut b, at + 3 * S);
    out.append(&mut b);
    let released: Vec<&str> = out
        .iter()
        .map(|e| e.event_type.as_str())
        .filter(|t| t.starts_with("test."))
        .collect();
    assert_eq!(released, ["test.d"], "d waited its delay");
}

#[test]
fn memory_stays_bounded_under_unique_entities() {
    use std::sync::atomic::Ordering::Relaxed;
    use tapio_host::correlate::engine::EngineLimits;
    use tapio_host::correlate::entity::EntityLimits;
    use tapio_host::event::{Attribute, Severity};
    let mut st = stage(Settings {
        entities: EntityLimits {
            max_processes: 1000,
            max_workloads: 500,
            max_peers: 500,
            ttl_ns: 3600 * S,
        },
        engine: EngineLimits {
            max_open_groups: 100,
            max_members: 4,
            max_samples: 8,
        },
        attach_delay: std::time::Duration::ZERO,
        ..Settings::default()
    });
    for n in 0..50_000u64 {
        let mut e = Event::new(
            "container.memory_pressure",
            "memory",
            Severity::Warning,
            T0 + n * 1_000,
        );
        e.pid = Some(n as u32);
        e.cgroup_id = Some(n + 1);
        e.container_id = Some(format!("{n:064x}").into());
        e.attributes.push(Attribute {
            key: "network.peer.address".into(),
            value: Value::Str(format!("p{n}").into()),
        });
        let mut b = vec![e];
        st.process(&mut b, T0 + n * 1_000);
        assert!(st.engine().open_groups() <= 100);
    }
    let sizes = st.graph().sizes();
    assert!(
        sizes.processes <= 1000 && sizes.cgroups <= 500 && sizes.containers <= 500,
        "{sizes:?}"
    );
    assert!(sizes.peers <= 1000, "{sizes:?}");
    let stats = st.stats();
    assert_eq!(stats.groups_opened.load(Relaxed), 50_000);
    let evicted = stats.groups_evicted.load(Relaxed);
    assert_eq!(
        evicted + st.engine().open_groups() as u64,
        50_000,
        "every eviction counted"
    );
    assert_eq!(
        stats.groups_discarded.load(Relaxed),
        evicted,
        "evicted candidates were unconfirmed"
    );
    assert!(stats.entities_evicted.load(Relaxed) > 0);
    // The status line's `Correlation Groups=N` counts confirmed groups, not candidates.
    assert!(st.engine().open_groups() > 0);
    assert_eq!(st.open_groups(), 0, "unconfirmed candidates are not groups");
}

#[test]
fn an_event_in_two_groups_names_both_and_early_members_are_listed() {
    let out = replay_fixture("multi_group.jsonl");
    assert_eq!(rules_of(&out), ["network-failure", "service-failure"]);
    let net = only_group(&out, "network-failure");
    let svc = only_group(&out, "service-failure");
    let (net_id, svc_id) = (s(net, "tapio.group.id"), s(svc, "tapio.group.id"));
    assert_ne!(net_id, svc_id);
    let refused: Vec<&Event> = (0..3)
        .map(|i| find(&out, "kernel.network.connect_refused", i))
        .collect();

    // The first refused connect joined both groups before either was confirmed: delivered
    // untagged, in its own trace; both group events list it as an early member with the
    // trace and span it carries, and as a span of the group.
    assert!(refused[0].attribute("tapio.group.id").is_none());
    assert!(refused[0].attribute("tapio.correlation.groups").is_none());
    let own_trace = trace_hex(refused[0]);
    assert_ne!(own_trace, net_id);
    assert_ne!(own_trace, svc_id);
    for g in [net, svc] {
        let early = json(g, "tapio.group.early_members");
        assert_eq!(
            early,
            serde_json::json!([{
                "event_id": refused[0].id.to_string(),
                "event_type": "kernel.network.connect_refused",
                "trace_id": own_trace,
                "span_id": span_hex(refused[0]),
            }]),
            "{}",
            s(g, "tapio.group.rule")
        );
        let sp = span_of(g, &refused[0].id.to_string());
        assert_eq!(sp["early"], true);
        assert_eq!(sp["event_trace_id"], own_trace.as_str());
        assert_eq!(sp["span_id"], span_hex(refused[0]).as_str());
    }

    // The failing span confirmed the service failure: a member of that group only, in the
    // application's trace.
    let span = find(&out, "otel.span", 0);
    assert_eq!(s(span, "tapio.group.id"), svc_id);
    assert_eq!(
        json(span, "tapio.correlation.groups"),
        serde_json::json!([svc_id])
    );
    assert_eq!(trace_hex(span), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(
        span_of(svc, &span.id.to_string())["event_trace_id"],
        "0af7651916cd43dd8448eb211c80319c"
    );

    // The later refused connects belong to both groups: every sink sees both ids, the first
    // group (first in rule order) also in `tapio.group.id`, and it gave them its trace.
    let first = s(refused[1], "tapio.group.id");
    let second = if first == net_id { svc_id } else { net_id };
    assert!(first == net_id || first == svc_id);
    for r in &refused[1..] {
        assert_eq!(
            json(r, "tapio.correlation.groups"),
            serde_json::json!([first, second]),
            "{}",
            r.id
        );
        assert_eq!(s(r, "tapio.group.id"), first);
        assert_eq!(trace_hex(r), first, "the first group's trace");
        for g in [net, svc] {
            let sp = span_of(g, &r.id.to_string());
            assert_eq!(sp["early"], false);
            assert_eq!(sp["event_trace_id"], first);
        }
    }
    assert_eq!(member_ids(net).len(), 3);
    assert_eq!(member_ids(svc).len(), 4);
    assert_span_tree(net);
    assert_span_tree(svc);
}
