//! Integration tests of the memory collector against the real kernel: a memory-limited
//! cgroup made by the test (reclaim), and workload processes started by the test (RSS
//! growth, outstanding allocations), each recognised by its own pid or cgroup. Run
//! serially; each skips (or fails under `TAPIO_REQUIRE_ALL_TESTS=1`) without BPF.

mod child;

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use child::{child_wait_for_end, child_wait_for_go, Workload, WORKLOAD_ENV};
use tapio_cgroup_info::Hierarchies;
use tapio_ebpf_support::test_support::{
    assert_unprivileged_start_names_the_capability, bpf_ready, serial, skip,
};
use tapio_plugin_api::HealthStatus;
use tapio_plugin_memory::Memory;
use tapio_plugin_testkit::{spec, Harness};

const MIB: u64 = 1 << 20;

fn wait_healthy(h: &Harness<Memory>) {
    for _ in 0..100 {
        if h.health().status == HealthStatus::Healthy {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("collector not healthy: {:?}", h.health());
}

#[test]
fn collector_contract() {
    let _serial = serial();
    if !bpf_ready("collector_contract") {
        return;
    }
    spec::check::<Memory>("{}", Duration::from_millis(300)).unwrap();
}

/// A test cgroup in the memory hierarchy, removed on drop.
struct MemoryCgroup {
    dir: std::path::PathBuf,
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        for pid in std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
        {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: plain syscall.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("cannot remove {}", self.dir.display());
    }
}

#[test]
fn memcg_reclaim_gives_memory_pressure() {
    let _serial = serial();
    const TEST: &str = "memcg_reclaim_gives_memory_pressure";
    if !bpf_ready(TEST) {
        return;
    }
    let hierarchies = Hierarchies::read().unwrap();
    let Some(memory) = hierarchies.of_controller("memory") else {
        skip(
            TEST,
            "no cgroup v1 memory hierarchy",
            "cgroup v1 memory controller mounted",
        );
        return;
    };
    let cg = MemoryCgroup {
        dir: memory
            .mount_point
            .join(format!("tapio-it-mem-{}", std::process::id())),
    };
    std::fs::create_dir(&cg.dir).unwrap();
    std::fs::write(cg.dir.join("memory.limit_in_bytes"), (32 * MIB).to_string()).unwrap();
    let cgroup_id = std::fs::metadata(&cg.dir).unwrap().ino();

    let mut h = Harness::<Memory>::create(r#"{"reclaim_interval":"300ms"}"#).unwrap();
    h.start().unwrap();
    wait_healthy(&h);

    // Writing 128 MiB through the page cache of a 32 MiB cgroup: the cgroup reclaims.
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let procs = cg.dir.join("cgroup.procs");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {} && exec dd if=/dev/zero of={} bs=1M count=128",
            procs.display(),
            dir.path().join("fill").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    // Reclaim happens either way; when writeback cannot keep up, the v1 memcg OOM-kills dd
    // (SIGKILL) after reclaiming, which is also fine for this test.
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.success() || status.signal() == Some(9),
        "dd failed: {status:?}"
    );

    let events = h.wait_until(Duration::from_secs(3), |events| {
        events.iter().any(|e| {
            e.event_type == "container.memory_pressure"
                && e.int("cgroup.id") == Some(cgroup_id.into())
        })
    });
    h.stop().unwrap();
    let ours: Vec<_> = events
        .iter()
        .filter(|e| {
            e.event_type == "container.memory_pressure"
                && e.int("cgroup.id") == Some(cgroup_id.into())
        })
        .collect();
    assert!(!ours.is_empty(), "no memory pressure for the test cgroup");
    let reclaims: i128 = ours
        .iter()
        .map(|e| e.int("memory.reclaim.memcg_count").unwrap())
        .sum();
    let pages: i128 = ours
        .iter()
        .map(|e| e.int("memory.reclaim.pages").unwrap())
        .sum();
    assert!(
        reclaims > 0 && pages > 0,
        "reclaims {reclaims}, pages {pages}"
    );
    assert!(ours
        .iter()
        .all(|e| e.int("cgroup.hierarchy") == Some(memory.id.into())));
    assert!(ours
        .iter()
        .any(|e| e.str("process.executable.name") == Some("dd")));
    assert!(ours
        .iter()
        .any(|e| e.str("cgroup.path")
            == Some(format!("/tapio-it-mem-{}", std::process::id()).as_str())));
}

#[test]
fn rss_growth_of_a_process() {
    if let Ok(mode) = std::env::var(WORKLOAD_ENV) {
        assert_eq!(mode, "grow");
        child_wait_for_go();
        let mut held = Vec::new();
        for _ in 0..6 {
            held.push(vec![1u8; (32 * MIB) as usize]);
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("GREW {}", held.len() as u64 * 32 * MIB);
        child_wait_for_end();
        return;
    }
    let _serial = serial();
    if !bpf_ready("rss_growth_of_a_process") {
        return;
    }
    let mut w = Workload::start("rss_growth_of_a_process", "grow");
    let config = format!(
        r#"{{"pid":{},"rss_sample_interval":"20ms","rss_growth_threshold":{},"rss_growth_window":"10s"}}"#,
        w.pid(),
        128 * MIB
    );
    let mut h = Harness::<Memory>::create(&config).unwrap();
    h.start().unwrap();
    wait_healthy(&h);
    w.go();
    w.expect("GREW");
    let events = h.wait_until(Duration::from_secs(3), |events| {
        events.iter().any(|e| e.event_type == "memory.rss_growth")
    });
    h.stop().unwrap();
    let growths: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "memory.rss_growth")
        .collect();
    assert_eq!(growths.len(), 1, "{growths:#?}");
    let g = growths[0];
    assert_eq!(g.pid, Some(w.pid()));
    let grown = g.int("memory.rss.growth_bytes").unwrap() as u64;
    assert!(grown >= 128 * MIB, "{grown}");
    assert!(grown <= 200 * MIB, "{grown}");
    assert!(g.int("memory.rss.anon_bytes").unwrap() as u64 >= 128 * MIB);
    assert_eq!(
        g.int("memory.rss.bytes").unwrap() - g.int("memory.rss.from_bytes").unwrap(),
        grown as i128
    );
}

#[test]
fn outstanding_allocations_with_their_caller() {
    if let Ok(mode) = std::env::var(WORKLOAD_ENV) {
        assert_eq!(mode, "alloc");
        child_wait_for_go();
        let size = (8 * MIB) as usize;
        // SAFETY: plain C allocations, touched within their size, one freed once.
        let addrs: Vec<usize> = unsafe {
            let a: Vec<*mut libc::c_void> = (0..3).map(|_| libc::malloc(size)).collect();
            for p in &a {
                std::ptr::write_bytes(p.cast::<u8>(), 1, size);
            }
            libc::free(a[1]);
            a.iter().map(|p| *p as usize).collect()
        };
        println!("ALLOCS {:#x} {:#x} {:#x}", addrs[0], addrs[1], addrs[2]);
        child_wait_for_end();
        return;
    }
    let _serial = serial();
    if !bpf_ready("outstanding_allocations_with_their_caller") {
        return;
    }
    let mut w = Workload::start("outstanding_allocations_with_their_caller", "alloc");
    let config = format!(
        r#"{{"pids":["{}"],"min_alloc_size":{},"min_alloc_age":"300ms","scan_interval":"100ms","pid":{}}}"#,
        w.pid(),
        4 * MIB,
        w.pid()
    );
    let mut h = Harness::<Memory>::create(&config).unwrap();
    h.start().unwrap();
    wait_healthy(&h);
    assert_eq!(h.collector().tracked_pids(), vec![w.pid()]);
    w.go();
    let addrs: Vec<String> = w
        .expect("ALLOCS")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let events = h.wait_until(Duration::from_secs(3), |events| {
        events
            .iter()
            .filter(|e| e.event_type == "memory.allocation.outstanding")
            .count()
            >= 2
    });
    // Nothing more comes: each allocation is reported once, the freed one never.
    std::thread::sleep(Duration::from_millis(500));
    let events = {
        let mut all = events;
        all.extend(h.take_events().into_iter().skip(all.len()));
        all
    };
    h.stop().unwrap();
    let outstanding: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "memory.allocation.outstanding")
        .collect();
    let mut reported: Vec<&str> = outstanding
        .iter()
        .map(|e| e.str("memory.allocation.address").unwrap())
        .collect();
    reported.sort_unstable();
    let mut expected = vec![addrs[0].as_str(), addrs[2].as_str()];
    expected.sort_unstable();
    assert_eq!(reported, expected, "{outstanding:#?}");
    let exe = std::env::current_exe().unwrap();
    for e in &outstanding {
        assert_eq!(e.pid, Some(w.pid()));
        assert_eq!(
            e.int("memory.allocation.size_bytes"),
            Some((8 * MIB).into())
        );
        assert_eq!(e.str("memory.allocation.function"), Some("malloc"));
        assert!(e.int("memory.allocation.age_ns").unwrap() >= 300_000_000);
        // The caller is this test binary's code (the workload above).
        let module = e.str("memory.allocation.caller.module").unwrap();
        assert_eq!(
            std::path::Path::new(module).file_name(),
            exe.file_name(),
            "{e:#?}"
        );
        assert!(e
            .str("memory.allocation.caller.offset")
            .unwrap()
            .starts_with("0x"));
    }
    assert!(h.metric("allocations_tracked_total").unwrap() >= 3.0);
    assert_eq!(h.metric("allocations_outstanding"), Some(2.0));
}

#[test]
fn unknown_pid_degrades_allocation_tracking() {
    let _serial = serial();
    if !bpf_ready("unknown_pid_degrades_allocation_tracking") {
        return;
    }
    // pid_max is at most 4194304: this pid cannot exist.
    let mut h = Harness::<Memory>::create(r#"{"pids":["4194305"]}"#).unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let health = h.health();
    h.stop().unwrap();
    assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
    assert!(health.reason.contains("4194305"), "{}", health.reason);
}

#[test]
fn unprivileged_reports_missing_capability() {
    assert_unprivileged_start_names_the_capability::<Memory>(
        "unprivileged_reports_missing_capability",
    );
}
