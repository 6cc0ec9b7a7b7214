//! Integration tests of the cpu-starvation collector against the real kernel: busy threads
//! of this process pinned to one CPU compete for it; their thread ids are the markers.
//! Run serially; each skips (or fails under `TAPIO_REQUIRE_ALL_TESTS=1`) without BPF.

mod workload;

use std::collections::HashSet;
use std::time::Duration;

use tapio_ebpf_support::test_support::{
    assert_unprivileged_start_names_the_capability, bpf_ready, serial,
};
use tapio_plugin_api::HealthStatus;
use tapio_plugin_cpu_starvation::level::Level;
use tapio_plugin_cpu_starvation::CpuStarvation;
use tapio_plugin_testkit::{spec, Harness, Value};

fn wait_healthy(h: &Harness<CpuStarvation>) {
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
    spec::check::<CpuStarvation>("{}", Duration::from_millis(300)).unwrap();
}

#[test]
fn contention_on_one_cpu_gives_run_queue_latency_and_neighbours() {
    let _serial = serial();
    if !bpf_ready("contention_on_one_cpu_gives_run_queue_latency_and_neighbours") {
        return;
    }
    let config = format!(
        r#"{{"pid":{},"min_delay":"1ms","report_interval":"200ms","starvation_threshold":"1ms",
            "noisy_neighbor_share":0.3,"noisy_neighbor_min_wait":"1ms"}}"#,
        std::process::id()
    );
    // Other processes of the machine may take the pinned CPU too; a run in which none of
    // the hogs saw another hog as its main neighbour is repeated (at most 3 runs).
    let (hogs, events, tids) = (0..3)
        .map(|_| {
            let mut h = Harness::<CpuStarvation>::create(&config).unwrap();
            h.start().unwrap();
            wait_healthy(&h);
            let hogs = workload::busy_threads_on_one_cpu(4, Duration::from_millis(1200));
            std::thread::sleep(Duration::from_millis(300));
            h.stop().unwrap();
            let events = h.events();
            let tids: HashSet<u32> = hogs.iter().map(|t| t.tid).collect();
            (hogs, events, tids)
        })
        .find_map(|(hogs, events, tids)| {
            let hog_saw_hog = events.iter().any(|e| {
                e.event_type == "resource.noisy_neighbor"
                    && e.tid.is_some_and(|t| tids.contains(&t))
                    && e.int("resource.neighbor.thread.id")
                        .is_some_and(|nb| tids.contains(&(nb as u32)) && Some(nb as u32) != e.tid)
            });
            if !hog_saw_hog {
                for e in events
                    .iter()
                    .filter(|e| e.event_type == "resource.noisy_neighbor")
                {
                    eprintln!(
                        "run without a hog neighbour: tid {:?} neighbour {:?} {:?} (hogs {tids:?})",
                        e.tid,
                        e.int("resource.neighbor.thread.id"),
                        e.str("resource.neighbor.thread.name")
                    );
                }
            }
            hog_saw_hog.then_some((hogs, events, tids))
        })
        .expect("in 3 runs, no hog reported another hog as its noisy neighbour");

    let parent_comm = std::fs::read_to_string(format!(
        "/proc/self/task/{}/comm",
        // SAFETY: no preconditions.
        unsafe { libc::gettid() }
    ))
    .unwrap()
    .trim_end()
    .to_owned();
    for hog in &hogs {
        let delays: Vec<_> = events
            .iter()
            .filter(|e| {
                e.event_type == "resource.scheduling_delay"
                    && e.tid == Some(hog.tid)
                    && e.str("resource.scope") == Some("task")
            })
            .collect();
        assert!(
            !delays.is_empty(),
            "no scheduling delay for {} ({})",
            hog.name,
            hog.tid
        );
        let count: i128 = delays
            .iter()
            .map(|e| e.int("resource.cpu.wait.count").unwrap())
            .sum();
        assert!(count >= 2, "{}: {count} waits", hog.name);
        // A wait can end before the new thread renamed itself: then the kernel's comm is
        // still the one inherited from this test thread.
        assert!(
            delays
                .iter()
                .any(|e| e.str("thread.name") == Some(hog.name.as_str())),
            "no delay of {} carries its name",
            hog.name
        );
        for e in &delays {
            let name = e.str("thread.name");
            assert!(
                name == Some(hog.name.as_str()) || name == Some(parent_comm.as_str()),
                "{}: unexpected thread.name {name:?}",
                hog.name
            );
            assert_eq!(e.pid, Some(std::process::id()));
            let max = e.int("resource.cpu.wait.max_ns").unwrap() as u64;
            let total = e.int("resource.cpu.wait.total_ns").unwrap() as u64;
            assert!(
                max >= 1_000_000,
                "waits below min_delay are filtered in the kernel"
            );
            assert!(total >= max);
            assert_eq!(
                e.str("resource.starvation.level"),
                Some(Level::of(max).as_str())
            );
            assert_eq!(e.severity, Level::of(max).severity());
        }
        // Every wait was >= the 1 ms starvation threshold: reported at once too.
        assert!(events
            .iter()
            .any(|e| e.event_type == "resource.starvation" && e.tid == Some(hog.tid)));
    }

    // Who ran while a hog waited: another hog.
    let neighbours: Vec<_> = events
        .iter()
        .filter(|e| {
            e.event_type == "resource.noisy_neighbor" && e.tid.is_some_and(|t| tids.contains(&t))
        })
        .collect();
    assert!(!neighbours.is_empty(), "no noisy neighbour among the hogs");
    let among_hogs = neighbours.iter().any(|e| {
        let nb = e.int("resource.neighbor.thread.id").unwrap() as u32;
        tids.contains(&nb) && Some(nb) != e.tid
    });
    assert!(
        among_hogs,
        "the neighbours were not the other hogs: {neighbours:#?}"
    );
    for e in &neighbours {
        let Some(Value::Float(share)) = e.attr("resource.neighbor.share") else {
            panic!("no share: {e:?}");
        };
        assert!((0.3..=1.0).contains(share), "{share}");
        assert!(
            e.int("resource.neighbor.overlap_ns").unwrap()
                <= e.int("resource.cpu.wait.total_ns").unwrap()
        );
    }

    // The cgroup of the hogs has a summary too.
    assert!(events.iter().any(|e| {
        e.event_type == "resource.scheduling_delay"
            && e.str("resource.scope") == Some("cgroup")
            && e.int("resource.cpu.wait.tasks").unwrap() >= 3
    }));
}

#[test]
fn overload_drops_are_counted_exactly() {
    let _serial = serial();
    if !bpf_ready("overload_drops_are_counted_exactly") {
        return;
    }
    // Every wait of every task, into a one-page ring read only twice a second: the ring
    // overflows. After stop (detach, final drain) the counters must add up exactly.
    let mut h = Harness::<CpuStarvation>::create(
        r#"{"min_delay":"0s","ring_buffer_bytes":4096,"wakeup_bytes":1073741824,"poll_interval":"500ms","report_interval":"10s"}"#,
    )
    .unwrap();
    h.start().unwrap();
    wait_healthy(&h);
    workload::context_switch_flood(Duration::from_millis(1200));
    h.stop().unwrap();
    let stats = h.collector().kernel_stats().unwrap();
    assert!(
        stats.dropped > 0,
        "the flood did not overflow the ring: {stats:?}"
    );
    assert!(stats.delivered > 0, "{stats:?}");
    assert_eq!(stats.produced, stats.delivered + stats.dropped, "{stats:?}");
    assert_eq!(
        h.metric("kernel_dropped_events_total"),
        Some(stats.dropped as f64)
    );
    assert_eq!(h.metric("record_decode_errors_total"), Some(0.0));
}

#[test]
fn unprivileged_reports_missing_capability() {
    assert_unprivileged_start_names_the_capability::<CpuStarvation>(
        "unprivileged_reports_missing_capability",
    );
}
