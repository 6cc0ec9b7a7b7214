//! The OTLP exporter against a Python OTLP receiver (opentelemetry-proto + grpcio,
//! `py/otlp_receiver.py`): every event as a log record with severity, attributes and trace
//! ids; a correlation group as linked spans; retries through UNAVAILABLE; OTLP/HTTP; TLS and
//! mutual TLS on both transports; and the refusal to export into our own receiver.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::export_support::{
    correlation_fixture, host_events, loadgen_yaml, pki, port, python_with, read_jsonl, script,
    Peer,
};
use crate::support::{plugin_lib, wait_for, Host, HostOptions};

fn receiver(python: &Path, grpc: u16, http: u16, out: &Path, extra: &[&str]) -> Peer {
    let mut cmd = Command::new(python);
    cmd.arg(script("otlp_receiver.py"))
        .args([
            "--port",
            &grpc.to_string(),
            "--http-port",
            &http.to_string(),
            "--out",
        ])
        .arg(out)
        .args(extra);
    Peer::start("otlp_receiver.py", cmd, "READY")
}

fn wait_records(out: &Path, pred: impl Fn(&[Value]) -> bool, host: &Host) -> Vec<Value> {
    wait_for(Duration::from_secs(30), || {
        let r = read_jsonl(out);
        pred(&r).then_some(r)
    })
    .unwrap_or_else(|| {
        panic!(
            "receiver got {} records; host log:\n{}",
            read_jsonl(out).len(),
            host.log()
        )
    })
}

#[test]
fn every_event_arrives_as_a_log_record_and_a_group_as_linked_spans() {
    let Some(python) = python_with("opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("otlp.jsonl");
    let (g, h) = (port(), port());
    let _rx = receiver(&python, g, h, &out, &["--unavailable", "2"]);
    let host = Host::start(HostOptions {
        yaml: format!(
            "{}export:\n  otlp:\n    backoff: {{initial: 50ms, max: 200ms}}\n",
            loadgen_yaml(2000, 2000)
        ),
        args: vec![
            "--otel-endpoint".into(),
            format!("127.0.0.1:{g}"),
            "--buffer-size".into(),
            "500".into(),
            "--flush-interval".into(),
            "100ms".into(),
        ],
        preinstalled: vec![
            (plugin_lib("loadgen"), "loadgen.so".into()),
            (correlation_fixture(), "correlation.so".into()),
        ],
        ..HostOptions::default()
    });
    let want = host_events(&host, 2000);
    let records = wait_records(
        &out,
        |r| {
            r.iter().filter(|x| x["kind"] == "log").count() >= 2008
                && r.iter().filter(|x| x["kind"] == "span").count() >= 3
        },
        &host,
    );
    let logs: HashMap<String, &Value> = records
        .iter()
        .filter(|r| r["kind"] == "log")
        .map(|r| {
            (
                r["attributes"]["tapio.event.id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                r,
            )
        })
        .collect();
    // Every loadgen event, with its attributes and trace ids.
    for (id, e) in &want {
        let r = logs.get(id).unwrap_or_else(|| panic!("event {id} missing"));
        assert_eq!(r["severity_number"], 9);
        assert_eq!(r["severity_text"], "info");
        assert_eq!(r["event_name"], e["type"]);
        assert_eq!(r["body"], e["type"]);
        assert_eq!(r["trace_id"], e["trace_id"]);
        assert_eq!(r["span_id"], e["span_id"]);
        for (k, v) in e["attributes"].as_object().unwrap() {
            assert_eq!(&r["attributes"][k], v, "attribute {k}");
        }
        assert_eq!(r["resource"]["service.name"], "tapio-collector");
        assert_eq!(r["resource"]["host.name"], e["host"]);
        assert!(r["resource"]["k8s.node.name"].is_string());
    }
    // The fixture's severities map in order; its group became three linked spans.
    let by_index: HashMap<u64, &Value> = logs
        .values()
        .filter(|r| r["event_name"] == "fixture.severity")
        .map(|r| (r["attributes"]["fixture.index"].as_u64().unwrap(), *r))
        .collect();
    let numbers: Vec<u64> = (0..8)
        .map(|i| by_index[&i]["severity_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![5, 9, 10, 11, 13, 15, 17, 21]);
    let texts: Vec<&str> = (0..8)
        .map(|i| by_index[&i]["severity_text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["debug", "info", "low", "medium", "warning", "high", "error", "critical"]
    );
    assert!(by_index
        .values()
        .all(|r| r["trace_id"] == "5a".repeat(16) && r["attributes"]["process.pid"] == 4242));
    let spans: HashMap<&str, &Value> = records
        .iter()
        .filter(|r| r["kind"] == "span")
        .map(|r| (r["name"].as_str().unwrap(), r))
        .collect();
    assert_eq!(spans.len(), 3, "{spans:?}");
    assert!(spans.values().all(|s| s["trace_id"] == "5a".repeat(16)));
    assert_eq!(spans["oom-kill"]["parent_span_id"], "");
    assert_eq!(
        spans["container-exit"]["parent_span_id"],
        spans["oom-kill"]["span_id"]
    );
    assert_eq!(
        spans["pod-restart"]["parent_span_id"],
        spans["container-exit"]["span_id"]
    );
    assert_eq!(
        spans["pod-restart"]["attributes"]["tapio.group.intent"],
        "oom-restart"
    );
    assert_eq!(
        spans["pod-restart"]["attributes"]["tapio.group.confidence"],
        0.9
    );
    assert!(
        !logs
            .values()
            .any(|r| r["event_name"] == "tapio.correlation.group"),
        "a group is spans, not a log"
    );
    // The receiver refused the first two requests: retried, nothing lost.
    host.expect_log(
        &["OTLP export failed; retrying", "Unavailable"],
        Duration::from_secs(1),
    );
    assert!(
        host.metric("tapio_export_retried_events_total", "exporter=\"otlp\"")
            .unwrap()
            > 0.0
    );
    host.wait_metric(
        "tapio_export_acked_events_total",
        "exporter=\"otlp\"",
        Duration::from_secs(5),
        |v| v == 2009.0,
    );
    assert_eq!(
        host.metric("tapio_export_dropped_events_total", "exporter=\"otlp\""),
        Some(0.0)
    );
}

#[test]
fn otlp_over_http_protobuf() {
    let Some(python) = python_with("opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("otlp.jsonl");
    let (g, h) = (port(), port());
    let _rx = receiver(&python, g, h, &out, &[]);
    let host = Host::start(HostOptions {
        yaml: format!("{}export:\n  otel_endpoint: http://127.0.0.1:{h}\n  otlp:\n    enabled: true\n    protocol: http\n    gzip: true\n", loadgen_yaml(1000, 2000)),
        args: vec!["--flush-interval".into(), "100ms".into()],
        preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
        ..HostOptions::default()
    });
    let want = host_events(&host, 1000);
    let records = wait_records(&out, |r| r.len() >= 1000, &host);
    assert!(records.iter().all(|r| r["via"] == "http"));
    let got: std::collections::HashSet<&str> = records
        .iter()
        .map(|r| r["attributes"]["tapio.event.id"].as_str().unwrap())
        .collect();
    assert!(want.keys().all(|k| got.contains(k.as_str())));
}

#[test]
fn otlp_over_mutual_tls_on_grpc_and_http_and_refused_without_a_client_certificate() {
    let Some(python) = python_with("opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let out = dir.path().join("otlp.jsonl");
    let (g, h) = (port(), port());
    let tls_args = pki.server_args(true);
    let tls_args: Vec<&str> = tls_args.iter().map(String::as_str).collect();
    let _rx = receiver(&python, g, h, &out, &tls_args);
    let yaml = |protocol: &str, port: u16, client_cert: bool, events: u64| {
        let identity = if client_cert {
            pki.client_yaml(6)
        } else {
            String::new()
        };
        format!(
            "{}export:\n  otel_endpoint: https://127.0.0.1:{port}\n  otlp:\n    enabled: true\n    protocol: {protocol}\n    tls:\n      ca: {}\n{identity}",
            loadgen_yaml(events, 2000),
            pki.ca.display()
        )
    };
    let mut total = 0;
    for (protocol, port) in [("grpc", g), ("http", h)] {
        let host = Host::start(HostOptions {
            yaml: yaml(protocol, port, true, 300),
            args: vec!["--flush-interval".into(), "100ms".into()],
            preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
            ..HostOptions::default()
        });
        let want = host_events(&host, 300);
        total += 300;
        let records = wait_records(&out, |r| r.len() >= total, &host);
        let got: std::collections::HashSet<&str> = records
            .iter()
            .filter(|r| r["via"] == protocol)
            .map(|r| r["attributes"]["tapio.event.id"].as_str().unwrap())
            .collect();
        assert!(
            want.keys().all(|k| got.contains(k.as_str())),
            "{protocol}: {} of 300 over TLS",
            got.len()
        );
    }
    // Without a client certificate the receiver refuses the handshake: nothing arrives,
    // the failure is logged and retried, the host keeps running.
    for (protocol, port) in [("grpc", g), ("http", h)] {
        let mut host = Host::start(HostOptions {
            yaml: yaml(protocol, port, false, 50),
            args: vec!["--flush-interval".into(), "100ms".into()],
            preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
            ..HostOptions::default()
        });
        host_events(&host, 50);
        let line = host.expect_log(&["OTLP export failed; retrying"], Duration::from_secs(15));
        eprintln!("{protocol} without a client certificate: {line}");
        if protocol == "http" {
            // (Over gRPC the TLS 1.3 alert arrives after hyper's handshake: "connection
            // closed".)
            assert!(line.contains("CertificateRequired"), "{line}");
        }
        assert_eq!(
            read_jsonl(&out).len(),
            total,
            "{protocol}: nothing without a certificate"
        );
        assert_eq!(
            host.metric("tapio_export_acked_events_total", "exporter=\"otlp\""),
            Some(0.0)
        );
        // A failed handshake is a connection failure, retried: nothing is dropped.
        assert_eq!(
            host.metric("tapio_export_dropped_events_total", "exporter=\"otlp\""),
            Some(0.0),
            "{}",
            host.log()
        );
        assert!(host.alive());
    }
}

#[test]
fn an_endpoint_equal_to_our_own_receiver_is_refused_with_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_tapio-collector"))
        .args([
            "--otel-endpoint",
            "localhost:4317",
            "--plugins-dir",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("own OTLP receiver") && err.contains("127.0.0.1:4317"),
        "{err}"
    );
}
