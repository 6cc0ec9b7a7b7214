//! Kernel-side cost per event of the storage-io programs, under O_DIRECT writes each
//! followed by fsync on the block device of the temporary directory.
//!
//! `cargo bench -p tapio-plugin-storage-io` (root). Prints, per program, how often it ran
//! and its mean run time (`run_time_ns / run_cnt` with BPF run-time statistics on).

#[path = "../tests/it/workload.rs"]
#[allow(dead_code, reason = "shared with the integration tests")]
mod workload;

use std::time::{Duration, Instant};

use tapio_bpf_bench::{can_run, print_costs, CostMeter};
use tapio_plugin_storage_io::StorageIo;
use tapio_plugin_testkit::Harness;

const PROGRAMS: &[&str] = &[
    "block_io_start",
    "block_rq_issue",
    "block_rq_complete",
    "sys_enter_fsync",
    "sys_exit_fsync",
    "sys_enter_fdatasync",
    "sys_exit_fdatasync",
];

fn main() {
    if !can_run("storage_io") {
        return;
    }
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    if workload::block_device_of(dir.path()).is_none() {
        println!("skipping storage_io: the temporary directory is not on a block device, needs TMPDIR on a disk");
        return;
    }
    let meter = CostMeter::start().unwrap();
    let mut h = Harness::<StorageIo>::create("{}").unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    const WRITES: usize = 2000;
    let started = Instant::now();
    workload::direct_writes_with_fsync(dir.path(), WRITES).unwrap();
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    let costs = meter.read(PROGRAMS);
    h.stop().unwrap();
    println!(
        "storage-io: {WRITES} O_DIRECT 4 KiB writes + fsync in {took:?} ({:.0} write+fsync/s)",
        WRITES as f64 / took.as_secs_f64()
    );
    print_costs(
        "kernel-side cost per event (run_time_ns / run_cnt):",
        &costs,
    );
    let stats = h.collector().kernel_stats().unwrap();
    println!(
        "records: produced {} delivered {} dropped {}",
        stats.produced, stats.delivered, stats.dropped
    );
}
