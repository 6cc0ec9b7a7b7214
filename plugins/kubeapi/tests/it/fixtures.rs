//! Objects the test API server serves. The pod comes from `tests/fixtures/pod-web.json`
//! (the API server's JSON for a Deployment pod, managed fields included); the others are
//! built with `k8s-openapi` types and serialized, which is the API server's JSON shape.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetStatus, Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus,
    ReplicaSet, ReplicaSetSpec, ReplicaSetStatus, StatefulSet, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Event, EventSource, Node, NodeCondition, NodeStatus, NodeSystemInfo, ObjectReference,
    PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// The trace id annotated on the Deployment.
pub const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// Uids of the objects.
pub const DEPLOYMENT_UID: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
/// ReplicaSet uid.
pub const REPLICASET_UID: &str = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
/// Pod uid (from the fixture file).
pub const POD_UID: &str = "5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b";
/// Pod name.
pub const POD_NAME: &str = "web-7d4b9c6f5-x2x9k";

fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn meta(name: &str, namespace: Option<&str>, uid: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        uid: Some(uid.into()),
        creation_timestamp: Some(Time(Timestamp::now())),
        ..Default::default()
    }
}

fn owned_by(kind: &str, name: &str, uid: &str) -> Option<Vec<OwnerReference>> {
    Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }])
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

/// The web pod, as the API server returned it.
pub fn pod() -> Value {
    serde_json::from_str(include_str!("../fixtures/pod-web.json")).unwrap()
}

/// The web pod, now running and ready.
pub fn pod_running() -> Value {
    let mut p = pod();
    p["status"]["phase"] = "Running".into();
    for c in p["status"]["conditions"].as_array_mut().unwrap() {
        c["status"] = "True".into();
        c.as_object_mut().unwrap().remove("reason");
        c.as_object_mut().unwrap().remove("message");
    }
    p["status"]["containerStatuses"][0]["ready"] = true.into();
    p["status"]["containerStatuses"][0]["started"] = true.into();
    p["status"]["containerStatuses"][0]["state"] =
        serde_json::json!({"running": {"startedAt": "2026-11-22T08:00:03Z"}});
    p
}

/// Another pod of the ReplicaSet, named `name`.
pub fn pod_named(name: &str, uid: &str) -> Value {
    let mut p = pod_running();
    p["metadata"]["name"] = name.into();
    p["metadata"]["uid"] = uid.into();
    p
}

/// A kube-system pod (excluded by default).
pub fn system_pod() -> Value {
    let mut p = pod_named(
        "coredns-5d78c9869d-abcde",
        "9f8e7d6c-0000-4000-8000-000000000001",
    );
    p["metadata"]["namespace"] = "kube-system".into();
    p["metadata"]["ownerReferences"] = Value::Null;
    p
}

/// Deployment `shop/web`, annotated with [`TRACE_ID`].
pub fn deployment() -> Value {
    let mut m = meta("web", Some("shop"), DEPLOYMENT_UID);
    m.labels = labels(&[("app", "web")]);
    m.annotations = labels(&[
        ("tapio.io/trace-id", TRACE_ID),
        ("deployment.kubernetes.io/revision", "1"),
    ]);
    m.generation = Some(1);
    to_json(&Deployment {
        metadata: m,
        spec: Some(DeploymentSpec {
            replicas: Some(2),
            selector: LabelSelector {
                match_labels: labels(&[("app", "web")]),
                ..Default::default()
            },
            template: PodTemplateSpec::default(),
            ..Default::default()
        }),
        status: Some(DeploymentStatus {
            replicas: Some(2),
            ready_replicas: Some(2),
            available_replicas: Some(2),
            updated_replicas: Some(2),
            observed_generation: Some(1),
            conditions: Some(vec![DeploymentCondition {
                type_: "Available".into(),
                status: "True".into(),
                reason: Some("MinimumReplicasAvailable".into()),
                message: Some("Deployment has minimum availability.".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    })
}

/// ReplicaSet `shop/web-7d4b9c6f5`, owned by the Deployment.
pub fn replicaset() -> Value {
    let mut m = meta("web-7d4b9c6f5", Some("shop"), REPLICASET_UID);
    m.labels = labels(&[("app", "web"), ("pod-template-hash", "7d4b9c6f5")]);
    m.owner_references = owned_by("Deployment", "web", DEPLOYMENT_UID);
    to_json(&ReplicaSet {
        metadata: m,
        spec: Some(ReplicaSetSpec {
            replicas: Some(2),
            selector: LabelSelector {
                match_labels: labels(&[("app", "web")]),
                ..Default::default()
            },
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas: 2,
            ready_replicas: Some(2),
            available_replicas: Some(2),
            ..Default::default()
        }),
    })
}

/// StatefulSet `shop/db`.
pub fn statefulset() -> Value {
    to_json(&StatefulSet {
        metadata: meta("db", Some("shop"), "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some("db".into()),
            selector: LabelSelector {
                match_labels: labels(&[("app", "db")]),
                ..Default::default()
            },
            ..Default::default()
        }),
        status: None,
    })
}

/// DaemonSet `shop/agent`.
pub fn daemonset() -> Value {
    to_json(&DaemonSet {
        metadata: meta(
            "agent",
            Some("shop"),
            "8c9d0e1f-2a3b-4c4d-9e5f-6a7b8c9d0e1f",
        ),
        spec: None,
        status: Some(DaemonSetStatus {
            desired_number_scheduled: 3,
            current_number_scheduled: 3,
            number_ready: 2,
            number_available: Some(2),
            number_misscheduled: 0,
            ..Default::default()
        }),
    })
}

/// Service `shop/web` selecting `app=web`.
pub fn service() -> Value {
    to_json(&Service {
        metadata: meta("web", Some("shop"), "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: Some("10.96.12.34".into()),
            selector: labels(&[("app", "web"), ("tier", "front")]),
            ports: Some(vec![ServicePort {
                port: 80,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    })
}

/// Node `node-1`, ready.
pub fn node() -> Value {
    let condition = |t: &str, s: &str| NodeCondition {
        type_: t.into(),
        status: s.into(),
        ..Default::default()
    };
    to_json(&Node {
        metadata: meta("node-1", None, "0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b"),
        spec: None,
        status: Some(NodeStatus {
            conditions: Some(vec![
                condition("MemoryPressure", "False"),
                condition("Ready", "True"),
            ]),
            node_info: Some(NodeSystemInfo {
                kubelet_version: "v1.33.1".into(),
                container_runtime_version: "containerd://1.7.24".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    })
}

/// A Warning event `BackOff` about the web pod.
pub fn backoff_event(name: &str, count: i32) -> Value {
    to_json(&Event {
        metadata: meta(
            name,
            Some("shop"),
            &format!("6f7a8b9c-0d1e-4f2a-8b3c-{:012}", count),
        ),
        involved_object: ObjectReference {
            kind: Some("Pod".into()),
            name: Some(POD_NAME.into()),
            namespace: Some("shop".into()),
            uid: Some(POD_UID.into()),
            api_version: Some("v1".into()),
            field_path: Some("spec.containers{web}".into()),
            ..Default::default()
        },
        reason: Some("BackOff".into()),
        message: Some(
            "Back-off restarting failed container web in pod web-7d4b9c6f5-x2x9k_shop".into(),
        ),
        type_: Some("Warning".into()),
        count: Some(count),
        first_timestamp: Some(Time(Timestamp::now())),
        last_timestamp: Some(Time(Timestamp::now())),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some("node-1".into()),
        }),
        ..Default::default()
    })
}
