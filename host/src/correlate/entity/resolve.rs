//! Resolution: the entities one event resolves to ([`Resolved`], its ids borrowed from the
//! tables as [`Id`]s), the walk pid -> cgroup -> container -> pod that finds them
//! ([`EntityGraph::resolve`]), and what the tables say about them
//! ([`EntityGraph::describe`]).

use std::num::NonZeroU64;
use std::sync::Arc;

use compact_str::CompactString;

use super::{format_compact, name, owner_of, EntityGraph, Name, PodInfo};
use crate::correlate::cgroup_path::CgroupOwner;
use crate::correlate::lru::BucketHint;
use crate::correlate::view::View;
use crate::event::Event;

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

/// The event's own value of a field: the graph's `known` allocation when it is the same
/// text.
fn share<'g>(own: Option<&str>, known: Option<&'g Name>) -> Option<Id<'g>> {
    let own = own?;
    Some(match known {
        Some(k) if &**k == own => Id::Graph(k),
        _ => Id::Event(name(own)),
    })
}

impl EntityGraph {
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
        let proc = v.pid.and_then(|pid| self.proc(pid));
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
    pub(super) fn process_and_pod(&self, r: &Resolved<'_>) -> (Described<'_>, Option<&PodInfo>) {
        let mut d = Described::default();
        let proc = r.pid.and_then(|pid| self.proc(pid));
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
    pub(super) fn describe_pod<'g>(&'g self, p: &'g PodInfo, d: &mut Described<'g>) {
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

    /// The pod `uid`, read from the bucket `hint` names when that bucket still holds it;
    /// otherwise looked up, and the hint set to where it was found.
    pub(super) fn pod(&self, uid: &Name, hint: Option<&BucketHint>) -> Option<&PodInfo> {
        match hint {
            // The graph's own allocation of the uid matches by pointer.
            Some(h) => self
                .pods
                .get_hinted(&**uid, h, |k| Arc::ptr_eq(k, uid) || **k == **uid),
            None => self.pods.get(&**uid),
        }
    }

    /// Where the trace window of process `pid` was found last (kept by the enricher).
    pub fn window_hint(&self, pid: u32) -> Option<&BucketHint> {
        self.proc(pid).map(|p| &p.hints.window)
    }
}

/// Fills an unknown `slot` from `known`.
fn fill<'g>(slot: &mut Option<Id<'g>>, known: &'g Option<Name>) {
    if slot.is_none() {
        *slot = known.as_ref().map(Id::Graph);
    }
}
