//! Container and sandbox lifecycle seen through a real containerd 1.6 (which does not
//! implement GetContainerEvents, so the collector polls).

use std::time::Duration;

use tapio_plugin_api::{HealthStatus, Severity};
use tapio_plugin_cri::Cri;
use tapio_plugin_testkit::{spec, Captured, Harness};

use crate::containerd::{missing_requirement, Containerd, PodRef};
use crate::{skip, SERIAL};

fn config(socket: &std::path::Path) -> String {
    serde_json::json!({
        "socket": socket.to_string_lossy(),
        "poll_interval": "200ms",
        "retry_max": "1s",
    })
    .to_string()
}

fn test_pod(tag: &str) -> PodRef {
    let unique = format!(
        "{}-{}",
        std::process::id(),
        tapio_plugin_api::now_unix_nanos() % 1_000_000
    );
    PodRef {
        name: format!("tapio-{tag}-{unique}"),
        namespace: "tapio-test".into(),
        uid: format!("uid-{tag}-{unique}"),
    }
}

fn require(test: &str) -> bool {
    match missing_requirement() {
        Some((why, needs)) => !skip(test, &why, needs),
        None => true,
    }
}

fn wait_healthy(h: &Harness<Cri>, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    while h.health().status != HealthStatus::Healthy {
        assert!(
            std::time::Instant::now() < deadline,
            "not healthy: {:?}",
            h.health()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find<'a>(events: &'a [Captured], event_type: &str, container: &str) -> Option<&'a Captured> {
    events
        .iter()
        .find(|e| e.event_type == event_type && e.container_id == container)
}

#[test]
fn container_exit_code_and_lifecycle_through_polling() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require("container_exit_code_and_lifecycle_through_polling") {
        return;
    }
    let containerd = Containerd::start();
    let mut h = Harness::<Cri>::create(&config(&containerd.socket)).unwrap();
    h.start().unwrap();
    wait_healthy(&h, Duration::from_secs(10));

    let mut driver = containerd.driver();
    let pod = test_pod("exit3");
    let sandbox = driver.run_pod(&pod);
    let id = driver.run_container(&sandbox, &pod, "exit3", "exit 3");
    let status = driver.wait_exited(&id, Duration::from_secs(20));
    assert_eq!(
        status.exit_code, 3,
        "containerd itself reports the exit code"
    );

    let events = h.wait_until(Duration::from_secs(10), |ev| {
        find(ev, "cri.container.exited", &id).is_some()
    });
    let created = find(&events, "cri.container.created", &id).expect("created");
    let started = find(&events, "cri.container.started", &id).expect("started");
    let exited = find(&events, "cri.container.exited", &id).expect("exited");
    for e in [created, started, exited] {
        assert_eq!(e.str("k8s.pod.name"), Some(pod.name.as_str()), "{e:?}");
        assert_eq!(e.str("k8s.namespace.name"), Some("tapio-test"));
        assert_eq!(e.str("k8s.pod.uid"), Some(pod.uid.as_str()));
        assert_eq!(e.str("k8s.container.name"), Some("exit3"));
        assert_eq!(e.str("container.id"), Some(id.as_str()));
        assert_eq!(e.str("cri.pod_sandbox.id"), Some(sandbox.as_str()));
        assert_eq!(e.str("container.runtime"), Some("containerd"));
        assert_eq!(
            e.str("container.image.name"),
            Some(crate::containerd::IMAGE)
        );
    }
    assert_eq!(exited.int("process.exit.code"), Some(3));
    assert_eq!(
        exited.str("container.exit.reason"),
        Some(status.reason.as_str())
    );
    assert_eq!(
        exited.attr("container.oom_killed"),
        Some(&tapio_plugin_testkit::Value::Bool(false))
    );
    assert_eq!(exited.severity, Severity::Warning);
    // The runtime's own timestamps, in order.
    assert_eq!(created.timestamp_ns as i64, status.created_at);
    assert_eq!(started.timestamp_ns as i64, status.started_at);
    assert_eq!(exited.timestamp_ns as i64, status.finished_at);
    let pod_created = events
        .iter()
        .find(|e| {
            e.event_type == "cri.pod.created"
                && e.str("cri.pod_sandbox.id") == Some(sandbox.as_str())
        })
        .expect("pod created");
    assert_eq!(pod_created.str("k8s.pod.name"), Some(pod.name.as_str()));

    driver.remove_container(&id);
    let events = h.wait_until(Duration::from_secs(10), |ev| {
        find(ev, "cri.container.removed", &id).is_some()
    });
    assert!(find(&events, "cri.container.removed", &id).is_some());

    let pod_event = |ev: &[Captured], kind: &str| {
        ev.iter()
            .any(|e| e.event_type == kind && e.str("cri.pod_sandbox.id") == Some(sandbox.as_str()))
    };
    driver.stop_pod(&sandbox);
    h.wait_until(Duration::from_secs(10), |ev| {
        pod_event(ev, "cri.pod.stopped")
    });
    driver.remove_pod(&sandbox);
    let events = h.wait_until(Duration::from_secs(10), |ev| {
        pod_event(ev, "cri.pod.removed")
    });
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e.str("cri.pod_sandbox.id") == Some(sandbox.as_str()))
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "cri.pod.created",
            "cri.container.created",
            "cri.container.started",
            "cri.container.exited",
            "cri.container.removed",
            "cri.pod.stopped",
            "cri.pod.removed"
        ]
    );
    assert_eq!(
        h.metric("cri_event_stream"),
        Some(0.0),
        "containerd 1.6 has no event stream"
    );
    assert!(h.metric("cri_syncs_total").unwrap() >= 3.0);
    h.stop().unwrap();
}

#[test]
fn unhealthy_while_containerd_is_down_then_recovers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require("unhealthy_while_containerd_is_down_then_recovers") {
        return;
    }
    let mut containerd = Containerd::start();
    let mut h = Harness::<Cri>::create(&config(&containerd.socket)).unwrap();
    h.start().unwrap();
    wait_healthy(&h, Duration::from_secs(10));

    containerd.kill();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.health().status != HealthStatus::Failed {
        assert!(
            std::time::Instant::now() < deadline,
            "still {:?}",
            h.health()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let reason = h.health().reason.to_string();
    assert!(
        reason.contains("CRI") || reason.contains("connect"),
        "{reason}"
    );

    containerd.restart();
    wait_healthy(&h, Duration::from_secs(15));
    assert!(h.metric("cri_reconnects_total").unwrap() >= 1.0);
    assert!(h.metric("cri_errors_total").unwrap() >= 1.0);

    // Changes made while it was away and after are still seen.
    let mut driver = containerd.driver();
    let pod = test_pod("recover");
    let sandbox = driver.run_pod(&pod);
    let events = h.wait_until(Duration::from_secs(10), |ev| {
        ev.iter().any(|e| {
            e.event_type == "cri.pod.created"
                && e.str("cri.pod_sandbox.id") == Some(sandbox.as_str())
        })
    });
    assert!(events
        .iter()
        .any(|e| e.str("k8s.pod.uid") == Some(pod.uid.as_str())));
    h.stop().unwrap();
}

#[test]
fn missing_socket_is_reported_with_the_paths_tried() {
    let mut h =
        Harness::<Cri>::create(r#"{"socket":"/nonexistent/tapio/cri.sock","retry_max":"200ms"}"#)
            .unwrap();
    h.start().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while h.health().status != HealthStatus::Failed {
        assert!(
            std::time::Instant::now() < deadline,
            "still {:?}",
            h.health()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        h.health().reason.as_str(),
        "no CRI socket found (tried /nonexistent/tapio/cri.sock)"
    );
    assert!(h.events().is_empty(), "no data without a source");
    h.stop().unwrap();
}

#[test]
fn config_is_checked() {
    let err = Harness::<Cri>::create(r#"{"poll_interval":"1ms"}"#)
        .err()
        .unwrap();
    assert!(err.message.contains("poll_interval"), "{err}");
    assert!(Harness::<Cri>::create(r#"{"unknown":1}"#).is_err());
}

#[test]
fn collector_contract() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require("collector_contract") {
        return;
    }
    let containerd = Containerd::start();
    let socket = containerd.socket.clone();
    let mut driver = containerd.driver();
    let worker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        let pod = test_pod("spec");
        let sandbox = driver.run_pod(&pod);
        let id = driver.run_container(&sandbox, &pod, "quick", "true");
        driver.wait_exited(&id, Duration::from_secs(20));
    });
    let events = spec::check::<Cri>(&config(&socket), Duration::from_secs(3)).unwrap();
    worker.join().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "cri.container.exited"),
        "{events:#?}"
    );
    drop(containerd);
}
