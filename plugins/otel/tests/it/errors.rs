//! Requests that must be refused (malformed, oversized, wrong media type, unknown path),
//! partial success (invalid ids, full ring), the collector contract, start and config
//! errors. The receiver must answer each as OTLP specifies and keep serving.

use std::io::Write;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::json;
use tapio_plugin_api::{Collector, ErrorKind, HealthStatus};
use tapio_plugin_otel::{OtelReceiver, RpcStatus};
use tapio_plugin_testkit::{spec, Harness};

use crate::can_run;
use crate::capture::Receiver;
use crate::python;

const LIMIT: usize = 64 * 1024;

fn spans(n: u8) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (1..=n)
                    .map(|i| Span {
                        trace_id: vec![7; 16],
                        span_id: vec![i; 8],
                        name: format!("span-{i}"),
                        start_time_unix_nano: tapio_plugin_api::now_unix_nanos(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// POSTs `body` to `url`; returns the status, content type and body.
fn post(
    url: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut request = agent.post(url).header("content-type", content_type);
    if let Some(e) = encoding {
        request = request.header("content-encoding", e);
    }
    let mut response = request.send(body).expect("http request");
    let status = response.status().as_u16();
    let ct = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.body_mut().read_to_vec().expect("body");
    (status, ct, body)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const PB: &str = "application/x-protobuf";

#[test]
fn http_refusals_follow_the_spec_and_the_receiver_keeps_serving() {
    let receiver = Receiver::start(json!({"max_request_bytes": LIMIT}));
    let base = receiver.http();
    let traces = format!("{base}/v1/traces");
    let expect_status =
        |(status, ct, body): (u16, String, Vec<u8>), want: u16, code: i32, text: &str| {
            assert_eq!(status, want, "{}", String::from_utf8_lossy(&body));
            assert_eq!(ct, PB);
            let s = RpcStatus::decode(body.as_slice()).expect("body is a google.rpc.Status");
            assert_eq!(s.code, code, "{s:?}");
            assert!(s.message.contains(text), "{text:?} not in {s:?}");
        };

    expect_status(
        post(&traces, PB, None, b"\x0a\xff\xff\xff\xff\x0f garbage"),
        400,
        3,
        "malformed OTLP protobuf",
    );
    expect_status(
        post(&traces, PB, None, &vec![0u8; LIMIT + 1]),
        413,
        8,
        "larger than",
    );
    // A gzip bomb: 1 KiB on the wire, 1 MiB inflated.
    let bomb = gzip(&vec![0u8; 1 << 20]);
    assert!(bomb.len() < LIMIT);
    expect_status(
        post(&traces, PB, Some("gzip"), &bomb),
        413,
        8,
        "larger than",
    );
    expect_status(
        post(&traces, PB, Some("gzip"), b"not gzip"),
        400,
        3,
        "invalid gzip",
    );
    expect_status(
        post(&traces, "application/json", None, b"{}"),
        415,
        3,
        "OTLP/JSON is not supported",
    );
    expect_status(
        post(&traces, PB, Some("br"), b""),
        415,
        3,
        "content encoding",
    );
    expect_status(
        post(&format!("{base}/v1/profiles"), PB, None, b""),
        404,
        5,
        "unknown path",
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut get = agent.get(&traces).call().unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let s = RpcStatus::decode(get.body_mut().read_to_vec().unwrap().as_slice()).unwrap();
    assert!(s.message.contains("only POST"), "{s:?}");

    // Still serving: an empty request succeeds, a real one is ingested, gzip works.
    let (status, ct, body) = post(&traces, PB, None, b"");
    assert_eq!((status, ct.as_str()), (200, PB));
    assert_eq!(
        ExportTraceServiceResponse::decode(body.as_slice())
            .unwrap()
            .partial_success,
        None
    );
    let (status, _, body) = post(&traces, PB, Some("gzip"), &gzip(&spans(3).encode_to_vec()));
    assert_eq!(status, 200);
    assert_eq!(
        ExportTraceServiceResponse::decode(body.as_slice())
            .unwrap()
            .partial_success,
        None
    );
    assert_eq!(receiver.events().len(), 3);
    assert_eq!(receiver.rx.health().status, HealthStatus::Healthy);
    let refused = |reason| {
        receiver.metric(
            "refused_requests_total",
            &[("transport", "http"), ("reason", reason)],
        )
    };
    assert_eq!(refused("malformed"), 2.0);
    assert_eq!(refused("too_large"), 2.0);
    assert_eq!(refused("unsupported_media_type"), 2.0);
    assert_eq!(refused("not_found"), 2.0);
}

#[test]
fn grpc_refusals_and_partial_success_with_grpcio() {
    if !can_run("grpc_refusals_and_partial_success_with_grpcio") {
        return;
    }
    let receiver = Receiver::start(json!({"max_request_bytes": LIMIT}));
    let tag = format!("raw-{}", std::process::id());
    let oversize = (LIMIT + 1).to_string();
    let out = python::run(&[
        "raw",
        "--endpoint",
        &receiver.grpc(),
        "--tag",
        &tag,
        "--oversize",
        &oversize,
    ]);
    assert_eq!(out["malformed"]["code"], "INVALID_ARGUMENT", "{out}");
    assert_eq!(out["oversized"]["code"], "RESOURCE_EXHAUSTED", "{out}");
    assert!(
        out["oversized"]["message"]
            .as_str()
            .unwrap()
            .contains("too large"),
        "{out}"
    );
    assert_eq!(out["partial"]["has_partial_success"], true, "{out}");
    assert_eq!(out["partial"]["rejected_spans"], 2, "{out}");
    assert!(
        out["partial"]["error_message"]
            .as_str()
            .unwrap()
            .starts_with("2 spans rejected: invalid trace id"),
        "{out}"
    );
    let service = format!("tapio-raw-{tag}");
    let events = receiver.events();
    let names: Vec<_> = events
        .iter()
        .filter(|e| e.str("service.name") == Some(service.as_str()))
        .map(|e| e.str("otel.span.name").unwrap().to_owned())
        .collect();
    assert_eq!(names, ["valid-1", "valid-2"]);
    assert_eq!(receiver.rx.health().status, HealthStatus::Healthy);
    let refused = |reason| {
        receiver.metric(
            "refused_requests_total",
            &[("transport", "grpc"), ("reason", reason)],
        )
    };
    assert_eq!(refused("malformed"), 1.0);
    assert_eq!(refused("too_large"), 1.0);
    assert_eq!(
        receiver.metric("items_invalid_total", &[("signal", "traces")]),
        2.0
    );
}

#[test]
fn full_ring_drops_are_reported_as_rejected_on_both_transports() {
    let mut h = Harness::<OtelReceiver>::create(
        &json!({"grpc_address": "127.0.0.1:0", "http_address": "127.0.0.1:0"}).to_string(),
    )
    .unwrap();
    h.start().unwrap();
    h.limit_sink(2);
    let http = format!("http://{}", h.collector().http_local_addr().unwrap());

    let (status, _, body) = post(
        &format!("{http}/v1/traces"),
        PB,
        None,
        &spans(5).encode_to_vec(),
    );
    assert_eq!(status, 200);
    let partial = ExportTraceServiceResponse::decode(body.as_slice())
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 3);
    assert!(
        partial
            .error_message
            .contains("3 spans dropped: the collector's event ring is full"),
        "{partial:?}"
    );
    assert_eq!(h.events().len(), 2);
    assert_eq!(h.dropped(), 3);

    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(), LogRecord::default()],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (status, _, body) = post(&format!("{http}/v1/logs"), PB, None, &logs.encode_to_vec());
    assert_eq!(status, 200);
    let partial = ExportLogsServiceResponse::decode(body.as_slice())
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_log_records, 2);

    // gRPC, with tonic's client; the channel stays open while the receiver stops.
    let grpc = format!("http://{}", h.collector().grpc_local_addr().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (response, _client) = rt.block_on(async {
        let mut client = TraceServiceClient::connect(grpc).await.expect("connect");
        let response = client.export(spans(4)).await.expect("export").into_inner();
        (response, client)
    });
    assert_eq!(response.partial_success.unwrap().rejected_spans, 4);
    let dropped = h
        .metrics()
        .into_iter()
        .find(|m| {
            m.name.as_str() == "items_dropped_total"
                && m.labels.iter().any(|l| l.1.as_str() == "traces")
        })
        .unwrap();
    assert_eq!(dropped.value, 7.0);
    let health = h.health();
    assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
    assert!(
        health.reason.contains("9 received items dropped"),
        "{health:?}"
    );
    h.stop_within(Duration::from_secs(4)).unwrap();
}

#[test]
fn meets_the_collector_contract() {
    let config = json!({"grpc_address": "127.0.0.1:0", "http_address": "127.0.0.1:0"}).to_string();
    let events = spec::check::<OtelReceiver>(&config, Duration::from_millis(300)).unwrap();
    assert!(events.is_empty(), "a receiver invents nothing: {events:?}");
}

#[test]
fn a_taken_port_fails_start_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut h = Harness::<OtelReceiver>::create(
        &json!({"grpc_address": addr.to_string(), "http_address": "127.0.0.1:0"}).to_string(),
    )
    .unwrap();
    let err = h.start().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(
        err.message
            .contains(&format!("cannot listen on {addr} (grpc_address)")),
        "{err}"
    );
    assert!(err.message.to_lowercase().contains("in use"), "{err}");
}

#[test]
fn config_errors_are_reported_together() {
    let err = Harness::<OtelReceiver>::create(
        &json!({"grpc_address": "localhost", "http_address": "", "max_request_bytes": 10, "worker_threads": 0})
            .to_string(),
    )
    .err()
    .expect("invalid config");
    for text in [
        "grpc_address: \"localhost\"",
        "max_request_bytes must be",
        "worker_threads must be",
    ] {
        assert!(err.message.contains(text), "{text:?} not in {err}");
    }
    let err = Harness::<OtelReceiver>::create(
        &json!({"grpc_address": "", "http_address": ""}).to_string(),
    )
    .err()
    .expect("nothing to listen on");
    assert!(err.message.contains("nothing to listen on"), "{err}");
}
