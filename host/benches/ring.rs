//! Ring benchmark: events/s through the shared ring with 1 and 2 producers, and hop latency
//! (push to pop) at a paced rate, for our ring and for crossbeam's `ArrayQueue` carrying the
//! same host `Event` values. Prints numbers; run with `cargo bench -p tapio-collector --bench
//! ring` (`RING_BENCH_SECS` sets the duration of each run, default 3).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use hdrhistogram::Histogram;
use tapio_host::event::{Event, Severity};
use tapio_ring::ring;

const CAPACITY: usize = 65_536;
const BATCH: usize = 64;

fn template() -> Event {
    let mut e = Event::new("kernel.process.exec", "bench", Severity::Info, 0);
    e.pid = Some(42);
    e
}

/// Nanoseconds since `epoch`, the stamp carried in `timestamp_ns` for latency runs.
fn stamp(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

struct Run {
    events: u64,
    secs: f64,
    latency: Option<Histogram<u64>>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.events as f64 / self.secs
    }
}

/// Unpaced producers (retrying when full) against one consumer, for `secs`.
fn ours_throughput(producers: usize, secs: f64) -> Run {
    let (p, mut c) = ring::<Event>(CAPACITY);
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let (p, stop) = (p.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let t = template();
                while !stop.load(Ordering::Relaxed) {
                    let mut left = BATCH;
                    while left > 0 && !stop.load(Ordering::Relaxed) {
                        let n = p.push_with(left, |_| t.clone());
                        if n == 0 {
                            thread::yield_now();
                        }
                        left -= n;
                    }
                }
            })
        })
        .collect();
    drop(p);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut out = Vec::with_capacity(1024);
    let mut events = 0u64;
    while Instant::now() < deadline {
        for _ in 0..64 {
            let n = c.pop_batch(&mut out, 1024);
            events += n as u64;
            out.clear();
            if n == 0 {
                c.wait(Duration::from_micros(20), Duration::from_millis(1));
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    Run {
        events,
        secs,
        latency: None,
    }
}

fn crossbeam_throughput(producers: usize, secs: f64) -> Run {
    let q = Arc::new(ArrayQueue::<Event>::new(CAPACITY));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let (q, stop) = (Arc::clone(&q), Arc::clone(&stop));
            thread::spawn(move || {
                let t = template();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..BATCH {
                        let mut e = t.clone();
                        loop {
                            match q.push(e) {
                                Ok(()) => break,
                                Err(back) => {
                                    if stop.load(Ordering::Relaxed) {
                                        return;
                                    }
                                    e = back;
                                    thread::yield_now();
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut events = 0u64;
    while Instant::now() < deadline {
        for _ in 0..64 {
            let mut n = 0;
            while n < 1024 {
                match q.pop() {
                    Some(e) => {
                        drop(e);
                        n += 1;
                    }
                    None => break,
                }
            }
            if n == 0 {
                thread::yield_now();
            }
            events += n as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    Run {
        events,
        secs,
        latency: None,
    }
}

/// Producers paced to `rate` events/s in total (batches of `batch`); the consumer records
/// push-to-pop latency of every event.
fn ours_latency(producers: usize, rate: u64, batch: usize, secs: f64) -> Run {
    let (p, mut c) = ring::<Event>(CAPACITY);
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let per_producer = rate as f64 / producers as f64;
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let (p, stop) = (p.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let t = template();
                let interval = Duration::from_secs_f64(batch as f64 / per_producer);
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let now = stamp(epoch);
                    p.push_with(batch, |_| {
                        let mut e = t.clone();
                        e.timestamp_ns = now;
                        e
                    });
                    next += interval;
                    while Instant::now() < next {
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    drop(p);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut out = Vec::with_capacity(1024);
    let mut events = 0u64;
    while Instant::now() < deadline {
        let n = c.pop_batch(&mut out, 1024);
        if n == 0 {
            c.wait(Duration::from_micros(30), Duration::from_millis(1));
            continue;
        }
        let now = stamp(epoch);
        for e in out.drain(..) {
            hist.saturating_record(now.saturating_sub(e.timestamp_ns).max(1));
        }
        events += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    Run {
        events,
        secs,
        latency: Some(hist),
    }
}

fn main() {
    let secs: f64 = std::env::var("RING_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    println!(
        "ring benchmark: Event = {} bytes, capacity {CAPACITY}, producer batch {BATCH}, {secs} s per run, {} cores",
        std::mem::size_of::<Event>(),
        thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    for producers in [1, 2] {
        let ours = ours_throughput(producers, secs);
        let cb = crossbeam_throughput(producers, secs);
        println!(
            "throughput producers={producers}: tapio ring {:>6.2} M events/s | crossbeam ArrayQueue {:>6.2} M events/s | ratio {:.2}x",
            ours.rate() / 1e6,
            cb.rate() / 1e6,
            ours.rate() / cb.rate()
        );
    }
    for (producers, rate, batch) in [(1, 1_000_000, 64), (2, 1_000_000, 64), (1, 100_000, 1)] {
        let run = ours_latency(producers, rate, batch, secs);
        let h = run.latency.as_ref().unwrap();
        println!(
            "hop latency producers={producers} rate={rate}/s batch={batch}: delivered {:.0}/s p50 {:.1} us p99 {:.1} us p99.9 {:.1} us max {:.1} us",
            run.rate(),
            h.value_at_quantile(0.50) as f64 / 1e3,
            h.value_at_quantile(0.99) as f64 / 1e3,
            h.value_at_quantile(0.999) as f64 / 1e3,
            h.max() as f64 / 1e3,
        );
    }
}
