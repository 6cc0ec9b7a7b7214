//! Test workloads: busy threads pinned to one CPU, and a context-switch flood.

use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

/// A busy thread that ran.
pub struct Hog {
    /// Thread name (its comm).
    pub name: String,
    /// Thread id.
    pub tid: u32,
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes within it; sched_setaffinity on
    // the calling thread (0) with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Runs `n` threads spinning on the last CPU for `duration`; returns them once they ended.
/// They start spinning together, once all of them are pinned: a hog that spun while the
/// others were still being spawned would hold the CPU against the spawning thread (a
/// real-time task beats it there until RT throttling, most of a second), and the late
/// hogs would then spin, and wait, for only part of the run.
pub fn busy_threads_on_one_cpu(n: usize, duration: Duration) -> Vec<Hog> {
    let cpu = std::thread::available_parallelism().map_or(1, |p| p.get()) - 1;
    let (tx, rx) = mpsc::channel();
    let all_pinned = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let tx = tx.clone();
            let all_pinned = Arc::clone(&all_pinned);
            let name = format!("tphog{}x{i}", std::process::id() % 100_000);
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    pin_to(cpu);
                    // SAFETY: no preconditions.
                    let tid = unsafe { libc::gettid() } as u32;
                    // Round-robin real-time class (we are root): a compiler or any other
                    // normal task of the machine cannot preempt the hogs, so while a hog
                    // waits it is another hog that runs (they take turns every RR slice).
                    // The kernel still gives normal tasks their share through RT throttling.
                    let param = libc::sched_param { sched_priority: 1 };
                    // SAFETY: plain syscall on the calling thread (0 = self).
                    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) };
                    assert_eq!(rc, 0, "SCHED_RR: {}", std::io::Error::last_os_error());
                    tx.send(Hog { name, tid }).unwrap();
                    // Sleeps (no spinning) until the last hog is pinned too.
                    all_pinned.wait();
                    let start = Instant::now();
                    let mut x = 0u64;
                    while start.elapsed() < duration {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
                .unwrap()
        })
        .collect();
    drop(tx);
    for h in handles {
        h.join().unwrap();
    }
    rx.iter().collect()
}

/// Several threads sleeping 50 µs in a loop for `duration`: many wakeups and switches.
pub fn context_switch_flood(duration: Duration) {
    let start = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                while start.elapsed() < duration {
                    std::thread::sleep(Duration::from_micros(50));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
