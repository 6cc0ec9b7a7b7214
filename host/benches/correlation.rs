//! Correlation benchmark (semantic mode, all built-in rules):
//!
//! 1. Stage cost per event with 100 k live entities: batches of 1024 events drawn from 100 k
//!    processes (each in its own cgroup and container of one of 20 k pods), a realistic mix
//!    of types (most match no rule step, about 3 % match one), through
//!    `CorrelationStage::process`. Prints the mean cost per event and the p50/p99/max cost
//!    of a batch.
//! 2. Ring to sink at 1 M events/s: a producer thread paces 1 M events/s into the shared
//!    ring in bursts (as a plugin draining a kernel ring buffer on wake-up delivers them);
//!    the real pipeline thread runs the stage and a null sink records each event's
//!    ring-to-sink latency (p50/p99/max). An event's latency includes the wait behind the
//!    events of its burst. The pipeline thread's CPU is printed with the part of it spent on
//!    batches (`tapio_pipeline_busy_seconds_total`; the rest is spinning on an empty ring).
//!    An event's clock starts when its burst enters the ring: the producer makes the burst
//!    first (a plugin's own work) and stamps it just before the push. A second line gives
//!    the producer's side: bursts that took over 50 us to push (such a stall counts in the
//!    latency without being the pipeline's), and how long making a burst took.
//!    `CORRELATION_BENCH_TRACE=FILE` writes one line
//!    per batch the sink received (`unix_ns events max_latency_ns`), to see how a backlog
//!    builds and drains. A third line gives the floor the bursts set: the last event of a
//!    burst waits while the ones before it are processed, (burst - 1) x the cost per event
//!    on batches, before any queueing.
//! 3. Memory under a stream of unique entities: 2 M events of never-repeating pids,
//!    cgroups, containers and peers; prints entity table sizes and RSS growth, and the cost
//!    of its batches of 1000 (at the table limits new entities make old ones go).
//! 4. Group events: the cost of closing a confirmed group into its event (root cause, chain,
//!    impact with services and downstream dependents, spans), on the pipeline thread. The
//!    graph of part 1 plus what a cluster has: every pod with an IP and an `app` label, one
//!    service per 20 pods selecting them. Each group is a network failure toward one pod's
//!    IP with 64 members (retransmits from processes of 64 pods), so its impact walks 64
//!    entities. `CORRELATION_BENCH_GROUPS` sets the groups (default 1000).
//!
//! `cargo bench -p tapio-collector --bench correlation`; `CORRELATION_BENCH_EVENTS` sets the
//! events of part 1 (default 2 M), `CORRELATION_BENCH_SECS` the length of part 2 (default 5),
//! `CORRELATION_BENCH_RATE` its offered rate (default 1 M events/s), `CORRELATION_BENCH_BATCH`
//! the pipeline batch size of part 2 (default: the collector's `pipeline.batch_size`),
//! `CORRELATION_BENCH_BURST` the events the
//! producer pushes per wake-up (default 100: one every 100 us at 1 M/s),
//! `CORRELATION_BENCH_HEADROOM` the spare
//! attribute slots of an event (default `event::ATTRIBUTE_HEADROOM`, as plugin events get),
//! `CORRELATION_BENCH_STAGE=none` runs part 2 without the stage (the same ring, pipeline
//! thread, sink and load: what the machine and the pipeline add on their own).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use compact_str::CompactString;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use tapio_host::correlate::resolver::Resolver;
use tapio_host::correlate::rules::{load_builtin, RuleSet};
use tapio_host::correlate::{CorrelationStage, Settings};
use tapio_host::event::{Attribute, Event, Severity, Value};
use tapio_host::pipeline::stage::Stage;
use tapio_host::pipeline::{self, PipelineSettings};
use tapio_host::sink::{EventBatch, Sink, SinkError};
use tapio_plugin_api::now_unix_nanos;

#[path = "common/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::thread_cpu_seconds;

/// The allocator of the `tapio-collector` binary (see `host/src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ENTITIES: u32 = 100_000;
/// Pods, one container each; five processes per container.
const PODS: u32 = 20_000;
const BATCH: usize = 1024;

/// The pipeline batch of part 2: `CORRELATION_BENCH_BATCH`, else the collector's default
/// (`pipeline.batch_size`).
fn pipeline_batch() -> usize {
    let default = tapio_host::config::Pipeline::default().batch_size;
    env_u64("CORRELATION_BENCH_BATCH", default as u64) as usize
}

/// `CORRELATION_BENCH_STAGE=none`: part 2 without the correlation stage.
fn without_stage() -> bool {
    std::env::var("CORRELATION_BENCH_STAGE").is_ok_and(|v| v == "none")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stage() -> CorrelationStage {
    let rules = RuleSet::new(load_builtin().expect("built-in rules"));
    CorrelationStage::new(
        Settings::default(),
        rules,
        Resolver::disabled(),
        fastrand::Rng::with_seed(1),
    )
}

fn attr(key: &str, value: Value) -> Attribute {
    Attribute {
        key: CompactString::new(key),
        value,
    }
}

fn container_of(i: u32) -> CompactString {
    compact_str::format_compact!("{:064x}", u64::from(i) + 0xc0ffee)
}

fn pod_uid(p: u32) -> CompactString {
    compact_str::format_compact!("{:08x}-0000-1111-2222-{:012x}", p, p)
}

/// The events that teach the graph about 100 k processes in 20 k pods.
fn population(at: u64) -> Vec<Event> {
    let mut out = Vec::new();
    for p in 0..PODS {
        let mut e = Event::new("k8s.pod.added", "kubeapi", Severity::Info, at);
        e.attributes = vec![
            attr("k8s.object.kind", Value::Str("Pod".into())),
            attr("k8s.pod.uid", Value::Str(pod_uid(p))),
            attr(
                "k8s.pod.name",
                Value::Str(compact_str::format_compact!("pod-{p}")),
            ),
            attr("k8s.namespace.name", Value::Str("production".into())),
        ];
        out.push(e);
    }
    for i in 0..ENTITIES {
        if i < PODS {
            let mut e = Event::new("cri.container.started", "cri", Severity::Info, at);
            e.container_id = Some(container_of(i).as_str().into());
            e.attributes = vec![attr("k8s.pod.uid", Value::Str(pod_uid(i)))];
            out.push(e);
        }
        let mut e = Event::new("kernel.process.exec", "process", Severity::Info, at);
        e.pid = Some(10_000 + i);
        e.cgroup_id = Some(u64::from(i) + 1);
        e.container_id = Some(container_of(i % PODS).as_str().into());
        e.attributes = vec![attr("process.executable.name", Value::Str("app".into()))];
        out.push(e);
    }
    out
}

fn headroom() -> usize {
    static HEADROOM: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *HEADROOM.get_or_init(|| {
        env_u64(
            "CORRELATION_BENCH_HEADROOM",
            tapio_host::event::ATTRIBUTE_HEADROOM as u64,
        ) as usize
    })
}

/// One event of the mix, about entity `i`.
fn mixed(rng: &mut fastrand::Rng, at: u64) -> Event {
    let i = rng.u32(..ENTITIES);
    let roll = rng.u32(..100);
    let (ty, sev) = match roll {
        0..40 => ("storage.io.summary", Severity::Info),
        40..70 => ("resource.scheduling_delay", Severity::Low),
        70..90 => ("kernel.process.exec", Severity::Info),
        90..97 => ("otel.metric", Severity::Info),
        97 => ("kernel.network.retransmit", Severity::Warning),
        98 => ("container.memory_pressure", Severity::Warning),
        _ => ("storage.io.slow", Severity::Warning),
    };
    let mut e = Event::new(ty, "bench", sev, at);
    e.pid = Some(10_000 + i);
    // As `Event::copy_from_abi` makes them: room for the enrichment
    // (`CORRELATION_BENCH_HEADROOM=0`: exact capacity, as before that change).
    e.attributes = Vec::with_capacity(1 + headroom());
    e.attributes
        .push(attr("process.pid", Value::Int(i64::from(10_000 + i))));
    if roll == 97 {
        // Connections go to one of 1000 peers.
        e.attributes.push(attr(
            "network.peer.address",
            Value::Str(compact_str::format_compact!(
                "10.1.{}.{}",
                (i / 256) % 4,
                i % 256
            )),
        ));
    }
    e
}

/// CPU time of this thread (the machine is shared: wall time includes preemption).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn part1() {
    let events = env_u64("CORRELATION_BENCH_EVENTS", 2_000_000);
    let mut st = stage();
    let t0 = now_unix_nanos();
    let mut pop = population(t0);
    for chunk in pop.chunks_mut(BATCH) {
        let mut b = chunk.to_vec();
        st.process(&mut b, t0);
    }
    pop.clear();
    let mut rng = fastrand::Rng::with_seed(2);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut total = Duration::ZERO;
    let mut cpu = 0u64;
    let mut done = 0u64;
    let mut at = t0;
    let mut tick_max = Duration::ZERO;
    while done < events {
        // 1 M events/s of event time: 1 µs apart.
        let mut batch: Vec<Event> = (0..BATCH)
            .map(|k| mixed(&mut rng, at + k as u64 * 1_000))
            .collect();
        at += BATCH as u64 * 1_000;
        let start = Instant::now();
        let cpu0 = thread_cpu_ns();
        st.process(&mut batch, at);
        cpu += thread_cpu_ns() - cpu0;
        let took = start.elapsed();
        total += took;
        hist.saturating_record(took.as_nanos() as u64);
        done += BATCH as u64;
        if done.is_multiple_of(BATCH as u64 * 1000) {
            let t = Instant::now();
            st.tick(at);
            tick_max = tick_max.max(t.elapsed());
        }
    }
    let sizes = st.graph().sizes();
    println!(
        "part 1 (stage): {done} events, 100k live entities ({} processes, {} containers, {} pods in the graph): mean {:.0} ns/event wall, {:.0} ns/event thread CPU; batch of {BATCH} (wall): p50 {:.1} us, p99 {:.1} us, max {:.1} us; longest tick {:.1} us; open groups (candidates included) {}",
        sizes.processes,
        sizes.containers,
        sizes.pods,
        total.as_nanos() as f64 / done as f64,
        cpu as f64 / done as f64,
        hist.value_at_quantile(0.5) as f64 / 1e3,
        hist.value_at_quantile(0.99) as f64 / 1e3,
        hist.max() as f64 / 1e3,
        tick_max.as_secs_f64() * 1e6,
        st.engine().open_groups(),
    );
}

/// Per batch the sink received: when, how many events, the longest latency in it.
type BatchTrace = Arc<Mutex<Vec<(u64, usize, u64)>>>;

#[derive(Clone)]
struct LatencySink {
    events: Arc<AtomicU64>,
    hist: Arc<Mutex<Histogram<u64>>>,
    /// Kept only with `CORRELATION_BENCH_TRACE`.
    trace: Option<BatchTrace>,
}

impl Sink for LatencySink {
    fn name(&self) -> &'static str {
        "latency"
    }
    fn write(&mut self, batch: &EventBatch) -> Result<(), SinkError> {
        let now = now_unix_nanos();
        let mut hist = self.hist.lock();
        let mut longest = 0;
        for e in batch.iter().filter(|e| e.source == "bench") {
            let latency = now.saturating_sub(e.timestamp_ns).max(1);
            longest = longest.max(latency);
            hist.saturating_record(latency);
        }
        if let Some(trace) = &self.trace {
            trace.lock().push((now, batch.len(), longest));
        }
        self.events.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

fn part2() {
    let secs = env_u64("CORRELATION_BENCH_SECS", 5);
    let rate = env_u64("CORRELATION_BENCH_RATE", 1_000_000).max(1000);
    let mut st = stage();
    let t0 = now_unix_nanos();
    for chunk in population(t0).chunks(BATCH) {
        let mut b = chunk.to_vec();
        st.process(&mut b, t0);
    }
    let sink = LatencySink {
        events: Arc::new(AtomicU64::new(0)),
        hist: Arc::new(Mutex::new(
            Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
        )),
        trace: std::env::var_os("CORRELATION_BENCH_TRACE").map(|_| BatchTrace::default()),
    };
    let (producer, consumer) = tapio_ring::ring::<Event>(65_536);
    // `CORRELATION_BENCH_STAGE=none`: the same ring, pipeline thread, sink and load without
    // the stage, so what the machine adds to ring -> sink on its own is measured too.
    let stages: Vec<Box<dyn Stage>> = if without_stage() {
        Vec::new()
    } else {
        vec![Box::new(st)]
    };
    let handle = pipeline::spawn(
        consumer,
        stages,
        vec![Box::new(sink.clone())],
        PipelineSettings {
            batch_size: pipeline_batch(),
        },
    )
    .expect("pipeline thread");
    let mut rng = fastrand::Rng::with_seed(3);
    let burst = env_u64("CORRELATION_BENCH_BURST", 100).max(1);
    let gap = Duration::from_nanos(burst * 1_000_000_000 / rate);
    // Sleeps as short as `gap` (the default slack stretches every sleep by 50 us).
    // SAFETY: prctl with PR_SET_TIMERSLACK takes an integer argument only.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000u64) };
    let start = Instant::now();
    let mut sent = 0u64;
    let mut refused = 0u64;
    let (mut push_max_ns, mut push_slow) = (0u64, 0u64);
    let mut making = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut made: Vec<Event> = Vec::with_capacity(burst as usize);
    // Pace the rate: every wake-up pushes what is due, in bursts of `burst` events.
    while start.elapsed() < Duration::from_secs(secs) {
        let due = (start.elapsed().as_nanos() as u64) * rate / 1_000_000_000;
        while sent < due {
            // Make the burst first (a plugin's own work), then stamp it as it enters the
            // ring: the latency is the collector's, from ring to sink.
            let making_from = now_unix_nanos();
            made.extend((0..burst).map(|_| mixed(&mut rng, making_from)));
            let now = now_unix_nanos();
            making.saturating_record(now.saturating_sub(making_from).max(1));
            let mut burst_events = made.drain(..);
            let pushed = producer.push_with(burst as usize, |_| {
                let mut e = burst_events.next().expect("a made event per slot");
                e.timestamp_ns = now;
                e
            });
            drop(burst_events);
            // A stall while pushing counts in the burst's latency (its events carry `now`):
            // it shows up here, not in the pipeline.
            let push_ns = now_unix_nanos().saturating_sub(now);
            push_max_ns = push_max_ns.max(push_ns);
            push_slow += u64::from(push_ns > 50_000);
            refused += burst - pushed as u64;
            sent += burst;
        }
        // Sleep rather than spin: the machine has two cores and the pipeline needs one.
        std::thread::sleep(gap);
    }
    // The pipeline thread's CPU (it exits at shutdown): the stage, the ring and the sink.
    let pipeline_cpu = thread_cpu_seconds("pipeline");
    let stats = handle.stats();
    drop(producer);
    handle.shutdown();
    // Of that CPU, the time on batches (the rest is spinning on an empty ring).
    let busy_ns = stats.busy_ns.load(Ordering::Relaxed) as f64;
    let delivered = sink.events.load(Ordering::Relaxed);
    let hist = sink.hist.lock();
    let batch = pipeline_batch();
    println!(
        "part 2 (ring -> {} -> sink at {rate} events/s for {secs} s, producer bursts of {burst}, pipeline batches of at most {}): offered {sent}, ring refused {refused}, delivered {}; pipeline thread CPU {:.0} ns/event, of which on batches {:.0} ns/event; latency p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        if without_stage() { "no stage" } else { "stage" },
        batch,
        sink.events.load(Ordering::Relaxed),
        pipeline_cpu * 1e9 / sink.events.load(Ordering::Relaxed).max(1) as f64,
        busy_ns / sink.events.load(Ordering::Relaxed).max(1) as f64,
        hist.value_at_quantile(0.5) as f64 / 1e3,
        hist.value_at_quantile(0.99) as f64 / 1e3,
        hist.max() as f64 / 1e3,
    );
    if let (Some(path), Some(trace)) = (std::env::var_os("CORRELATION_BENCH_TRACE"), &sink.trace) {
        let lines: String = trace
            .lock()
            .iter()
            .map(|(at, events, longest)| format!("{at} {events} {longest}\n"))
            .collect();
        std::fs::write(&path, lines).expect("CORRELATION_BENCH_TRACE: write the batch trace");
    }
    println!(
        "part 2 producer: {push_slow} of {} bursts took over 50 us to push, longest {:.1} us; making a burst (before its events enter the ring, not in their latency) p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        sent / burst,
        push_max_ns as f64 / 1e3,
        making.value_at_quantile(0.5) as f64 / 1e3,
        making.value_at_quantile(0.99) as f64 / 1e3,
        making.max() as f64 / 1e3,
    );
    // The events of a burst are processed one after another: its last event waits for all
    // the others, so no p99 can be below about this (bursts queued behind it add more).
    println!(
        "part 2 floor: a burst of {burst} at the measured {:.0} ns/event on batches keeps its last event {:.1} us",
        busy_ns / delivered.max(1) as f64,
        busy_ns / delivered.max(1) as f64 * (burst - 1) as f64 / 1e3,
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

fn part3() {
    let mut st = stage();
    let t0 = now_unix_nanos();
    let before = rss_kib();
    let mut at = t0;
    let mut peak = 0;
    // The cost of each batch: at the table limits every new entity evicts, and that must not
    // stall the pipeline (a batch is what an event waits behind).
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for round in 0..2_000u64 {
        let mut batch: Vec<Event> = (0..1000u64)
            .map(|k| {
                let n = round * 1000 + k;
                let mut e = Event::new(
                    if n.is_multiple_of(50) {
                        "kernel.network.retransmit"
                    } else {
                        "kernel.process.exec"
                    },
                    "bench",
                    Severity::Info,
                    at,
                );
                e.pid = Some(n as u32);
                e.cgroup_id = Some(n + 1);
                e.container_id = Some(format!("{n:064x}").into());
                e.attributes = vec![attr(
                    "network.peer.address",
                    Value::Str(compact_str::format_compact!("peer-{n}")),
                )];
                e
            })
            .collect();
        at += 1_000_000;
        let started = Instant::now();
        st.process(&mut batch, at);
        hist.saturating_record(started.elapsed().as_nanos() as u64);
        if round.is_multiple_of(100) {
            st.tick(at);
            peak = peak.max(rss_kib());
        }
    }
    let sizes = st.graph().sizes();
    println!(
        "part 3 (2 M unique entities): tables {} processes, {} cgroups, {} containers, {} peers, {} evicted; open groups (candidates included) {}; RSS {} MiB before, peak {} MiB; batch of 1000 (wall): mean {:.1} us, p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        sizes.processes,
        sizes.cgroups,
        sizes.containers,
        sizes.peers,
        sizes.evicted,
        st.engine().open_groups(),
        before / 1024,
        peak / 1024,
        hist.mean() / 1e3,
        hist.value_at_quantile(0.5) as f64 / 1e3,
        hist.value_at_quantile(0.99) as f64 / 1e3,
        hist.max() as f64 / 1e3,
    );
}

/// Pods per service in part 4.
const PODS_PER_SERVICE: u32 = 20;

fn pod_ip(p: u32) -> CompactString {
    compact_str::format_compact!("10.244.{}.{}", p / 256, p % 256)
}

/// What part 4 adds to the population: pod IPs and labels, and the services over them.
fn cluster_objects(at: u64) -> Vec<Event> {
    let mut out = Vec::new();
    for p in 0..PODS {
        let mut e = Event::new("k8s.pod.updated", "kubeapi", Severity::Info, at);
        e.attributes = vec![
            attr("k8s.object.kind", Value::Str("Pod".into())),
            attr("k8s.pod.uid", Value::Str(pod_uid(p))),
            attr("k8s.namespace.name", Value::Str("production".into())),
            attr("k8s.pod.ip", Value::Str(pod_ip(p))),
            attr(
                "k8s.object.labels",
                Value::Str(compact_str::format_compact!(
                    "app=svc-{},tier=backend",
                    p / PODS_PER_SERVICE
                )),
            ),
        ];
        out.push(e);
    }
    for s in 0..PODS / PODS_PER_SERVICE {
        let mut e = Event::new("k8s.service.added", "kubeapi", Severity::Info, at);
        e.attributes = vec![
            attr("k8s.object.kind", Value::Str("Service".into())),
            attr(
                "k8s.object.name",
                Value::Str(compact_str::format_compact!("svc-{s}")),
            ),
            attr("k8s.namespace.name", Value::Str("production".into())),
            attr(
                "k8s.service.selector",
                Value::Str(compact_str::format_compact!("app=svc-{s}")),
            ),
            attr(
                "k8s.service.cluster_ip",
                Value::Str(compact_str::format_compact!(
                    "10.96.{}.{}",
                    s / 256,
                    s % 256
                )),
            ),
        ];
        out.push(e);
    }
    out
}

fn part4() {
    let groups = env_u64("CORRELATION_BENCH_GROUPS", 1000).min(u64::from(PODS)) as u32;
    const MEMBERS: u32 = 64;
    let mut st = stage();
    let t0 = now_unix_nanos();
    let mut setup = population(t0);
    setup.extend(cluster_objects(t0));
    for chunk in setup.chunks(BATCH) {
        let mut b = chunk.to_vec();
        st.process(&mut b, t0);
    }
    // Group g: retransmits toward pod g's IP from one process in each of 64 other pods
    // (process i runs in pod i % PODS).
    let mut at = t0;
    let mut rng = fastrand::Rng::with_seed(4);
    let mut events = Vec::new();
    for g in 0..groups {
        for m in 0..MEMBERS {
            let pod = (g + 1 + m * 97) % PODS;
            let pid = 10_000 + pod + PODS * rng.u32(..ENTITIES / PODS);
            let mut e = Event::new("kernel.network.retransmit", "bench", Severity::Warning, at);
            e.pid = Some(pid);
            e.attributes = vec![
                attr("process.pid", Value::Int(i64::from(pid))),
                attr("network.peer.address", Value::Str(pod_ip(g))),
                attr("network.peer.port", Value::Int(8080)),
            ];
            events.push(e);
            at += 1_000;
        }
    }
    let mut delivered = Vec::new();
    for chunk in events.chunks(BATCH) {
        let mut b = chunk.to_vec();
        st.process(&mut b, at);
        delivered.append(&mut b);
    }
    delivered.clear();
    let open = st.engine().open_groups();
    let start = Instant::now();
    let cpu0 = thread_cpu_ns();
    st.shutdown(at);
    st.drain(&mut delivered);
    let cpu = thread_cpu_ns() - cpu0;
    let took = start.elapsed();
    let built = delivered
        .iter()
        .filter(|e| e.event_type == "tapio.correlation.group")
        .count();
    let members = delivered
        .iter()
        .filter(|e| e.event_type == "tapio.correlation.group")
        .filter_map(|e| match e.attribute("tapio.group.members") {
            Some(Value::UInt(n)) => Some(*n),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    // What the impact assessment walked: entities (pods and their services) and dependents.
    let radius = delivered
        .iter()
        .find(|e| e.event_type == "tapio.correlation.group")
        .and_then(|e| e.attribute("tapio.group.impact.blast_radius"))
        .cloned();
    println!(
        "part 4 (group events): {open} open groups closed into {built} group events (up to {members} members each; {} pods with IPs, {} services; blast radius of the first {radius:?}): {:.1} us/group wall, {:.1} us/group thread CPU",
        PODS,
        PODS / PODS_PER_SERVICE,
        took.as_secs_f64() * 1e6 / built.max(1) as f64,
        cpu as f64 / 1e3 / built.max(1) as f64,
    );
}

fn main() {
    // The binary's allocator settings (see `tapio_host::allocator`).
    tapio_host::allocator::configure();
    // CORRELATION_BENCH_PARTS=13 runs parts 1 and 3 only.
    let parts = std::env::var("CORRELATION_BENCH_PARTS").unwrap_or_else(|_| "1234".into());
    if parts.contains('1') {
        part1();
    }
    if parts.contains('2') {
        part2();
    }
    if parts.contains('3') {
        part3();
    }
    if parts.contains('4') {
        part4();
    }
}
