//! The entity graph, built from the events themselves: processes (pid, parent, executable,
//! cgroup), cgroups, containers, pods and their owners (ReplicaSet -> Deployment), services
//! and their selectors, nodes, systemd units, network peers (who connects to whom) and DNS
//! names. Every table is a [`BoundedMap`] (TTL + size limit), sized in metrics.
//!
//! [`EntityGraph::observe`] learns from an event; [`EntityGraph::resolve`] walks
//! pid -> cgroup -> container -> pod -> workload; [`enrich`] appends the resolved attributes
//! an event does not carry yet (OpenTelemetry names).

use compact_str::CompactString;

use crate::correlate::cgroup_path;
use crate::correlate::lru::BoundedMap;
use crate::correlate::vocab::{attr, types};
use crate::event::{Attribute, Event, Value};

/// Size limits and TTL of the entity tables.
#[derive(Debug, Clone, Copy)]
pub struct EntityLimits {
    /// Most processes remembered.
    pub max_processes: usize,
    /// Most cgroups, containers and pods remembered (each).
    pub max_workloads: usize,
    /// Most network peers and DNS names remembered (each).
    pub max_peers: usize,
    /// An entity not seen this long is forgotten.
    pub ttl_ns: u64,
}

impl Default for EntityLimits {
    fn default() -> Self {
        EntityLimits {
            max_processes: 200_000,
            max_workloads: 50_000,
            max_peers: 50_000,
            ttl_ns: 15 * 60 * 1_000_000_000,
        }
    }
}

/// What is known about a process.
#[derive(Debug, Clone, Default)]
pub struct ProcInfo {
    /// Parent pid.
    pub ppid: Option<u32>,
    /// Executable name.
    pub exe: Option<CompactString>,
    /// Cgroup id.
    pub cgroup_id: Option<u64>,
    /// Cgroup path (from an event or `/proc/<pid>/cgroup`).
    pub cgroup_path: Option<CompactString>,
    /// Container id.
    pub container: Option<CompactString>,
    /// Pod uid (from the cgroup path).
    pub pod_uid: Option<CompactString>,
    /// systemd unit.
    pub unit: Option<CompactString>,
}

/// What is known about a cgroup.
#[derive(Debug, Clone, Default)]
pub struct CgroupInfo {
    /// Path in the v2 (or memory) hierarchy.
    pub path: Option<CompactString>,
    /// Container id.
    pub container: Option<CompactString>,
    /// Pod uid.
    pub pod_uid: Option<CompactString>,
    /// systemd unit.
    pub unit: Option<CompactString>,
}

/// What is known about a pod.
#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    /// Name.
    pub name: Option<CompactString>,
    /// Namespace.
    pub namespace: Option<CompactString>,
    /// Node.
    pub node: Option<CompactString>,
    /// Controlling owner kind (`ReplicaSet`, `StatefulSet`, ...).
    pub owner_kind: Option<CompactString>,
    /// Controlling owner name.
    pub owner_name: Option<CompactString>,
    /// Pod IP.
    pub ip: Option<CompactString>,
    /// Labels (`k=v,k=v`).
    pub labels: Option<CompactString>,
}

/// A service and its selector.
#[derive(Debug, Clone, Default)]
pub struct ServiceInfo {
    /// Selector (`k=v,k=v`).
    pub selector: Option<CompactString>,
    /// Cluster IP.
    pub cluster_ip: Option<CompactString>,
}

/// The entities one event resolves to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// Process.
    pub pid: Option<u32>,
    /// Executable.
    pub exe: Option<CompactString>,
    /// Parent process.
    pub ppid: Option<u32>,
    /// Cgroup id.
    pub cgroup_id: Option<u64>,
    /// Cgroup path.
    pub cgroup_path: Option<CompactString>,
    /// Container id.
    pub container: Option<CompactString>,
    /// Pod uid.
    pub pod_uid: Option<CompactString>,
    /// Pod name.
    pub pod_name: Option<CompactString>,
    /// Namespace.
    pub namespace: Option<CompactString>,
    /// Node.
    pub node: Option<CompactString>,
    /// Workload kind (`Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`, `Job`).
    pub workload_kind: Option<CompactString>,
    /// Workload name.
    pub workload_name: Option<CompactString>,
    /// systemd unit.
    pub unit: Option<CompactString>,
}

impl Resolved {
    /// The most specific stable entity: pod, else container, else systemd unit, else cgroup,
    /// else process. `None` for events about nothing.
    pub fn workload_key(&self) -> Option<CompactString> {
        if let Some(p) = &self.pod_uid {
            return Some(format_compact("pod/", p));
        }
        if let Some(c) = &self.container {
            return Some(format_compact("container/", c));
        }
        if let Some(u) = &self.unit {
            return Some(format_compact("unit/", u));
        }
        if let Some(c) = self.cgroup_id {
            return Some(compact_str::format_compact!("cgroup/{c}"));
        }
        self.pid.map(|p| compact_str::format_compact!("pid/{p}"))
    }
}

fn format_compact(prefix: &str, s: &str) -> CompactString {
    let mut out = CompactString::with_capacity(prefix.len() + s.len());
    out.push_str(prefix);
    out.push_str(s);
    out
}

/// Sizes of the entity tables, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableSizes {
    /// Processes.
    pub processes: usize,
    /// Cgroups.
    pub cgroups: usize,
    /// Containers.
    pub containers: usize,
    /// Pods.
    pub pods: usize,
    /// Services, ReplicaSets and nodes.
    pub objects: usize,
    /// Network peers and DNS names.
    pub peers: usize,
    /// Entries evicted since start (TTL or size).
    pub evicted: u64,
}

/// Most distinct clients remembered per peer (downstream dependents).
const MAX_CLIENTS_PER_PEER: usize = 16;

/// The entity graph.
pub struct EntityGraph {
    procs: BoundedMap<u32, ProcInfo>,
    cgroups: BoundedMap<u64, CgroupInfo>,
    containers: BoundedMap<CompactString, CompactString>,
    pods: BoundedMap<CompactString, PodInfo>,
    /// `namespace/replicaset` -> deployment.
    replicasets: BoundedMap<CompactString, CompactString>,
    /// `namespace/service`.
    services: BoundedMap<CompactString, ServiceInfo>,
    nodes: BoundedMap<CompactString, ()>,
    /// Peer address (or DNS name) -> workload keys of its clients.
    peers: BoundedMap<CompactString, Vec<CompactString>>,
    /// IP -> the workload key that owns it (pod IP, service cluster IP).
    ip_owner: BoundedMap<CompactString, CompactString>,
}

fn str_attr<'a>(e: &'a Event, key: &str) -> Option<&'a str> {
    e.attribute(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn int_attr(e: &Event, key: &str) -> Option<i64> {
    e.attribute(key).and_then(Value::as_i64)
}

fn set(slot: &mut Option<CompactString>, v: Option<&str>) {
    if let Some(v) = v {
        if slot.as_deref() != Some(v) {
            *slot = Some(CompactString::new(v));
        }
    }
}

impl EntityGraph {
    /// An empty graph.
    pub fn new(limits: EntityLimits) -> Self {
        let ttl = limits.ttl_ns;
        EntityGraph {
            procs: BoundedMap::new(limits.max_processes, ttl),
            cgroups: BoundedMap::new(limits.max_workloads, ttl),
            containers: BoundedMap::new(limits.max_workloads, ttl),
            pods: BoundedMap::new(limits.max_workloads, ttl),
            replicasets: BoundedMap::new(limits.max_workloads, ttl),
            services: BoundedMap::new(limits.max_workloads, ttl),
            nodes: BoundedMap::new(limits.max_workloads, ttl),
            peers: BoundedMap::new(limits.max_peers, ttl),
            ip_owner: BoundedMap::new(limits.max_peers, ttl),
        }
    }

    /// Sizes of the tables.
    pub fn sizes(&self) -> TableSizes {
        TableSizes {
            processes: self.procs.len(),
            cgroups: self.cgroups.len(),
            containers: self.containers.len(),
            pods: self.pods.len(),
            objects: self.replicasets.len() + self.services.len() + self.nodes.len(),
            peers: self.peers.len() + self.ip_owner.len(),
            evicted: self.procs.evicted()
                + self.cgroups.evicted()
                + self.containers.evicted()
                + self.pods.evicted()
                + self.replicasets.evicted()
                + self.services.evicted()
                + self.nodes.evicted()
                + self.peers.evicted()
                + self.ip_owner.evicted(),
        }
    }

    /// Forgets entities idle longer than the TTL.
    pub fn expire(&mut self, now_ns: u64) {
        self.procs.expire(now_ns);
        self.cgroups.expire(now_ns);
        self.containers.expire(now_ns);
        self.pods.expire(now_ns);
        self.replicasets.expire(now_ns);
        self.services.expire(now_ns);
        self.nodes.expire(now_ns);
        self.peers.expire(now_ns);
        self.ip_owner.expire(now_ns);
    }

    /// Whether a process is known (the `/proc` fallback is asked only about unknown ones).
    /// A cgroup id alone does not count: it names no container or unit.
    pub fn knows_process(&self, pid: u32) -> bool {
        self.procs
            .get(&pid)
            .is_some_and(|p| p.cgroup_path.is_some() || p.container.is_some())
    }

    /// Records what `/proc/<pid>/cgroup` said about a live process.
    pub fn learn_proc_cgroup(&mut self, pid: u32, path: &str, cgroup_id: Option<u64>, now_ns: u64) {
        let owner = cgroup_path::parse(path);
        let p = self.procs.entry(pid, now_ns, ProcInfo::default);
        p.cgroup_path = Some(CompactString::new(path));
        if p.cgroup_id.is_none() {
            p.cgroup_id = cgroup_id;
        }
        set(&mut p.container, owner.container_id.as_deref());
        set(&mut p.pod_uid, owner.pod_uid.as_deref());
        set(&mut p.unit, owner.unit.as_deref());
        if let (Some(c), Some(pod)) = (&owner.container_id, &owner.pod_uid) {
            *self
                .containers
                .entry(CompactString::new(c), now_ns, CompactString::default) =
                CompactString::new(pod);
        }
    }

    /// Learns from one event (before it is resolved).
    pub fn observe(&mut self, e: &Event) {
        let now = e.timestamp_ns;
        let pid = e
            .pid
            .or_else(|| int_attr(e, attr::PROCESS_PID).and_then(|p| u32::try_from(p).ok()));
        let container = e
            .container_id
            .as_deref()
            .or_else(|| str_attr(e, attr::CONTAINER_ID));
        let pod_uid = str_attr(e, attr::POD_UID);
        let path = str_attr(e, attr::CGROUP_PATH);
        let owner = path.map(cgroup_path::parse).unwrap_or_default();
        let container = container.or(owner.container_id.as_deref());
        let pod_uid = pod_uid.or(owner.pod_uid.as_deref());
        let unit = str_attr(e, attr::UNIT).or(owner.unit.as_deref());

        if let Some(pid) = pid {
            let p = self.procs.entry(pid, now, ProcInfo::default);
            if let Some(ppid) = int_attr(e, attr::PROCESS_PPID).and_then(|v| u32::try_from(v).ok())
            {
                p.ppid = Some(ppid);
            }
            set(&mut p.exe, str_attr(e, attr::PROCESS_EXE));
            if e.cgroup_id.is_some() {
                p.cgroup_id = e.cgroup_id;
            }
            set(&mut p.cgroup_path, path);
            set(&mut p.container, container);
            set(&mut p.pod_uid, pod_uid);
            set(&mut p.unit, unit);
            if e.event_type == types::PROCESS_EXEC && p.exe.is_none() {
                set(&mut p.exe, str_attr(e, "process.executable.path"));
            }
            // Cache the container's pod on the process: one lookup less per later event.
            if p.pod_uid.is_none() {
                if let Some(c) = &p.container {
                    p.pod_uid = self
                        .containers
                        .get(c.as_str())
                        .filter(|u| !u.is_empty())
                        .cloned();
                }
            }
        }
        // Cgroup ids of different hierarchies (v2, v1 memory) can appear in one event, and
        // a root cgroup is shared by everything: a cgroup id learns only what the event
        // says of that very cgroup. The envelope id goes with the envelope container id;
        // the `cgroup.path` goes with the `cgroup.id` attribute (the plugins set both).
        let envelope_container = e
            .container_id
            .as_deref()
            .or_else(|| str_attr(e, attr::CONTAINER_ID));
        if let Some(cg) = e.cgroup_id.filter(|c| *c > 1) {
            let c = self.cgroups.entry(cg, now, CgroupInfo::default);
            set(&mut c.container, envelope_container);
            if envelope_container.is_some() {
                set(&mut c.pod_uid, str_attr(e, attr::POD_UID));
            }
        }
        if let (Some(cg), Some(p)) = (
            int_attr(e, "cgroup.id")
                .map(|v| v as u64)
                .filter(|c| *c > 1),
            path,
        ) {
            let c = self.cgroups.entry(cg, now, CgroupInfo::default);
            set(&mut c.path, Some(p));
            set(&mut c.container, owner.container_id.as_deref());
            set(&mut c.pod_uid, owner.pod_uid.as_deref());
            set(&mut c.unit, owner.unit.as_deref());
        }
        if let (Some(c), Some(pod)) = (container, pod_uid) {
            let slot = self.containers.entry_by(
                c,
                |k: &str| CompactString::new(k),
                now,
                CompactString::default,
            );
            if slot != pod {
                *slot = CompactString::new(pod);
            }
        }
        if let Some(pod) = pod_uid {
            let info =
                self.pods
                    .entry_by(pod, |k: &str| CompactString::new(k), now, PodInfo::default);
            set(&mut info.name, str_attr(e, attr::POD_NAME));
            set(&mut info.namespace, str_attr(e, attr::NAMESPACE));
            set(&mut info.node, str_attr(e, attr::NODE));
            let is_pod_object = str_attr(e, attr::OBJECT_KIND) == Some("Pod")
                || e.event_type.starts_with("k8s.pod.");
            if is_pod_object {
                set(&mut info.owner_kind, str_attr(e, attr::OWNER_KIND));
                set(&mut info.owner_name, str_attr(e, attr::OWNER_NAME));
                set(&mut info.labels, str_attr(e, attr::OBJECT_LABELS));
            }
            if let Some(ip) = str_attr(e, attr::POD_IP) {
                set(&mut info.ip, Some(ip));
                *self
                    .ip_owner
                    .entry(CompactString::new(ip), now, CompactString::default) =
                    format_compact("pod/", pod);
            }
        }
        self.observe_objects(e, now);
    }

    fn observe_objects(&mut self, e: &Event, now: u64) {
        let Some(kind) = str_attr(e, attr::OBJECT_KIND) else {
            if let Some(node) = str_attr(e, attr::NODE) {
                self.nodes.entry(CompactString::new(node), now, || ());
            }
            return;
        };
        let ns = str_attr(e, attr::NAMESPACE).unwrap_or("");
        let name = str_attr(e, attr::OBJECT_NAME).unwrap_or("");
        match kind {
            "ReplicaSet" if str_attr(e, attr::OWNER_KIND) == Some("Deployment") => {
                if let Some(dep) = str_attr(e, attr::OWNER_NAME) {
                    *self.replicasets.entry(
                        compact_str::format_compact!("{ns}/{name}"),
                        now,
                        CompactString::default,
                    ) = CompactString::new(dep);
                }
            }
            "Service" => {
                let s = self.services.entry(
                    compact_str::format_compact!("{ns}/{name}"),
                    now,
                    ServiceInfo::default,
                );
                set(&mut s.selector, str_attr(e, attr::SERVICE_SELECTOR));
                set(&mut s.cluster_ip, str_attr(e, attr::SERVICE_IP));
                if let Some(ip) = str_attr(e, attr::SERVICE_IP) {
                    *self
                        .ip_owner
                        .entry(CompactString::new(ip), now, CompactString::default) =
                        compact_str::format_compact!("service/{ns}/{name}");
                }
            }
            "Node" => {
                self.nodes.entry(CompactString::new(name), now, || ());
            }
            _ => {}
        }
    }

    /// Learns who connects to whom from an event already resolved to `r` (call after
    /// [`EntityGraph::observe`] and [`EntityGraph::resolve`]).
    pub fn observe_peer(&mut self, e: &Event, r: &Resolved) {
        let peer = str_attr(e, attr::PEER_ADDR)
            .or_else(|| str_attr(e, attr::SERVER_ADDR))
            .or_else(|| str_attr(e, attr::DNS_NAME));
        let Some(peer) = peer else { return };
        let Some(client) = r.workload_key() else {
            return;
        };
        let now = e.timestamp_ns;
        let clients = self
            .peers
            .entry_by(peer, |k: &str| CompactString::new(k), now, Vec::new);
        if !clients.contains(&client) {
            if clients.len() >= MAX_CLIENTS_PER_PEER {
                clients.remove(0);
            }
            clients.push(client);
        }
    }

    /// The workloads seen connecting to any address owned by `workload_key` (its pod IP or
    /// service IP) or to `peer` itself: its downstream dependents in the observed graph.
    pub fn dependents(&self, workload_key: Option<&str>, peer: Option<&str>) -> Vec<CompactString> {
        let mut out: Vec<CompactString> = Vec::new();
        let mut add = |clients: &Vec<CompactString>| {
            for c in clients {
                if Some(c.as_str()) != workload_key && !out.contains(c) {
                    out.push(c.clone());
                }
            }
        };
        if let Some(p) = peer {
            if let Some(clients) = self.peers.get(p) {
                add(clients);
            }
        }
        if let Some(key) = workload_key {
            for (ip, owner) in self.ip_owner.iter() {
                if owner == key {
                    if let Some(clients) = self.peers.get(ip) {
                        add(clients);
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// The labels of a pod (`k=v,k=v`), when its object was seen.
    pub fn pod_labels(&self, pod_uid: &str) -> Option<CompactString> {
        self.pods.get(pod_uid)?.labels.clone()
    }

    /// The services whose selector matches the labels of `pod_uid`.
    pub fn services_of_pod(&self, pod_uid: &str) -> Vec<CompactString> {
        let Some(pod) = self.pods.get(pod_uid) else {
            return Vec::new();
        };
        let (Some(labels), Some(ns)) = (&pod.labels, &pod.namespace) else {
            return Vec::new();
        };
        let labels: Vec<&str> = labels.split(',').map(str::trim).collect();
        let mut out: Vec<CompactString> = self
            .services
            .iter()
            .filter(|(key, _)| key.split_once('/').is_some_and(|(n, _)| n == ns))
            .filter(|(_, s)| {
                s.selector.as_deref().is_some_and(|sel| {
                    !sel.is_empty() && sel.split(',').map(str::trim).all(|kv| labels.contains(&kv))
                })
            })
            .map(|(k, _)| k.clone())
            .collect();
        out.sort();
        out
    }

    /// Walks pid -> cgroup -> container -> pod -> workload for `e`.
    pub fn resolve(&self, e: &Event) -> Resolved {
        let mut r = Resolved {
            pid: e
                .pid
                .or_else(|| int_attr(e, attr::PROCESS_PID).and_then(|p| u32::try_from(p).ok())),
            cgroup_id: e.cgroup_id,
            container: e
                .container_id
                .clone()
                .or_else(|| str_attr(e, attr::CONTAINER_ID).map(CompactString::new)),
            pod_uid: str_attr(e, attr::POD_UID).map(CompactString::new),
            unit: str_attr(e, attr::UNIT).map(CompactString::new),
            ..Resolved::default()
        };
        if let Some(path) = str_attr(e, attr::CGROUP_PATH) {
            let owner = cgroup_path::parse(path);
            r.cgroup_path = Some(CompactString::new(path));
            r.container = r
                .container
                .or_else(|| owner.container_id.map(CompactString::from));
            r.pod_uid = r.pod_uid.or_else(|| owner.pod_uid.map(CompactString::from));
            r.unit = r.unit.or_else(|| owner.unit.map(CompactString::from));
        }
        if let Some(p) = r.pid.and_then(|pid| self.procs.get(&pid)) {
            r.ppid = p.ppid;
            r.exe = p.exe.clone();
            r.cgroup_id = r.cgroup_id.or(p.cgroup_id);
            r.cgroup_path = r.cgroup_path.or_else(|| p.cgroup_path.clone());
            r.container = r.container.or_else(|| p.container.clone());
            r.pod_uid = r.pod_uid.or_else(|| p.pod_uid.clone());
            r.unit = r.unit.or_else(|| p.unit.clone());
        }
        if let Some(c) = r.cgroup_id.and_then(|id| self.cgroups.get(&id)) {
            r.cgroup_path = r.cgroup_path.or_else(|| c.path.clone());
            r.container = r.container.or_else(|| c.container.clone());
            r.pod_uid = r.pod_uid.or_else(|| c.pod_uid.clone());
            r.unit = r.unit.or_else(|| c.unit.clone());
        }
        if r.pod_uid.is_none() {
            if let Some(c) = &r.container {
                r.pod_uid = self.containers.get(c).filter(|p| !p.is_empty()).cloned();
            }
        }
        if let Some(p) = r.pod_uid.as_ref().and_then(|uid| self.pods.get(uid)) {
            r.pod_name = p.name.clone();
            r.namespace = p.namespace.clone();
            r.node = p.node.clone();
            match (p.owner_kind.as_deref(), &p.owner_name) {
                (Some("ReplicaSet"), Some(rs)) => {
                    let key = compact_str::format_compact!(
                        "{}/{}",
                        p.namespace.as_deref().unwrap_or(""),
                        rs
                    );
                    match self.replicasets.get(&key) {
                        Some(dep) => {
                            r.workload_kind = Some("Deployment".into());
                            r.workload_name = Some(dep.clone());
                        }
                        None => {
                            r.workload_kind = Some("ReplicaSet".into());
                            r.workload_name = Some(rs.clone());
                        }
                    }
                }
                (Some(kind), Some(name)) => {
                    r.workload_kind = Some(CompactString::new(kind));
                    r.workload_name = Some(name.clone());
                }
                _ => {}
            }
        }
        if r.namespace.is_none() {
            r.namespace = str_attr(e, attr::NAMESPACE).map(CompactString::new);
        }
        if r.pod_name.is_none() {
            r.pod_name = str_attr(e, attr::POD_NAME).map(CompactString::new);
        }
        r
    }
}

/// Appends `key` = `value` unless the event already carries `key` (the value is only made
/// then).
fn push_missing(e: &mut Event, key: &'static str, value: impl FnOnce() -> Option<Value>) {
    if e.attribute(key).is_none() {
        if let Some(value) = value() {
            e.attributes.push(Attribute {
                key: CompactString::const_new(key),
                value,
            });
        }
    }
}

/// Appends the resolved entity attributes an event does not carry yet, and sets its
/// container id when it had none.
pub fn enrich(e: &mut Event, r: &Resolved) {
    if e.container_id.is_none() {
        e.container_id = r.container.clone();
    }
    let workload_key = match r.workload_kind.as_deref() {
        Some("Deployment") => Some(attr::DEPLOYMENT),
        Some("ReplicaSet") => Some(attr::REPLICASET),
        Some("StatefulSet") => Some(attr::STATEFULSET),
        Some("DaemonSet") => Some(attr::DAEMONSET),
        Some("Job") => Some("k8s.job.name"),
        _ => None,
    };
    // At most one growth of the attribute list.
    let most = [
        &r.pod_uid,
        &r.pod_name,
        &r.namespace,
        &r.node,
        &r.unit,
        &r.exe,
    ]
    .iter()
    .filter(|v| v.is_some())
    .count()
        + usize::from(r.ppid.is_some())
        + usize::from(workload_key.is_some() && r.workload_name.is_some());
    e.attributes.reserve(most);
    let s = |v: &Option<CompactString>| v.clone().map(Value::Str);
    // The container id lives in the envelope (sinks write it as `container_id`, exporters as
    // `container.id`); no second copy as an attribute.
    push_missing(e, attr::POD_UID, || s(&r.pod_uid));
    push_missing(e, attr::POD_NAME, || s(&r.pod_name));
    push_missing(e, attr::NAMESPACE, || s(&r.namespace));
    push_missing(e, attr::NODE, || s(&r.node));
    push_missing(e, attr::UNIT, || s(&r.unit));
    push_missing(e, attr::PROCESS_EXE, || s(&r.exe));
    push_missing(e, attr::PROCESS_PPID, || {
        r.ppid.map(|p| Value::Int(i64::from(p)))
    });
    if let Some(key) = workload_key {
        push_missing(e, key, || s(&r.workload_name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Severity;

    const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "1b2c3d4e-0000-1111-2222-333344445555";

    fn ev(t: &str, at: u64, attrs: &[(&str, Value)]) -> Event {
        let mut e = Event::new(t, "test", Severity::Info, at);
        for (k, v) in attrs {
            e.attributes.push(Attribute {
                key: CompactString::new(*k),
                value: v.clone(),
            });
        }
        e
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn graph_with_pod() -> EntityGraph {
        let mut g = EntityGraph::new(EntityLimits::default());
        g.observe(&ev(
            "k8s.replicaset.added",
            1,
            &[
                (attr::OBJECT_KIND, s("ReplicaSet")),
                (attr::OBJECT_NAME, s("web-7d9")),
                (attr::NAMESPACE, s("prod")),
                (attr::OWNER_KIND, s("Deployment")),
                (attr::OWNER_NAME, s("web")),
            ],
        ));
        g.observe(&ev(
            "k8s.pod.added",
            2,
            &[
                (attr::OBJECT_KIND, s("Pod")),
                (attr::POD_UID, s(UID)),
                (attr::POD_NAME, s("web-7d9-abc")),
                (attr::NAMESPACE, s("prod")),
                (attr::NODE, s("node-1")),
                (attr::OWNER_KIND, s("ReplicaSet")),
                (attr::OWNER_NAME, s("web-7d9")),
                (attr::POD_IP, s("10.0.0.5")),
                (attr::OBJECT_LABELS, s("app=web,tier=front")),
            ],
        ));
        g.observe(&ev(
            "k8s.service.added",
            3,
            &[
                (attr::OBJECT_KIND, s("Service")),
                (attr::OBJECT_NAME, s("web")),
                (attr::NAMESPACE, s("prod")),
                (attr::SERVICE_SELECTOR, s("app=web")),
                (attr::SERVICE_IP, s("10.96.0.10")),
            ],
        ));
        let mut cri = ev(
            "cri.container.started",
            4,
            &[(attr::CONTAINER_ID, s(CID)), (attr::POD_UID, s(UID))],
        );
        cri.container_id = Some(CID.into());
        g.observe(&cri);
        g
    }

    #[test]
    fn pid_resolves_through_cgroup_container_pod_to_deployment() {
        let mut g = graph_with_pod();
        let mut exec = ev("kernel.process.exec", 5, &[(attr::PROCESS_EXE, s("nginx"))]);
        exec.pid = Some(42);
        exec.cgroup_id = Some(900);
        exec.container_id = Some(CID.into());
        g.observe(&exec);
        // A later kernel event with only a pid.
        let mut oom = ev("kernel.memory.oom_kill", 6, &[]);
        oom.pid = Some(42);
        let r = g.resolve(&oom);
        assert_eq!(r.container.as_deref(), Some(CID));
        assert_eq!(r.pod_uid.as_deref(), Some(UID));
        assert_eq!(r.pod_name.as_deref(), Some("web-7d9-abc"));
        assert_eq!(r.namespace.as_deref(), Some("prod"));
        assert_eq!(r.workload_kind.as_deref(), Some("Deployment"));
        assert_eq!(r.workload_name.as_deref(), Some("web"));
        assert_eq!(r.exe.as_deref(), Some("nginx"));
        enrich(&mut oom, &r);
        assert_eq!(oom.container_id.as_deref(), Some(CID));
        assert_eq!(oom.attribute(attr::DEPLOYMENT), Some(&s("web")));
        assert_eq!(oom.attribute(attr::NODE), Some(&s("node-1")));
        assert_eq!(
            r.workload_key().as_deref(),
            Some(format!("pod/{UID}").as_str())
        );
        // The cgroup alone also resolves.
        let mut by_cgroup = ev("storage.io.slow", 7, &[]);
        by_cgroup.cgroup_id = Some(900);
        assert_eq!(g.resolve(&by_cgroup).pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn enrichment_keeps_what_the_plugin_said() {
        let g = graph_with_pod();
        let mut e = ev(
            "x",
            1,
            &[(attr::POD_UID, s(UID)), (attr::POD_NAME, s("given"))],
        );
        let r = g.resolve(&e);
        enrich(&mut e, &r);
        assert_eq!(e.attribute(attr::POD_NAME), Some(&s("given")));
        assert_eq!(
            e.attributes
                .iter()
                .filter(|a| a.key == attr::POD_NAME)
                .count(),
            1
        );
    }

    #[test]
    fn cgroup_path_names_units_and_proc_fallback_fills_in() {
        let mut g = EntityGraph::new(EntityLimits::default());
        let mut e = ev("x", 1, &[]);
        e.pid = Some(7);
        assert_eq!(g.resolve(&e).unit, None);
        g.learn_proc_cgroup(7, "/system.slice/redis.service", None, 2);
        assert!(g.knows_process(7));
        assert_eq!(g.resolve(&e).unit.as_deref(), Some("redis.service"));
        assert_eq!(
            g.resolve(&e).workload_key().as_deref(),
            Some("unit/redis.service")
        );
    }

    #[test]
    fn services_and_dependents_come_from_observed_traffic() {
        let mut g = graph_with_pod();
        assert_eq!(g.services_of_pod(UID), vec![CompactString::new("prod/web")]);
        let mut connect = ev(
            "kernel.network.connect_refused",
            9,
            &[(attr::PEER_ADDR, s("10.0.0.5"))],
        );
        connect.pid = Some(100);
        connect.cgroup_id = Some(5);
        g.observe(&connect);
        let r = g.resolve(&connect);
        g.observe_peer(&connect, &r);
        let key = format!("pod/{UID}");
        assert_eq!(
            g.dependents(Some(&key), None),
            vec![CompactString::new("cgroup/5")]
        );
        assert_eq!(
            g.dependents(None, Some("10.0.0.5")),
            vec![CompactString::new("cgroup/5")]
        );
    }

    #[test]
    fn tables_stay_bounded_under_unique_entities() {
        let limits = EntityLimits {
            max_processes: 1000,
            max_workloads: 500,
            max_peers: 500,
            ttl_ns: u64::MAX,
        };
        let mut g = EntityGraph::new(limits);
        for i in 0..100_000u32 {
            let mut e = ev(
                "x",
                u64::from(i),
                &[(attr::PEER_ADDR, s(&format!("10.1.{}.{}", i / 256, i % 256)))],
            );
            e.pid = Some(i);
            e.cgroup_id = Some(u64::from(i) + 1);
            e.container_id = Some(format!("{i:064x}").into());
            g.observe(&e);
            let r = g.resolve(&e);
            g.observe_peer(&e, &r);
        }
        let sizes = g.sizes();
        assert!(sizes.processes <= 1000, "{sizes:?}");
        assert!(sizes.cgroups <= 500 && sizes.containers <= 500, "{sizes:?}");
        assert!(sizes.peers <= 1000, "{sizes:?}");
        assert!(sizes.evicted > 0);
    }
}
