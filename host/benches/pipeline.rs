//! End-to-end host benchmark: the loadgen plugin (a real `.so`, loaded by the real plugin
//! manager) -> the shared ring -> enrichment -> a null sink that records emit-to-sink latency.
//! Also the idle RSS of the real `tapio-collector` binary running the example plugin.
//!
//! Run with `cargo xtask bench` (it builds the release plugins first), or
//! `cargo bench -p tapio-collector --bench pipeline` after
//! `cargo build --release -p tapio-plugin-loadgen -p tapio-plugin-example`.
//! `PIPELINE_BENCH_SECS` sets the length of each run (default 5).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use tapio_host::config::LoadedConfig;
use tapio_host::pipeline::enrich::Enricher;
use tapio_host::pipeline::{self, PipelineSettings};
use tapio_host::plugin::library::LoadPolicy;
use tapio_host::plugin::manager::ManagerSettings;
use tapio_host::plugin::sink::FullPolicy;
use tapio_host::plugin::stats::StatsRegistry;
use tapio_host::plugin::supervisor::Supervisor;
use tapio_host::sink::{EventBatch, Sink, SinkError};
use tapio_plugin_api::now_unix_nanos;

/// The allocator of the `tapio-collector` binary (see `host/src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Counts events and records emit-to-sink latency (event timestamp to arrival).
#[derive(Clone)]
struct LatencySink {
    events: Arc<AtomicU64>,
    hist: Arc<Mutex<Histogram<u64>>>,
}

impl Sink for LatencySink {
    fn name(&self) -> &'static str {
        "latency"
    }
    fn write(&mut self, batch: &EventBatch) -> Result<(), SinkError> {
        let now = now_unix_nanos();
        let mut hist = self.hist.lock();
        for e in batch.iter() {
            hist.saturating_record(now.saturating_sub(e.timestamp_ns).max(1));
        }
        self.events.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

fn release_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tapio-collector"))
        .parent()
        .unwrap()
        .to_owned()
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(usage.ru_utime) + tv(usage.ru_stime)
    }
}

struct Outcome {
    delivered: u64,
    dropped: u64,
    secs: f64,
    cpu: f64,
    hist: Histogram<u64>,
}

/// Runs loadgen with `loadgen_yaml` through the real manager and pipeline for `secs`.
fn run(loadgen_yaml: &str, on_full: FullPolicy, secs: f64) -> Outcome {
    let lib = release_dir().join("libtapio_plugin_loadgen.so");
    assert!(
        lib.exists(),
        "build it first: cargo build --release -p tapio-plugin-loadgen"
    );
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("plugins.d");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(&lib, plugins.join("loadgen.so")).unwrap();
    std::fs::set_permissions(
        plugins.join("loadgen.so"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let yaml = format!("collectors:\n  loadgen:\n    enabled: true\n    config:\n{loadgen_yaml}");
    let config = Arc::new(LoadedConfig::parse("bench.yaml", &yaml, |_| None).unwrap());

    let (producer, consumer) = tapio_ring::ring(config.config.orchestrator.buffer_size);
    let sink = LatencySink {
        events: Arc::default(),
        hist: Arc::new(Mutex::new(
            Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
        )),
    };
    let pipeline = pipeline::spawn(
        consumer,
        vec![Box::new(Enricher::new(Duration::from_secs(30), 100_000))],
        vec![Box::new(sink.clone())],
        PipelineSettings {
            batch_size: config.config.pipeline.batch_size,
        },
    )
    .unwrap();
    let stats = Arc::new(StatsRegistry::default());
    let settings = ManagerSettings {
        dir: plugins.clone(),
        runtime_dir: root.path().join("run"),
        state_dir: root.path().join("state"),
        policy: LoadPolicy {
            strict_modes: true,
            allowlist_sha256: Vec::new(),
        },
        create_timeout: Duration::from_secs(10),
        start_timeout: Duration::from_secs(10),
        stop_timeout: Duration::from_secs(10),
        full_policy: on_full,
        disabled_tags: Vec::new(),
    };
    let supervisor = Supervisor::spawn(settings, config, producer, Arc::clone(&stats)).unwrap();
    while supervisor.status().active() == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Warm up, then measure a window.
    std::thread::sleep(Duration::from_secs(1));
    sink.hist.lock().reset();
    let plugin = stats.get("loadgen");
    let (d0, x0, c0, t0) = (
        sink.events.load(Ordering::Relaxed),
        plugin.dropped.load(Ordering::Relaxed),
        cpu_seconds(),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (d1, x1, c1, t1) = (
        sink.events.load(Ordering::Relaxed),
        plugin.dropped.load(Ordering::Relaxed),
        cpu_seconds(),
        Instant::now(),
    );
    let hist = sink.hist.lock().clone();
    supervisor.shutdown();
    pipeline.shutdown();
    Outcome {
        delivered: d1 - d0,
        dropped: x1 - x0,
        secs: (t1 - t0).as_secs_f64(),
        cpu: c1 - c0,
        hist,
    }
}

fn report(label: &str, o: &Outcome) {
    let us = |q: f64| o.hist.value_at_quantile(q) as f64 / 1e3;
    println!(
        "{label}: delivered {:.2} M events/s, dropped {} ({:.4} %), emit-to-sink p50 {:.1} us p99 {:.1} us p99.9 {:.1} us, CPU {:.2} cores",
        o.delivered as f64 / o.secs / 1e6,
        o.dropped,
        100.0 * o.dropped as f64 / (o.delivered + o.dropped).max(1) as f64,
        us(0.50),
        us(0.99),
        us(0.999),
        o.cpu / o.secs,
    );
}

/// RSS of the real host binary running only the example plugin, after it settled.
fn idle_rss_kb() -> u64 {
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("plugins.d");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o755)).unwrap();
    let example = release_dir().join("libtapio_plugin_example.so");
    assert!(
        example.exists(),
        "build it first: cargo build --release -p tapio-plugin-example"
    );
    std::fs::copy(&example, plugins.join("example.so")).unwrap();
    std::fs::set_permissions(
        plugins.join("example.so"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let config = root.path().join("c.yaml");
    std::fs::write(
        &config,
        format!(
            "plugins:\n  dir: {}\n  runtime_dir: {}\n  state_dir: {}\n",
            plugins.display(),
            root.path().join("run").display(),
            root.path().join("state").display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tapio-collector"))
        .arg("--config")
        .arg(&config)
        .arg("--jsonl")
        .arg(root.path().join("out.jsonl"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let rss = rss_kb(Path::new(&format!("/proc/{}/status", child.id())));
    let _ = child.kill();
    let _ = child.wait();
    rss
}

fn rss_kb(status: &Path) -> u64 {
    std::fs::read_to_string(status)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    // The binary's allocator settings (see `tapio_host::allocator`).
    tapio_host::allocator::configure();
    let secs: f64 = std::env::var("PIPELINE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    println!(
        "pipeline benchmark: loadgen .so -> ring (65536) -> enrich -> null sink, {secs} s per run, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let shape = "      attributes: 4\n      string_len: 16\n";
    let max = run(
        &format!("      rate: 0\n      threads: 1\n      batch_size: 256\n{shape}"),
        FullPolicy::Wait(Duration::from_millis(100)),
        secs,
    );
    report("max sustained (1 loadgen thread, on_full: wait)", &max);
    let fixed = run(
        &format!("      rate: 2000000\n      threads: 1\n      batch_size: 256\n{shape}"),
        FullPolicy::Drop,
        secs,
    );
    report("offered 2 M/s (on_full: drop)", &fixed);
    let latency = run(
        &format!("      rate: 100000\n      threads: 1\n      batch_size: 1\n{shape}"),
        FullPolicy::Drop,
        secs,
    );
    report("offered 100 k/s, batch 1 (on_full: drop)", &latency);
    println!(
        "idle RSS of tapio-collector with the example plugin: {} kB",
        idle_rss_kb()
    );
}
