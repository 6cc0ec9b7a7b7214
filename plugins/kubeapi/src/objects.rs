//! What each watched kind says about itself: the attributes and severity of its events.
//!
//! Pure functions of the decoded object, testable without a server.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde::de::DeserializeOwned;
use tapio_k8s_support::OwnedEvent;
use tapio_plugin_api::Severity;

/// The event types of one kind.
#[derive(Debug, Clone, Copy)]
pub struct Types {
    /// The object appeared (or was listed at start).
    pub added: &'static str,
    /// A reported field changed.
    pub modified: &'static str,
    /// The object was deleted.
    pub deleted: &'static str,
}

/// A kind the collector watches.
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
    /// Config name of the resource (`pods`).
    const RESOURCE: &'static str;
    /// Its event types.
    const TYPES: Types;
    /// Whether the object is namespaced.
    const NAMESPACED: bool = true;
    /// The API of objects of this kind in `namespace` (all objects for cluster-scoped kinds).
    fn namespaced_api(client: kube::Client, namespace: &str) -> kube::Api<Self>;
    /// Adds the kind's own attributes; returns the severity of an add or modify.
    fn describe(&self, e: &mut OwnedEvent) -> Severity;
    /// The time the object itself records for this change, ns since the epoch (0 = now).
    fn timestamp_ns(&self) -> u64 {
        0
    }
}

fn nanos(t: &k8s_openapi::jiff::Timestamp) -> u64 {
    u64::try_from(t.as_nanosecond()).unwrap_or(0)
}

/// `k=v,k=v` in key order.
pub fn render_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
    .unwrap_or_default()
}

/// The controlling owner reference, else the first one.
pub fn owner(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let owners = meta.owner_references.as_deref()?;
    owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())
}

/// OpenTelemetry attribute names for an object of `kind`: (`name`, `uid`).
fn semconv_keys(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "Pod" => ("k8s.pod.name", "k8s.pod.uid"),
        "ReplicaSet" => ("k8s.replicaset.name", "k8s.replicaset.uid"),
        "Deployment" => ("k8s.deployment.name", "k8s.deployment.uid"),
        "StatefulSet" => ("k8s.statefulset.name", "k8s.statefulset.uid"),
        "DaemonSet" => ("k8s.daemonset.name", "k8s.daemonset.uid"),
        "Job" => ("k8s.job.name", "k8s.job.uid"),
        "CronJob" => ("k8s.cronjob.name", "k8s.cronjob.uid"),
        "Node" => ("k8s.node.name", "k8s.node.uid"),
        "Service" => ("k8s.service.name", "k8s.service.uid"),
        _ => return None,
    })
}

/// Attributes every object has: kind, name, namespace, uid, labels, owner.
pub fn common_attributes(e: &mut OwnedEvent, kind: &str, meta: &ObjectMeta) {
    let name = meta.name.clone().unwrap_or_default();
    let uid = meta.uid.clone().unwrap_or_default();
    e.push_str("k8s.object.kind", kind)
        .push_str("k8s.object.name", name.clone())
        .push_str("k8s.object.uid", uid.clone())
        .push_str(
            "k8s.namespace.name",
            meta.namespace.clone().unwrap_or_default(),
        )
        .push_str("k8s.object.labels", render_map(meta.labels.as_ref()));
    if let Some((name_key, uid_key)) = semconv_keys(kind) {
        e.push_str(name_key, name).push_str(uid_key, uid);
    }
    if let Some(o) = owner(meta) {
        e.push_str("k8s.owner.kind", o.kind.clone())
            .push_str("k8s.owner.name", o.name.clone())
            .push_str("k8s.owner.uid", o.uid.clone());
        if o.kind != kind {
            if let Some((name_key, uid_key)) = semconv_keys(&o.kind) {
                e.push_str(name_key, o.name.clone())
                    .push_str(uid_key, o.uid.clone());
            }
        }
    }
    if meta.deletion_timestamp.is_some() {
        e.push_bool("k8s.object.terminating", true);
    }
}

fn condition<'a, C>(
    conditions: Option<&'a Vec<C>>,
    kind: &str,
    f: fn(&'a C) -> (&'a str, &'a str),
) -> Option<&'a str> {
    conditions?
        .iter()
        .map(f)
        .find(|(t, _)| *t == kind)
        .map(|(_, s)| s)
}

impl Watched for Pod {
    const RESOURCE: &'static str = "pods";
    const TYPES: Types = Types {
        added: "k8s.pod.added",
        modified: "k8s.pod.modified",
        deleted: "k8s.pod.deleted",
    };

    fn namespaced_api(client: kube::Client, namespace: &str) -> kube::Api<Self> {
        kube::Api::namespaced(client, namespace)
    }

    fn describe(&self, e: &mut OwnedEvent) -> Severity {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        e.push_str(
            "k8s.node.name",
            spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        );
        let phase = status.and_then(|s| s.phase.clone()).unwrap_or_default();
        e.push_str("k8s.pod.phase", phase.clone())
            .push_str(
                "k8s.pod.ip",
                status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
            )
            .push_str(
                "k8s.pod.qos_class",
                status.and_then(|s| s.qos_class.clone()).unwrap_or_default(),
            );
        let reason = status.and_then(|s| s.reason.clone()).unwrap_or_default();
        e.push_str("k8s.pod.status.reason", reason.clone());
        if let Some(ready) = condition(status.and_then(|s| s.conditions.as_ref()), "Ready", |c| {
            (&c.type_, &c.status)
        }) {
            e.push_bool("k8s.pod.ready", ready == "True");
        }
        let restarts: i64 = status
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| cs.iter().map(|c| i64::from(c.restart_count)).sum())
            .unwrap_or(0);
        e.push_int("k8s.pod.restarts", restarts);
        if phase == "Failed" || reason == "Evicted" {
            Severity::Warning
        } else {
            Severity::Info
        }
    }
}

fn replicas(e: &mut OwnedEvent, desired: Option<i32>, ready: Option<i32>, available: Option<i32>) {
    e.push_int("k8s.replicas.desired", i64::from(desired.unwrap_or(0)))
        .push_int("k8s.replicas.ready", i64::from(ready.unwrap_or(0)))
        .push_int("k8s.replicas.available", i64::from(available.unwrap_or(0)));
}

impl Watched for Deployment {
    const RESOURCE: &'static str = "deployments";
    const TYPES: Types = Types {
        added: "k8s.deployment.added",
        modified: "k8s.deployment.modified",
        deleted: "k8s.deployment.deleted",
    };

    fn namespaced_api(client: kube::Client, namespace: &str) -> kube::Api<Self> {
        kube::Api::namespaced(client, namespace)
    }

    fn describe(&self, e: &mut OwnedEvent) -> Severity {
        let status = self.status.as_ref();
        replicas(
            e,
            self.spec.as_ref().and_then(|s| s.replicas),
            status.and_then(|s| s.ready_replicas),
            status.and_then(|s| s.available_replicas),
        );
        e.push_int(
            "k8s.replicas.updated",
            i64::from(status.and_then(|s| s.updated_replicas).unwrap_or(0)),
        );
        let conditions = status.and_then(|s| s.conditions.as_ref());
        let available = condition(conditions, "Available", |c| (&c.type_, &c.status));
        let progressing = condition(conditions, "Progressing", |c| (&c.type_, &c.status));
        if let Some(a) = available {
            e.push_bool("k8s.deployment.available", a == "True");
        }
        if available == Some("False") || progressing == Some("False") {
            Severity::Warning
        } else {
            Severity::Info
        }
    }
}

impl Watched for ReplicaSet {
    const RESOURCE: &'static str = "replicasets";
    const TYPES: Types = Types {
        added: "k8s.replicaset.added",
        modified: "k8s.replicaset.modified",
        deleted: "k8s.replicaset.deleted",
    };

    fn namespaced_api(client: kube::Client, namespace: &str) -> kube::Api<Self> {
        kube::Api::namespaced(client, namespace)
    }

    fn describe(&self, e: &mut OwnedEvent) -> Severity {
        let status = self.status.as_ref();
        replicas(
            e,
            self.spec.as_ref().and_then(|s| s.replicas),
            status.and_then(|s| s.ready_replicas),
            status.and_then(|s| s.available_replicas),
        );
        Severity::Info
    }
}

impl Watched for StatefulSet {
    const RESOURCE: &'static str = "statefulsets";
    const TYPES: Types = Types {
        added: "k8s.statefulset.added",
        modified: "k8s.statefulset.modified",
        deleted: "k8s.statefulset.deleted",
    };

    fn namespaced_api(client: kube::Client, namespace: &str) -> kube::Api<Self> {
        kube::Api::namespaced(client, namespace)
    }

    fn describe(&self, e: &mut OwnedEvent) -> Severity {
        let status = self.status.as_ref();
        replicas(
            e,
            self.spec.as_ref().and_then(|s| s.replicas),
            status.and_then(|s| s.ready_replicas),
            status.and_then(|s| s.available_replicas),
        );
        e.push_str(
            "k8s.statefulset.service_name",
            self.spec
                .as_ref()
                .and_then(|s| s.service_name.clone())
                .unwrap_or_default(),
        );
        Severity::Info
    }
}

impl Watched for DaemonSet {
    const RESOURCE: &'static str = "daemonsets";
    const TYPES: Types = Types {
        added: "k8s.daemonset.added",
        modified: "k8s.daemonset.modified",
        deleted: "k8s.daemonset.deleted",
    };

    fn namespaced_api(client: kube::Client, namespace: &str) -> kube::Api<Self> {
        kube::Api::namespaced(client, namespace)
    }

    fn describe(&self, e: &mut OwnedEvent) -> Severity {
        let status = self.status.as_ref();
        replicas(
            e,
            status.map(|s| s.desired_number_scheduled),
            status.map(|s| s.number_ready),
            status.and_then(|s| s.number_available),
        );
        e.push_int(
            "k8s.daemonset.misscheduled",
            i64::from(status.map(|s| s.number_misscheduled).unwrap_or(0)),
        );
        Severity::Info
    }
}

impl Watched for Service {
    const RESOURCE: &'static str = "services";
    const TYPES: Types = Types {
        added: "k8s.service.added",
        modified: "k8s.service.modified",
        deleted: "k8s.service.deleted",
    };

    fn namespaced_api(client: kube::Client, namespace: &str) -> kube::Api<Self> {
        kube::Api::namespaced(client, namespace)
    }

    fn describe(&self, e: &mut OwnedEvent) -> Severity {
        if let Some(spec) = &self.spec {
            let ports = spec
                .ports
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|p| format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP")))
                .collect::<Vec<_>>()
                .join(",");
            e.push_str("k8s.service.type", spec.type_.clone().unwrap_or_default())
                .push_str(
                    "k8s.service.cluster_ip",
                    spec.cluster_ip.clone().unwrap_or_default(),
                )
                .push_str("k8s.service.selector", render_map(spec.selector.as_ref()))
                .push_str("k8s.service.ports", ports);
        }
        Severity::Info
    }
}

impl Watched for Node {
    const RESOURCE: &'static str = "nodes";
    const TYPES: Types = Types {
        added: "k8s.node.added",
        modified: "k8s.node.modified",
        deleted: "k8s.node.deleted",
    };
    const NAMESPACED: bool = false;

    fn namespaced_api(client: kube::Client, _namespace: &str) -> kube::Api<Self> {
        kube::Api::all(client)
    }

    fn describe(&self, e: &mut OwnedEvent) -> Severity {
        let status = self.status.as_ref();
        let conditions = status.and_then(|s| s.conditions.as_ref());
        let ready = condition(conditions, "Ready", |c| (&c.type_, &c.status));
        if let Some(r) = ready {
            e.push_bool("k8s.node.ready", r == "True");
        }
        // Every condition other than Ready is a problem when True (MemoryPressure, ...).
        let problems: Vec<&str> = conditions
            .map(|cs| {
                cs.iter()
                    .filter(|c| c.type_ != "Ready" && c.status == "True")
                    .map(|c| c.type_.as_str())
                    .collect()
            })
            .unwrap_or_default();
        e.push_str("k8s.node.conditions", problems.join(","));
        let unschedulable = self
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        e.push_bool("k8s.node.unschedulable", unschedulable);
        if let Some(info) = status.and_then(|s| s.node_info.as_ref()) {
            e.push_str("k8s.node.kubelet.version", info.kubelet_version.clone())
                .push_str(
                    "container.runtime.version",
                    info.container_runtime_version.clone(),
                );
        }
        if ready.is_some_and(|r| r != "True") {
            Severity::High
        } else if !problems.is_empty() {
            Severity::Warning
        } else {
            Severity::Info
        }
    }
}

impl Watched for KubeEvent {
    const RESOURCE: &'static str = "events";
    const TYPES: Types = Types {
        added: "k8s.event",
        modified: "k8s.event",
        deleted: "k8s.event",
    };

    fn namespaced_api(client: kube::Client, namespace: &str) -> kube::Api<Self> {
        kube::Api::namespaced(client, namespace)
    }

    fn describe(&self, e: &mut OwnedEvent) -> Severity {
        let io = &self.involved_object;
        e.push_str("k8s.event.reason", self.reason.clone().unwrap_or_default())
            .push_str(
                "k8s.event.message",
                self.message.clone().unwrap_or_default(),
            )
            .push_str("k8s.event.type", self.type_.clone().unwrap_or_default())
            .push_int("k8s.event.count", i64::from(self.count.unwrap_or(1)))
            .push_str(
                "k8s.involved_object.kind",
                io.kind.clone().unwrap_or_default(),
            )
            .push_str(
                "k8s.involved_object.name",
                io.name.clone().unwrap_or_default(),
            )
            .push_str(
                "k8s.involved_object.uid",
                io.uid.clone().unwrap_or_default(),
            )
            .push_str(
                "k8s.involved_object.namespace",
                io.namespace.clone().unwrap_or_default(),
            )
            .push_str(
                "k8s.event.source.component",
                self.source
                    .as_ref()
                    .and_then(|s| s.component.clone())
                    .unwrap_or_default(),
            )
            .push_str(
                "k8s.node.name",
                self.source
                    .as_ref()
                    .and_then(|s| s.host.clone())
                    .unwrap_or_default(),
            );
        if let Some((name_key, uid_key)) = io.kind.as_deref().and_then(semconv_keys) {
            if name_key != "k8s.node.name"
                || self.source.as_ref().and_then(|s| s.host.as_ref()).is_none()
            {
                e.push_str(name_key, io.name.clone().unwrap_or_default());
            }
            e.push_str(uid_key, io.uid.clone().unwrap_or_default());
        }
        if self.type_.as_deref() == Some("Warning") {
            Severity::Warning
        } else {
            Severity::Info
        }
    }

    fn timestamp_ns(&self) -> u64 {
        self.last_timestamp
            .as_ref()
            .map(|t| nanos(&t.0))
            .or_else(|| self.event_time.as_ref().map(|t| nanos(&t.0)))
            .or_else(|| self.first_timestamp.as_ref().map(|t| nanos(&t.0)))
            .unwrap_or(0)
    }
}
