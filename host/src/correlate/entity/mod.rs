//! The entity graph, built from the events themselves: processes (pid, parent, executable,
//! cgroup), cgroups, containers, pods and their owners (ReplicaSet -> Deployment), services
//! and their selectors, nodes, systemd units, network peers (who connects to whom) and DNS
//! names. Every table is a [`BoundedMap`] (TTL + size limit), sized in metrics.
//!
//! [`EntityGraph::observe`] learns from an event; [`EntityGraph::resolve`] (`resolve.rs`)
//! walks pid -> cgroup -> container -> pod -> workload; [`enrich`] (`enrich.rs`) appends the
//! resolved attributes an event does not carry yet (OpenTelemetry names); `topology.rs`
//! answers the impact assessment (downstream dependents, a pod's services and labels).

use std::cell::{Ref, RefCell};
use std::num::NonZeroU64;
use std::sync::Arc;

use compact_str::CompactString;

use crate::correlate::cgroup_path::{self, CgroupOwner};
use crate::correlate::lru::{BoundedMap, BucketHint};
use crate::correlate::view::View;
use crate::correlate::vocab::{attr, types};
use crate::event::{Attribute, Event, SharedAttributes, Value};
use topology::ServicesVersion;

/// A shared id or name. The entity tables and the events share one allocation per
/// container id, pod uid, path or name instead of copying it per event; a [`Resolved`]
/// borrows it ([`Id`]).
pub type Name = Arc<str>;

fn name(s: &str) -> Name {
    Arc::from(s)
}

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
    /// Cgroup id (never 0; `NonZeroU64` keeps the entry, with its table slot, within two
    /// cache lines).
    pub cgroup_id: Option<NonZeroU64>,
    /// Cgroup path (from an event or `/proc/<pid>/cgroup`).
    pub cgroup_path: Option<Name>,
    /// Container id.
    pub container: Option<Name>,
    /// Pod uid (from the cgroup path, or the container's pod).
    pub pod_uid: Option<Name>,
    /// systemd unit.
    pub unit: Option<Name>,
    /// Where this process's pod and trace window were found last (the next event of the
    /// process skips hashing its pod uid and container id).
    hints: ProcHints,
}

/// Bucket hints of a process (see [`BucketHint`]).
#[derive(Debug, Clone, Default)]
struct ProcHints {
    /// Its pod in the pod table.
    pod: BucketHint,
    /// Its trace window in the enricher (`pipeline::enrich`).
    window: BucketHint,
}

/// What is known about a cgroup.
#[derive(Debug, Clone, Default)]
pub struct CgroupInfo {
    /// Path in the v2 (or memory) hierarchy.
    pub path: Option<Name>,
    /// Container id.
    pub container: Option<Name>,
    /// Pod uid.
    pub pod_uid: Option<Name>,
    /// systemd unit.
    pub unit: Option<Name>,
}

/// What is known about a pod (names inline: its shared attribute list is built from them).
/// `repr(C)` keeps the list first, beside the table's key: an event of a known pod reads
/// the key and the list, not the names behind them.
#[derive(Debug, Clone, Default)]
#[repr(C)]
pub struct PodInfo {
    /// The entity attributes enrichment attaches to the pod's events, built on first use
    /// (see [`EntityGraph::pod_attributes`]).
    shared: SharedPodAttributes,
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
    /// `namespace/replicaset` when the owner is a ReplicaSet (the key of its Deployment).
    pub replicaset_key: Option<CompactString>,
    /// Pod IP.
    pub ip: Option<CompactString>,
    /// Labels (`k=v,k=v`).
    pub labels: Option<CompactString>,
}

/// A pod's entity attributes (uid, name, namespace, node, workload) as one list its events
/// share, with the [`EntityGraph::workload_version`] it was built at. Cleared when the pod
/// changes; rebuilt when the version moved (a ReplicaSet learned its Deployment, or left).
#[derive(Debug, Default)]
struct SharedPodAttributes(RefCell<Option<(u64, SharedAttributes)>>);

impl SharedPodAttributes {
    /// The list, if it was built at workload version `version`.
    fn current(&self, version: u64) -> Option<Ref<'_, SharedAttributes>> {
        Ref::filter_map(self.0.borrow(), |cached| match cached {
            Some((built, list)) if *built == version => Some(list),
            _ => None,
        })
        .ok()
    }
}

impl Clone for SharedPodAttributes {
    /// A copy of a pod builds its own list on first use.
    fn clone(&self) -> Self {
        SharedPodAttributes::default()
    }
}

/// A service and its selector.
#[derive(Debug, Clone, Default)]
pub struct ServiceInfo {
    /// Selector (`k=v,k=v`).
    pub selector: Option<CompactString>,
    /// Cluster IP.
    pub cluster_ip: Option<CompactString>,
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
    /// Container id -> pod uid (empty: unknown).
    containers: BoundedMap<Name, Option<Name>>,
    pods: BoundedMap<Name, PodInfo>,
    /// `namespace/replicaset` -> deployment.
    replicasets: BoundedMap<CompactString, CompactString>,
    /// `namespace/service`.
    services: BoundedMap<CompactString, ServiceInfo>,
    nodes: BoundedMap<CompactString, ()>,
    /// Peer address (or DNS name) -> workload keys of its clients.
    peers: BoundedMap<CompactString, Vec<CompactString>>,
    /// IP -> the workload key that owns it (pod IP, service cluster IP).
    ip_owner: BoundedMap<CompactString, CompactString>,
    /// The table the incremental TTL sweep is in.
    sweep_table: usize,
    /// Service events observed (part of [`ServicesVersion`]).
    service_events: u64,
    /// ReplicaSet -> Deployment events observed (part of [`EntityGraph::workload_version`]).
    replicaset_events: u64,
    /// The service selector index, rebuilt on first use after the services changed, so a
    /// group's impact does not walk every service (the pipeline thread is the only user).
    selectors: RefCell<Option<(ServicesVersion, SelectorIndex)>>,
    /// Where the process of the event being processed is in `procs`: observing an event
    /// sets it, so resolving, describing and stamping the same event read that bucket
    /// instead of hashing and probing the pid again (see [`EntityGraph::proc`]).
    last_proc: BucketHint,
}

/// Entity tables swept by [`EntityGraph::expire_some`].
const TABLES: usize = 9;

/// Sets `slot` to `v` unless it holds it already (allocates only on a change); whether it
/// changed.
#[inline]
fn set(slot: &mut Option<Name>, v: Option<&str>) -> bool {
    if let Some(v) = v {
        if slot.as_deref() != Some(v) {
            *slot = Some(name(v));
            return true;
        }
    }
    false
}

#[inline]
fn set_compact(slot: &mut Option<CompactString>, v: Option<&str>) -> bool {
    if let Some(v) = v {
        if slot.as_deref() != Some(v) {
            *slot = Some(CompactString::new(v));
            return true;
        }
    }
    false
}

/// The cgroup owner named by a view's `cgroup.path` (parsed once per event).
pub fn owner_of(v: &View<'_>) -> CgroupOwner {
    v.cgroup_path.map(cgroup_path::parse).unwrap_or_default()
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
            sweep_table: 0,
            service_events: 0,
            replicaset_events: 0,
            selectors: RefCell::new(None),
            last_proc: BucketHint::default(),
        }
    }

    /// The process `pid`, read first from the bucket the last observed or looked-up process
    /// was in (an event's steps ask for the same process one after another).
    fn proc(&self, pid: u32) -> Option<&ProcInfo> {
        self.procs.get_hinted(&pid, &self.last_proc, |k| *k == pid)
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

    /// Forgets entities idle longer than the TTL (a whole pass over every table; the stage
    /// uses [`EntityGraph::expire_some`] instead).
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

    /// Examines at most `budget` entries of the tables for TTL expiry, continuing where the
    /// last call stopped: spreads the sweep over many batches instead of one long pause.
    pub fn expire_some(&mut self, now_ns: u64, budget: usize) {
        // One table at a time, round robin: a big table cannot starve the others.
        let mut left = budget;
        for _ in 0..TABLES {
            let done = match self.sweep_table {
                0 => self.procs.expire_some(now_ns, left),
                1 => self.cgroups.expire_some(now_ns, left),
                2 => self.containers.expire_some(now_ns, left),
                3 => self.pods.expire_some(now_ns, left),
                4 => self.replicasets.expire_some(now_ns, left),
                5 => self.services.expire_some(now_ns, left),
                6 => self.nodes.expire_some(now_ns, left),
                7 => self.peers.expire_some(now_ns, left),
                _ => self.ip_owner.expire_some(now_ns, left),
            };
            match done {
                Some(rest) => {
                    self.sweep_table = (self.sweep_table + 1) % TABLES;
                    left = rest;
                    if left == 0 {
                        return;
                    }
                }
                None => return,
            }
        }
    }

    /// Whether a process is known (the `/proc` fallback is asked only about unknown ones).
    /// A cgroup id alone does not count: it names no container or unit.
    pub fn knows_process(&self, pid: u32) -> bool {
        self.proc(pid)
            .is_some_and(|p| p.cgroup_path.is_some() || p.container.is_some())
    }

    /// Records what `/proc/<pid>/cgroup` said about a live process.
    pub fn learn_proc_cgroup(&mut self, pid: u32, path: &str, cgroup_id: Option<u64>, now_ns: u64) {
        let owner = cgroup_path::parse(path);
        let p = self.procs.entry(pid, now_ns, ProcInfo::default);
        p.cgroup_path = Some(name(path));
        if p.cgroup_id.is_none() {
            p.cgroup_id = cgroup_id.and_then(NonZeroU64::new);
        }
        set(&mut p.container, owner.container_id.as_deref());
        set(&mut p.pod_uid, owner.pod_uid.as_deref());
        set(&mut p.unit, owner.unit.as_deref());
        if let (Some(c), Some(pod)) = (&owner.container_id, &owner.pod_uid) {
            let slot = self.containers.entry_by(c.as_str(), name, now_ns, || None);
            set(slot, Some(pod));
        }
    }

    /// Learns from one event (before it is resolved).
    pub fn observe(&mut self, e: &Event) {
        let v = View::of(e);
        self.observe_view(e, &v, &owner_of(&v));
    }

    /// Learns from one event, read through its view (`owner`: of its `cgroup.path`).
    pub fn observe_view(&mut self, e: &Event, v: &View<'_>, owner: &CgroupOwner) {
        let now = e.timestamp_ns;
        let container = v.container.or(owner.container_id.as_deref());
        let pod_uid = v.pod_uid.or(owner.pod_uid.as_deref());
        let unit = v.unit.or(owner.unit.as_deref());

        if let Some(pid) = v.pid {
            let (bucket, p) = self.procs.entry_with_bucket(pid, now, ProcInfo::default);
            self.last_proc.set(bucket);
            if let Some(ppid) = v.ppid {
                p.ppid = Some(ppid);
            }
            set_compact(&mut p.exe, v.exe);
            if let Some(cg) = e.cgroup_id.and_then(NonZeroU64::new) {
                p.cgroup_id = Some(cg);
            }
            set(&mut p.cgroup_path, v.cgroup_path);
            if let Some(c) = container {
                if p.container.as_deref() != Some(c) {
                    // Share the container table's id when it knows the container.
                    p.container = Some(match self.containers.get_key_value(c) {
                        Some((k, _)) => Arc::clone(k),
                        None => name(c),
                    });
                }
            }
            if let Some(pod) = pod_uid {
                if p.pod_uid.as_deref() != Some(pod) {
                    p.pod_uid = Some(match self.pods.get_key_value(pod) {
                        Some((k, _)) => Arc::clone(k),
                        None => name(pod),
                    });
                }
            }
            set(&mut p.unit, unit);
            if e.event_type == types::PROCESS_EXEC && p.exe.is_none() {
                set_compact(&mut p.exe, v.exe_path);
            }
            // Cache the container's pod on the process: one lookup less per later event.
            if p.pod_uid.is_none() {
                if let Some(c) = &p.container {
                    p.pod_uid = self.containers.get(&**c).cloned().flatten();
                }
            }
        }
        // Cgroup ids of different hierarchies (v2, v1 memory) can appear in one event, and
        // a root cgroup is shared by everything: a cgroup id learns only what the event
        // says of that very cgroup. The envelope id goes with the envelope container id;
        // the `cgroup.path` goes with the `cgroup.id` attribute (the plugins set both).
        if let Some(cg) = e.cgroup_id.filter(|c| *c > 1) {
            let c = self.cgroups.entry(cg, now, CgroupInfo::default);
            set(&mut c.container, v.container);
            if v.container.is_some() {
                set(&mut c.pod_uid, v.pod_uid);
            }
        }
        if let (Some(cg), Some(p)) = (v.cgroup_path_id.filter(|c| *c > 1), v.cgroup_path) {
            let c = self.cgroups.entry(cg, now, CgroupInfo::default);
            set(&mut c.path, Some(p));
            set(&mut c.container, owner.container_id.as_deref());
            set(&mut c.pod_uid, owner.pod_uid.as_deref());
            set(&mut c.unit, owner.unit.as_deref());
        }
        if let Some(pod) = pod_uid {
            let info = self.pods.entry_by(pod, name, now, PodInfo::default);
            let mut changed = set_compact(&mut info.name, v.pod_name);
            let mut owner_changed = set_compact(&mut info.namespace, v.namespace);
            changed |= set_compact(&mut info.node, v.node);
            let is_pod_object =
                v.object_kind == Some("Pod") || e.event_type.starts_with("k8s.pod.");
            if is_pod_object {
                owner_changed |= set_compact(&mut info.owner_kind, v.owner_kind);
                owner_changed |= set_compact(&mut info.owner_name, v.owner_name);
                set_compact(&mut info.labels, v.labels);
            }
            if owner_changed {
                info.replicaset_key = match (info.owner_kind.as_deref(), &info.owner_name) {
                    (Some("ReplicaSet"), Some(rs)) => Some(compact_str::format_compact!(
                        "{}/{}",
                        info.namespace.as_deref().unwrap_or(""),
                        rs
                    )),
                    _ => None,
                };
            }
            if changed || owner_changed {
                *info.shared.0.get_mut() = None;
            }
            if let Some(ip) = v.pod_ip {
                set_compact(&mut info.ip, Some(ip));
                *self.ip_owner.entry_by(
                    ip,
                    |k: &str| CompactString::new(k),
                    now,
                    CompactString::default,
                ) = format_compact("pod/", pod);
            }
        }
        if let (Some(c), Some(pod)) = (container, pod_uid) {
            let slot = self.containers.entry_by(c, name, now, || None);
            if slot.as_deref() != Some(pod) {
                // The pod table's key: one allocation per pod uid, so a later lookup of the
                // pod compares the very string it just hashed.
                *slot = Some(match self.pods.get_key_value(pod) {
                    Some((k, _)) => Arc::clone(k),
                    None => name(pod),
                });
            }
        }
        self.observe_objects(v, now);
    }

    fn observe_objects(&mut self, v: &View<'_>, now: u64) {
        let Some(kind) = v.object_kind else {
            if let Some(node) = v.node {
                self.nodes
                    .entry_by(node, |k: &str| CompactString::new(k), now, || ());
            }
            return;
        };
        let ns = v.namespace.unwrap_or("");
        let obj = v.object_name.unwrap_or("");
        match kind {
            "ReplicaSet" if v.owner_kind == Some("Deployment") => {
                if let Some(dep) = v.owner_name {
                    self.replicaset_events += 1;
                    let slot = self.replicasets.entry(
                        compact_str::format_compact!("{ns}/{obj}"),
                        now,
                        || CompactString::new(dep),
                    );
                    if slot != dep {
                        *slot = CompactString::new(dep);
                    }
                }
            }
            "Service" => {
                self.service_events += 1;
                let s = self.services.entry(
                    compact_str::format_compact!("{ns}/{obj}"),
                    now,
                    ServiceInfo::default,
                );
                set_compact(&mut s.selector, v.selector);
                set_compact(&mut s.cluster_ip, v.service_ip);
                if let Some(ip) = v.service_ip {
                    *self.ip_owner.entry_by(
                        ip,
                        |k: &str| CompactString::new(k),
                        now,
                        CompactString::default,
                    ) = compact_str::format_compact!("service/{ns}/{obj}");
                }
            }
            "Node" => {
                self.nodes
                    .entry_by(obj, |k: &str| CompactString::new(k), now, || ());
            }
            _ => {}
        }
    }

    /// Learns who connects to whom from an event already resolved to `r` (call after
    /// [`EntityGraph::observe`] and [`EntityGraph::resolve`], with the resolution owned:
    /// [`Resolved::into_owned`]; the stage passes the workload key to
    /// [`EntityGraph::observe_client`] instead).
    pub fn observe_peer(&mut self, e: &Event, r: &Resolved<'_>) {
        if let Some(client) = r.workload_key() {
            self.observe_client(e.timestamp_ns, &View::of(e), client);
        }
    }

    /// Records `client` (a workload key) as a client of the peer the event names, if it
    /// names one.
    pub fn observe_client(&mut self, now: u64, v: &View<'_>, client: CompactString) {
        let Some(peer) = v.peer() else {
            return;
        };
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

    /// Changes whenever a pod's workload could resolve differently: a ReplicaSet's
    /// Deployment was observed, or a ReplicaSet left the table.
    fn workload_version(&self) -> u64 {
        self.replicaset_events + self.replicasets.evicted()
    }

    /// The pod's shared attribute list if it is built and current.
    fn current_pod_attributes<'p>(&self, p: &'p PodInfo) -> Option<Ref<'p, SharedAttributes>> {
        p.shared.current(self.workload_version())
    }

    /// The entity attributes of pod `uid` (its entry `p`) as one shared list, in the order
    /// enrichment appends them: `k8s.pod.uid`, `k8s.pod.name`, `k8s.namespace.name`,
    /// `k8s.node.name`, then the workload's `k8s.<kind>.name`. Built once per pod and
    /// workload version; every later event of the pod takes a reference.
    pub fn pod_attributes(&self, uid: &str, p: &PodInfo) -> SharedAttributes {
        let version = self.workload_version();
        if let Some(list) = p.shared.current(version) {
            return Arc::clone(&list);
        }
        let mut d = Described::default();
        self.describe_pod(p, &mut d);
        let text = |key: &'static str, value: &str| Attribute {
            key: CompactString::const_new(key),
            value: Value::Str(CompactString::new(value)),
        };
        let mut list = Vec::with_capacity(5);
        list.push(text(attr::POD_UID, uid));
        for (key, value) in [
            (attr::POD_NAME, d.pod_name),
            (attr::NAMESPACE, d.namespace),
            (attr::NODE, d.node),
        ] {
            if let Some(v) = value {
                list.push(text(key, v));
            }
        }
        if let (Some((key, _)), Some(name)) =
            (enrich::workload_attribute(d.workload_kind), d.workload_name)
        {
            list.push(text(key, name));
        }
        let list: SharedAttributes = list.into();
        *p.shared.0.borrow_mut() = Some((version, Arc::clone(&list)));
        list
    }
}

mod enrich;
mod resolve;
mod topology;
mod warm;

pub use enrich::{enrich, enrich_missing};
pub use resolve::{Described, Id, Resolved};
pub use topology::SelectorIndex;

#[cfg(test)]
mod tests;
