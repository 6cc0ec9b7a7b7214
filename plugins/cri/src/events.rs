//! Lifecycle changes as tapio events, with their attributes.

use tapio_k8s_support::{owned_event, OwnedEvent};
use tapio_plugin_api::{EventTypeInfo, Severity};

use crate::model::{ContainerView, PodView};
use crate::tracker::Change;

/// A container was created.
pub const CONTAINER_CREATED: &str = "cri.container.created";
/// A container started.
pub const CONTAINER_STARTED: &str = "cri.container.started";
/// A container exited.
pub const CONTAINER_EXITED: &str = "cri.container.exited";
/// A container was removed.
pub const CONTAINER_REMOVED: &str = "cri.container.removed";
/// A pod sandbox was created.
pub const POD_CREATED: &str = "cri.pod.created";
/// A pod sandbox stopped.
pub const POD_STOPPED: &str = "cri.pod.stopped";
/// A pod sandbox was removed.
pub const POD_REMOVED: &str = "cri.pod.removed";

/// Every event type, for `INFO`.
pub const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(CONTAINER_CREATED, "The runtime created a container"),
    EventTypeInfo::new(CONTAINER_STARTED, "A container started running"),
    EventTypeInfo::new(
        CONTAINER_EXITED,
        "A container exited: exit code, reason, message, OOM kill",
    ),
    EventTypeInfo::new(CONTAINER_REMOVED, "The runtime removed a container"),
    EventTypeInfo::new(POD_CREATED, "The runtime created a pod sandbox"),
    EventTypeInfo::new(POD_STOPPED, "A pod sandbox stopped (not ready)"),
    EventTypeInfo::new(POD_REMOVED, "The runtime removed a pod sandbox"),
];

/// The runtime the events come from.
#[derive(Debug, Clone, Default)]
pub struct RuntimeInfo {
    /// `containerd`, `cri-o`, ...
    pub name: String,
    /// Its version.
    pub version: String,
}

/// Builds the event for `change`; `pod` is the change's sandbox when known.
pub fn to_event(
    change: &Change,
    pod: Option<&PodView>,
    runtime: &RuntimeInfo,
    now_ns: i64,
) -> OwnedEvent {
    let ts = u64::try_from(change.timestamp_ns(now_ns)).unwrap_or(0);
    let (event_type, severity) = match change {
        Change::PodCreated(_) => (POD_CREATED, Severity::Info),
        Change::PodStopped(_) => (POD_STOPPED, Severity::Info),
        Change::PodRemoved(_) => (POD_REMOVED, Severity::Info),
        Change::ContainerCreated(_) => (CONTAINER_CREATED, Severity::Info),
        Change::ContainerStarted(_) => (CONTAINER_STARTED, Severity::Info),
        Change::ContainerRemoved(_) => (CONTAINER_REMOVED, Severity::Info),
        Change::ContainerExited(c) => (CONTAINER_EXITED, exit_severity(c)),
    };
    let mut e = owned_event(event_type, severity, ts);
    e.push_str("container.runtime", runtime.name.clone())
        .push_str("container.runtime.version", runtime.version.clone());
    match change {
        Change::PodCreated(p) | Change::PodStopped(p) | Change::PodRemoved(p) => {
            pod_attrs(&mut e, p)
        }
        Change::ContainerCreated(c)
        | Change::ContainerStarted(c)
        | Change::ContainerExited(c)
        | Change::ContainerRemoved(c) => container_attrs(&mut e, c, pod),
    }
    if let Change::ContainerExited(c) = change {
        if let Some(s) = &c.status {
            e.push_int("process.exit.code", i64::from(s.exit_code))
                .push_str("container.exit.reason", s.reason.clone())
                .push_str("container.exit.message", s.message.clone())
                .push_bool("container.oom_killed", s.oom_killed());
            if s.started_at_ns > 0 && s.finished_at_ns >= s.started_at_ns {
                e.push_float(
                    "container.run.duration_s",
                    (s.finished_at_ns - s.started_at_ns) as f64 / 1e9,
                );
            }
        }
    }
    e
}

fn exit_severity(c: &ContainerView) -> Severity {
    match &c.status {
        Some(s) if s.oom_killed() => Severity::Error,
        Some(s) if s.exit_code != 0 => Severity::Warning,
        _ => Severity::Info,
    }
}

fn pod_attrs(e: &mut OwnedEvent, p: &PodView) {
    e.push_str("k8s.pod.name", p.name.clone())
        .push_str("k8s.namespace.name", p.namespace.clone())
        .push_str("k8s.pod.uid", p.uid.clone())
        .push_str("cri.pod_sandbox.id", p.id.clone())
        .push_uint("cri.pod_sandbox.attempt", u64::from(p.attempt))
        .push_str("cri.runtime_handler", p.runtime_handler.clone());
}

fn container_attrs(e: &mut OwnedEvent, c: &ContainerView, pod: Option<&PodView>) {
    let or_pod = |own: &str, f: fn(&PodView) -> &str| {
        if own.is_empty() {
            pod.map(f).unwrap_or_default().to_owned()
        } else {
            own.to_owned()
        }
    };
    e.container_id = c.id.clone();
    e.push_str("container.id", c.id.clone())
        .push_str("k8s.container.name", c.name.clone())
        .push_uint("k8s.container.restart_count", u64::from(c.attempt))
        .push_str("container.image.name", c.image.clone())
        .push_str("container.image.id", c.image_ref.clone())
        .push_str("k8s.pod.name", or_pod(&c.pod_name, |p| &p.name))
        .push_str(
            "k8s.namespace.name",
            or_pod(&c.pod_namespace, |p| &p.namespace),
        )
        .push_str("k8s.pod.uid", or_pod(&c.pod_uid, |p| &p.uid))
        .push_str("cri.pod_sandbox.id", c.sandbox_id.clone())
        .push_str("container.state", c.phase.as_str());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContainerPhase, StatusDetails};

    #[test]
    fn exit_carries_code_reason_and_pod_from_sandbox() {
        let pod = PodView {
            id: "s1".into(),
            name: "web-0".into(),
            namespace: "shop".into(),
            uid: "u-1".into(),
            attempt: 0,
            ready: true,
            created_at_ns: 1,
            runtime_handler: String::new(),
        };
        let c = ContainerView {
            id: "c1".into(),
            sandbox_id: "s1".into(),
            name: "app".into(),
            attempt: 2,
            image: "busybox".into(),
            image_ref: "sha256:1".into(),
            phase: ContainerPhase::Exited,
            created_at_ns: 2,
            pod_name: String::new(),
            pod_namespace: String::new(),
            pod_uid: String::new(),
            status: Some(StatusDetails {
                started_at_ns: 1_000_000_000,
                finished_at_ns: 3_000_000_000,
                exit_code: 137,
                reason: "OOMKilled".into(),
                message: String::new(),
            }),
        };
        let rt = RuntimeInfo {
            name: "containerd".into(),
            version: "1.6.20".into(),
        };
        let e = to_event(&Change::ContainerExited(c), Some(&pod), &rt, 9);
        assert_eq!(e.event_type, CONTAINER_EXITED);
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(e.timestamp_ns, 3_000_000_000);
        assert_eq!(e.container_id, "c1");
        assert_eq!(e.get_str("k8s.pod.name"), Some("web-0"));
        assert_eq!(e.get_str("container.exit.reason"), Some("OOMKilled"));
        assert!(e
            .attributes
            .contains(&("process.exit.code", tapio_k8s_support::OwnedValue::Int(137))));
        assert!(e.attributes.contains(&(
            "container.oom_killed",
            tapio_k8s_support::OwnedValue::Bool(true)
        )));
        assert!(e.attributes.contains(&(
            "container.run.duration_s",
            tapio_k8s_support::OwnedValue::Float(2.0)
        )));
    }
}
