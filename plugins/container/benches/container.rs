//! Kernel-side cost per event of the container programs: cgroups created and removed,
//! processes moved into a container cgroup and exiting there (sched_process_exit runs for
//! every exit of the machine and filters on the watch list).
//!
//! `cargo bench -p tapio-plugin-container` (root). Prints, per program, runs and mean run
//! time (`run_time_ns / run_cnt`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tapio_bpf_bench::{can_run, print_costs, CostMeter};
use tapio_cgroup_info::Hierarchies;
use tapio_plugin_container::ContainerCollector;
use tapio_plugin_testkit::Harness;

const PROGRAMS: &[&str] = &[
    "cgroup_mkdir",
    "cgroup_rmdir",
    "cgroup_attach_task",
    "mark_victim",
    "sched_process_exit",
];

fn main() {
    if !can_run("container") {
        return;
    }
    let hierarchies = Hierarchies::read().unwrap();
    let Some(v2) = hierarchies.get(0) else {
        println!("skipping container: cgroup v2 is not mounted, needs a cgroup2 mount");
        return;
    };
    let meter = CostMeter::start().unwrap();
    let mut h = Harness::<ContainerCollector>::create("{}").unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let parent = v2
        .mount_point
        .join(format!("tapio-bench-{}", std::process::id()));
    std::fs::create_dir(&parent).unwrap();
    const CONTAINERS: usize = 200;
    const EXITS_PER_CONTAINER: usize = 5;
    let started = Instant::now();
    for i in 0..CONTAINERS {
        let id = format!("{:064x}", i + 1);
        let dir = parent.join(format!("docker-{id}.scope"));
        std::fs::create_dir(&dir).unwrap();
        let procs = dir.join("cgroup.procs");
        // Each `sh` moves itself in, then runs short-lived children there.
        let script = format!(
            "echo $$ > {} && for i in $(seq {EXITS_PER_CONTAINER}); do /bin/true; done",
            procs.display()
        );
        let status = Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_dir(&dir).unwrap();
    }
    let took = started.elapsed();
    std::fs::remove_dir(&parent).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let costs = meter.read(PROGRAMS);
    h.stop().unwrap();
    println!("container: {CONTAINERS} containers x {EXITS_PER_CONTAINER} exits in {took:?}");
    print_costs(
        "kernel-side cost per event (run_time_ns / run_cnt):",
        &costs,
    );
    let events = h.events();
    println!(
        "events: {} ({} exits)",
        events.len(),
        events
            .iter()
            .filter(|e| e.event_type == "container.exit")
            .count()
    );
}
