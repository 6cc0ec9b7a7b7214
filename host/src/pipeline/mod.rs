//! The pipeline: one thread drains the ring in batches, runs the stages in order, and hands
//! each batch to every sink.
//!
//! Shutdown drains: after the plugins are stopped (their sinks refuse further events), the
//! thread empties the ring, flushes the sinks and exits, so nothing accepted is lost.

pub mod enrich;
pub mod guard;
pub mod idle;
pub mod stage;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tapio_plugin_api::now_unix_nanos;
use tapio_ring::Consumer;

use crate::event::Event;
use crate::pipeline::guard::{StageCounters, Stages};
use crate::pipeline::idle::IdlePolicy;
use crate::pipeline::stage::Stage;
use crate::sink::{EventBatch, Sink};

/// How often stages get a `tick`.
const TICK_INTERVAL: Duration = Duration::from_secs(1);
/// Longest idle wait before the loop checks for shutdown and ticks.
const IDLE_PARK: Duration = Duration::from_millis(100);

/// Counters of the pipeline, read by the status line and the metrics endpoint.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Events that went through the stages to the sinks.
    pub events: AtomicU64,
    /// Batches processed.
    pub batches: AtomicU64,
    /// Nanoseconds the thread spent on batches (stages and sinks): its rate is the thread's
    /// busy share, the pipeline's saturation.
    pub busy_ns: AtomicU64,
    /// Open correlation groups (trace windows in basic mode).
    pub open_groups: AtomicUsize,
    /// Events written, per sink (same order as the sinks).
    pub sink_events: Vec<(&'static str, AtomicU64)>,
    /// Write or flush errors, per sink.
    pub sink_errors: Vec<(&'static str, AtomicU64)>,
    /// Set while the pipeline thread runs its loop (for `/healthz`).
    pub alive: AtomicBool,
    /// Wall-clock seconds of the loop's last iteration (for `/healthz`).
    pub last_loop_unix_s: AtomicU64,
    /// Correlation counters, when a correlation stage runs.
    pub correlation: Option<Arc<crate::correlate::Stats>>,
    /// Panics and events lost with a stage taken out, per stage (same order as the
    /// stages; see `guard`).
    pub stages: Vec<StageCounters>,
}

impl PipelineStats {
    /// Events lost with stages that panicked.
    pub fn stage_dropped(&self) -> u64 {
        self.stages
            .iter()
            .map(|s| s.dropped.load(Ordering::Relaxed))
            .sum()
    }
}

/// Pipeline settings.
#[derive(Debug, Clone, Copy)]
pub struct PipelineSettings {
    /// Most events per batch.
    pub batch_size: usize,
}

/// Handle to the running pipeline thread.
pub struct PipelineHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<PipelineStats>,
    ring: tapio_ring::Producer<Event>,
}

impl PipelineHandle {
    /// The counters.
    pub fn stats(&self) -> Arc<PipelineStats> {
        Arc::clone(&self.stats)
    }

    /// Events waiting in the ring.
    pub fn ring_len(&self) -> usize {
        self.ring.len()
    }

    /// Capacity of the ring.
    pub fn ring_capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Drains the ring, flushes the sinks and joins the thread. Call after every producer
    /// stopped (plugins stopped).
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Starts the pipeline thread.
pub fn spawn(
    mut consumer: Consumer<Event>,
    stages: Vec<Box<dyn Stage>>,
    mut sinks: Vec<Box<dyn Sink>>,
    settings: PipelineSettings,
) -> std::io::Result<PipelineHandle> {
    let mut stages = Stages::new(stages);
    let stats = Arc::new(PipelineStats {
        sink_events: sinks
            .iter()
            .map(|s| (s.name(), AtomicU64::new(0)))
            .collect(),
        sink_errors: sinks
            .iter()
            .map(|s| (s.name(), AtomicU64::new(0)))
            .collect(),
        correlation: stages.correlation_stats(),
        stages: stages.counters(),
        ..PipelineStats::default()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let ring = consumer.producer();
    let thread = {
        let (stats, stop) = (Arc::clone(&stats), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("pipeline".into())
            .spawn(move || {
                stats.alive.store(true, Ordering::Release);
                run(
                    &mut consumer,
                    &mut stages,
                    &mut sinks,
                    settings,
                    &stats,
                    &stop,
                );
                stats.alive.store(false, Ordering::Release);
            })?
    };
    Ok(PipelineHandle {
        stop,
        thread: Some(thread),
        stats,
        ring,
    })
}

fn run(
    consumer: &mut Consumer<Event>,
    stages: &mut Stages,
    sinks: &mut [Box<dyn Sink>],
    settings: PipelineSettings,
    stats: &PipelineStats,
    stop: &AtomicBool,
) {
    let batch_size = settings.batch_size.max(1);
    let mut buf: Vec<Event> = Vec::with_capacity(batch_size);
    let mut dirty = false;
    let mut next_tick = Instant::now() + TICK_INTERVAL;
    let mut error_log = ErrorLog::default();
    let mut idle = IdlePolicy::new(Instant::now());
    loop {
        let n = consumer.pop_batch(&mut buf, batch_size);
        if n > 0 {
            let started = Instant::now();
            let now = now_unix_nanos();
            stages.process(&mut buf, now, &stats.stages);
            let batch: EventBatch =
                Arc::new(std::mem::replace(&mut buf, Vec::with_capacity(batch_size)));
            for (i, sink) in sinks.iter_mut().enumerate() {
                match sink.write(&batch) {
                    Ok(()) => {
                        stats.sink_events[i]
                            .1
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        stats.sink_errors[i].1.fetch_add(1, Ordering::Relaxed);
                        error_log.report(&e);
                    }
                }
            }
            stats
                .events
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            stats.batches.fetch_add(1, Ordering::Relaxed);
            // Reuse the allocation when no sink kept the batch.
            if let Ok(mut vec) = Arc::try_unwrap(batch) {
                vec.clear();
                buf = vec;
            }
            dirty = true;
            let done = Instant::now();
            let busy = done.saturating_duration_since(started);
            stats
                .busy_ns
                .fetch_add(busy.as_nanos() as u64, Ordering::Relaxed);
            if done < next_tick {
                continue;
            }
        }
        if dirty && n == 0 {
            flush(sinks, stats, &mut error_log);
            dirty = false;
        }
        let now = Instant::now();
        if now >= next_tick {
            let wall = now_unix_nanos();
            stages.tick(wall, &stats.stages);
            dirty |= deliver_drained(stages, sinks, stats, &mut error_log);
            stats
                .open_groups
                .store(stages.open_groups(), Ordering::Relaxed);
            stats
                .last_loop_unix_s
                .store(wall / 1_000_000_000, Ordering::Relaxed);
            next_tick = now + TICK_INTERVAL;
        }
        if n == 0 {
            idle.observe(now, stats.busy_ns.load(Ordering::Relaxed));
            if stop.load(Ordering::Acquire) && !consumer.has_data() {
                break;
            }
            consumer.wait(idle.spin(), IDLE_PARK);
        }
    }
    let wall = now_unix_nanos();
    stages.shutdown(wall, &stats.stages);
    deliver_drained(stages, sinks, stats, &mut error_log);
    flush(sinks, stats, &mut error_log);
}

/// Delivers events stages created outside `process` (closed correlation groups): each
/// stage's output runs through the stages after it, then to every sink.
fn deliver_drained(
    stages: &mut Stages,
    sinks: &mut [Box<dyn Sink>],
    stats: &PipelineStats,
    error_log: &mut ErrorLog,
) -> bool {
    let mut out = Vec::new();
    stages.drain(now_unix_nanos(), &stats.stages, &mut out);
    if out.is_empty() {
        return false;
    }
    let batch: EventBatch = Arc::new(out);
    for (i, sink) in sinks.iter_mut().enumerate() {
        match sink.write(&batch) {
            Ok(()) => {
                stats.sink_events[i]
                    .1
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                stats.sink_errors[i].1.fetch_add(1, Ordering::Relaxed);
                error_log.report(&e);
            }
        }
    }
    stats
        .events
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    true
}

fn flush(sinks: &mut [Box<dyn Sink>], stats: &PipelineStats, error_log: &mut ErrorLog) {
    for (i, sink) in sinks.iter_mut().enumerate() {
        if let Err(e) = sink.flush() {
            stats.sink_errors[i].1.fetch_add(1, Ordering::Relaxed);
            error_log.report(&e);
        }
    }
}

/// Logs sink errors at most once per 10 s (they are all counted).
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn report(&mut self, error: &crate::sink::SinkError) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            self.suppressed += 1;
            return;
        }
        tracing::error!(error = %error, suppressed = self.suppressed, "sink error (counted in tapio_sink_errors_total)");
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}
