//! Correlation on the real kernel, through the real `tapio-collector` binary:
//!
//! - memory cascade: the memory and container plugins watch a process in a memory-limited
//!   cgroup (named like a docker container) that allocates until the OOM killer kills it;
//!   the collector forms a memory cascade group whose root cause is the memory growth and
//!   whose prediction (fitted on the growth samples against the cgroup's real limit, read by
//!   the `/proc` resolver) was delivered before the kill;
//! - rule reload on SIGHUP: a new rule file is picked up, an invalid one is refused with
//!   file:line:field and the running rules stay.
//!
//! (The OTel attachment scenarios are in `correlation_spans.rs`.)
//!
//! The memory cascade group also leaves through the real OTLP exporter: the Python OTLP
//! receiver (`py/otlp_receiver.py`) gets it as one trace whose root span is the root cause and
//! whose other spans follow the causal chain, and its members as log records.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{target_dir, wait_for, Host, HostOptions};

fn require_all() -> bool {
    std::env::var("TAPIO_REQUIRE_ALL_TESTS").is_ok_and(|v| v == "1")
}

/// Prints why a test cannot run; panics instead under `TAPIO_REQUIRE_ALL_TESTS=1`.
pub(crate) fn cannot_run(test: &str, why: &str, needs: &str) {
    let msg = format!("SKIP {test}: {why} (needs {needs})");
    if require_all() {
        panic!("{msg}; TAPIO_REQUIRE_ALL_TESTS=1");
    }
    eprintln!("{msg}");
}

pub(crate) fn build_plugins(names: &[&str]) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let mut args = vec!["build".to_owned()];
    for n in names {
        args.push("-p".into());
        args.push(format!("tapio-plugin-{n}"));
    }
    let out = Command::new(env!("CARGO"))
        .args(&args)
        .env("CARGO_TARGET_DIR", target_dir())
        .current_dir(root)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    names
        .iter()
        .map(|n| {
            target_dir()
                .join("debug")
                .join(format!("libtapio_plugin_{}.so", n.replace('-', "_")))
        })
        .collect()
}

fn str_of<'a>(e: &'a Value, key: &str) -> &'a str {
    e["attributes"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {e}"))
}

pub(crate) fn ts(e: &Value) -> u64 {
    tapio_host::correlate::replay::parse_rfc3339(e["timestamp"].as_str().unwrap()).unwrap()
}

/// A v1 `memory` or v2 cgroup `/<parent>/docker/<id>` with a memory limit, removed on drop
/// (processes left inside are killed first).
struct LimitedCgroup {
    dirs: Vec<PathBuf>,
    leaf: PathBuf,
}

impl LimitedCgroup {
    fn create(limit: u64) -> Option<(Self, String)> {
        let id = format!("{:016x}", fastrand::u64(..)).repeat(4);
        let parent = format!("tapio-it-corr-{}", std::process::id());
        let (root, file) =
            if std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
                (
                    PathBuf::from("/sys/fs/cgroup/memory"),
                    "memory.limit_in_bytes",
                )
            } else if std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
                .is_ok_and(|c| c.contains("memory"))
            {
                (PathBuf::from("/sys/fs/cgroup"), "memory.max")
            } else {
                return None;
            };
        let mut dirs = Vec::new();
        let mut dir = root.clone();
        for c in [parent.as_str(), "docker", id.as_str()] {
            dir.push(c);
            std::fs::create_dir(&dir).ok()?;
            dirs.push(dir.clone());
            if file == "memory.max" && c != id.as_str() {
                std::fs::write(dir.join("cgroup.subtree_control"), "+memory").ok()?;
            }
        }
        std::fs::write(dir.join(file), limit.to_string()).ok()?;
        Some((LimitedCgroup { dirs, leaf: dir }, id))
    }
}

impl Drop for LimitedCgroup {
    fn drop(&mut self) {
        for pid in std::fs::read_to_string(self.leaf.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
        {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: plain syscall on a pid of our test cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for d in self.dirs.iter().rev() {
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The memory cascade rule with short windows so the test does not wait 10 minutes.
pub(crate) const FAST_CASCADE: &str = r#"
rules:
  - id: memory-pressure-cascade
    intent: memory_pressure_cascade
    description: A workload ran out of memory and was killed by the OOM killer.
    window: 4s
    steps:
      - id: pressure
        types: [container.memory_pressure, memory.rss_growth]
      - id: oom
        types: [kernel.memory.oom_kill, container.oom]
      - id: sigkill
        types: [kernel.process.exit, container.exit]
        where:
          - { attr: process.exit.signal, eq: 9 }
      - id: container_exit
        types: [cri.container.exited, kubelet.container.terminated]
      - id: restart
        types: [kubelet.container.crash_loop, kubelet.container.waiting, k8s.event]
    causes: [pressure -> oom, oom -> sigkill, sigkill -> container_exit, container_exit -> restart]
    confirm: [oom]
    severity: critical
    prediction:
      kind: time_to_limit
      sample_steps: [pressure]
      value_attr: memory.rss.bytes
      from_value_attr: memory.rss.from_bytes
      from_age_attr: memory.rss.growth_over_ns
      limit_from_cgroup: true
      horizon: 10m
      text: "memory of {entity} grows {rate}/s: {value} of {limit}, limit reached in {eta}"
"#;

#[test]
fn live_memory_cascade_with_prediction_before_the_oom_kill() {
    const TEST: &str = "live_memory_cascade_with_prediction_before_the_oom_kill";
    if Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        cannot_run(
            TEST,
            "python3 is not installed",
            "python3 (the allocating workload)",
        );
        return;
    }
    // The group also leaves through the real OTLP exporter to a Python OTLP receiver.
    let Some(otlp_python) = crate::export_support::python_with(
        "opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc",
    ) else {
        cannot_run(
            TEST,
            "the OTLP receiver venv is missing",
            ".ci/deps/export.sh",
        );
        return;
    };
    let libs = build_plugins(&["memory", "container"]);
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("fast.yaml"), FAST_CASCADE).unwrap();
    let otlp_out = rules.path().join("otlp.jsonl");
    let (g_port, h_port) = (crate::support::free_port(), crate::support::free_port());
    let _receiver = otlp_receiver(&otlp_python, g_port, h_port, &otlp_out);
    let Some((cg, id)) = LimitedCgroup::create(96 << 20) else {
        cannot_run(
            TEST,
            "no writable memory cgroup controller",
            "root and cgroup v1 memory or v2 with memory",
        );
        return;
    };
    let mut host = Host::start(HostOptions {
        plugins_yaml: "  strict_modes: false\n".into(),
        yaml: format!(
            "collectors:\n  memory:\n    config:\n      rss_sample_interval: 50ms\n      rss_growth_threshold: 16777216\n      rss_growth_window: 2s\n      reclaim_interval: 200ms\n  container:\n    config: {{}}\ncorrelation:\n  rules_dir: {}\n",
            rules.path().display()
        ),
        preinstalled: vec![(libs[0].clone(), "memory.so".into()), (libs[1].clone(), "container.so".into())],
        args: vec![
            "--otel-endpoint".into(),
            format!("127.0.0.1:{g_port}"),
            "--flush-interval".into(),
            "100ms".into(),
        ],
        ..HostOptions::default()
    });
    let healthy = wait_for(Duration::from_secs(20), || {
        let up = |p: &str| host.metric("tapio_plugin_up", &format!("plugin=\"{p}\"")) == Some(1.0);
        (up("memory") && up("container")).then_some(())
    });
    if healthy.is_none() {
        let log = host.log();
        cannot_run(
            TEST,
            "the memory or container plugin did not start (BPF refused?)",
            "CAP_BPF + CAP_PERFMON",
        );
        eprintln!("{log}");
        return;
    }
    // Allocate and touch 8 MiB every 150 ms until the 96 MiB limit kills us.
    let procs = cg.leaf.join("cgroup.procs");
    let script = format!(
        "import os,time\nopen({procs:?},'w').write(str(os.getpid()))\nblocks=[]\nwhile True:\n    blocks.append(b'x'*(8<<20))\n    time.sleep(0.15)\n",
        procs = procs.display().to_string()
    );
    let status = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the workload was not OOM-killed: {status:?}"
    );
    let events = host
        .wait_events(Duration::from_secs(20), |ev| {
            ev.iter().any(|e| {
                e["type"] == "tapio.correlation.group"
                    && e["attributes"]["tapio.group.entity"] == format!("container/{id}")
            })
        })
        .unwrap_or_else(|| host.events());
    drop(cg);
    let group = events
        .iter()
        .find(|e| {
            e["type"] == "tapio.correlation.group"
                && e["attributes"]["tapio.group.entity"] == format!("container/{id}")
        })
        .unwrap_or_else(|| {
            let ours: Vec<_> = events
                .iter()
                .filter(|e| e.to_string().contains(&id))
                .collect();
            panic!(
                "no group for container {id}; its events: {ours:#?}\nlog:\n{}",
                host.log()
            )
        });
    assert_eq!(str_of(group, "tapio.group.rule"), "memory-pressure-cascade");
    let chain: Value = serde_json::from_str(str_of(group, "tapio.group.chain")).unwrap();
    let steps: Vec<&str> = chain
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    assert_eq!(&steps[..3], ["pressure", "oom", "sigkill"], "{chain:#}");
    // The root cause is memory growth or pressure of our container.
    let root_id = str_of(group, "tapio.group.root_cause.event_id");
    let root = events
        .iter()
        .find(|e| e["id"] == root_id)
        .expect("root cause delivered");
    assert!(
        matches!(
            root["type"].as_str(),
            Some("memory.rss_growth" | "container.memory_pressure")
        ),
        "{root}"
    );
    let oom = events
        .iter()
        .find(|e| e["type"] == "container.oom" && e["container_id"] == id.as_str())
        .expect("container.oom of our container");
    assert_eq!(
        oom["attributes"]["tapio.group.id"],
        group["attributes"]["tapio.group.id"]
    );
    // The prediction: fitted against the real 96 MiB limit, delivered before the kill.
    let pred = events
        .iter()
        .find(|e| {
            e["type"] == "tapio.correlation.prediction"
                && e["attributes"]["tapio.group.id"] == group["attributes"]["tapio.group.id"]
        })
        .unwrap_or_else(|| panic!("no prediction; group: {group:#}"));
    assert_eq!(
        pred["attributes"]["tapio.prediction.limit"],
        (96u64 << 20) as f64
    );
    assert!(
        ts(pred) < ts(oom),
        "prediction at {} after the OOM kill at {}",
        ts(pred),
        ts(oom)
    );
    let pos = |x: &Value| events.iter().position(|e| e["id"] == x["id"]).unwrap();
    assert!(
        pos(pred) < pos(oom),
        "the prediction was written before the OOM kill"
    );
    let eta = pred["attributes"]["tapio.prediction.eta_s"]
        .as_f64()
        .unwrap();
    assert!(
        eta < 10.0,
        "8 MiB per 150 ms against 96 MiB leaves seconds, not {eta}"
    );
    assert_eq!(
        str_of(group, "tapio.group.prediction.kind"),
        "time_to_limit"
    );
    group_arrives_as_a_trace(group, root_id, &events, &otlp_out, &host);
    if crate::correlation_record::recording() {
        // This run passed: keep its events as the replayed fixture of `correlation.rs`.
        crate::correlation_record::save(
            "memory_cascade_oom",
            TEST,
            &events,
            |e| e.to_string().contains(&id),
            20,
        );
    }
    host.terminate(Duration::from_secs(10));
}

/// `py/otlp_receiver.py` on `grpc` / `http`, writing JSON Lines to `out`.
fn otlp_receiver(
    python: &std::path::Path,
    grpc: u16,
    http: u16,
    out: &std::path::Path,
) -> crate::export_support::Peer {
    let mut cmd = Command::new(python);
    cmd.arg(crate::export_support::script("otlp_receiver.py"))
        .args([
            "--port",
            &grpc.to_string(),
            "--http-port",
            &http.to_string(),
            "--out",
        ])
        .arg(out);
    crate::export_support::Peer::start("otlp_receiver.py", cmd, "READY")
}

/// The step of the memory cascade an event type belongs to (pressure 0, oom 1, exit 2, ...).
fn cascade_step(event_type: &str) -> usize {
    match event_type {
        "container.memory_pressure" | "memory.rss_growth" => 0,
        "kernel.memory.oom_kill" | "container.oom" => 1,
        "kernel.process.exit" | "container.exit" => 2,
        "cri.container.exited" | "kubelet.container.terminated" => 3,
        _ => 4,
    }
}

/// What the OTLP receiver got for `group`: one span per member, all in the group's trace, the
/// root cause as the root span, every other span parented by a span of an earlier causal step
/// (so every span walks back to the root); the members as log records, those tagged with the
/// group carrying its trace id and their own span id.
fn group_arrives_as_a_trace(
    group: &Value,
    root_id: &str,
    events: &[Value],
    out: &std::path::Path,
    host: &Host,
) {
    let group_id = str_of(group, "tapio.group.id");
    let members: Value = serde_json::from_str(str_of(group, "tapio.group.spans")).unwrap();
    let members = members.as_array().unwrap();
    let member_ids: Vec<&str> = members
        .iter()
        .map(|m| m["event_id"].as_str().unwrap())
        .collect();
    let trace_id = group["trace_id"].as_str().expect("group trace id");
    let records = wait_for(Duration::from_secs(30), || {
        let r = crate::export_support::read_jsonl(out);
        let spans = r
            .iter()
            .filter(|x| x["kind"] == "span" && x["attributes"]["tapio.group.id"] == group_id)
            .count();
        let logs = r
            .iter()
            .filter(|x| {
                x["kind"] == "log"
                    && x["attributes"]["tapio.event.id"]
                        .as_str()
                        .is_some_and(|id| member_ids.contains(&id))
            })
            .count();
        (spans >= members.len() && logs >= members.len()).then_some(r)
    })
    .unwrap_or_else(|| {
        panic!(
            "the receiver did not get the group's {} spans and member logs: {:#?}\nlog:\n{}",
            members.len(),
            crate::export_support::read_jsonl(out)
                .into_iter()
                .filter(|x| x["kind"] == "span")
                .collect::<Vec<_>>(),
            host.log()
        )
    });
    let spans: Vec<&Value> = records
        .iter()
        .filter(|x| x["kind"] == "span" && x["attributes"]["tapio.group.id"] == group_id)
        .collect();
    assert_eq!(
        spans.len(),
        members.len(),
        "one span per member: {spans:#?}"
    );
    assert!(
        spans.iter().all(|s| s["trace_id"] == trace_id),
        "{spans:#?}"
    );
    let type_of = |id: &str| {
        events
            .iter()
            .find(|e| e["id"] == id)
            .and_then(|e| e["type"].as_str())
            .unwrap_or_else(|| panic!("member {id} was not delivered"))
            .to_owned()
    };
    let by_span: std::collections::HashMap<&str, &Value> = spans
        .iter()
        .map(|s| (s["span_id"].as_str().unwrap(), *s))
        .collect();
    let roots: Vec<&&Value> = spans.iter().filter(|s| s["parent_span_id"] == "").collect();
    assert_eq!(roots.len(), 1, "one root span: {spans:#?}");
    assert_eq!(
        roots[0]["attributes"]["tapio.event.id"], root_id,
        "root span = root cause"
    );
    for s in &spans {
        let ty = type_of(s["attributes"]["tapio.event.id"].as_str().unwrap());
        assert!(
            s["name"].as_str().unwrap().ends_with(&ty),
            "span name names its event: {s:#}"
        );
        if s["parent_span_id"] == "" {
            continue;
        }
        let parent = by_span
            .get(s["parent_span_id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("parent of {s:#} is not a span of the group"));
        let parent_ty = type_of(parent["attributes"]["tapio.event.id"].as_str().unwrap());
        assert!(
            cascade_step(&parent_ty) <= cascade_step(&ty),
            "{ty} is parented by {parent_ty}: against the causal chain"
        );
        // Walks back to the root without a cycle.
        let mut at = *s;
        for _ in 0..=spans.len() {
            match by_span.get(at["parent_span_id"].as_str().unwrap()) {
                Some(p) => at = p,
                None => break,
            }
        }
        assert_eq!(
            at["parent_span_id"], "",
            "{s:#} does not reach the root span"
        );
    }
    // A member delivered before the group was confirmed (in its own trace) is linked to
    // that trace; a member delivered in the group's trace is not.
    let early = members.iter().filter(|m| m["early"] == true).count();
    eprintln!(
        "{early} of {} members joined before confirmation",
        members.len()
    );
    for m in members {
        let span = by_span[m["span_id"].as_str().unwrap()];
        let links = span["links"].as_array().expect("links recorded");
        let own_trace = m["event_trace_id"].as_str().unwrap();
        if m["early"] == true && own_trace != trace_id {
            assert_eq!(
                links.len(),
                1,
                "early member {m:#} links to its trace: {span:#}"
            );
            assert_eq!(links[0]["trace_id"], own_trace);
            assert_eq!(links[0]["span_id"], m["span_id"]);
        } else {
            assert!(links.is_empty(), "{span:#}");
        }
    }
    // The OOM kill is a child of the memory growth, the SIGKILL exit a child of the OOM kill.
    let span_of_step = |step: usize| {
        spans
            .iter()
            .find(|s| {
                cascade_step(&type_of(
                    s["attributes"]["tapio.event.id"].as_str().unwrap(),
                )) == step
            })
            .unwrap_or_else(|| panic!("no span of step {step}: {spans:#?}"))
    };
    for (child, parent) in [(1, 0), (2, 1)] {
        let c = span_of_step(child);
        let p = by_span[c["parent_span_id"].as_str().unwrap()];
        assert_eq!(
            cascade_step(&type_of(
                p["attributes"]["tapio.event.id"].as_str().unwrap()
            )),
            parent,
            "{c:#} parented by {p:#}"
        );
    }
    // Members as log records: each with its own span id; the ones tagged with the group
    // (joined after it was confirmed) inside the group's trace.
    let mut tagged = 0;
    for s in &spans {
        let id = s["attributes"]["tapio.event.id"].as_str().unwrap();
        let log = records
            .iter()
            .find(|x| x["kind"] == "log" && x["attributes"]["tapio.event.id"] == id)
            .unwrap_or_else(|| panic!("member {id} not received as a log record"));
        assert_eq!(log["span_id"], s["span_id"], "{log:#}");
        if log["attributes"]["tapio.group.id"] == group_id {
            tagged += 1;
            assert_eq!(log["trace_id"], trace_id, "{log:#}");
        }
    }
    assert!(
        tagged >= 1,
        "no member log record carries the group's trace id"
    );
    eprintln!(
        "OTLP: group {group_id} as {} spans of trace {trace_id}; {tagged} member logs in it",
        spans.len()
    );
}

#[test]
fn sighup_reloads_rules_and_keeps_them_on_a_bad_file() {
    let rules = tempfile::tempdir().unwrap();
    let mut host = Host::start(HostOptions {
        yaml: format!("correlation:\n  rules_dir: {}\n", rules.path().display()),
        ..HostOptions::default()
    });
    let builtin = host
        .metric("tapio_correlation_rules", "")
        .expect("rules gauge");
    assert_eq!(builtin, 8.0);
    std::fs::write(
        rules.path().join("mine.yaml"),
        "rules:\n  - id: mine\n    intent: mine\n    min_steps: 1\n    steps: [{id: a, types: [x.y]}]\n",
    )
    .unwrap();
    host.signal(libc::SIGHUP);
    host.wait_metric(
        "tapio_correlation_rules",
        "",
        Duration::from_secs(10),
        |v| v == 9.0,
    );
    std::fs::write(
        rules.path().join("bad.yaml"),
        "rules:\n  - id: bad\n    intent: bad\n    steps: [{id: a, types: [x.y]}]\n    causes: [\"a -> nowhere\"]\n",
    )
    .unwrap();
    host.signal(libc::SIGHUP);
    let log = host.expect_log(
        &[
            "correlation rules not reloaded",
            "bad.yaml:5: rules[0].causes[0]: unknown step",
        ],
        Duration::from_secs(10),
    );
    assert!(log.contains("keeping the running rules"));
    host.wait_metric(
        "tapio_correlation_rule_reload_errors_total",
        "",
        Duration::from_secs(10),
        |v| v == 1.0,
    );
    assert_eq!(
        host.metric("tapio_correlation_rules", ""),
        Some(9.0),
        "the running rules stay"
    );
    host.terminate(Duration::from_secs(10));
}
