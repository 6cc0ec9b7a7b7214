//! The real OpenTelemetry Python SDK exports traces, logs and metrics over each transport;
//! every item arrives as one event with the exact ids, resource attributes and values sent.

use serde_json::{json, Value as J};
use tapio_plugin_api::Severity;

use crate::can_run;
use crate::capture::{hex, Got, Receiver};
use crate::python;

fn of<'a>(events: &'a [Got], event_type: &str, service: &str) -> Vec<&'a Got> {
    events
        .iter()
        .filter(|e| e.event_type == event_type && e.str("service.name") == Some(service))
        .collect()
}

fn check_resource(e: &Got, sent: &J, tag: &str) {
    let pid = sent["pid"].as_u64().unwrap();
    assert_eq!(e.pid, Some(pid as u32), "{e:?}");
    assert_eq!(e.container_id, sent["container_id"].as_str().unwrap());
    assert_eq!(e.str("k8s.pod.name"), Some(format!("pod-{tag}").as_str()));
    assert_eq!(e.str("k8s.namespace.name"), Some("shop"));
    assert_eq!(e.str("container.id"), sent["container_id"].as_str());
    assert_eq!(e.int("process.pid"), Some(pid.into()));
    assert_eq!(e.str("telemetry.sdk.language"), Some("python"));
}

fn exchange(transport: &str, gzip: bool) {
    let tag = format!(
        "{transport}{}-{}",
        if gzip { "-gzip" } else { "" },
        std::process::id()
    );
    let service = format!("tapio-test-{tag}");
    let receiver = Receiver::start(json!({}));
    let endpoint = match transport {
        "grpc" => receiver.grpc(),
        _ => receiver.http(),
    };
    let mut args = vec![
        "sdk",
        "--transport",
        transport,
        "--endpoint",
        &endpoint,
        "--tag",
        &tag,
    ];
    if gzip {
        args.push("--gzip");
    }
    let before = tapio_plugin_api::now_unix_nanos();
    let sent = python::run(&args);
    let after = tapio_plugin_api::now_unix_nanos();
    let sent_spans = sent["spans"].as_array().unwrap();
    let sent_logs = sent["logs"].as_array().unwrap();
    let sent_metrics = sent["metrics"].as_array().unwrap();
    let events = receiver.wait_until(|e| {
        of(e, "otel.span", &service).len() >= sent_spans.len()
            && of(e, "otel.log", &service).len() >= sent_logs.len()
            && of(e, "otel.metric", &service).len() >= sent_metrics.len()
    });

    // Spans: exactly those sent, each with its own ids.
    let spans = of(&events, "otel.span", &service);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    for s in sent_spans {
        let got = spans
            .iter()
            .find(|e| e.trace.map(|t| hex(&t.span_id)) == s["span_id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("span {s} not received: {spans:#?}"));
        let t = got.trace.unwrap();
        assert_eq!(hex(&t.trace_id), s["trace_id"].as_str().unwrap());
        assert_eq!(
            hex(&t.parent_span_id),
            s["parent_span_id"].as_str().unwrap()
        );
        // The Python exporter puts only the is-remote bits (0x100, 0x200) into OTLP span
        // flags, not the W3C trace flags, so they arrive as sent on the wire: no bit that
        // the SDK's span context lacks may appear.
        assert_eq!(
            u64::from(t.flags) & !s["flags"].as_u64().unwrap(),
            0,
            "{got:?}"
        );
        assert_eq!(got.str("otel.span.name"), s["name"].as_str());
        assert_eq!(got.str("otel.span.kind"), s["kind"].as_str());
        assert_eq!(got.str("otel.scope.name"), Some("tapio.test"));
        assert_eq!(got.str("otel.scope.version"), Some("1.2.3"));
        assert!(got.int("otel.span.duration_ns").is_some_and(|d| d > 0));
        check_resource(got, &sent, &tag);
    }
    let root = spans
        .iter()
        .find(|e| e.str("otel.span.name") == Some("checkout"))
        .unwrap();
    assert_eq!(root.str("http.request.method"), Some("POST"));
    assert_eq!(root.int("order.items"), Some(3));
    assert_eq!(root.severity, Severity::Info);
    let failed: Vec<_> = spans
        .iter()
        .filter(|e| e.severity == Severity::Error)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].str("otel.status_code"), Some("ERROR"));
    assert_eq!(
        failed[0].str("otel.status_description"),
        Some("deadlock detected")
    );
    assert_eq!(failed[0].int("attempt"), Some(1));

    // Logs: the one inside a span carries that span's ids.
    let logs = of(&events, "otel.log", &service);
    assert_eq!(logs.len(), 2, "{logs:#?}");
    for l in sent_logs {
        let got = logs
            .iter()
            .find(|e| e.str("log.body") == l["body"].as_str())
            .unwrap_or_else(|| panic!("log {l} not received"));
        check_resource(got, &sent, &tag);
        assert_eq!(got.str("otel.scope.name"), Some("tapio.test.logs"));
        match l["trace_id"].as_str() {
            Some(trace_id) => {
                let t = got.trace.expect("log inside a span has a trace context");
                assert_eq!(hex(&t.trace_id), trace_id);
                assert_eq!(hex(&t.span_id), l["span_id"].as_str().unwrap());
                assert_eq!(got.severity, Severity::Error);
                assert_eq!(got.str("event.name"), Some("db.failure"));
                assert_eq!(got.str("log.severity_text"), Some("ERROR"));
                assert_eq!(got.int("log.severity_number"), Some(17));
            }
            None => {
                assert_eq!(got.trace, None);
                assert_eq!(got.severity, Severity::Warning);
                assert_eq!(got.str("cache.name"), Some("products"));
            }
        }
    }

    // Metrics: one event per data point.
    let points = of(&events, "otel.metric", &service);
    assert_eq!(points.len(), 5, "{points:#?}");
    for m in sent_metrics {
        let name = m["name"].as_str().unwrap();
        let candidates: Vec<_> = points
            .iter()
            .filter(|p| p.str("metric.name") == Some(name))
            .filter(|p| match m["attr"].as_array() {
                Some(kv) => p.str(kv[0].as_str().unwrap()) == kv[1].as_str(),
                None => true,
            })
            .collect();
        assert_eq!(candidates.len(), 1, "{m}: {points:#?}");
        let p = candidates[0];
        check_resource(p, &sent, &tag);
        assert_eq!(p.str("metric.type"), m["type"].as_str());
        if let Some(v) = m["value"].as_i64() {
            assert_eq!(p.int("metric.value"), Some(v.into()), "{m}");
        } else if let Some(v) = m["value"].as_f64() {
            assert_eq!(p.float("metric.value"), Some(v), "{m}");
        }
        if let Some(count) = m["count"].as_u64() {
            assert_eq!(p.int("metric.count"), Some(count.into()));
            assert_eq!(p.float("metric.sum"), m["sum"].as_f64());
            assert_eq!(p.float("metric.min"), Some(1.0));
            assert_eq!(p.float("metric.max"), Some(500.0));
        }
    }
    let requests = points
        .iter()
        .find(|p| p.str("metric.name") == Some("tapio.test.requests"))
        .unwrap();
    assert_eq!(requests.str("metric.unit"), Some("1"));
    assert_eq!(requests.str("metric.temporality"), Some("cumulative"));
    assert_eq!(
        requests.attrs.get("metric.monotonic"),
        Some(&tapio_plugin_testkit::Value::Bool(true))
    );

    // Nothing else arrived, every item kept its own time, and the counters agree.
    assert_eq!(receiver.events().len(), 10, "{:#?}", receiver.events());
    for e in receiver.events() {
        assert!(e.timestamp_ns >= before && e.timestamp_ns <= after, "{e:?}");
    }
    let t = [("transport", transport)];
    for (signal, n) in [("traces", 3.0), ("logs", 2.0), ("metrics", 5.0)] {
        assert_eq!(
            receiver.metric("items_accepted_total", &[("signal", signal)]),
            n
        );
        assert!(receiver.metric("requests_total", &[t[0], ("signal", signal)]) >= 1.0);
    }
}

#[test]
fn python_sdk_over_grpc() {
    if can_run("python_sdk_over_grpc") {
        exchange("grpc", false);
    }
}

#[test]
fn python_sdk_over_http() {
    if can_run("python_sdk_over_http") {
        exchange("http", false);
    }
}

#[test]
fn python_sdk_over_grpc_with_gzip() {
    if can_run("python_sdk_over_grpc_with_gzip") {
        exchange("grpc", true);
    }
}

#[test]
fn python_sdk_over_http_with_gzip() {
    if can_run("python_sdk_over_http_with_gzip") {
        exchange("http", true);
    }
}
