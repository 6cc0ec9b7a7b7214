//! Kernel-side cost per event of the memory programs: RSS counter updates (every page
//! fault), memory-cgroup reclaim, and the allocation uprobes on this process's C library.
//!
//! `cargo bench -p tapio-plugin-memory` (root). Prints, per program, runs and mean run time
//! (`run_time_ns / run_cnt`), and the wall-clock cost of a malloc+free pair with and
//! without the uprobes (the uprobe trap itself is not in the programs' run time).

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tapio_bpf_bench::{can_run, print_costs, CostMeter};
use tapio_cgroup_info::Hierarchies;
use tapio_plugin_memory::Memory;
use tapio_plugin_testkit::Harness;

const PROGRAMS: &[&str] = &[
    "memcg_reclaim_begin",
    "memcg_reclaim_end",
    "direct_reclaim_begin",
    "direct_reclaim_end",
    "rss_stat",
    "malloc_enter",
    "malloc_exit",
    "calloc_enter",
    "calloc_exit",
    "realloc_enter",
    "realloc_exit",
    "free_enter",
    "mmap_enter",
    "mmap_exit",
    "munmap_enter",
];

/// Mean ns of a malloc+free pair of `size` bytes over `n` pairs.
fn malloc_free_ns(size: usize, n: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        // SAFETY: allocate and free at once.
        unsafe {
            let p = libc::malloc(size);
            std::hint::black_box(p);
            libc::free(p);
        }
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

/// Page-cache writes in a 32 MiB memory cgroup (reclaim), when cgroup v1 memory exists.
fn reclaim_workload() {
    let hierarchies = Hierarchies::read().unwrap();
    let Some(memory) = hierarchies.of_controller("memory") else {
        println!("(no cgroup v1 memory hierarchy: no reclaim workload)");
        return;
    };
    let dir = memory
        .mount_point
        .join(format!("tapio-bench-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("memory.limit_in_bytes"), (32u64 << 20).to_string()).unwrap();
    let tmp = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let script = format!(
        "echo $$ > {} && exec dd if=/dev/zero of={} bs=1M count=256",
        dir.join("cgroup.procs").display(),
        tmp.path().join("fill").display()
    );
    let status = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let _ = std::fs::metadata(&dir).map(|m| m.ino());
    std::fs::remove_dir(&dir).unwrap();
}

fn main() {
    if !can_run("memory") {
        return;
    }
    const PAIRS: usize = 200_000;
    let small_plain = malloc_free_ns(64, PAIRS);
    let large_plain = malloc_free_ns(2 << 20, PAIRS / 20);

    let meter = CostMeter::start().unwrap();
    let config = format!(
        r#"{{"pids":["{}"],"min_alloc_size":1048576,"rss_sample_interval":"1s"}}"#,
        std::process::id()
    );
    let mut h = Harness::<Memory>::create(&config).unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let small_probed = malloc_free_ns(64, PAIRS);
    let large_probed = malloc_free_ns(2 << 20, PAIRS / 20);
    // Page faults: RSS counter updates.
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(vec![1u8; 8 << 20]);
    }
    drop(held);
    let faults_took = started.elapsed();
    reclaim_workload();
    std::thread::sleep(Duration::from_millis(100));
    let costs = meter.read(PROGRAMS);
    h.stop().unwrap();
    println!(
        "memory: 512 MiB touched in {faults_took:?}; malloc+free pairs: {PAIRS} x 64 B, {} x 2 MiB",
        PAIRS / 20
    );
    print_costs(
        "kernel-side cost per event (run_time_ns / run_cnt):",
        &costs,
    );
    println!(
        "malloc+free of 64 B: {small_plain:.0} ns without uprobes, {small_probed:.0} ns with (uprobe traps included)"
    );
    println!(
        "malloc+free of 2 MiB: {large_plain:.0} ns without uprobes, {large_probed:.0} ns with"
    );
    let stats = h.collector().kernel_stats().unwrap();
    println!(
        "records: produced {} delivered {} dropped {}",
        stats.produced, stats.delivered, stats.dropped
    );
}
