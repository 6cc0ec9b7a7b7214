//! Benchmarks of the process collector (root; `cargo bench -p tapio-plugin-process`):
//!
//! 1. Capture rate at the highest fork+exec rate this machine reaches: worker threads
//!    spawn a uniquely named copy of /bin/true as fast as they can for a few seconds; the
//!    collector must deliver one exec and one exit event per spawn (target 100 %).
//! 2. Kernel-side cost per event (`run_time_ns / run_cnt`, BPF_ENABLE_STATS) of each of our
//!    programs, and of an equivalent bpftrace exec script attached in the same run (it
//!    prints pid, ppid, uid, cgroup, comm and filename for each exec; ours also copies
//!    256 bytes of argv, so the comparison favours bpftrace).
//!
//! Env: `TAPIO_BENCH_SECS` (default 5), `TAPIO_BENCH_THREADS` (default 2 x CPUs).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapio_bpf_bench::{can_run, print_costs, CostMeter};
use tapio_ebpf_support::oracle::Bpftrace;
use tapio_ebpf_support::test_support::{which, MarkedBinary};
use tapio_plugin_process::{ProcessCollector, PROGRAMS};
use tapio_plugin_testkit::Harness;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if !can_run("process") {
        return;
    }
    let secs = env_or("TAPIO_BENCH_SECS", 5);
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let threads = env_or("TAPIO_BENCH_THREADS", 2 * cpus);

    let ours_meter = CostMeter::start().unwrap();
    let mut h = Harness::<ProcessCollector>::create("{}").unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let names: Vec<&str> = PROGRAMS.iter().map(|(name, _)| *name).collect();
    let ours_ids: Vec<u32> = ours_meter.read(&names).iter().map(|c| c.id).collect();
    assert_eq!(ours_ids.len(), PROGRAMS.len(), "our programs are loaded");

    // The equivalent bpftrace script, attached for the same run.
    let bpftrace_meter = CostMeter::start().unwrap();
    let oracle = if which("bpftrace").is_some() {
        let script = r#"BEGIN { printf("READY\n"); }
            tracepoint:sched:sched_process_exec {
                @n = count();
                printf("%d %d %d %d %s %s\n", pid, curtask->real_parent->tgid, uid, cgroup,
                       comm, str(args->filename));
            }"#;
        match Bpftrace::start(script, Duration::from_secs(20)) {
            Ok(o) => Some(o),
            Err(e) => {
                println!("bpftrace comparison skipped: {e}");
                None
            }
        }
    } else {
        println!("bpftrace comparison skipped: bpftrace is not installed (.ci/deps/ebpf-proc.sh)");
        None
    };

    // 1. Fork+exec flood.
    let marker = Arc::new(MarkedBinary::copy_of("/bin/true").unwrap());
    let spawned = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (marker, spawned, stop) = (marker.clone(), spawned.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let status = Command::new(marker.path())
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .unwrap();
                    assert!(status.success());
                    spawned.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let took = started.elapsed();
    let n = spawned.load(Ordering::Relaxed);

    // A few fatal signals for signal_generate.
    for _ in 0..200 {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let ours: Vec<_> = ours_meter
        .read(&names)
        .into_iter()
        .filter(|c| ours_ids.contains(&c.id))
        .collect();
    let theirs = bpftrace_meter.read(&["sched_process_exec"]);
    let bpftrace_execs = oracle
        .and_then(|o| o.finish().ok())
        .and_then(|m| m.get("@n").copied());
    h.stop().unwrap();

    let path = marker.path().to_str().unwrap();
    let events = h.events();
    let execs = events
        .iter()
        .filter(|e| {
            e.event_type == "kernel.process.exec" && e.str("process.executable.path") == Some(path)
        })
        .count() as u64;
    let exits = events
        .iter()
        .filter(|e| {
            e.event_type == "kernel.process.exit"
                && e.str("process.executable.name") == Some(marker.name())
        })
        .count() as u64;
    let stats = h.collector().kernel_stats().unwrap();
    println!(
        "fork+exec flood: {n} spawns by {threads} threads in {took:.2?} = {:.0} spawns/s",
        n as f64 / took.as_secs_f64()
    );
    println!(
        "capture: exec {execs}/{n} = {:.2} %, exit {exits}/{n} = {:.2} %; ring: produced {} \
         delivered {} dropped {}",
        100.0 * execs as f64 / n as f64,
        100.0 * exits as f64 / n as f64,
        stats.produced,
        stats.delivered,
        stats.dropped
    );
    if let Some(b) = bpftrace_execs {
        println!("bpftrace saw {b} execs machine-wide in the same run");
    }
    print_costs(
        "ours: kernel-side cost per event (run_time_ns / run_cnt)",
        &ours,
    );
    print_costs("bpftrace exec script, same run", &theirs);
    if let (Some(o), Some(t)) = (
        ours.iter().find(|c| c.name == "process_exec"),
        theirs.first(),
    ) {
        println!(
            "exec: ours {:.0} ns/event vs bpftrace {:.0} ns/event ({})",
            o.ns_per_run(),
            t.ns_per_run(),
            if o.ns_per_run() < t.ns_per_run() {
                "ours lower"
            } else {
                "ours NOT lower"
            }
        );
    }
}
