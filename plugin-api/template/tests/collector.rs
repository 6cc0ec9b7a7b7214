//! The template's own tests, run in-process by tapio-plugin-testkit: no root, no host
//! binary, no dlopen.

use std::time::Duration;

use tapio_plugin_api::HealthStatus;
use tapio_plugin_dircount::DirCount;
use tapio_plugin_testkit::{spec, Harness};

fn config(path: &std::path::Path, interval: &str) -> String {
    format!(
        r#"{{"path":{:?},"interval":"{interval}"}}"#,
        path.display().to_string()
    )
}

#[test]
fn meets_the_collector_contract() {
    let dir = std::env::temp_dir();
    let events = spec::check::<DirCount>(&config(&dir, "20ms"), Duration::from_millis(200))
        .unwrap_or_else(|problems| panic!("contract violated:\n{problems}"));
    assert!(!events.is_empty(), "no sample within 200 ms");
}

#[test]
fn counts_the_entries_of_the_directory() {
    let dir = std::env::temp_dir().join(format!("dircount-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(dir.join(name), name).unwrap();
    }
    let mut h = Harness::<DirCount>::create(&config(&dir, "20ms")).unwrap();
    h.start().unwrap();
    h.wait_for(2, Duration::from_secs(2));
    h.stop().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    // Read after the stop: a sample taken while `wait_for` returned is in both counts.
    let events = h.events();
    assert!(events.len() >= 2, "got {} samples", events.len());
    assert_eq!(events[0].event_type, "dircount.sample");
    assert_eq!(events[0].int("dircount.entries"), Some(3));
    assert_eq!(h.metric("samples"), Some(events.len() as f64));
}

#[test]
fn an_unreadable_directory_degrades_health_and_emits_nothing() {
    let missing = std::env::temp_dir().join("dircount-test-does-not-exist");
    let mut h = Harness::<DirCount>::create(&config(&missing, "20ms")).unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let health = h.health();
    h.stop().unwrap();
    assert_eq!(health.status, HealthStatus::Degraded);
    assert!(health.reason.contains("cannot read"), "{}", health.reason);
    assert!(h.events().is_empty());
}

#[test]
fn a_full_host_ring_is_counted_as_dropped() {
    let mut h = Harness::<DirCount>::create(&config(&std::env::temp_dir(), "10ms")).unwrap();
    h.limit_sink(1); // the host's ring takes one event, then refuses
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    h.stop().unwrap();
    assert_eq!(h.events().len(), 1);
    assert!(h.metric("dropped").unwrap() >= 1.0);
    assert_eq!(h.metric("dropped"), Some(h.dropped() as f64));
}

#[test]
fn a_missing_path_is_a_config_error() {
    let err = Harness::<DirCount>::create(r#"{"interval":"1s"}"#).err();
    assert!(err.is_some(), "create accepted a config without path");
}
