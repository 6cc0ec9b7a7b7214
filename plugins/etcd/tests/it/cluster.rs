//! Three members: losing quorum leaves the survivor without a leader (critical), and the
//! election after the others return is a leader change.

use std::time::Duration;

use serde_json::json;
use tapio_plugin_api::{HealthStatus, Severity};
use tapio_plugin_etcd::EtcdCollector;
use tapio_plugin_testkit::Harness;

use crate::peer::{free_port, Member, MemberSpec};
use crate::scenarios::{fast_config, has, of_type};
use crate::{can_run, serial};

fn cluster(dir: &std::path::Path) -> Vec<Member> {
    let peers: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let initial = peers
        .iter()
        .enumerate()
        .map(|(i, p)| format!("m{i}=http://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    peers
        .iter()
        .enumerate()
        .map(|(i, &peer_port)| {
            Member::spawn(MemberSpec {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port,
                initial_cluster: initial.clone(),
                data_dir: dir.join(format!("m{i}")),
                tls: None,
            })
        })
        .collect()
}

#[test]
fn quorum_loss_is_critical_and_reelection_is_a_leader_change() {
    if !can_run("quorum_loss_is_critical_and_reelection_is_a_leader_change") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut members = cluster(dir.path());
    for m in &members {
        m.wait_healthy(None, Duration::from_secs(20));
    }
    let watched = members[0].spec.client_url();
    let config = fast_config(&watched, json!({"timeout": "2s"}));
    let mut h = Harness::<EtcdCollector>::create(&config).unwrap();
    h.start().unwrap();
    let events = h.wait_until(Duration::from_secs(10), |e| has(e, "etcd.endpoint.status"));
    assert!(!has(&events, "etcd.leader.missing"), "{events:?}");

    members[1].kill();
    members[2].kill();
    let events = h.wait_until(Duration::from_secs(20), |e| {
        has(e, "etcd.leader.missing") && has(e, "etcd.endpoint.unhealthy")
    });
    let missing = of_type(&events, "etcd.leader.missing");
    assert_eq!(missing.len(), 1, "{events:?}");
    assert_eq!(missing[0].severity, Severity::Critical);
    assert_eq!(missing[0].str("etcd.endpoint"), Some(watched.as_str()));
    let health = h.health();
    assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
    assert!(health.reason.contains(&watched), "{health:?}");

    h.take_events();
    members[1].start();
    members[2].start();
    let events = h.wait_until(Duration::from_secs(20), |e| {
        has(e, "etcd.leader.changed") && has(e, "etcd.endpoint.recovered")
    });
    let changed = of_type(&events, "etcd.leader.changed");
    assert!(!changed.is_empty(), "{events:?}");
    assert_eq!(changed[0].severity, Severity::High);
    assert!(changed[0]
        .int("etcd.leader.changes")
        .is_some_and(|n| n >= 1));
    let recovered = of_type(&events, "etcd.endpoint.recovered");
    assert_eq!(recovered[0].str("etcd.recovered_from"), Some("unhealthy"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(h.health().status, HealthStatus::Healthy);
    h.stop().unwrap();
}
