//! The event-stream path: container events trigger an immediate listing.

use std::time::{Duration, Instant};

use tapio_plugin_api::{HealthStatus, Severity};
use tapio_plugin_cri::proto::{ContainerEventType, ContainerState, ContainerStatus};
use tapio_plugin_cri::Cri;
use tapio_plugin_testkit::{Harness, Value};

use crate::streaming_runtime::{now, StreamingRuntime};

fn wait(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn container_events_drive_listing_and_the_stream_reconnects() {
    let mut rt = StreamingRuntime::start();
    assert!(rt.dir().exists());
    // A listing period far longer than the test: only the stream can explain events.
    let config = serde_json::json!({"socket": rt.socket.to_string_lossy(), "poll_interval": "1h", "events": "stream", "retry_max": "300ms"});
    let mut h = Harness::<Cri>::create(&config.to_string()).unwrap();
    h.start().unwrap();
    wait("healthy", Duration::from_secs(10), || {
        h.health().status == HealthStatus::Healthy
    });
    wait("subscribed", Duration::from_secs(5), || {
        rt.subscribers() == 1
    });
    assert_eq!(h.metric("cri_event_stream"), Some(1.0));

    let created = now() - 2_000_000_000;
    let started = now() - 1_000_000_000;
    rt.set_container(
        "c1",
        ContainerState::ContainerRunning,
        ContainerStatus {
            created_at: created,
            started_at: started,
            ..Default::default()
        },
    );
    rt.push_event("c1", ContainerEventType::ContainerStartedEvent);
    let events = h.wait_until(Duration::from_secs(5), |ev| {
        ev.iter().any(|e| e.event_type == "cri.container.started")
    });
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["cri.container.created", "cri.container.started"]);
    assert_eq!(events[1].timestamp_ns as i64, started);
    assert_eq!(
        events[1].str("k8s.pod.name"),
        Some("web-0"),
        "from the sandbox metadata"
    );
    assert_eq!(
        events[1].str("container.runtime"),
        Some("streaming-test-runtime")
    );

    let finished = now();
    rt.set_container(
        "c1",
        ContainerState::ContainerExited,
        ContainerStatus {
            created_at: created,
            started_at: started,
            finished_at: finished,
            exit_code: 137,
            reason: "OOMKilled".into(),
            message: "memory limit reached".into(),
            ..Default::default()
        },
    );
    rt.push_event("c1", ContainerEventType::ContainerStoppedEvent);
    let events = h.wait_until(Duration::from_secs(5), |ev| {
        ev.iter().any(|e| e.event_type == "cri.container.exited")
    });
    let exited = events
        .iter()
        .find(|e| e.event_type == "cri.container.exited")
        .unwrap();
    assert_eq!(exited.severity, Severity::Error);
    assert_eq!(exited.int("process.exit.code"), Some(137));
    assert_eq!(
        exited.attr("container.oom_killed"),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        exited.str("container.exit.message"),
        Some("memory limit reached")
    );
    assert_eq!(exited.timestamp_ns as i64, finished);
    assert!(h.metric("cri_runtime_events_total").unwrap() >= 2.0);

    // The runtime goes away and comes back: failed, then resubscribed.
    rt.stop();
    wait("failed", Duration::from_secs(10), || {
        h.health().status == HealthStatus::Failed
    });
    rt.restart();
    wait("healthy again", Duration::from_secs(10), || {
        h.health().status == HealthStatus::Healthy
    });
    wait("resubscribed", Duration::from_secs(5), || {
        rt.subscribers() == 1
    });
    assert!(h.metric("cri_reconnects_total").unwrap() >= 1.0);
    assert_eq!(
        h.events().len(),
        3,
        "nothing repeated after reconnecting: {:#?}",
        h.events()
    );
    h.stop().unwrap();
}
