//! Kernel-side cost per event of the cpu-starvation programs: sched_switch runs on every
//! context switch of the machine, so its cost is the collector's overhead.
//!
//! `cargo bench -p tapio-plugin-cpu-starvation` (root). Runs a context-switch flood plus
//! busy threads competing for one CPU with the default config (waits >= 10 ms reported),
//! and prints, per program, runs and mean run time (`run_time_ns / run_cnt`).

#[path = "../tests/it/workload.rs"]
#[allow(dead_code, reason = "shared with the integration tests")]
mod workload;

use std::time::{Duration, Instant};

use tapio_bpf_bench::{can_run, print_costs, CostMeter};
use tapio_plugin_cpu_starvation::CpuStarvation;
use tapio_plugin_testkit::Harness;

const PROGRAMS: &[&str] = &["sched_wakeup", "sched_wakeup_new", "sched_switch"];

fn run(config: &str, label: &str) {
    let meter = CostMeter::start().unwrap();
    let mut h = Harness::<CpuStarvation>::create(config).unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let flood = std::thread::spawn(|| workload::context_switch_flood(Duration::from_secs(3)));
    workload::busy_threads_on_one_cpu(3, Duration::from_secs(3));
    flood.join().unwrap();
    let took = started.elapsed();
    let costs = meter.read(PROGRAMS);
    h.stop().unwrap();
    let switches = costs
        .iter()
        .find(|c| c.name == "sched_switch")
        .map_or(0, |c| c.run_count);
    println!(
        "cpu-starvation ({label}): {switches} context switches in {took:?} ({:.0}/s)",
        switches as f64 / took.as_secs_f64()
    );
    print_costs(
        "kernel-side cost per event (run_time_ns / run_cnt):",
        &costs,
    );
    let stats = h.collector().kernel_stats().unwrap();
    println!(
        "records: produced {} delivered {} dropped {}\n",
        stats.produced, stats.delivered, stats.dropped
    );
}

fn main() {
    if !can_run("cpu_starvation") {
        return;
    }
    run("{}", "default: waits >= 10ms");
    run(r#"{"min_delay":"0s"}"#, "every wait reported");
}
