//! Ring-buffer drain rate of 64-byte records with zero loss.
//!
//! `cargo bench -p tapio-ebpf-support --bench ringbuf` (root). The bench object emits a
//! burst of 64-byte records per syscall of this thread (bpf_loop); the producer thread keeps
//! at most half a ring outstanding (so nothing is lost by construction, and the reader's
//! drain rate is what is measured), and the reader counts and decodes each record.
//! Prints delivered records per second, drops (must be 0), for batched wakeups and for a
//! wakeup per record.

use std::sync::atomic::{AtomicU64, Ordering};
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
    let tid = unsafe { libc::gettid() } as u32;
    let mut spec = bench::spec(tid, burst);
    spec.ring_bytes = ring_bytes;
    spec.wakeup_bytes = wakeup_bytes;
    spec.poll_interval = Duration::from_millis(10);
    let delivered = Arc::new(AtomicU64::new(0));
    let mut runtime = Runtime::start(
        spec,
        Counter {
            delivered: Arc::clone(&delivered),
            checksum: 0,
        },
    )
    .expect("runtime");
    if let tapio_ebpf_support::RuntimeHealth::Failed(why) = runtime.state() {
        eprintln!("ringbuf bench: cannot load: {why}");
        return;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut produced = 0u64;
    while Instant::now() < deadline {
        // Flow control: at most half a ring outstanding.
        if produced - delivered.load(Ordering::Relaxed) > ring_records / 2 {
            std::hint::spin_loop();
            continue;
        }
        // SAFETY: getppid has no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
        produced += u64::from(burst);
    }
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
        "ringbuf {label:<28} burst {burst:>3}: {:>6.2} M records/s delivered ({got} in {elapsed:.2} s), kernel produced {} dropped {} delivered {}",
        got as f64 / elapsed / 1e6,
        stats.produced,
        stats.dropped,
        stats.delivered,
    );
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
}
