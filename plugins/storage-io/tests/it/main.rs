//! Integration tests of the storage-io collector against the real kernel: real O_DIRECT
//! writes and fsyncs on the block device under the temporary directory, counted by the
//! writing thread's id (the marker). Run serially; each skips (or fails under
//! `TAPIO_REQUIRE_ALL_TESTS=1`) when BPF is unavailable.

mod workload;

use std::time::Duration;

use tapio_ebpf_support::test_support::{
    assert_unprivileged_start_names_the_capability, bpf_ready, serial, skip,
};
use tapio_plugin_api::HealthStatus;
use tapio_plugin_storage_io::StorageIo;
use tapio_plugin_testkit::{spec, Captured, Harness, Value};

/// Waits until the collector reports healthy (attached) or fails the test.
fn wait_healthy(h: &Harness<StorageIo>) {
    for _ in 0..100 {
        if h.health().status == HealthStatus::Healthy {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("collector not healthy: {:?}", h.health());
}

fn of_tid<'a>(events: &'a [Captured], event_type: &str, tid: u32) -> Vec<&'a Captured> {
    events
        .iter()
        .filter(|e| e.event_type == event_type && e.tid == Some(tid))
        .collect()
}

#[test]
fn collector_contract() {
    let _serial = serial();
    if !bpf_ready("collector_contract") {
        return;
    }
    spec::check::<StorageIo>("{}", Duration::from_millis(300)).unwrap();
}

#[test]
fn odirect_writes_with_fsync_give_block_events() {
    let _serial = serial();
    const TEST: &str = "odirect_writes_with_fsync_give_block_events";
    if !bpf_ready(TEST) {
        return;
    }
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let Some(device) = workload::block_device_of(dir.path()) else {
        skip(
            TEST,
            "the temporary directory is not on a block device",
            "TMPDIR on a disk",
        );
        return;
    };
    const WRITES: usize = 16;
    let mut h =
        Harness::<StorageIo>::create(r#"{"slow_threshold":"0s","summary_interval":"100ms"}"#)
            .unwrap();
    h.start().unwrap();
    wait_healthy(&h);

    let run = workload::direct_writes_with_fsync(dir.path(), WRITES).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    h.stop().unwrap();
    let events = h.events();

    let brief = |e: &Captured| -> String {
        format!(
            "sector={:?} bytes={:?} sync={:?} issuer={:?} latency={:?}",
            e.int("storage.io.sector"),
            e.int("storage.io.bytes"),
            e.attr("storage.io.sync"),
            e.attr("storage.io.attributed_at_issue"),
            e.int("storage.io.latency_ns")
        )
    };
    // Every O_DIRECT write is one block request of 4 KiB, issued by the writing thread, at
    // the sector FIEMAP gives for its block. (fsync adds metadata writes elsewhere.)
    let writes: Vec<&Captured> = of_tid(&events, "storage.io.slow", run.tid)
        .into_iter()
        .filter(|e| e.str("storage.io.operation") == Some("write"))
        .collect();
    let data: Vec<&Captured> = writes
        .iter()
        .copied()
        .filter(|w| {
            run.block_sectors
                .contains(&(w.int("storage.io.sector").unwrap() as u64))
        })
        .collect();
    let listing: Vec<String> = writes.iter().map(|e| brief(e)).collect();
    assert_eq!(
        data.len(),
        WRITES,
        "data writes at {:?} among the thread's writes:\n{}",
        run.block_sectors,
        listing.join("\n")
    );
    let mut sectors: Vec<u64> = data
        .iter()
        .map(|w| w.int("storage.io.sector").unwrap() as u64)
        .collect();
    sectors.sort_unstable();
    let mut expected = run.block_sectors.clone();
    expected.sort_unstable();
    assert_eq!(sectors, expected, "one request per block, each block once");
    for w in &data {
        assert_eq!(w.int("storage.io.bytes"), Some(4096));
        assert_eq!(w.pid, Some(std::process::id()));
        assert_eq!(w.str("storage.device.id"), Some(device.as_str()));
        assert_eq!(w.str("process.executable.name"), Some("tapio-sio-wr"));
        assert!(w.int("storage.io.latency_ns").unwrap() > 0);
        assert_eq!(
            w.attr("storage.io.attributed_at_issue"),
            Some(&Value::Bool(false))
        );
    }

    // Every fsync call, with the file's name and its latency.
    let fsyncs = of_tid(&events, "storage.io.slow", run.tid)
        .into_iter()
        .filter(|e| e.str("storage.io.operation") == Some("fsync"))
        .collect::<Vec<_>>();
    assert_eq!(fsyncs.len(), WRITES, "fsync calls: {fsyncs:#?}");
    for f in &fsyncs {
        assert_eq!(f.str("file.name"), Some(run.file_name.as_str()));
        assert_eq!(f.str("storage.device.id"), Some(device.as_str()));
        assert!(f.attr("error.type").is_none());
    }

    // The per-process summaries of this process count at least those.
    let pid = std::process::id();
    let summed = |event_type: &str, op: &str| -> i128 {
        events
            .iter()
            .filter(|e| {
                e.event_type == event_type
                    && e.pid == Some(pid)
                    && e.str("storage.io.scope") == Some("process")
                    && e.str("storage.io.operation") == Some(op)
                    && e.str("storage.device.id") == Some(device.as_str())
            })
            .map(|e| e.int("storage.io.count").unwrap())
            .sum()
    };
    assert!(summed("storage.io.write", "write") >= WRITES as i128);
    assert_eq!(summed("storage.io.fsync", "fsync"), WRITES as i128);
    let device_summary = events
        .iter()
        .find(|e| e.event_type == "storage.io.write" && e.str("storage.io.scope") == Some("device"))
        .expect("a device summary");
    assert!(
        device_summary.int("storage.io.latency.p99_ns").unwrap()
            >= device_summary.int("storage.io.latency.p50_ns").unwrap()
    );
    assert!(!device_summary
        .str("storage.io.latency.histogram")
        .unwrap()
        .is_empty());
}

#[test]
fn threshold_filters_fast_io() {
    let _serial = serial();
    const TEST: &str = "threshold_filters_fast_io";
    if !bpf_ready(TEST) {
        return;
    }
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    if workload::block_device_of(dir.path()).is_none() {
        skip(
            TEST,
            "the temporary directory is not on a block device",
            "TMPDIR on a disk",
        );
        return;
    }
    // With a 1 h threshold nothing is slow, but the summaries still count every I/O.
    let mut h =
        Harness::<StorageIo>::create(r#"{"slow_threshold":"1h","summary_interval":"100ms"}"#)
            .unwrap();
    h.start().unwrap();
    wait_healthy(&h);
    let run = workload::direct_writes_with_fsync(dir.path(), 4).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    h.stop().unwrap();
    let events = h.events();
    assert!(of_tid(&events, "storage.io.slow", run.tid).is_empty());
    let fsyncs: i128 = events
        .iter()
        .filter(|e| e.event_type == "storage.io.fsync" && e.pid == Some(std::process::id()))
        .map(|e| e.int("storage.io.count").unwrap())
        .sum();
    assert_eq!(fsyncs, 4);
}

#[test]
fn unprivileged_reports_missing_capability() {
    assert_unprivileged_start_names_the_capability::<StorageIo>(
        "unprivileged_reports_missing_capability",
    );
}
