//! The kubelet's `/stats/summary` response (`k8s.io/kubelet/pkg/apis/stats/v1alpha1`),
//! reduced to the fields the collector reads. Every field is optional: the kubelet leaves
//! out what it cannot measure.

use serde::Deserialize;

/// The whole summary.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Node-level statistics.
    #[serde(default)]
    pub node: NodeStats,
    /// Per-pod statistics.
    #[serde(default)]
    pub pods: Vec<PodStats>,
}

/// Node statistics.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    /// Node name.
    #[serde(default)]
    pub node_name: String,
    /// CPU.
    pub cpu: Option<CpuStats>,
    /// Memory.
    pub memory: Option<MemoryStats>,
    /// The node's root filesystem (where ephemeral storage lives).
    pub fs: Option<FsStats>,
}

/// CPU usage.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    /// Average usage over the sample window, in nanocores.
    pub usage_nano_cores: Option<u64>,
}

/// Memory usage.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    /// Memory available before the kubelet's eviction signal `memory.available` fires.
    pub available_bytes: Option<u64>,
    /// Total usage.
    pub usage_bytes: Option<u64>,
    /// Working set (what eviction decisions use).
    pub working_set_bytes: Option<u64>,
}

/// Filesystem usage.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsStats {
    /// Bytes available.
    pub available_bytes: Option<u64>,
    /// Total capacity.
    pub capacity_bytes: Option<u64>,
    /// Bytes used (by the pod, for a pod's ephemeral storage).
    pub used_bytes: Option<u64>,
}

/// A pod's identity in the summary.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PodRef {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Uid.
    #[serde(default)]
    pub uid: String,
}

/// Pod statistics.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    /// Which pod.
    pub pod_ref: PodRef,
    /// Memory of the pod.
    pub memory: Option<MemoryStats>,
    /// Ephemeral storage: the pod's logs, writable layers and emptyDir volumes on the node
    /// filesystem. `capacityBytes` is the node filesystem's.
    #[serde(rename = "ephemeral-storage")]
    pub ephemeral_storage: Option<FsStats>,
}
