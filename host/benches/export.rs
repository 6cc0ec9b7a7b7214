//! Exporter benchmark: events per second through each exporter to a LOCAL receiver, in one
//! run beside the null sink (same synthetic batches, same producer), and the memory of the
//! gRPC exporter while its server is down.
//!
//! - null: `Sink::write` of a `NullSink` (the producer's own ceiling).
//! - grpc: the gRPC exporter -> the in-process reference receiver (`receive`), counted when
//!   acked.
//! - otlp: the OTLP exporter -> an in-process OTLP/gRPC logs receiver, counted when the
//!   export call returned.
//! - nats: the NATS exporter -> a real `nats-server -js` (skipped with a note when absent),
//!   counted when JetStream acked.
//! - outage: the gRPC exporter at `EXPORT_BENCH_OUTAGE_RATE` events/s (default 100 000) for
//!   `EXPORT_BENCH_OUTAGE_SECS` (default 60) with the server down, memory bound 100 000
//!   events, spool in a temp dir: peak RSS during the outage, then the time until every
//!   event is acked after the server comes up.
//!
//! Run: `cargo bench -p tapio-collector --bench export`. `EXPORT_BENCH_EVENTS` sets the
//! events per throughput run (default 2 000 000); `EXPORT_BENCH_ONLY=grpc,otlp,nats,outage`
//! runs a subset. Events are SYNTHETIC (loadgen's shape:
//! four attributes, 16-byte strings, a trace context).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use tapio_host::event::{Attribute, Event, EventId, Severity, TraceContext, Value};
use tapio_host::export::config::{BackoffConfig, Compression, NatsConfig, OtlpProtocol};
use tapio_host::export::spool::SpoolSettings;
use tapio_host::export::{grpc, nats, otlp, receive, ExporterStats};
use tapio_host::sink::{EventBatch, NullSink, Sink};

#[path = "common/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::thread_cpu_seconds;

/// The allocator of the `tapio-collector` binary (see `host/src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fresh batch of `BATCH` synthetic events with unique ids starting at `seq`.
fn batch(seq: u64) -> EventBatch {
    let events = (0..BATCH as u64)
        .map(|i| {
            let mut e = Event::new(
                "loadgen.synthetic",
                "loadgen",
                Severity::Info,
                1_700_000_000_000_000_000 + seq + i,
            );
            e.id = EventId {
                nonce: 0xbe9c,
                seq: seq + i,
            };
            e.pid = Some(4242);
            e.attributes = vec![
                Attribute {
                    key: "loadgen.sequence".into(),
                    value: Value::UInt(seq + i),
                },
                Attribute {
                    key: "loadgen.thread".into(),
                    value: Value::UInt(0),
                },
                Attribute {
                    key: "loadgen.text0".into(),
                    value: Value::Str("abcdefghijklmnop".into()),
                },
                Attribute {
                    key: "loadgen.text1".into(),
                    value: Value::Str("qrstuvwxyzabcdef".into()),
                },
            ];
            e.trace = Some(TraceContext {
                trace_id: [7; 16],
                span_id: [9; 8],
                parent_span_id: [0; 8],
                flags: 1,
            });
            e
        })
        .collect();
    Arc::new(events)
}

/// What one throughput run measured.
struct Run {
    /// Events per wall-clock second.
    wall: f64,
    /// Events per CPU second of this whole process: producer, exporter and in-process
    /// receiver together.
    process: f64,
    /// Events per CPU second of the exporter's own thread (named `thread`), which runs
    /// everything the exporter does: batching, encoding, compression, the client's HTTP/2
    /// connection and the ack handling. The per-core export figure.
    exporter: f64,
}

/// Feeds `n` events to `sink` (keeping at most `window` queued in the exporter) and waits
/// until all are acked.
fn drive(
    sink: &mut dyn Sink,
    stats: Option<&ExporterStats>,
    thread: &str,
    n: u64,
    window: u64,
) -> Run {
    let start = Instant::now();
    let cpu = cpu_seconds();
    let thread_cpu = thread_cpu_seconds(thread);
    let mut seq = 0;
    while seq < n {
        if let Some(s) = stats {
            while ExporterStats::get(&s.received) - ExporterStats::get(&s.acked) > window {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        sink.write(&batch(seq)).unwrap();
        seq += BATCH as u64;
    }
    if let Some(s) = stats {
        let deadline = Instant::now() + Duration::from_secs(120);
        while ExporterStats::get(&s.acked) < seq && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let acked = ExporterStats::get(&s.acked);
        assert_eq!(
            acked,
            seq,
            "{}: only {acked} of {seq} acked (dropped {})",
            s.name,
            ExporterStats::get(&s.dropped)
        );
    }
    let exporter_cpu = thread_cpu_seconds(thread) - thread_cpu;
    Run {
        wall: seq as f64 / start.elapsed().as_secs_f64(),
        process: seq as f64 / (cpu_seconds() - cpu),
        exporter: if exporter_cpu > 0.0 {
            seq as f64 / exporter_cpu
        } else {
            f64::NAN
        },
    }
}

/// CPU seconds (user + system) this process used so far: on a loaded machine, events per
/// CPU second is the honest per-core figure (wall-clock rates depend on the neighbours).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct CountingLogs(Arc<AtomicU64>);

#[tonic::async_trait]
impl LogsService for CountingLogs {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let n: usize = request
            .get_ref()
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        self.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn grpc_settings(
    addr: SocketAddr,
    spool: Option<SpoolSettings>,
    memory_events: usize,
) -> grpc::GrpcSettings {
    grpc::GrpcSettings {
        uri: format!("http://{addr}"),
        tls: None,
        compression: Compression::None,
        batch_size: 1000,
        flush_interval: Duration::from_millis(100),
        max_in_flight: 32,
        memory_events,
        spool,
        backoff: BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        host: "bench-node".into(),
    }
}

fn serve_receiver(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
) -> (
    Arc<receive::ReceiverStats>,
    tokio::sync::oneshot::Sender<()>,
) {
    let receiver = receive::Receiver::new(None).unwrap();
    let stats = receiver.stats();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        tonic::transport::Server::builder()
            .add_service(receiver.service())
            .serve_with_shutdown(addr, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));
    (stats, tx)
}

fn main() {
    // The binary's allocator settings (see `tapio_host::allocator`).
    tapio_host::allocator::configure();
    let n = env_u64("EXPORT_BENCH_EVENTS", 2_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!("export benchmark: {n} synthetic events per run, batches of {BATCH}, receivers in this process (2-core shared machine)");

    let only = std::env::var("EXPORT_BENCH_ONLY").ok();
    let want = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == name))
    };
    println!("columns: events per wall second, per CPU second of the whole process (producer + exporter + in-process receiver), per CPU second of the exporter's thread (the per-core export figure)");
    let null = drive(&mut NullSink, None, "", n, 0);
    println!(
        "null sink      {:>10.0} events/s  {:>10.0} events/CPU-s (producer alone)",
        null.wall, null.process
    );

    if want("grpc") {
        // gRPC -> reference receiver.
        let addr = free_addr();
        let (_rstats, stop) = serve_receiver(&rt, addr);
        let (mut sink, stats) = grpc::spawn(grpc_settings(addr, None, 1_000_000)).unwrap();
        let run = drive(&mut sink, Some(&stats), "export-grpc", n, 500_000);
        drop(sink);
        let _ = stop.send(());
        println!(
        "grpc           {:>10.0} events/s  {:>10.0} process/CPU-s  {:>10.0} exporter/CPU-s (acked by the reference receiver)",
        run.wall, run.process, run.exporter
    );
    }
    if want("otlp") {
        // OTLP -> counting logs receiver.
        let addr = free_addr();
        let count = Arc::new(AtomicU64::new(0));
        let svc = LogsServiceServer::new(CountingLogs(Arc::clone(&count)))
            .max_decoding_message_size(64 << 20);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_shutdown(addr, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        std::thread::sleep(Duration::from_millis(200));
        let (mut sink, stats) = otlp::spawn(otlp::OtlpSettings {
            endpoint: format!("http://{addr}"),
            protocol: OtlpProtocol::Grpc,
            batch_size: 2000,
            flush_interval: Duration::from_millis(100),
            queue_events: 1_000_000,
            gzip: false,
            max_in_flight: 4,
            backoff: BackoffConfig::default(),
            timeout: Duration::from_secs(10),
            tls: None,
            host: "bench-node".into(),
            node: "bench-node".into(),
        })
        .unwrap();
        let run = drive(&mut sink, Some(&stats), "export-otlp", n, 500_000);
        drop(sink);
        let _ = tx.send(());
        println!(
        "otlp           {:>10.0} events/s  {:>10.0} process/CPU-s  {:>10.0} exporter/CPU-s (export calls returned; receiver counted {})",
        run.wall,
        run.process,
        run.exporter,
        count.load(Ordering::Relaxed)
    );
    }
    if want("nats") {
        // NATS JetStream.
        match std::process::Command::new("nats-server")
            .arg("--version")
            .output()
        {
            Err(_) => {
                println!("nats           skipped: nats-server not installed (apt nats-server)")
            }
            Ok(_) => {
                let dir = tempfile::tempdir().unwrap();
                let port = free_addr().port();
                let mut child = std::process::Command::new("nats-server")
                    .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
                    .arg(dir.path())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                std::thread::sleep(Duration::from_millis(500));
                let config = NatsConfig {
                    enabled: true,
                    url: format!("nats://127.0.0.1:{port}"),
                    stream: "BENCH".into(),
                    queue_events: 1_000_000,
                    max_in_flight: 4096,
                    ..NatsConfig::default()
                };
                let (mut sink, stats) = nats::spawn(nats::NatsSettings {
                    config,
                    host: "bench-node".into(),
                })
                .unwrap();
                let n_nats = (n / 4).max(BATCH as u64);
                let run = drive(&mut sink, Some(&stats), "export-nats", n_nats, 200_000);
                drop(sink);
                let _ = child.kill();
                let _ = child.wait();
                println!(
                "nats           {:>10.0} events/s  {:>10.0} process/CPU-s  {:>10.0} exporter/CPU-s (JetStream acked, {n_nats} events; nats-server is another process)",
                run.wall, run.process, run.exporter
            );
            }
        }
    }
    if !want("outage") {
        return;
    }
    // Outage: server down for a while at a fixed rate, memory bound 100k, then recovery.
    let secs = env_u64("EXPORT_BENCH_OUTAGE_SECS", 60);
    let per_sec = env_u64("EXPORT_BENCH_OUTAGE_RATE", 100_000);
    if secs == 0 {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let spool = SpoolSettings {
        dir: dir.path().join("spool"),
        max_bytes: 8 << 30,
        segment_bytes: 64 << 20,
        fsync: false,
    };
    let rss_before = rss_kb();
    let (mut sink, stats) = grpc::spawn(grpc_settings(addr, Some(spool), 100_000)).unwrap();
    let start = Instant::now();
    let mut seq = 0u64;
    let mut peak = 0u64;
    let mut peak_depth = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let due = (start.elapsed().as_secs_f64() * per_sec as f64) as u64;
        while seq + BATCH as u64 <= due {
            sink.write(&batch(1 << 40 | seq)).unwrap();
            seq += BATCH as u64;
        }
        peak = peak.max(rss_kb());
        peak_depth = peak_depth.max(ExporterStats::get(&stats.queue_depth));
        std::thread::sleep(Duration::from_millis(10));
    }
    let spooled = ExporterStats::get(&stats.spooled);
    let spool_bytes = ExporterStats::get(&stats.spool_bytes);
    println!(
        "outage         {secs} s at {per_sec}/s, server down: {seq} events, peak RSS {} MiB (before {} MiB), peak memory queue {peak_depth} events, spooled {spooled} events ({} MiB), dropped {}",
        peak / 1024,
        rss_before / 1024,
        spool_bytes >> 20,
        ExporterStats::get(&stats.dropped)
    );
    let (_rstats, stop) = serve_receiver(&rt, addr);
    let recovery = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    while ExporterStats::get(&stats.acked) < seq && Instant::now() < deadline {
        peak = peak.max(rss_kb());
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "recovery       {} of {seq} events acked in {:.1} s after the server came up (peak RSS overall {} MiB, dropped {})",
        ExporterStats::get(&stats.acked),
        recovery.elapsed().as_secs_f64(),
        peak / 1024,
        ExporterStats::get(&stats.dropped)
    );
    drop(sink);
    let _ = stop.send(());
}
