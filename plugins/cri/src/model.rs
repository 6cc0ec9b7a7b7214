//! What the collector keeps of each pod sandbox and container: plain values decoded from
//! the CRI messages, independent of gRPC so that the tracking logic is testable alone.

use std::collections::HashMap;

use crate::proto;

/// CRI label with the pod name (set by the kubelet on sandboxes and containers).
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
/// CRI label with the pod namespace.
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// CRI label with the pod uid.
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
/// CRI label with the container name in the pod spec.
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// A pod sandbox as listed by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// Sandbox id.
    pub id: String,
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod uid.
    pub uid: String,
    /// Sandbox attempt (0 for the first sandbox of a pod).
    pub attempt: u32,
    /// `SANDBOX_READY`.
    pub ready: bool,
    /// Creation time, nanoseconds since the epoch.
    pub created_at_ns: i64,
    /// Runtime handler (runtime class), empty for the default.
    pub runtime_handler: String,
}

impl PodView {
    /// Decodes a `PodSandbox` from `ListPodSandbox`.
    pub fn from_proto(p: &proto::PodSandbox) -> Self {
        let meta = p.metadata.clone().unwrap_or_default();
        let pick = |label: &str, fallback: String| {
            if fallback.is_empty() {
                p.labels.get(label).cloned().unwrap_or_default()
            } else {
                fallback
            }
        };
        PodView {
            id: p.id.clone(),
            name: pick(LABEL_POD_NAME, meta.name),
            namespace: pick(LABEL_POD_NAMESPACE, meta.namespace),
            uid: pick(LABEL_POD_UID, meta.uid),
            attempt: meta.attempt,
            ready: p.state == proto::PodSandboxState::SandboxReady as i32,
            created_at_ns: p.created_at,
            runtime_handler: p.runtime_handler.clone(),
        }
    }
}

/// Container state as the CRI reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerPhase {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
    /// The runtime does not know.
    Unknown,
}

impl ContainerPhase {
    /// From the CRI enum value.
    pub fn from_proto(state: i32) -> Self {
        match proto::ContainerState::try_from(state) {
            Ok(proto::ContainerState::ContainerCreated) => ContainerPhase::Created,
            Ok(proto::ContainerState::ContainerRunning) => ContainerPhase::Running,
            Ok(proto::ContainerState::ContainerExited) => ContainerPhase::Exited,
            _ => ContainerPhase::Unknown,
        }
    }

    /// Lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerPhase::Created => "created",
            ContainerPhase::Running => "running",
            ContainerPhase::Exited => "exited",
            ContainerPhase::Unknown => "unknown",
        }
    }
}

/// Details only `ContainerStatus` returns (start, finish, exit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusDetails {
    /// Start time, ns since the epoch (0 = never started).
    pub started_at_ns: i64,
    /// Finish time, ns since the epoch (0 = not finished).
    pub finished_at_ns: i64,
    /// Exit code (meaningful when finished).
    pub exit_code: i32,
    /// Short reason (`Completed`, `Error`, `OOMKilled`, ...).
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl StatusDetails {
    /// Decodes a `ContainerStatus`.
    pub fn from_proto(s: &proto::ContainerStatus) -> Self {
        StatusDetails {
            started_at_ns: s.started_at,
            finished_at_ns: s.finished_at,
            exit_code: s.exit_code,
            reason: s.reason.clone(),
            message: s.message.clone(),
        }
    }

    /// Whether the runtime reports an OOM kill.
    pub fn oom_killed(&self) -> bool {
        self.reason == "OOMKilled"
    }
}

/// A container as listed by the runtime, with its status details when fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView {
    /// Container id.
    pub id: String,
    /// Sandbox id.
    pub sandbox_id: String,
    /// Container name (`io.kubernetes.container.name`, else the CRI metadata name).
    pub name: String,
    /// Attempt (the kubelet's restart count).
    pub attempt: u32,
    /// Image as requested.
    pub image: String,
    /// Image reference the runtime resolved.
    pub image_ref: String,
    /// State.
    pub phase: ContainerPhase,
    /// Creation time, ns since the epoch.
    pub created_at_ns: i64,
    /// Pod name from the labels (may be empty; the sandbox fills it in).
    pub pod_name: String,
    /// Pod namespace from the labels.
    pub pod_namespace: String,
    /// Pod uid from the labels.
    pub pod_uid: String,
    /// `ContainerStatus` details, when fetched.
    pub status: Option<StatusDetails>,
}

impl ContainerView {
    /// Decodes a `Container` from `ListContainers`.
    pub fn from_proto(c: &proto::Container) -> Self {
        let meta = c.metadata.clone().unwrap_or_default();
        let label =
            |k: &str, labels: &HashMap<String, String>| labels.get(k).cloned().unwrap_or_default();
        let name = c
            .labels
            .get(LABEL_CONTAINER_NAME)
            .cloned()
            .unwrap_or(meta.name);
        ContainerView {
            id: c.id.clone(),
            sandbox_id: c.pod_sandbox_id.clone(),
            name,
            attempt: meta.attempt,
            image: c
                .image
                .as_ref()
                .map(|i| i.image.clone())
                .unwrap_or_default(),
            image_ref: c.image_ref.clone(),
            phase: ContainerPhase::from_proto(c.state),
            created_at_ns: c.created_at,
            pod_name: label(LABEL_POD_NAME, &c.labels),
            pod_namespace: label(LABEL_POD_NAMESPACE, &c.labels),
            pod_uid: label(LABEL_POD_UID, &c.labels),
            status: None,
        }
    }
}
