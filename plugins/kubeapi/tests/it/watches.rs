//! List, watch, resume by resourceVersion, relist on 410 Gone, health and recovery.

use std::time::{Duration, Instant};

use tapio_plugin_api::{HealthStatus, Severity};
use tapio_plugin_kubeapi::KubeApi;
use tapio_plugin_testkit::{spec, Captured, Harness, Value};

use crate::apiserver::ApiServer;
use crate::fixtures::{self, POD_NAME, POD_UID};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn populated() -> ApiServer {
    let server = ApiServer::start();
    server.apply("deployments", fixtures::deployment());
    server.apply("replicasets", fixtures::replicaset());
    server.apply("pods", fixtures::pod());
    server.apply("pods", fixtures::system_pod());
    server.apply("services", fixtures::service());
    server.apply("statefulsets", fixtures::statefulset());
    server.apply("daemonsets", fixtures::daemonset());
    server.apply("nodes", fixtures::node());
    server.apply("events", fixtures::backoff_event("web.old", 1));
    server
}

fn config(kubeconfig: &std::path::Path) -> String {
    serde_json::json!({"kubeconfig": kubeconfig.to_string_lossy(), "retry_max": "500ms"})
        .to_string()
}

fn wait_health(h: &Harness<KubeApi>, status: HealthStatus, timeout: Duration) {
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

fn wait_event(
    h: &Harness<KubeApi>,
    what: &str,
    mut pred: impl FnMut(&Captured) -> bool,
) -> Captured {
    let events = h.wait_until(Duration::from_secs(10), |ev| ev.iter().any(&mut pred));
    events
        .into_iter()
        .find(|e| pred(e))
        .unwrap_or_else(|| panic!("no {what} event; got {:#?}", h.events()))
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn lists_watches_resumes_and_relists() {
    let server = populated();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path(), None);
    let mut h = Harness::<KubeApi>::create(&config(&kubeconfig)).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(10));

    // Initial state: every watched object once, system namespaces excluded server-side.
    let pod = wait_event(&h, "initial pod", |e| e.event_type == "k8s.pod.added");
    assert_eq!(pod.str("k8s.pod.name"), Some(POD_NAME));
    assert_eq!(pod.str("k8s.pod.uid"), Some(POD_UID));
    assert_eq!(pod.str("k8s.namespace.name"), Some("shop"));
    assert_eq!(pod.str("k8s.node.name"), Some("node-1"));
    assert_eq!(pod.str("k8s.owner.kind"), Some("ReplicaSet"));
    assert_eq!(pod.str("k8s.replicaset.name"), Some("web-7d4b9c6f5"));
    assert_eq!(pod.str("k8s.pod.phase"), Some("Pending"));
    assert_eq!(pod.attr("k8s.pod.ready"), Some(&Value::Bool(false)));
    assert_eq!(pod.attr("k8s.watch.initial"), Some(&Value::Bool(true)));
    let deploy = wait_event(&h, "deployment", |e| e.event_type == "k8s.deployment.added");
    let deploy_trace = deploy.trace.expect("annotated with tapio.io/trace-id");
    assert_eq!(hex(&deploy_trace.trace_id), fixtures::TRACE_ID);
    assert_eq!(
        hex(&deploy_trace.span_id),
        "1a2b3c4d5e6f4a7b",
        "from the Deployment's uid"
    );
    assert_eq!(deploy.int("k8s.replicas.desired"), Some(2));
    let rs = wait_event(&h, "replicaset", |e| e.event_type == "k8s.replicaset.added");
    assert_eq!(rs.str("k8s.deployment.name"), Some("web"));
    let svc = wait_event(&h, "service", |e| e.event_type == "k8s.service.added");
    assert_eq!(svc.str("k8s.service.selector"), Some("app=web,tier=front"));
    assert_eq!(svc.str("k8s.service.ports"), Some("80/TCP"));
    let node = wait_event(&h, "node", |e| e.event_type == "k8s.node.added");
    assert_eq!(node.attr("k8s.node.ready"), Some(&Value::Bool(true)));
    assert_eq!(node.str("k8s.node.kubelet.version"), Some("v1.33.1"));
    wait_event(&h, "statefulset", |e| {
        e.event_type == "k8s.statefulset.added"
    });
    wait_event(&h, "daemonset", |e| e.event_type == "k8s.daemonset.added");
    let initial = h.events();
    assert!(initial
        .iter()
        .all(|e| e.str("k8s.namespace.name") != Some("kube-system")));
    assert!(
        initial.iter().all(|e| e.event_type != "k8s.event"),
        "old Kubernetes events are history"
    );
    let seen = server.seen();
    let pod_list = seen
        .iter()
        .find(|s| s.resource == "pods" && !s.watch)
        .unwrap();
    assert_eq!(
        pod_list.field_selector.as_deref(),
        Some("metadata.namespace!=kube-system,metadata.namespace!=kube-public,metadata.namespace!=kube-node-lease")
    );
    wait_for("8 open watches", || server.open_watches() == 8);

    // A live MODIFIED: the pod, now with the trace its Deployment carries.
    h.take_events();
    server.apply("pods", fixtures::pod_running());
    let modified = wait_event(&h, "pod modified", |e| e.event_type == "k8s.pod.modified");
    assert_eq!(modified.str("k8s.pod.phase"), Some("Running"));
    assert_eq!(modified.attr("k8s.pod.ready"), Some(&Value::Bool(true)));
    let pod_trace = modified
        .trace
        .expect("inherited from ReplicaSet -> Deployment");
    assert_eq!(hex(&pod_trace.trace_id), fixtures::TRACE_ID);
    assert_eq!(
        hex(&pod_trace.span_id),
        "5e6f7a8b1c2d4e3f",
        "the pod's own span"
    );
    assert_eq!(pod_trace.parent_span_id, deploy_trace.span_id);
    assert_eq!(modified.attr("k8s.watch.initial"), None);

    // BOOKMARK, then the server ends the watches: they resume from the bookmark, no relist.
    let lists_before = server.seen().iter().filter(|s| !s.watch).count();
    let bookmark = server.bookmark(5).to_string();
    std::thread::sleep(Duration::from_millis(200));
    server.close_watches();
    wait_for("pods watch resumed from the bookmark", || {
        server.seen().iter().any(|s| {
            s.resource == "pods"
                && s.watch
                && s.resource_version.as_deref() == Some(bookmark.as_str())
        })
    });
    assert_eq!(
        server.seen().iter().filter(|s| !s.watch).count(),
        lists_before,
        "no relist"
    );

    // Changes missed while not watching, then compaction: 410 Gone forces a relist that
    // finds the new pod and the deleted service.
    wait_for("watches back", || server.open_watches() == 8);
    server.apply_unseen(
        "pods",
        fixtures::pod_named(
            "web-7d4b9c6f5-q8w7e",
            "5e6f7a8b-1c2d-4e3f-9a0b-000000000002",
        ),
    );
    server.delete_unseen("services", "shop", "web");
    server.compact();
    server.close_watches();
    let added = wait_event(&h, "pod added by relist", |e| {
        e.event_type == "k8s.pod.added" && e.str("k8s.pod.name") == Some("web-7d4b9c6f5-q8w7e")
    });
    assert_eq!(
        added.attr("k8s.watch.initial"),
        None,
        "not initial: found by a relist"
    );
    let gone = wait_event(&h, "service deleted by relist", |e| {
        e.event_type == "k8s.service.deleted"
    });
    assert_eq!(gone.str("k8s.service.name"), Some("web"));
    assert!(
        server
            .seen()
            .iter()
            .filter(|s| s.resource == "pods" && !s.watch)
            .count()
            >= 2
    );
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(10));
    assert!(h.metric("kubeapi_relists_total").unwrap() >= 1.0);
    let modified_again = h
        .events()
        .iter()
        .filter(|e| e.event_type == "k8s.pod.modified")
        .count();
    assert_eq!(
        modified_again, 1,
        "a relist repeats nothing already reported"
    );

    // Live DELETED and a new Kubernetes Event about the pod.
    wait_for("watches back after relist", || server.open_watches() == 8);
    server.apply("events", fixtures::backoff_event("web.new", 4));
    let ev = wait_event(&h, "k8s.event", |e| e.event_type == "k8s.event");
    assert_eq!(ev.severity, Severity::Warning);
    assert_eq!(ev.str("k8s.event.reason"), Some("BackOff"));
    assert_eq!(ev.int("k8s.event.count"), Some(4));
    assert_eq!(ev.str("k8s.pod.name"), Some(POD_NAME));
    assert_eq!(ev.str("k8s.node.name"), Some("node-1"));
    assert_eq!(ev.trace, Some(pod_trace), "the involved pod's trace");
    server.delete("pods", "shop", "web-7d4b9c6f5-q8w7e");
    let deleted = wait_event(&h, "pod deleted", |e| e.event_type == "k8s.pod.deleted");
    assert_eq!(
        deleted.str("k8s.pod.uid"),
        Some("5e6f7a8b-1c2d-4e3f-9a0b-000000000002")
    );
    h.stop().unwrap();
}

#[test]
fn http_410_on_a_watch_request_also_relists() {
    let server = populated();
    server.gone_as_http_status();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path(), None);
    let mut h = Harness::<KubeApi>::create(&config(&kubeconfig)).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(10));
    wait_for("8 open watches", || server.open_watches() == 8);
    server.apply_unseen(
        "pods",
        fixtures::pod_named(
            "web-7d4b9c6f5-h410x",
            "5e6f7a8b-1c2d-4e3f-9a0b-000000000410",
        ),
    );
    server.compact();
    server.close_watches();
    wait_event(&h, "pod added by relist", |e| {
        e.event_type == "k8s.pod.added" && e.str("k8s.pod.name") == Some("web-7d4b9c6f5-h410x")
    });
    assert!(server
        .seen()
        .iter()
        .any(|s| s.resource == "pods" && s.watch && s.status == 410));
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(10));
    assert!(h.metric("kubeapi_relists_total").unwrap() >= 1.0);
    h.stop().unwrap();
}

#[test]
fn unreachable_server_is_unhealthy_then_recovers() {
    let mut server = populated();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path(), None);
    server.stop();
    let mut h = Harness::<KubeApi>::create(&config(&kubeconfig)).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Failed, Duration::from_secs(10));
    let reason = h.health().reason.to_string();
    assert!(
        reason.contains("pods:") && reason.contains("nodes:"),
        "{reason}"
    );
    assert!(h.events().is_empty(), "no data without a source");

    server.restart();
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(15));
    wait_event(&h, "pod after recovery", |e| {
        e.event_type == "k8s.pod.added"
    });

    // Lost again mid-watch, back again: resumes without repeating anything.
    let count = h.events().len();
    server.stop();
    wait_health(&h, HealthStatus::Failed, Duration::from_secs(10));
    server.restart();
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(15));
    server.apply("pods", fixtures::pod_running());
    wait_event(&h, "pod modified", |e| e.event_type == "k8s.pod.modified");
    assert_eq!(h.events().len(), count + 1, "{:#?}", &h.events()[count..]);
    assert!(h.metric("kubeapi_errors_total").unwrap() >= 1.0);
    h.stop().unwrap();
}

#[test]
fn wrong_token_is_reported() {
    let server = populated();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path(), Some("wrong-token"));
    let mut h = Harness::<KubeApi>::create(&config(&kubeconfig)).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Failed, Duration::from_secs(10));
    let reason = h.health().reason.to_string();
    assert!(
        reason.contains("Unauthorized") || reason.contains("401"),
        "{reason}"
    );
    assert!(h.events().is_empty());
    h.stop().unwrap();
}

#[test]
fn missing_kubeconfig_is_reported() {
    let mut h = Harness::<KubeApi>::create(
        r#"{"kubeconfig":"/nonexistent/tapio/kubeconfig","retry_max":"200ms"}"#,
    )
    .unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Failed, Duration::from_secs(5));
    assert!(h.health().reason.contains("kubeconfig"), "{:?}", h.health());
    h.stop().unwrap();
}

#[test]
fn namespaces_and_node_filters() {
    let server = populated();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path(), None);
    let cfg = serde_json::json!({
        "kubeconfig": kubeconfig.to_string_lossy(),
        "resources": ["pods", "services"],
        "namespaces": ["shop"],
        "node_name": "node-1",
    });
    let mut h = Harness::<KubeApi>::create(&cfg.to_string()).unwrap();
    h.start().unwrap();
    wait_health(&h, HealthStatus::Healthy, Duration::from_secs(10));
    wait_event(&h, "pod", |e| e.event_type == "k8s.pod.added");
    wait_event(&h, "service", |e| e.event_type == "k8s.service.added");
    let seen = server.seen();
    let pod_list = seen
        .iter()
        .find(|s| s.resource == "pods" && !s.watch)
        .unwrap();
    assert_eq!(
        pod_list.field_selector.as_deref(),
        Some("spec.nodeName=node-1")
    );
    assert!(seen
        .iter()
        .all(|s| s.resource == "pods" || s.resource == "services"));
    h.stop().unwrap();
}

#[test]
fn config_is_checked() {
    let err = Harness::<KubeApi>::create(r#"{"resources":[]}"#)
        .err()
        .unwrap();
    assert!(err.message.contains("resources"), "{err}");
    let err = Harness::<KubeApi>::create(r#"{"namespaces":["kube-system"]}"#)
        .err()
        .unwrap();
    assert!(err.message.contains("both watched and excluded"), "{err}");
}

#[test]
fn collector_contract() {
    let server = populated();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path(), None);
    let events = spec::check::<KubeApi>(&config(&kubeconfig), Duration::from_secs(2)).unwrap();
    assert!(
        events.iter().any(|e| e.event_type == "k8s.pod.added"),
        "{events:#?}"
    );
}
