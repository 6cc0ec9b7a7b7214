//! Ring-buffer drain rate of 64-byte records with zero loss.
//!
//! `cargo bench -p tapio-ebpf-support --bench ringbuf` (root). The bench object emits a
//! burst of 64-byte records per syscall of this thread (bpf_loop); the producer thread keeps
//! at most half a ring outstanding (so nothing is lost by construction, and the reader's
//! drain rate is what is measured), and the reader counts and decodes each record.
//! Prints delivered records per second, drops (must be 0), for batched wakeups and for a
//! wakeup per record; these end-to-end figures include the producer's syscalls and share
//! the CPUs with it.
//!
//! Then the pure drain rate: a 64 MiB ring is filled while the reader sleeps (one forced
//! wakeup when the last record is submitted), and the reader's time from the first to the
//! last record of the full ring is measured: records per second the reader takes out,
//! decodes and counts, with zero loss.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapio_ebpf_support::{bench, record::Record, RecordHandler, Runtime};

struct Counter {
    delivered: Arc<AtomicU64>,
    checksum: u64,
}

impl RecordHandler for Counter {
    fn record(&mut self, bytes: &[u8]) {
        if let Some(r) = bench::BenchRecord::read(bytes) {
            self.checksum = self.checksum.wrapping_add(r.seq);
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

fn run(label: &str, wakeup_bytes: u64, burst: u32, seconds: u64) {
    let ring_bytes: u32 = 4 << 20;
    let ring_records = u64::from(ring_bytes) / (64 + 8);
    let delivered = Arc::new(AtomicU64::new(0));
    let go = Arc::new(AtomicBool::new(false));
    // The producer is its own thread: every syscall of the traced thread produces records,
    // so it makes none between the attach and the measurement (it spins on `go`), and only
    // getppid during it. Its count is then exactly what the kernel side produces.
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let producer = {
        let (delivered, go) = (Arc::clone(&delivered), Arc::clone(&go));
        std::thread::spawn(move || {
            // SAFETY: no arguments, cannot fail.
            tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
            while !go.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let started = Instant::now();
            let deadline = started + Duration::from_secs(seconds);
            let mut produced = 0u64;
            while Instant::now() < deadline {
                // Flow control: at most half a ring outstanding.
                if produced.saturating_sub(delivered.load(Ordering::Relaxed)) > ring_records / 2 {
                    std::hint::spin_loop();
                    continue;
                }
                // SAFETY: getppid has no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getppid) };
                produced += u64::from(burst);
            }
            (produced, started)
        })
    };
    let tid = tid_rx.recv().expect("producer tid");
    let mut spec = bench::spec(tid, burst);
    spec.ring_bytes = ring_bytes;
    spec.wakeup_bytes = wakeup_bytes;
    spec.poll_interval = Duration::from_millis(10);
    let mut runtime = Runtime::start(
        spec,
        Counter {
            delivered: Arc::clone(&delivered),
            checksum: 0,
        },
    )
    .expect("runtime");
    // The reader thread reports Running once it reads; until then the state is
    // Failed("starting") (a real failure has another reason).
    let waiting = Instant::now();
    while runtime.state() == tapio_ebpf_support::RuntimeHealth::Failed("starting".into())
        && waiting.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    if let tapio_ebpf_support::RuntimeHealth::Failed(why) = runtime.state() {
        go.store(true, Ordering::Release);
        let _ = producer.join();
        eprintln!("ringbuf bench: cannot load: {why}");
        return;
    }
    go.store(true, Ordering::Release);
    let (produced, started) = producer.join().expect("producer");
    // (The producer thread's exit adds a few records after `produced` was counted.)
    while delivered.load(Ordering::Relaxed) < produced
        && started.elapsed() < Duration::from_secs(seconds + 5)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = started.elapsed().as_secs_f64();
    runtime.stop();
    let stats = runtime.stats();
    let got = delivered.load(Ordering::Relaxed);
    println!(
        "ringbuf {label:<28} burst {burst:>3}: {:>6.2} M records/s delivered ({produced} produced by the workload in {elapsed:.2} s); kernel produced {} dropped {}, reader delivered {got}",
        produced.min(got) as f64 / elapsed / 1e6,
        stats.produced,
        stats.dropped,
    );
}

/// Counts records and notes when the first and the `expect`-th arrived.
struct DrainClock {
    expect: u64,
    seen: u64,
    first: Option<Instant>,
    done: Arc<parking_lot::Mutex<Option<(Duration, u64)>>>,
    checksum: u64,
}

impl RecordHandler for DrainClock {
    fn record(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        let first = *self.first.get_or_insert(now);
        if let Some(r) = bench::BenchRecord::read(bytes) {
            self.checksum = self.checksum.wrapping_add(r.seq);
        }
        self.seen += 1;
        if self.seen == self.expect {
            *self.done.lock() = Some((now - first, self.seen));
        }
    }
}

/// The reader's drain rate of a full ring (see the module docs).
fn drain_full_ring() {
    const BURST: u32 = 64;
    let ring_bytes: u32 = 64 << 20;
    // Records (64 bytes + 8-byte ring header) that fit, in whole bursts, with some room.
    let syscalls = u64::from(ring_bytes) / 72 / u64::from(BURST) * 9 / 10;
    let records = syscalls * u64::from(BURST);
    let done = Arc::new(parking_lot::Mutex::new(None));
    let go = Arc::new(AtomicBool::new(false));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let producer = {
        let go = Arc::clone(&go);
        std::thread::spawn(move || {
            // SAFETY: no arguments, cannot fail.
            tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
            while !go.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            for _ in 0..syscalls {
                // SAFETY: getppid has no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
        })
    };
    let mut spec = bench::spec(tid_rx.recv().unwrap(), BURST);
    spec.ring_bytes = ring_bytes;
    // The reader sleeps until the last record is in: one forced wakeup at exactly that fill.
    spec.wakeup_bytes = records * 72;
    spec.poll_interval = Duration::from_secs(30);
    let mut runtime = Runtime::start(
        spec,
        DrainClock {
            expect: records,
            seen: 0,
            first: None,
            done: Arc::clone(&done),
            checksum: 0,
        },
    )
    .expect("runtime");
    std::thread::sleep(Duration::from_millis(200));
    go.store(true, Ordering::Release);
    producer.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while done.lock().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    runtime.stop();
    let stats = runtime.stats();
    let result = *done.lock();
    match result {
        Some((took, n)) => println!(
            "ringbuf drain of a full 64 MiB ring: {:>6.2} M records/s ({n} 64-byte records in {:.1} ms); kernel produced {} dropped {}, reader delivered {}",
            n as f64 / took.as_secs_f64() / 1e6,
            took.as_secs_f64() * 1e3,
            stats.produced,
            stats.dropped,
            stats.delivered,
        ),
        None => println!("ringbuf drain: the reader did not deliver {records} records within 30 s: {stats:?}"),
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` runs benches in test mode: do nothing.
        return;
    }
    if let Err(e) = tapio_ebpf_support::privilege::check() {
        println!("skipping ringbuf bench: {e}, needs root or CAP_BPF + CAP_PERFMON");
        return;
    }
    for burst in [1, 64] {
        run("batched wakeups (64 KiB)", 64 << 10, burst, 3);
        run("wakeup per record", 0, burst, 3);
    }
    for _ in 0..3 {
        drain_full_ring();
    }
}
