//! Findings, authentication modes, health and recovery.

use std::path::Path;
use std::time::{Duration, Instant};

use tapio_plugin_api::{HealthStatus, Severity};
use tapio_plugin_kubelet::Kubelet;
use tapio_plugin_testkit::{spec, Captured, Harness, Value};

use crate::fixtures::{self, API_UID, WEB_UID, WORKER_UID};
use crate::kubelet::{Auth, FakeKubelet};

fn token_config(k: &FakeKubelet, dir: &Path) -> serde_json::Value {
    let (ca, token, _, _) = k.write_credentials(dir);
    serde_json::json!({
        "endpoint": k.endpoint(),
        "ca_file": ca.to_string_lossy(),
        "token_file": token.to_string_lossy(),
        "interval": "200ms",
        "retry_max": "500ms",
    })
}

fn wait_health(h: &Harness<Kubelet>, status: HealthStatus, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while h.health().status != status {
        assert!(
            Instant::now() < deadline,
            "health is {:?}, expected {status:?}",
            h.health()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn of_type<'a>(events: &'a [Captured], t: &str) -> Vec<&'a Captured> {
    events.iter().filter(|e| e.event_type == t).collect()
}

fn wait_polls(h: &Harness<Kubelet>, n: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.metric("kubelet_polls_total").unwrap_or(0.0) < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} polls: {:?}",
            h.health()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reports_each_problem_once_over_https_with_a_token() {
    let k = FakeKubelet::start(Auth::Token, fixtures::pods(5), fixtures::summary());
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::<Kubelet>::create(&token_config(&k, dir.path()).to_string()).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(10));
    wait_polls(&h, 3.0);
    let events = h.events();

    let crash = of_type(&events, "kubelet.container.crash_loop");
    assert_eq!(crash.len(), 1, "{events:#?}");
    let crash = crash[0];
    assert_eq!(crash.severity, Severity::Critical);
    assert_eq!(crash.str("k8s.pod.uid"), Some(API_UID));
    assert_eq!(crash.str("k8s.pod.name"), Some("api-5f7b8c9d4-abcde"));
    assert_eq!(crash.str("k8s.namespace.name"), Some("shop"));
    assert_eq!(crash.str("k8s.node.name"), Some("node-1"));
    assert_eq!(crash.str("k8s.container.name"), Some("api"));
    assert_eq!(crash.container_id, "a1b2c3d4e5f6");
    assert_eq!(crash.int("k8s.container.restart_count"), Some(5));
    assert_eq!(
        crash.str("k8s.container.waiting.reason"),
        Some("CrashLoopBackOff")
    );
    assert_eq!(crash.int("process.exit.code"), Some(1));

    let waiting = of_type(&events, "kubelet.container.waiting");
    let reasons: Vec<_> = waiting
        .iter()
        .map(|e| {
            (
                e.str("k8s.pod.uid").unwrap(),
                e.str("k8s.container.waiting.reason").unwrap(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 2, "ContainerCreating is normal: {reasons:?}");
    assert!(reasons.contains(&(WORKER_UID, "ImagePullBackOff")));
    assert!(reasons.contains(&(API_UID, "CrashLoopBackOff")));

    let terminated = of_type(&events, "kubelet.container.terminated");
    assert_eq!(terminated.len(), 2, "{terminated:#?}");
    let oom = terminated
        .iter()
        .find(|e| e.str("k8s.pod.name") == Some("batch-1"))
        .unwrap();
    assert_eq!(oom.int("process.exit.code"), Some(137));
    assert_eq!(
        oom.str("k8s.container.terminated.reason"),
        Some("OOMKilled")
    );
    assert_eq!(oom.attr("container.oom_killed"), Some(&Value::Bool(true)));
    assert_eq!(oom.severity, Severity::Error);
    let error = terminated
        .iter()
        .find(|e| e.str("k8s.pod.uid") == Some(API_UID))
        .unwrap();
    assert_eq!(error.str("k8s.container.terminated.reason"), Some("Error"));

    let not_ready = of_type(&events, "kubelet.pod.not_ready");
    let names: Vec<_> = not_ready
        .iter()
        .map(|e| e.str("k8s.pod.name").unwrap())
        .collect();
    assert!(
        names.contains(&"web-1") && names.contains(&"api-5f7b8c9d4-abcde"),
        "{names:?}"
    );
    assert!(!names.contains(&"new-1"), "within the grace period");
    assert!(not_ready
        .iter()
        .all(|e| e.str("k8s.pod.not_ready.reason") == Some("ContainersNotReady")));

    let mem = of_type(&events, "kubelet.node.memory_pressure");
    assert_eq!(mem.len(), 1);
    assert_eq!(
        mem[0].int("k8s.node.memory.available_bytes"),
        Some(52_428_800)
    );
    assert_eq!(mem[0].str("k8s.node.name"), Some("node-1"));
    assert_eq!(mem[0].severity, Severity::High);

    let eph = of_type(&events, "kubelet.pod.ephemeral_storage");
    assert_eq!(eph.len(), 1, "only web-1 is above 50 % of its limit");
    assert_eq!(eph[0].str("k8s.pod.uid"), Some(WEB_UID));
    assert_eq!(eph[0].str("k8s.pod.ephemeral_storage.basis"), Some("limit"));
    assert_eq!(
        eph[0].int("k8s.pod.ephemeral_storage.usage_bytes"),
        Some(629_145_600)
    );
    assert!(
        of_type(&events, "kubelet.node.ephemeral_storage").is_empty(),
        "node fs at 40 %"
    );
    assert_eq!(
        h.metric("kubelet_node_memory_available_bytes"),
        Some(52_428_800.0)
    );
    assert_eq!(h.metric("kubelet_pods"), Some(5.0));

    // Polls that see the same state report nothing new; a further restart is news, and
    // memory pressure that clears and returns is reported again.
    let before = h.take_events().len();
    assert!(before > 0);
    k.set_pods(fixtures::pods(6));
    k.set_summary(fixtures::summary_relaxed());
    let polls = h.metric("kubelet_polls_total").unwrap();
    wait_polls(&h, polls + 2.0);
    let events = h.take_events();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "kubelet.container.crash_loop")
            .count(),
        1,
        "{types:?}"
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "kubelet.container.terminated")
            .count(),
        1,
        "the new termination only: {types:?}"
    );
    assert_eq!(events.len(), 2, "{types:?}");
    k.set_summary(fixtures::summary());
    let polls = h.metric("kubelet_polls_total").unwrap();
    wait_polls(&h, polls + 2.0);
    let types: Vec<String> = h.take_events().into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["kubelet.node.memory_pressure"]);
    assert!(k.requests().iter().any(|p| p == "/stats/summary"));
    h.stop().unwrap();
}

#[test]
fn client_certificate_authentication() {
    let k = FakeKubelet::start(Auth::ClientCert, fixtures::pods(5), fixtures::summary());
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, cert, key) = k.write_credentials(dir.path());
    let config = serde_json::json!({
        "endpoint": k.endpoint(),
        "ca_file": ca.to_string_lossy(),
        "token_file": "",
        "client_cert_file": cert.to_string_lossy(),
        "client_key_file": key.to_string_lossy(),
        "interval": "200ms",
    });
    let mut h = Harness::<Kubelet>::create(&config.to_string()).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(10));
    h.wait_until(Duration::from_secs(5), |ev| {
        !of_type(ev, "kubelet.container.crash_loop").is_empty()
    });
    h.stop().unwrap();

    // Without the certificate the TLS handshake is refused.
    let config = serde_json::json!({"endpoint": k.endpoint(), "ca_file": ca.to_string_lossy(), "token_file": "", "interval": "200ms", "retry_max": "300ms"});
    let mut h = Harness::<Kubelet>::create(&config.to_string()).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Failed, Duration::from_secs(10));
    assert!(h.events().is_empty());
    h.stop().unwrap();
}

#[test]
fn plain_http_read_only_port() {
    let k = FakeKubelet::start(
        Auth::PlainHttp,
        fixtures::pods(4),
        fixtures::summary_relaxed(),
    );
    let config =
        serde_json::json!({"endpoint": k.endpoint(), "token_file": "", "interval": "200ms"});
    let mut h = Harness::<Kubelet>::create(&config.to_string()).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(10));
    let events = h.wait_until(Duration::from_secs(5), |ev| {
        !of_type(ev, "kubelet.container.crash_loop").is_empty()
    });
    assert_eq!(
        of_type(&events, "kubelet.container.crash_loop")[0].int("k8s.container.restart_count"),
        Some(4)
    );
    assert!(of_type(&events, "kubelet.node.memory_pressure").is_empty());
    h.stop().unwrap();
}

#[test]
fn unreachable_kubelet_is_unhealthy_then_recovers() {
    let mut k = FakeKubelet::start(Auth::Token, fixtures::pods(5), fixtures::summary());
    let dir = tempfile::tempdir().unwrap();
    let config = token_config(&k, dir.path());
    k.stop();
    let mut h = Harness::<Kubelet>::create(&config.to_string()).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Failed, Duration::from_secs(10));
    let reason = h.health().reason.to_string();
    assert!(
        reason.contains("/pods") && reason.to_lowercase().contains("connect"),
        "{reason}"
    );
    assert!(h.events().is_empty(), "no data without a source");
    k.restart();
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(10));
    h.wait_until(Duration::from_secs(5), |ev| {
        !of_type(ev, "kubelet.container.crash_loop").is_empty()
    });
    assert!(h.metric("kubelet_errors_total").unwrap() >= 1.0);
    h.stop().unwrap();
}

#[test]
fn wrong_token_and_untrusted_certificate_are_reported() {
    let k = FakeKubelet::start(Auth::Token, fixtures::pods(5), fixtures::summary());
    let dir = tempfile::tempdir().unwrap();
    let mut config = token_config(&k, dir.path());
    let wrong = dir.path().join("wrong-token");
    std::fs::write(&wrong, "nope").unwrap();
    config["token_file"] = wrong.to_string_lossy().into();
    let mut h = Harness::<Kubelet>::create(&config.to_string()).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Failed, Duration::from_secs(10));
    assert!(h.health().reason.contains("401"), "{:?}", h.health());
    h.stop().unwrap();

    // A CA that did not sign the kubelet's certificate.
    let other = tapio_k8s_support::testing::TestPki::generate().unwrap();
    let other_ca = dir.path().join("other-ca.crt");
    std::fs::write(&other_ca, other.ca_pem).unwrap();
    let mut config = token_config(&k, dir.path());
    config["ca_file"] = other_ca.to_string_lossy().into();
    let mut h = Harness::<Kubelet>::create(&config.to_string()).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Failed, Duration::from_secs(10));
    assert!(
        h.health().reason.to_lowercase().contains("certificate"),
        "{:?}",
        h.health()
    );
    h.stop().unwrap();

    // The same, accepted on request.
    config["insecure_skip_verify"] = true.into();
    let mut h = Harness::<Kubelet>::create(&config.to_string()).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(10));
    h.stop().unwrap();

    // No CA at all.
    config["insecure_skip_verify"] = false.into();
    config["ca_file"] = "/nonexistent/tapio/ca.crt".into();
    let mut h = Harness::<Kubelet>::create(&config.to_string()).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Failed, Duration::from_secs(10));
    assert!(
        h.health().reason.contains("insecure_skip_verify"),
        "{:?}",
        h.health()
    );
    h.stop().unwrap();
}

#[test]
fn config_is_checked() {
    let err = Harness::<Kubelet>::create(
        r#"{"endpoint":"kubelet:10250","ephemeral_storage_percent":0.0,"client_cert_file":"/x"}"#,
    )
    .err()
    .unwrap();
    for part in ["endpoint", "ephemeral_storage_percent", "client_key_file"] {
        assert!(err.message.contains(part), "{err}");
    }
}

#[test]
fn collector_contract() {
    let k = FakeKubelet::start(Auth::Token, fixtures::pods(5), fixtures::summary());
    let dir = tempfile::tempdir().unwrap();
    let events = spec::check::<Kubelet>(
        &token_config(&k, dir.path()).to_string(),
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(
        !of_type(&events, "kubelet.container.crash_loop").is_empty(),
        "{events:#?}"
    );
}
