//! The event vocabulary correlation reads: every event type and attribute key the entity
//! graph and the OTel attachment depend on, in one table so a renamed attribute in a plugin
//! is a one-line change here. Rules name types and attributes in their YAML instead.

/// Event types that feed the entity graph.
pub mod types {
    /// A process started (kernel process plugin).
    pub const PROCESS_EXEC: &str = "kernel.process.exec";
    /// A process ended.
    pub const PROCESS_EXIT: &str = "kernel.process.exit";
    /// An application span (OTLP receiver plugin).
    pub const OTEL_SPAN: &str = "otel.span";
    /// A group this stage produced.
    pub const GROUP: &str = "tapio.correlation.group";
    /// A prediction this stage produced.
    pub const PREDICTION: &str = "tapio.correlation.prediction";
}

/// Attribute keys (OpenTelemetry semantic conventions where they exist).
pub mod attr {
    /// Process id.
    pub const PROCESS_PID: &str = "process.pid";
    /// Parent process id.
    pub const PROCESS_PPID: &str = "process.parent_pid";
    /// Executable name.
    pub const PROCESS_EXE: &str = "process.executable.name";
    /// Container id.
    pub const CONTAINER_ID: &str = "container.id";
    /// Cgroup path.
    pub const CGROUP_PATH: &str = "cgroup.path";
    /// Pod uid.
    pub const POD_UID: &str = "k8s.pod.uid";
    /// Pod name.
    pub const POD_NAME: &str = "k8s.pod.name";
    /// Namespace.
    pub const NAMESPACE: &str = "k8s.namespace.name";
    /// Container name in the pod.
    pub const K8S_CONTAINER: &str = "k8s.container.name";
    /// Deployment name.
    pub const DEPLOYMENT: &str = "k8s.deployment.name";
    /// ReplicaSet name.
    pub const REPLICASET: &str = "k8s.replicaset.name";
    /// StatefulSet name.
    pub const STATEFULSET: &str = "k8s.statefulset.name";
    /// DaemonSet name.
    pub const DAEMONSET: &str = "k8s.daemonset.name";
    /// Owner kind of a Kubernetes object.
    pub const OWNER_KIND: &str = "k8s.owner.kind";
    /// Owner name of a Kubernetes object.
    pub const OWNER_NAME: &str = "k8s.owner.name";
    /// Kind of a Kubernetes object (kubeapi events).
    pub const OBJECT_KIND: &str = "k8s.object.kind";
    /// Name of a Kubernetes object.
    pub const OBJECT_NAME: &str = "k8s.object.name";
    /// Uid of a Kubernetes object.
    pub const OBJECT_UID: &str = "k8s.object.uid";
    /// Labels of a Kubernetes object (JSON object or `k=v,k=v`).
    pub const OBJECT_LABELS: &str = "k8s.object.labels";
    /// Pod IP.
    pub const POD_IP: &str = "k8s.pod.ip";
    /// Node name.
    pub const NODE: &str = "k8s.node.name";
    /// Service name.
    pub const SERVICE: &str = "k8s.service.name";
    /// Service selector (JSON object or `k=v,k=v`).
    pub const SERVICE_SELECTOR: &str = "k8s.service.selector";
    /// Service cluster IP.
    pub const SERVICE_IP: &str = "k8s.service.cluster_ip";
    /// systemd unit.
    pub const UNIT: &str = "systemd.unit";
    /// Remote address of a connection.
    pub const PEER_ADDR: &str = "network.peer.address";
    /// Remote port of a connection.
    pub const PEER_PORT: &str = "network.peer.port";
    /// Server address of a client span.
    pub const SERVER_ADDR: &str = "server.address";
    /// DNS question.
    pub const DNS_NAME: &str = "dns.question.name";
    /// Duration of an OTel span.
    pub const SPAN_DURATION: &str = "otel.span.duration_ns";
    /// Name of an OTel span.
    pub const SPAN_NAME: &str = "otel.span.name";
    /// The group an event belongs to (the first, whose trace it joined).
    pub const GROUP_ID: &str = "tapio.group.id";
    /// Every group an event belongs to (JSON list of group ids).
    pub const GROUPS: &str = "tapio.correlation.groups";
    /// Which span an attached kernel event was placed in.
    pub const ATTACHED_SPAN: &str = "tapio.otel.attached_span_id";
}
