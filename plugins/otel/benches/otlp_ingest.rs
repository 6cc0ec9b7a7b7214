//! Throughput of the OTLP receiver, printed (never asserted):
//!
//! 1. conversion alone: decoded `ExportTraceServiceRequest` → events into a sink that
//!    only counts (the receiver's CPU cost per span);
//! 2. end to end over loopback into the testkit's sink (which copies every event, as the
//!    host does): OTLP/gRPC with tonic's client (1 and 4 concurrent callers), and
//!    OTLP/HTTP with ureq (2 threads).
//!
//! Requests carry 512 spans with a realistic resource (5 attributes) and 6 span attributes.
//! Every run is bounded in time and stays on 127.0.0.1.
//!
//! `cargo bench -p tapio-plugin-otel --bench otlp_ingest`

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tapio_plugin_api::{EmitOutcome, Event};
use tapio_plugin_otel::convert::{traces, Sink};
use tapio_plugin_otel::OtelReceiver;
use tapio_plugin_testkit::Harness;

const SPANS_PER_REQUEST: usize = 512;
const RUN: Duration = Duration::from_secs(3);

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn request(seed: u64) -> ExportTraceServiceRequest {
    let now = tapio_plugin_api::now_unix_nanos();
    let spans = (0..SPANS_PER_REQUEST as u64)
        .map(|i| Span {
            trace_id: [seed.to_be_bytes(), (i / 8 + 1).to_be_bytes()].concat(),
            span_id: ((seed << 20) | (i + 1)).to_be_bytes().to_vec(),
            parent_span_id: if i % 8 == 0 {
                vec![]
            } else {
                ((seed << 20) | ((i - i % 8) + 1)).to_be_bytes().to_vec()
            },
            name: "GET /api/orders/{id}".into(),
            kind: 2,
            start_time_unix_nano: now,
            end_time_unix_nano: now + 1_500_000,
            attributes: vec![
                kv("http.request.method", Value::StringValue("GET".into())),
                kv("http.route", Value::StringValue("/api/orders/{id}".into())),
                kv("http.response.status_code", Value::IntValue(200)),
                kv("url.scheme", Value::StringValue("http".into())),
                kv("server.port", Value::IntValue(8080)),
                kv(
                    "user_agent.original",
                    Value::StringValue("bench/1.0".into()),
                ),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", Value::StringValue("orders".into())),
                    kv(
                        "k8s.pod.name",
                        Value::StringValue("orders-7d9f8c6b5-x2x4q".into()),
                    ),
                    kv("k8s.namespace.name", Value::StringValue("shop".into())),
                    kv("container.id", Value::StringValue("c0".repeat(32))),
                    kv("process.pid", Value::IntValue(4242)),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

struct Counting(AtomicU64);

impl Sink for Counting {
    fn emit(&self, events: &[Event<'_>]) -> EmitOutcome {
        self.0.fetch_add(events.len() as u64, Ordering::Relaxed);
        EmitOutcome {
            accepted: events.len() as u32,
            dropped: 0,
        }
    }
}

fn report(name: &str, spans: u64, elapsed: Duration) {
    println!(
        "{name:<44} {spans:>9} spans in {:>5.2} s = {:>10.0} spans/s",
        elapsed.as_secs_f64(),
        spans as f64 / elapsed.as_secs_f64()
    );
}

fn convert_only() {
    let req = request(1);
    let sink = Counting(AtomicU64::new(0));
    let started = Instant::now();
    while started.elapsed() < RUN {
        traces::convert(&req, &sink);
    }
    report(
        "convert only (counting sink)",
        sink.0.load(Ordering::Relaxed),
        started.elapsed(),
    );
    let bytes = req.encode_to_vec();
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < RUN {
        let decoded = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        traces::convert(&decoded, &sink);
        n += SPANS_PER_REQUEST as u64;
    }
    report("decode + convert (counting sink)", n, started.elapsed());
}

fn end_to_end_grpc(concurrency: usize) {
    let mut h = Harness::<OtelReceiver>::create(
        r#"{"grpc_address":"127.0.0.1:0","http_address":"","worker_threads":2}"#,
    )
    .unwrap();
    h.start().unwrap();
    let url = format!("http://{}", h.collector().grpc_local_addr().unwrap());
    let bodies: Vec<_> = (0..concurrency as u64).map(|i| request(i + 1)).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let mut ingested = 0u64;
    rt.block_on(async {
        let client = TraceServiceClient::connect(url).await.unwrap();
        while started.elapsed() < RUN {
            let calls = bodies.iter().map(|b| {
                let mut c = client.clone();
                let b = b.clone();
                async move { c.export(b).await.unwrap().into_inner() }
            });
            for response in futures_join(calls).await {
                assert!(response.partial_success.is_none());
            }
            ingested += h.take_events().len() as u64;
        }
    });
    ingested += h.take_events().len() as u64;
    report(
        &format!("gRPC end to end, {concurrency} caller(s), testkit sink"),
        ingested,
        started.elapsed(),
    );
    h.stop().unwrap();
}

async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn end_to_end_http(threads: usize) {
    let mut h = Harness::<OtelReceiver>::create(
        r#"{"grpc_address":"","http_address":"127.0.0.1:0","worker_threads":2}"#,
    )
    .unwrap();
    h.start().unwrap();
    let url = format!(
        "http://{}/v1/traces",
        h.collector().http_local_addr().unwrap()
    );
    let started = Instant::now();
    let ingested = AtomicU64::new(0);
    let harness = &h;
    std::thread::scope(|s| {
        for t in 0..threads {
            let url = url.clone();
            let body = request(t as u64 + 1).encode_to_vec();
            s.spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                while started.elapsed() < RUN {
                    let r = agent
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .send(&body[..])
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                }
            });
        }
        while started.elapsed() < RUN {
            std::thread::sleep(Duration::from_millis(50));
            ingested.fetch_add(harness.take_events().len() as u64, Ordering::Relaxed);
        }
    });
    let total = ingested.load(Ordering::Relaxed) + h.take_events().len() as u64;
    report(
        &format!("HTTP end to end, {threads} thread(s), testkit sink"),
        total,
        started.elapsed(),
    );
    h.stop().unwrap();
}

fn main() {
    println!("OTLP receiver throughput ({SPANS_PER_REQUEST} spans per request, {RUN:?} per run)");
    convert_only();
    end_to_end_grpc(1);
    end_to_end_grpc(4);
    end_to_end_http(2);
}
