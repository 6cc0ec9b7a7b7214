//! Loading: the example plugin's events reach `--jsonl`; a third-party plugin built outside
//! the workspace is hot-loaded into a running host; a replacement swaps builds without
//! interrupting other plugins.

use std::time::{Duration, Instant};

use crate::support::{
    build_third_party, install, plugin_api_dir, plugin_lib, wait_for, Host, HostOptions,
};

fn example_fast() -> String {
    "collectors:\n  example:\n    config:\n      interval: 50ms\n".to_owned()
}

#[test]
fn the_example_plugin_events_reach_jsonl_within_2s() {
    let host = Host::start(HostOptions {
        yaml: example_fast(),
        ..HostOptions::default()
    });
    let started = Instant::now();
    install(&plugin_lib("example"), &host.plugins, "example.so");
    let events = host
        .wait_events(Duration::from_secs(2), |e| {
            e.iter().any(|e| e["type"] == "example.heartbeat")
        })
        .unwrap_or_else(|| panic!("no heartbeat within 2 s; log:\n{}", host.log()));
    eprintln!("first heartbeat after {:?}", started.elapsed());
    let e = events
        .iter()
        .find(|e| e["type"] == "example.heartbeat")
        .unwrap();
    for key in [
        "id",
        "timestamp",
        "type",
        "source",
        "severity",
        "attributes",
        "trace_id",
        "span_id",
    ] {
        assert!(!e[key].is_null(), "key {key} missing in {e}");
    }
    assert_eq!(e["source"], "example");
    assert_eq!(e["severity"], "info");
    assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(e["trace_id"].as_str().unwrap().len(), 32);
    host.expect_log(
        &["plugin loaded", "example", "0.1.0", "example.so"],
        Duration::from_secs(1),
    );
}

#[test]
fn a_third_party_plugin_built_outside_the_workspace_loads_into_a_running_host() {
    let lib = build_third_party("acme-heartbeat", "1.2.3", &plugin_api_dir());
    let host = Host::start(HostOptions {
        yaml: "collectors:\n  acme-heartbeat:\n    config:\n      interval: 50ms\n".to_owned(),
        ..HostOptions::default()
    });
    install(&lib, &host.plugins, "acme.so");
    let events = host
        .wait_events(Duration::from_secs(5), |e| {
            e.iter().any(|e| e["source"] == "acme-heartbeat")
        })
        .unwrap_or_else(|| panic!("third-party events never arrived; log:\n{}", host.log()));
    let e = events
        .iter()
        .find(|e| e["source"] == "acme-heartbeat")
        .unwrap();
    assert_eq!(e["attributes"]["plugin.build"], "1.2.3");
    host.expect_log(
        &["plugin loaded", "acme-heartbeat", "1.2.3"],
        Duration::from_secs(1),
    );
}

#[test]
fn replacing_a_running_plugin_swaps_builds_and_never_stops_the_others() {
    let v1 = build_third_party("swapper", "1.0.0", &plugin_api_dir());
    let v2 = build_third_party("swapper", "2.0.0", &plugin_api_dir());
    let host = Host::start(HostOptions {
        yaml: "collectors:\n  swapper:\n    config:\n      interval: 20ms\n  example:\n    config:\n      interval: 20ms\n".to_owned(),
        preinstalled: vec![(v1, "swapper.so".into()), (plugin_lib("example"), "example.so".into())],
        ..HostOptions::default()
    });
    host.wait_events(Duration::from_secs(5), |e| {
        e.iter().any(|e| e["attributes"]["plugin.build"] == "1.0.0")
    })
    .expect("version 1 runs");
    std::thread::sleep(Duration::from_millis(300));

    let replaced_at = Instant::now();
    install(&v2, &host.plugins, "swapper.so"); // rename over the old file, like `mv`
    let events = host
        .wait_events(Duration::from_secs(2), |e| {
            e.iter().any(|e| e["attributes"]["plugin.build"] == "2.0.0")
        })
        .unwrap_or_else(|| {
            panic!(
                "version 2 events did not flow within 2 s; log:\n{}",
                host.log()
            )
        });
    eprintln!(
        "version 2 flowing {:?} after the rename",
        replaced_at.elapsed()
    );
    host.expect_log(
        &["plugin stopped", "swapper", "1.0.0"],
        Duration::from_secs(1),
    );
    host.expect_log(
        &["plugin replaced", "swapper", "2.0.0", "previous=1.0.0"],
        Duration::from_secs(1),
    );

    // After the swap, no more version 1 events.
    std::thread::sleep(Duration::from_millis(300));
    let events_after = host.events();
    let last_v1 = events_after
        .iter()
        .rposition(|e| e["attributes"]["plugin.build"] == "1.0.0")
        .unwrap();
    let first_v2 = events_after
        .iter()
        .position(|e| e["attributes"]["plugin.build"] == "2.0.0")
        .unwrap();
    assert!(
        last_v1 < first_v2,
        "version 1 emitted after version 2 started"
    );
    assert!(events.len() <= events_after.len());

    // The example plugin never paused: no gap between its heartbeats above 500 ms.
    let times: Vec<u128> = events_after
        .iter()
        .filter(|e| e["source"] == "example")
        .map(|e| time_ns(e["timestamp"].as_str().unwrap()))
        .collect();
    assert!(times.len() > 20, "too few example events: {}", times.len());
    let max_gap_ms = times
        .windows(2)
        .map(|w| (w[1] - w[0]) / 1_000_000)
        .max()
        .unwrap();
    assert!(
        max_gap_ms < 500,
        "example heartbeats paused for {max_gap_ms} ms during the swap"
    );
    assert_eq!(
        host.metric("tapio_plugin_reloads_total", "plugin=\"swapper\""),
        Some(1.0)
    );
}

/// Nanoseconds of an RFC 3339 `...THH:MM:SS.nnnnnnnnnZ` timestamp within its day (enough to
/// compare nearby events).
fn time_ns(ts: &str) -> u128 {
    let t = &ts[ts.find('T').unwrap() + 1..ts.len() - 1];
    let (hms, frac) = t.split_once('.').unwrap();
    let mut parts = hms.split(':').map(|p| p.parse::<u128>().unwrap());
    let (h, m, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    ((h * 60 + m) * 60 + s) * 1_000_000_000 + frac.parse::<u128>().unwrap()
}

#[test]
fn a_plugin_disabled_in_the_config_is_loaded_but_not_started() {
    let host = Host::start(HostOptions {
        yaml: "collectors:\n  example:\n    enabled: false\n".to_owned(),
        preinstalled: vec![(plugin_lib("example"), "example.so".into())],
        ..HostOptions::default()
    });
    host.expect_log(
        &[
            "loaded but not started",
            "collectors.example.enabled is false",
        ],
        Duration::from_secs(5),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(host.events_of("example").is_empty());
    assert!(wait_for(Duration::from_secs(1), || host
        .metric("tapio_plugins_active", "")
        .filter(|v| *v == 0.0))
    .is_some());
}
