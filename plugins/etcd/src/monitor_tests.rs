//! Transition tests of the monitor, with hand-made poll outcomes.

use super::*;
use crate::histogram::Histogram;

const MS: u64 = 1_000_000;

fn monitor() -> Monitor {
    Monitor::new(
        Endpoint::parse("http://127.0.0.1:2379").unwrap(),
        Thresholds {
            health_latency: Duration::from_millis(500),
            db_size_bytes: 1 << 20,
            wal_fsync_p99: Duration::from_millis(100),
        },
        true,
    )
}

fn healthy(latency_ms: u64) -> HealthReply {
    HealthReply {
        latency: Duration::from_millis(latency_ms),
        healthy: true,
        reason: None,
    }
}

fn snapshot(leader_changes: u64, start: f64) -> Snapshot {
    Snapshot {
        has_leader: Some(true),
        is_leader: Some(true),
        leader_changes: Some(leader_changes),
        db_size_bytes: Some(20_480),
        process_start_time: Some(start),
        member_id: Some("abc".into()),
        version: Some("3.4.23".into()),
        ..Snapshot::default()
    }
}

fn reached(s: Snapshot) -> Observation {
    Observation::Reached {
        health: healthy(3),
        metrics: Ok(s),
    }
}

fn down() -> Observation {
    Observation::Unreachable {
        kind: "connection_failed",
        message: "cannot connect: refused".into(),
    }
}

fn types(events: &[OwnedEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type).collect()
}

#[test]
fn healthy_poll_emits_one_info_status_with_metrics() {
    let mut m = monitor();
    assert_eq!(m.health(), EndpointHealth::Pending);
    let events = m.observe(1, reached(snapshot(1, 10.0)));
    assert_eq!(types(&events), ["etcd.endpoint.status"]);
    let status = &events[0];
    assert_eq!(status.severity, Severity::Info);
    assert_eq!(
        status.attr("etcd.db.size_bytes"),
        Some(&Value::UInt(20_480))
    );
    assert_eq!(
        status.attr("etcd.member.id"),
        Some(&Value::Str("abc".into()))
    );
    assert_eq!(status.attr("server.port"), Some(&Value::UInt(2379)));
    assert_eq!(m.health(), EndpointHealth::Healthy);
}

#[test]
fn unreachable_is_reported_once_then_recovery_once() {
    let mut m = monitor();
    m.observe(0, reached(snapshot(1, 10.0)));
    let first = m.observe(100 * MS, down());
    assert_eq!(types(&first), ["etcd.endpoint.unreachable"]);
    assert_eq!(first[0].severity, Severity::Error);
    assert_eq!(
        first[0].attr("error.type"),
        Some(&Value::Str("connection_failed".into()))
    );
    assert!(m.observe(200 * MS, down()).is_empty());
    assert_eq!(m.consecutive_failures(), 2);
    assert!(
        matches!(m.health(), EndpointHealth::Unhealthy(r) if r.contains("unreachable (2 failed polls)"))
    );
    let back = m.observe(400 * MS, reached(snapshot(1, 10.0)));
    assert_eq!(
        types(&back),
        ["etcd.endpoint.recovered", "etcd.endpoint.status"]
    );
    assert_eq!(
        back[0].attr("etcd.outage.duration_ms"),
        Some(&Value::Float(300.0))
    );
    assert_eq!(m.consecutive_failures(), 0);
    assert_eq!(m.health(), EndpointHealth::Healthy);
}

#[test]
fn restart_is_detected_and_counters_rebaselined() {
    let mut m = monitor();
    m.observe(0, reached(snapshot(5, 10.0)));
    m.observe(1, down());
    // After a restart the member counts leader changes from zero again: no false change.
    let events = m.observe(2, reached(snapshot(1, 20.0)));
    assert_eq!(
        types(&events),
        [
            "etcd.endpoint.recovered",
            "etcd.member.restarted",
            "etcd.endpoint.status"
        ]
    );
    let events = m.observe(3, reached(snapshot(2, 20.0)));
    assert_eq!(
        types(&events),
        ["etcd.leader.changed", "etcd.endpoint.status"]
    );
    assert_eq!(events[0].attr("etcd.leader.changes"), Some(&Value::UInt(1)));
    assert_eq!(events[0].severity, Severity::High);
}

#[test]
fn no_leader_is_critical_once_and_shown_in_health() {
    let mut m = monitor();
    m.observe(0, reached(snapshot(1, 10.0)));
    let leaderless = Snapshot {
        has_leader: Some(false),
        ..snapshot(1, 10.0)
    };
    let events = m.observe(1, reached(leaderless.clone()));
    assert_eq!(
        types(&events),
        ["etcd.leader.missing", "etcd.endpoint.status"]
    );
    assert_eq!(events[0].severity, Severity::Critical);
    assert_eq!(events[1].severity, Severity::Critical);
    assert_eq!(
        types(&m.observe(2, reached(leaderless))),
        ["etcd.endpoint.status"]
    );
    assert!(matches!(m.health(), EndpointHealth::Unhealthy(r) if r.contains("no leader")));
    m.observe(3, reached(snapshot(2, 10.0)));
    assert_eq!(m.health(), EndpointHealth::Healthy);
}

#[test]
fn unhealthy_answer_then_recovery() {
    let mut m = monitor();
    let sick = Observation::Reached {
        health: HealthReply {
            latency: Duration::from_millis(1),
            healthy: false,
            reason: Some("http 503, health \"false\"".into()),
        },
        metrics: Err("skipped".into()),
    };
    let events = m.observe(0, sick.clone());
    assert_eq!(
        types(&events),
        ["etcd.endpoint.unhealthy", "etcd.endpoint.status"]
    );
    assert_eq!(events[1].severity, Severity::Error);
    assert_eq!(
        events[1].attr("etcd.metrics.error"),
        Some(&Value::Str("skipped".into()))
    );
    assert_eq!(types(&m.observe(1, sick)), ["etcd.endpoint.status"]);
    let events = m.observe(2, reached(snapshot(1, 10.0)));
    assert_eq!(
        events[0].attr("etcd.recovered_from"),
        Some(&Value::Str("unhealthy".into()))
    );
}

#[test]
fn thresholds_fire_on_entry_and_rearm() {
    let mut m = monitor();
    let slow = Observation::Reached {
        health: healthy(700),
        metrics: Ok(Snapshot {
            db_size_bytes: Some(2 << 20),
            ..snapshot(1, 10.0)
        }),
    };
    let events = m.observe(0, slow.clone());
    assert_eq!(
        types(&events),
        [
            "etcd.health.slow",
            "etcd.db.size_exceeded",
            "etcd.endpoint.status"
        ]
    );
    assert_eq!(events[2].severity, Severity::Warning);
    assert_eq!(types(&m.observe(1, slow.clone())), ["etcd.endpoint.status"]);
    m.observe(2, reached(snapshot(1, 10.0)));
    assert_eq!(types(&m.observe(3, slow)).len(), 3);
}

#[test]
fn wal_fsync_p99_over_the_interval() {
    let mut m = monitor();
    let with_fsync = |fast: f64, slow: f64| {
        let mut h = Histogram::default();
        h.set_bucket(0.008, fast);
        h.set_bucket(0.512, fast + slow);
        h.set_bucket(f64::INFINITY, fast + slow);
        h.count = fast + slow;
        h.sum = fast * 0.001 + slow * 0.4;
        Snapshot {
            wal_fsync: Some(h),
            ..snapshot(1, 10.0)
        }
    };
    let first = m.observe(0, reached(with_fsync(100.0, 0.0)));
    assert_eq!(types(&first), ["etcd.endpoint.status"]);
    assert_eq!(
        first[0].attr("etcd.wal.fsync.p99_ms"),
        None,
        "no window yet"
    );
    // 10 new fsyncs, all fast.
    let events = m.observe(1, reached(with_fsync(110.0, 0.0)));
    assert_eq!(types(&events), ["etcd.endpoint.status"]);
    assert_eq!(
        events[0].attr("etcd.wal.fsync.count"),
        Some(&Value::UInt(10))
    );
    // 10 new fsyncs, half of them around 400 ms.
    let events = m.observe(2, reached(with_fsync(115.0, 5.0)));
    assert_eq!(
        types(&events),
        ["etcd.wal.fsync_slow", "etcd.endpoint.status"]
    );
    let Some(Value::Float(p99)) = events[0].attr("etcd.wal.fsync.p99_ms") else {
        panic!("p99 missing");
    };
    assert!(*p99 > 100.0 && *p99 <= 512.0, "{p99}");
}
