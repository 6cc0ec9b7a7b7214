//! Kernel-side cost of the syscall-errors program (root;
//! `cargo bench -p tapio-plugin-syscall-errors`): the bench thread fails `openat` with
//! ENOENT `TAPIO_BENCH_CALLS` times (default 1,000,000) while our program (allow-list
//! ENOENT) and an equivalent bpftrace script (failures with ENOENT counted in a map keyed by
//! pid, syscall and errno, in the kernel) are attached in the same run. Both programs run
//! on EVERY syscall exit of the machine; `run_time_ns / run_cnt` is printed for each, and
//! our aggregate of the bench thread is checked against the number of calls.

use std::ffi::CString;
use std::time::{Duration, Instant};

use tapio_bpf_bench::{can_run, print_costs, CostMeter};
use tapio_ebpf_support::oracle::Bpftrace;
use tapio_ebpf_support::test_support::which;
use tapio_plugin_syscall_errors::{SyscallErrors, PROGRAM};
use tapio_plugin_testkit::Harness;

fn main() {
    if !can_run("syscall_errors") {
        return;
    }
    let calls: u64 = std::env::var("TAPIO_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let ours_meter = CostMeter::start().unwrap();
    let mut h = Harness::<SyscallErrors>::create(r#"{"errnos":["ENOENT"]}"#).unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let ours_ids: Vec<u32> = ours_meter.read(&[PROGRAM]).iter().map(|c| c.id).collect();
    assert_eq!(ours_ids.len(), 1, "our program is loaded");

    let bpftrace_meter = CostMeter::start().unwrap();
    let oracle = if which("bpftrace").is_some() {
        let script = r#"BEGIN { printf("READY\n"); }
            tracepoint:raw_syscalls:sys_exit /args->ret == -2/ { @fail[pid, args->id, -args->ret] = count(); }"#;
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

    let path = CString::new(format!("/nonexistent-tapio-bench-{}/f", std::process::id())).unwrap();
    let started = Instant::now();
    for _ in 0..calls {
        // SAFETY: a valid NUL-terminated path; the call fails with ENOENT.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
        assert!(fd < 0);
    }
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    let ours: Vec<_> = ours_meter
        .read(&[PROGRAM])
        .into_iter()
        .filter(|c| ours_ids.contains(&c.id))
        .collect();
    let theirs = bpftrace_meter.read(&["sys_exit"]);
    drop(oracle);
    h.stop().unwrap();

    let me = std::process::id();
    let counted: i128 = h
        .events()
        .iter()
        .filter(|e| e.pid == Some(me) && e.str("syscall.name") == Some("openat"))
        .map(|e| e.int("syscall.error.count").unwrap())
        .sum();
    println!(
        "{calls} failing openat in {took:.2?} ({:.0} calls/s); our aggregates counted {counted}",
        calls as f64 / took.as_secs_f64()
    );
    print_costs(
        "ours: kernel-side cost per sys_exit (run_time_ns / run_cnt)",
        &ours,
    );
    print_costs("bpftrace equivalent, same run", &theirs);
    if let (Some(o), Some(t)) = (ours.first(), theirs.first()) {
        println!(
            "syscall errors: ours {:.0} ns/event vs bpftrace {:.0} ns/event ({})",
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
