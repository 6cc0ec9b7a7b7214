//! The kubelet's answers: `/stats/summary` from `tests/fixtures/summary.json` (the
//! `stats/v1alpha1` Summary the kubelet serves), `/pods` as the kubelet's `v1.PodList`.

use serde_json::{json, Value};

/// Uids of the pods.
pub const API_UID: &str = "11111111-aaaa-4bbb-8ccc-000000000001";
/// Worker pod uid.
pub const WORKER_UID: &str = "11111111-aaaa-4bbb-8ccc-000000000002";
/// Web pod uid.
pub const WEB_UID: &str = "11111111-aaaa-4bbb-8ccc-000000000003";

/// The summary.
pub fn summary() -> Value {
    serde_json::from_str(include_str!("../fixtures/summary.json")).unwrap()
}

/// The summary with plenty of memory available.
pub fn summary_relaxed() -> Value {
    let mut s = summary();
    s["node"]["memory"]["availableBytes"] = json!(2_147_483_648u64);
    s
}

fn rfc3339_ago(secs: u64) -> String {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let (days, rem) = (d / 86_400, d % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn pod(name: &str, uid: &str, phase: &str, ready: bool, statuses: Value, limits: Value) -> Value {
    json!({
        "metadata": {
            "name": name, "namespace": "shop", "uid": uid, "resourceVersion": "4711",
            "creationTimestamp": rfc3339_ago(3600),
            "labels": {"app": name.split('-').next().unwrap()},
            "annotations": {"kubernetes.io/config.seen": rfc3339_ago(3600), "kubernetes.io/config.source": "api"}
        },
        "spec": {
            "containers": [{"name": statuses[0]["name"], "image": statuses[0]["image"],
                            "resources": {"limits": limits},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": "Always", "nodeName": "node-1", "serviceAccountName": "default",
            "schedulerName": "default-scheduler", "priority": 0
        },
        "status": {
            "phase": phase,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": rfc3339_ago(3600)},
                {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastProbeTime": null,
                 "lastTransitionTime": rfc3339_ago(600),
                 "reason": if ready { Value::Null } else { json!("ContainersNotReady") },
                 "message": if ready { Value::Null } else { json!("containers with unready status: [x]") }},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": rfc3339_ago(3600)}
            ],
            "hostIP": "10.0.0.11", "podIP": "10.244.1.9", "startTime": rfc3339_ago(3600), "qosClass": "Burstable",
            "containerStatuses": statuses
        }
    })
}

/// `/pods`: a crash-looping pod (`restarts` restarts), one stuck pulling its image, one
/// running but not ready for 10 minutes and filling its ephemeral storage, one OOM-killed,
/// one still being created (normal).
pub fn pods(restarts: u32) -> Value {
    let api = pod(
        "api-5f7b8c9d4-abcde",
        API_UID,
        "Running",
        false,
        json!([{
            "name": "api", "image": "registry.example/api:1.4", "imageID": "registry.example/api@sha256:3b1f",
            "containerID": "containerd://a1b2c3d4e5f6",
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": "back-off 2m40s restarting failed container=api pod=api-5f7b8c9d4-abcde_shop(11111111-aaaa-4bbb-8ccc-000000000001)"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": rfc3339_ago(200),
                                         "finishedAt": rfc3339_ago(190), "containerID": format!("containerd://dead{restarts:04}")}},
            "ready": false, "restartCount": restarts, "started": false
        }]),
        json!({}),
    );
    let worker = pod(
        "worker-7c9d8-fghij",
        WORKER_UID,
        "Pending",
        false,
        json!([{
            "name": "worker", "image": "registry.example/worker:9.9", "imageID": "",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"registry.example/worker:9.9\""}},
            "lastState": {}, "ready": false, "restartCount": 0, "started": false
        }]),
        json!({}),
    );
    let web = pod(
        "web-1",
        WEB_UID,
        "Running",
        false,
        json!([{
            "name": "web", "image": "nginx:1.27", "imageID": "docker.io/library/nginx@sha256:9f0c",
            "containerID": "containerd://0f1e2d3c4b5a",
            "state": {"running": {"startedAt": rfc3339_ago(1800)}},
            "lastState": {}, "ready": false, "restartCount": 0, "started": true
        }]),
        json!({"ephemeral-storage": "1Gi"}),
    );
    let batch = pod(
        "batch-1",
        "11111111-aaaa-4bbb-8ccc-000000000004",
        "Running",
        false,
        json!([{
            "name": "batch", "image": "registry.example/batch:2", "imageID": "registry.example/batch@sha256:77aa",
            "containerID": "containerd://0bb0c0d0e0f0",
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": rfc3339_ago(120),
                                     "finishedAt": rfc3339_ago(60), "containerID": "containerd://0bb0c0d0e0f0"}},
            "lastState": {}, "ready": false, "restartCount": 0, "started": false
        }]),
        json!({}),
    );
    let mut starting = pod(
        "new-1",
        "11111111-aaaa-4bbb-8ccc-000000000005",
        "Pending",
        false,
        json!([{
            "name": "new", "image": "nginx:1.27", "imageID": "",
            "state": {"waiting": {"reason": "ContainerCreating"}},
            "lastState": {}, "ready": false, "restartCount": 0, "started": false
        }]),
        json!({}),
    );
    // Just scheduled: not ready for 2 s only, within the grace period.
    starting["status"]["conditions"][1]["lastTransitionTime"] = json!(rfc3339_ago(2));
    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [api, worker, web, batch, starting]})
}
