//! One member: the collector contract, the healthy → stopped → restarted lifecycle,
//! thresholds on real values, and config validation.

use std::time::Duration;

use serde_json::json;
use tapio_plugin_api::{HealthStatus, Severity};
use tapio_plugin_etcd::EtcdCollector;
use tapio_plugin_testkit::{spec, Captured, Harness, Value};

use crate::peer::{free_port, Member, MemberSpec};
use crate::{can_run, serial};

/// Polls fast so that the tests take seconds.
pub fn fast_config(endpoint: &str, extra: serde_json::Value) -> String {
    let mut config = json!({
        "endpoints": [endpoint],
        "interval": "200ms",
        "timeout": "1s",
        "max_backoff": "800ms",
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    config.to_string()
}

pub fn of_type<'a>(events: &'a [Captured], t: &str) -> Vec<&'a Captured> {
    events.iter().filter(|e| e.event_type == t).collect()
}

pub fn has(events: &[Captured], t: &str) -> bool {
    events.iter().any(|e| e.event_type == t)
}

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn meets_the_collector_contract() {
    if !can_run("meets_the_collector_contract") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let member = Member::spawn(MemberSpec::single(dir.path(), None));
    member.wait_healthy(None, WAIT);
    let config = fast_config(&member.spec.client_url(), json!({}));
    let events = spec::check::<EtcdCollector>(&config, Duration::from_secs(1)).unwrap();
    assert!(has(&events, "etcd.endpoint.status"), "{events:?}");
}

#[test]
fn healthy_then_stopped_then_restarted() {
    if !can_run("healthy_then_stopped_then_restarted") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut member = Member::spawn(MemberSpec::single(dir.path(), None));
    member.wait_healthy(None, WAIT);
    let url = member.spec.client_url();
    let mut h = Harness::<EtcdCollector>::create(&fast_config(&url, json!({}))).unwrap();
    h.start().unwrap();

    // Healthy: status events carry what etcd itself reports.
    let events = h.wait_until(WAIT, |e| of_type(e, "etcd.endpoint.status").len() >= 2);
    let status = of_type(&events, "etcd.endpoint.status")[1].clone();
    let (member_id, db_size) = member.status(None);
    assert_eq!(status.severity, Severity::Info);
    assert_eq!(status.str("etcd.endpoint"), Some(url.as_str()));
    assert_eq!(status.str("server.address"), Some("127.0.0.1"));
    assert_eq!(
        status.int("server.port"),
        Some(member.spec.client_port.into())
    );
    assert_eq!(status.str("etcd.member.id"), Some(member_id.as_str()));
    assert_eq!(status.str("etcd.version"), Some("3.4.23"));
    assert_eq!(status.attr("etcd.healthy"), Some(&Value::Bool(true)));
    assert_eq!(status.attr("etcd.leader.present"), Some(&Value::Bool(true)));
    assert_eq!(status.attr("etcd.leader.is_self"), Some(&Value::Bool(true)));
    assert_eq!(status.int("etcd.db.size_bytes"), Some(db_size.into()));
    assert!(matches!(status.attr("etcd.health.latency_ms"), Some(Value::Float(ms)) if *ms > 0.0));
    assert!(
        events
            .iter()
            .all(|e| e.event_type == "etcd.endpoint.status"),
        "{events:?}"
    );
    assert_eq!(h.health().status, HealthStatus::Healthy);

    // Writes make the WAL fsync: the next status carries the latency over its interval.
    for i in 0..5 {
        member.etcdctl(&["put", &format!("key{i}"), "value"], None);
    }
    let events = h.wait_until(WAIT, |e| {
        of_type(e, "etcd.endpoint.status")
            .iter()
            .any(|s| s.int("etcd.wal.fsync.count").is_some_and(|n| n >= 1))
    });
    let with_fsync = of_type(&events, "etcd.endpoint.status")
        .into_iter()
        .find(|s| s.int("etcd.wal.fsync.count").is_some())
        .unwrap();
    assert!(
        matches!(with_fsync.attr("etcd.wal.fsync.p99_ms"), Some(Value::Float(ms)) if *ms > 0.0)
    );
    assert!(
        matches!(with_fsync.attr("etcd.wal.fsync.avg_ms"), Some(Value::Float(ms)) if *ms > 0.0)
    );

    // Stopped: one unreachable event, degraded health naming the endpoint, no invented data.
    member.kill();
    h.take_events();
    let events = h.wait_until(WAIT, |e| has(e, "etcd.endpoint.unreachable"));
    let down = of_type(&events, "etcd.endpoint.unreachable");
    assert_eq!(down.len(), 1, "{events:?}");
    assert_eq!(down[0].severity, Severity::Error);
    assert_eq!(down[0].str("error.type"), Some("connection_failed"));
    assert_eq!(down[0].str("etcd.member.id"), Some(member_id.as_str()));
    std::thread::sleep(Duration::from_millis(1500));
    let health = h.health();
    assert_eq!(health.status, HealthStatus::Degraded);
    assert!(
        health.reason.contains(&url) && health.reason.contains("unreachable"),
        "{health:?}"
    );
    let during_outage = h.take_events();
    assert!(
        during_outage
            .iter()
            .all(|e| e.event_type == "etcd.endpoint.unreachable"),
        "only the one unreachable event while down: {during_outage:?}"
    );
    assert_eq!(
        of_type(&during_outage, "etcd.endpoint.unreachable").len(),
        1
    );
    assert!(h.metric("unreachable_polls_total").unwrap() >= 3.0);

    // Restarted: recovers by itself and notices the restart.
    member.start();
    let events = h.wait_until(WAIT, |e| {
        has(e, "etcd.endpoint.recovered") && has(e, "etcd.endpoint.status")
    });
    let recovered = of_type(&events, "etcd.endpoint.recovered");
    assert_eq!(recovered.len(), 1, "{events:?}");
    assert_eq!(recovered[0].str("etcd.recovered_from"), Some("unreachable"));
    assert!(
        matches!(recovered[0].attr("etcd.outage.duration_ms"), Some(Value::Float(ms)) if *ms >= 1500.0)
    );
    assert!(has(&events, "etcd.member.restarted"), "{events:?}");
    assert!(
        !has(&events, "etcd.leader.changed"),
        "a restart is not a leader change: {events:?}"
    );
    assert_eq!(h.health().status, HealthStatus::Healthy);
    h.stop().unwrap();
}

#[test]
fn thresholds_apply_to_real_values() {
    if !can_run("thresholds_apply_to_real_values") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let member = Member::spawn(MemberSpec::single(dir.path(), None));
    member.wait_healthy(None, WAIT);
    // Thresholds below anything real: every warning must fire, with the measured values.
    let config = fast_config(
        &member.spec.client_url(),
        json!({
            "db_size_warning_bytes": 1024,
            "health_latency_warning": "1us",
            "wal_fsync_warning": "1ns",
        }),
    );
    let mut h = Harness::<EtcdCollector>::create(&config).unwrap();
    h.start().unwrap();
    let events = h.wait_until(WAIT, |e| of_type(e, "etcd.endpoint.status").len() >= 2);
    let (_, db_size) = member.status(None);
    let db = of_type(&events, "etcd.db.size_exceeded");
    assert_eq!(db.len(), 1, "raised once, not per poll: {events:?}");
    assert_eq!(db[0].severity, Severity::Warning);
    assert_eq!(db[0].int("etcd.db.size_bytes"), Some(db_size.into()));
    assert_eq!(db[0].int("etcd.db.threshold_bytes"), Some(1024));
    assert_eq!(of_type(&events, "etcd.health.slow").len(), 1);
    assert_eq!(
        of_type(&events, "etcd.endpoint.status")[1].severity,
        Severity::Warning
    );

    member.etcdctl(&["put", "k", "v"], None);
    let events = h.wait_until(WAIT, |e| has(e, "etcd.wal.fsync_slow"));
    let slow = of_type(&events, "etcd.wal.fsync_slow");
    assert_eq!(slow.len(), 1, "{events:?}");
    assert!(slow[0].int("etcd.wal.fsync.count").is_some_and(|n| n >= 1));
    h.stop().unwrap();
}

#[test]
fn unreachable_from_the_start_reports_and_invents_nothing() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut h = Harness::<EtcdCollector>::create(&fast_config(&url, json!({}))).unwrap();
    h.start().unwrap();
    let events = h.wait_until(WAIT, |e| has(e, "etcd.endpoint.unreachable"));
    std::thread::sleep(Duration::from_millis(600));
    let health = h.health();
    h.stop().unwrap();
    assert_eq!(h.events().len(), 1, "{events:?}");
    assert_eq!(events[0].str("error.type"), Some("connection_failed"));
    assert_eq!(health.status, HealthStatus::Degraded);
    assert!(health.reason.contains(&url), "{health:?}");
}

#[test]
fn config_errors_are_reported_together() {
    let config = json!({
        "endpoints": ["ftp://x", "http://127.0.0.1:2379/v3"],
        "cert_file": "/nonexistent/client.pem",
        "interval": "0s",
    })
    .to_string();
    let err = Harness::<EtcdCollector>::create(&config)
        .err()
        .expect("must fail");
    let message = err.message.to_string();
    for expected in [
        "ftp://x",
        "must not have a path",
        "key_file is set but",
        "interval must be",
    ] {
        if expected == "key_file is set but" {
            assert!(
                message.contains("cert_file is set but key_file is not"),
                "{message}"
            );
        } else {
            assert!(
                message.contains(expected),
                "{expected:?} missing in {message}"
            );
        }
    }

    let config = json!({"ca_file": "/nonexistent/ca.pem"}).to_string();
    let err = Harness::<EtcdCollector>::create(&config)
        .err()
        .expect("must fail");
    assert!(
        err.message
            .contains("cannot read ca_file \"/nonexistent/ca.pem\""),
        "{err}"
    );
}
