//! Correlation and OpenTelemetry on the real kernel: a Python application (the real
//! OpenTelemetry SDK) sends spans over OTLP to the real otel plugin, and
//! - its memory growth seen by the real memory plugin during a span joins that span's trace;
//! - its refused connects seen by the real network plugin join the application's trace.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::correlation_live::{build_plugins, cannot_run, ts};
use crate::support::{wait_for, Host, HostOptions};

/// The Python OpenTelemetry SDK venv of `.ci/deps/platform-net.sh`.
fn otel_python() -> Option<PathBuf> {
    let cache = std::env::var("TAPIO_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/tapio")
        });
    let py = cache.join("venv/bin/python");
    let ok = Command::new(&py)
        .args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc",
        ])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(py)
}

/// The OTel SDK venv, and a host running the kernel plugin `kernel` (with `kernel_config`,
/// YAML of its `config:`) and the otel plugin on a free port, both up; `None` (after saying
/// why) when either is missing or does not start.
fn app_and_host(test: &str, kernel: &str, kernel_config: &str) -> Option<(PathBuf, Host, u16)> {
    let Some(py) = otel_python() else {
        cannot_run(
            test,
            "the OpenTelemetry Python SDK venv is missing",
            ".ci/deps/platform-net.sh",
        );
        return None;
    };
    let libs = build_plugins(&[kernel, "otel"]);
    let port = crate::support::free_port();
    let host = Host::start(HostOptions {
        plugins_yaml: "  strict_modes: false\n".into(),
        yaml: format!(
            "collectors:\n  {kernel}:\n    config: {kernel_config}\n  otel:\n    config:\n      grpc_address: 127.0.0.1:{port}\n      http_address: \"\"\ncorrelation:\n  otel_attach_delay: 3s\n"
        ),
        preinstalled: vec![
            (libs[0].clone(), format!("{kernel}.so")),
            (libs[1].clone(), "otel.so".into()),
        ],
        ..HostOptions::default()
    });
    let healthy = wait_for(Duration::from_secs(20), || {
        let up = |p: &str| host.metric("tapio_plugin_up", &format!("plugin=\"{p}\"")) == Some(1.0);
        (up(kernel) && up("otel")).then_some(())
    });
    if healthy.is_none() {
        cannot_run(
            test,
            &format!("the {kernel} or otel plugin did not start (BPF refused?)"),
            "CAP_BPF + CAP_PERFMON",
        );
        eprintln!("{}", host.log());
        return None;
    }
    Some((py, host, port))
}

/// An application span of a real process, sent over OTLP/gRPC to the real otel plugin, and
/// the kernel's view of the same process during the span (memory growth from the real
/// memory plugin): the kernel event lands inside the application's trace.
#[test]
fn live_kernel_event_joins_the_application_span() {
    const TEST: &str = "live_kernel_event_joins_the_application_span";
    let Some((py, mut host, port)) = app_and_host(
        TEST,
        "memory",
        "{rss_sample_interval: 20ms, rss_growth_threshold: 16777216, rss_growth_window: 2s}",
    ) else {
        return;
    };
    let preamble = traced_app_preamble("tapio-attach-test", "attach-test", port);
    let script = format!(
        r#"{preamble}
blocks = []
with t.start_as_current_span("allocate") as s:
    for _ in range(6):
        blocks.append(b"x" * (16 << 20))
        time.sleep(0.1)
    time.sleep(0.2)
    c = s.get_span_context()
print(os.getpid(), format(c.trace_id, "032x"), format(c.span_id, "016x"), flush=True)
time.sleep(0.5)
"#
    );
    let app = run_traced_app(&py, &script);
    let (pid, trace_id, span_id) = (app.pid, app.trace_id, app.span_id);
    let ours = |e: &Value| e["pid"].as_u64() == Some(pid) && e["type"] == "memory.rss_growth";
    let events = host
        .wait_events(Duration::from_secs(15), |ev| {
            ev.iter()
                .any(|e| ours(e) && e["attributes"]["tapio.otel.attached_span_id"].is_string())
        })
        .unwrap_or_else(|| host.events());
    let span = events
        .iter()
        .find(|e| e["type"] == "otel.span" && e["span_id"] == span_id.as_str())
        .unwrap_or_else(|| {
            panic!(
                "the allocate span {span_id} was not received; spans: {:#?}\npython stderr:\n{}\nlog:\n{}",
                events.iter().filter(|e| e["type"] == "otel.span").collect::<Vec<_>>(),
                app.stderr,
                host.log()
            )
        });
    let (start, end) = (
        ts(span),
        ts(span)
            + span["attributes"]["otel.span.duration_ns"]
                .as_u64()
                .unwrap(),
    );
    let inside: Vec<&Value> = events
        .iter()
        .filter(|e| ours(e) && (start..=end).contains(&ts(e)))
        .collect();
    assert!(
        !inside.is_empty(),
        "no memory growth of pid {pid} during the span: {:#?}",
        events.iter().filter(|e| ours(e)).collect::<Vec<_>>()
    );
    for e in &inside {
        assert_eq!(
            e["trace_id"],
            trace_id.as_str(),
            "inside the application's trace: {e:#}"
        );
        assert_eq!(
            e["parent_span_id"],
            span_id.as_str(),
            "child of the allocate span: {e:#}"
        );
        assert_eq!(
            e["attributes"]["tapio.otel.attached_span_id"],
            span_id.as_str()
        );
    }
    assert!(
        host.metric("tapio_correlation_attached_events_total", "")
            .unwrap_or(0.0)
            >= inside.len() as f64
    );
    host.terminate(Duration::from_secs(10));
}

/// An application span of a real process whose connects are refused during the span: the
/// real network plugin's `kernel.network.connect_refused` events of that process land inside
/// the application's trace, as children of the span.
#[test]
fn live_refused_connects_join_the_application_trace() {
    const TEST: &str = "live_refused_connects_join_the_application_trace";
    let Some((py, mut host, port)) = app_and_host(TEST, "network", "{}") else {
        return;
    };
    // A port nobody listens on: connects to it are refused by the kernel (RST to the SYN).
    let closed = crate::support::free_port();
    let preamble = traced_app_preamble("tapio-refused-test", "refused-test", port);
    let script = format!(
        r#"{preamble}
refused = 0
with t.start_as_current_span("call-backend") as s:
    for _ in range(3):
        try:
            socket.create_connection(("127.0.0.1", {closed}), timeout=2).close()
        except ConnectionRefusedError:
            refused += 1
        time.sleep(0.05)
    c = s.get_span_context()
assert refused == 3, refused
print(os.getpid(), format(c.trace_id, "032x"), format(c.span_id, "016x"), flush=True)
time.sleep(0.5)
"#
    );
    let app = run_traced_app(&py, &script);
    let (pid, trace_id, span_id) = (app.pid, app.trace_id, app.span_id);
    let ours = |e: &Value| {
        e["type"] == "kernel.network.connect_refused"
            && e["attributes"]["network.peer.port"].as_u64() == Some(u64::from(closed))
    };
    let events = host
        .wait_events(Duration::from_secs(15), |ev| {
            ev.iter()
                .filter(|e| ours(e) && e["attributes"]["tapio.otel.attached_span_id"].is_string())
                .count()
                >= 3
        })
        .unwrap_or_else(|| host.events());
    let refused: Vec<&Value> = events.iter().filter(|e| ours(e)).collect();
    assert_eq!(
        refused.len(),
        3,
        "three refused connects to port {closed}: {refused:#?}\nlog:\n{}",
        host.log()
    );
    let span = events
        .iter()
        .find(|e| e["type"] == "otel.span" && e["span_id"] == span_id.as_str())
        .unwrap_or_else(|| panic!("the call-backend span {span_id} was not received"));
    let (start, end) = (
        ts(span),
        ts(span)
            + span["attributes"]["otel.span.duration_ns"]
                .as_u64()
                .unwrap(),
    );
    for e in &refused {
        assert_eq!(
            e["pid"].as_u64(),
            Some(pid),
            "the refused connect is our process's: {e:#}"
        );
        assert!((start..=end).contains(&ts(e)), "during the span: {e:#}");
        assert_eq!(
            e["trace_id"],
            trace_id.as_str(),
            "inside the application's trace: {e:#}"
        );
        assert_eq!(
            e["parent_span_id"],
            span_id.as_str(),
            "child of the span: {e:#}"
        );
        assert_eq!(
            e["attributes"]["tapio.otel.attached_span_id"],
            span_id.as_str()
        );
    }
    if crate::correlation_record::recording() {
        // This run passed: keep our process's events (its spans and refused connects).
        crate::correlation_record::save(
            "refused_connects_in_span",
            TEST,
            &events,
            |e| {
                e["pid"].as_u64() == Some(pid)
                    || e["attributes"]["process.pid"].as_u64() == Some(pid)
            },
            10,
        );
    }
    host.terminate(Duration::from_secs(10));
}

/// What an instrumented Python app printed: its pid and its span's ids (hex), and its
/// standard error.
struct TracedApp {
    pid: u64,
    trace_id: String,
    span_id: String,
    stderr: String,
}

/// Runs the instrumented Python `script`, which prints its pid, trace id and span id on one
/// line.
fn run_traced_app(py: &std::path::Path, script: &str) -> TracedApp {
    let out = Command::new(py).arg("-c").arg(script).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let mut parts = stdout.split_whitespace();
    TracedApp {
        pid: parts.next().unwrap().parse().unwrap(),
        trace_id: parts.next().unwrap().to_owned(),
        span_id: parts.next().unwrap().to_owned(),
        stderr,
    }
}

/// The start of an instrumented Python app's script: the OpenTelemetry SDK exporting spans
/// over OTLP/gRPC to the collector's receiver on `port` (resource `service.name` and
/// `process.pid`), a warm-up span, and a second for the exporter to connect. The script
/// goes on with `t`, its tracer.
fn traced_app_preamble(service: &str, tracer: &str, port: u16) -> String {
    format!(
        r#"
import os, socket, time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
p = TracerProvider(resource=Resource.create({{"service.name": "{service}", "process.pid": os.getpid()}}))
p.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint="127.0.0.1:{port}", insecure=True)))
t = p.get_tracer("{tracer}")
with t.start_as_current_span("warmup"):
    pass
time.sleep(1.0)"#
    )
}
