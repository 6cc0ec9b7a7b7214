//! The entity graph, built from the events themselves: processes (pid, parent, executable,
//! cgroup), cgroups, containers, pods and their owners (ReplicaSet -> Deployment), services
//! and their selectors, nodes, systemd units, network peers (who connects to whom) and DNS
//! names. Every table is a [`BoundedMap`] (TTL + size limit), sized in metrics.
//!
//! [`EntityGraph::observe`] learns from an event; [`EntityGraph::resolve`] walks
//! pid -> cgroup -> container -> pod -> workload; [`enrich`] (`enrich.rs`) appends the
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

/// An id a resolution names: the entity table's own allocation, borrowed (no reference
/// count is taken per event), or the event's text when the tables do not hold it.
#[derive(Debug, Clone)]
pub enum Id<'g> {
    /// Held by the entity graph.
    Graph(&'g Name),
    /// Named by the event only.
    Event(Name),
}

impl<'g> Id<'g> {
    /// The allocation: the graph's (its windows and groups compare it by pointer), or the
    /// event's own.
    pub fn name(&self) -> &Name {
        match self {
            Id::Graph(n) => n,
            Id::Event(n) => n,
        }
    }

    /// The same id, owned (kept beyond the graph's next change).
    pub fn into_owned(self) -> Id<'static> {
        match self {
            Id::Graph(n) => Id::Event(Arc::clone(n)),
            Id::Event(n) => Id::Event(n),
        }
    }
}

impl std::ops::Deref for Id<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        self.name()
    }
}

impl PartialEq for Id<'_> {
    /// Ids are equal when their text is, wherever they are held.
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl From<&str> for Id<'static> {
    fn from(s: &str) -> Self {
        Id::Event(name(s))
    }
}

/// The entities one event resolves to. The ids are borrowed from the entity tables while
/// the event is processed ([`Resolved::into_owned`] keeps them longer). What enrichment
/// adds about them (names, namespace, workload) is read from the tables by
/// [`EntityGraph::describe`] without copying.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved<'g> {
    /// Process.
    pub pid: Option<u32>,
    /// Cgroup id.
    pub cgroup_id: Option<u64>,
    /// Cgroup path.
    pub cgroup_path: Option<Id<'g>>,
    /// Container id.
    pub container: Option<Id<'g>>,
    /// Pod uid.
    pub pod_uid: Option<Id<'g>>,
    /// systemd unit.
    pub unit: Option<Id<'g>>,
}

/// What the tables say about a resolved event, borrowed (enrichment copies it into the
/// event once).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Described<'g> {
    /// Parent process.
    pub ppid: Option<u32>,
    /// Executable.
    pub exe: Option<&'g str>,
    /// Pod name.
    pub pod_name: Option<&'g str>,
    /// Namespace.
    pub namespace: Option<&'g str>,
    /// Node.
    pub node: Option<&'g str>,
    /// Workload kind (`Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`, `Job`).
    pub workload_kind: Option<&'g str>,
    /// Workload name.
    pub workload_name: Option<&'g str>,
}

impl Resolved<'_> {
    /// The resolution with its ids owned: it outlives the graph's next change (an event
    /// held back for its spans).
    pub fn into_owned(self) -> Resolved<'static> {
        Resolved {
            pid: self.pid,
            cgroup_id: self.cgroup_id,
            cgroup_path: self.cgroup_path.map(Id::into_owned),
            container: self.container.map(Id::into_owned),
            pod_uid: self.pod_uid.map(Id::into_owned),
            unit: self.unit.map(Id::into_owned),
        }
    }

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

/// The event's own value of a field: the graph's `known` allocation when it is the same
/// text.
fn share<'g>(own: Option<&str>, known: Option<&'g Name>) -> Option<Id<'g>> {
    let own = own?;
    Some(match known {
        Some(k) if &**k == own => Id::Graph(k),
        _ => Id::Event(name(own)),
    })
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
        self.procs
            .get(&pid)
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
            let p = self.procs.entry(pid, now, ProcInfo::default);
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

    /// Walks pid -> cgroup -> container -> pod -> workload for `e`.
    pub fn resolve(&self, e: &Event) -> Resolved<'_> {
        let v = View::of(e);
        self.resolve_view(&v, &owner_of(&v), true)
    }

    /// [`EntityGraph::resolve`] through the event's view: ids are borrowed from the tables
    /// (no copy and no reference count of an id the graph knows). Without `need_path`, a
    /// process whose container and pod are known skips the cgroup table (it would add only
    /// the cgroup path, which only `time_to_limit` predictions read, and a unit, which
    /// container cgroups do not name): one random table lookup less per event.
    pub fn resolve_view(&self, v: &View<'_>, owner: &CgroupOwner, need_path: bool) -> Resolved<'_> {
        let proc = v.pid.and_then(|pid| self.procs.get(&pid));
        let container = v.container.or(owner.container_id.as_deref());
        let pod_uid = v.pod_uid.or(owner.pod_uid.as_deref());
        let unit = v.unit.or(owner.unit.as_deref());
        let mut r = Resolved {
            pid: v.pid,
            cgroup_id: v.cgroup_id,
            container: share(container, proc.and_then(|p| p.container.as_ref())),
            pod_uid: share(pod_uid, proc.and_then(|p| p.pod_uid.as_ref())),
            unit: share(unit, proc.and_then(|p| p.unit.as_ref())),
            cgroup_path: share(v.cgroup_path, proc.and_then(|p| p.cgroup_path.as_ref())),
        };
        if let Some(p) = proc {
            r.cgroup_id = r.cgroup_id.or(p.cgroup_id.map(NonZeroU64::get));
            fill(&mut r.cgroup_path, &p.cgroup_path);
            fill(&mut r.container, &p.container);
            fill(&mut r.pod_uid, &p.pod_uid);
            fill(&mut r.unit, &p.unit);
        }
        let incomplete = if need_path {
            r.cgroup_path.is_none()
                || r.container.is_none()
                || r.pod_uid.is_none()
                || r.unit.is_none()
        } else {
            r.container.is_none() || r.pod_uid.is_none()
        };
        if incomplete {
            if let Some(c) = r.cgroup_id.and_then(|id| self.cgroups.get(&id)) {
                fill(&mut r.cgroup_path, &c.path);
                fill(&mut r.container, &c.container);
                fill(&mut r.pod_uid, &c.pod_uid);
                fill(&mut r.unit, &c.unit);
            }
        }
        if r.pod_uid.is_none() {
            if let Some(c) = &r.container {
                r.pod_uid = self
                    .containers
                    .get(&**c)
                    .and_then(Option::as_ref)
                    .map(Id::Graph);
            }
        }
        r
    }

    /// What the tables say about `r`: parent and executable of its process, name,
    /// namespace, node and workload of its pod (ReplicaSet -> Deployment).
    pub fn describe(&self, r: &Resolved<'_>) -> Described<'_> {
        let (mut d, pod) = self.process_and_pod(r);
        if let Some(p) = pod {
            self.describe_pod(p, &mut d);
        }
        d
    }

    /// The process fields of [`EntityGraph::describe`] (parent, executable) and the pod
    /// entry of `r`, found through the process's bucket hint.
    fn process_and_pod(&self, r: &Resolved<'_>) -> (Described<'_>, Option<&PodInfo>) {
        let mut d = Described::default();
        let proc = r.pid.and_then(|pid| self.procs.get(&pid));
        if let Some(p) = proc {
            d.ppid = p.ppid;
            d.exe = p.exe.as_deref();
        }
        let pod_hint = proc.map(|p| &p.hints.pod);
        let pod = r
            .pod_uid
            .as_ref()
            .and_then(|uid| self.pod(uid.name(), pod_hint));
        (d, pod)
    }

    /// Fills the pod fields of `d` from `p`: name, namespace, node and workload
    /// (ReplicaSet -> Deployment).
    fn describe_pod<'g>(&'g self, p: &'g PodInfo, d: &mut Described<'g>) {
        d.pod_name = p.name.as_deref();
        d.namespace = p.namespace.as_deref();
        d.node = p.node.as_deref();
        match (&p.replicaset_key, &p.owner_kind, &p.owner_name) {
            (Some(rs_key), _, Some(rs)) => match self.replicasets.get(rs_key.as_str()) {
                Some(dep) => {
                    d.workload_kind = Some("Deployment");
                    d.workload_name = Some(dep);
                }
                None => {
                    d.workload_kind = Some("ReplicaSet");
                    d.workload_name = Some(rs);
                }
            },
            (None, Some(kind), Some(owner)) => {
                d.workload_kind = Some(kind);
                d.workload_name = Some(owner);
            }
            _ => {}
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

impl EntityGraph {
    /// The pod `uid`, read from the bucket `hint` names when that bucket still holds it;
    /// otherwise looked up, and the hint set to where it was found.
    fn pod(&self, uid: &Name, hint: Option<&BucketHint>) -> Option<&PodInfo> {
        let is_uid = |k: &Name| Arc::ptr_eq(k, uid) || **k == **uid;
        if let Some(bucket) = hint.and_then(BucketHint::get) {
            if let Some(p) = self.pods.get_in_bucket(bucket, is_uid) {
                return Some(p);
            }
        }
        let (bucket, p) = self.pods.get_with_bucket(&**uid)?;
        if let Some(h) = hint {
            h.set(bucket);
        }
        Some(p)
    }

    /// Where the trace window of process `pid` was found last (kept by the enricher).
    pub fn window_hint(&self, pid: u32) -> Option<&BucketHint> {
        self.procs.get(&pid).map(|p| &p.hints.window)
    }
}

/// Fills an unknown `slot` from `known`.
fn fill<'g>(slot: &mut Option<Id<'g>>, known: &'g Option<Name>) {
    if slot.is_none() {
        *slot = known.as_ref().map(Id::Graph);
    }
}

mod enrich;
mod topology;
mod warm;

pub use enrich::{enrich, enrich_missing};
pub use topology::SelectorIndex;

#[cfg(test)]
mod tests;
