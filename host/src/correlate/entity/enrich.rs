//! Enrichment: the entity attributes an event does not carry yet, under their
//! OpenTelemetry names, from what it resolved to.
//!
//! A pod's attributes (uid, name, namespace, node, workload) are one list the pod's events
//! share ([`EntityGraph::pod_attributes`]): the event takes a reference instead of a copy of
//! each. An event that carries any of those keys itself gets the missing ones appended
//! instead, so no key appears twice. Process attributes (unit, executable, parent) are
//! appended.

use std::sync::Arc;

use compact_str::CompactString;

use super::{EntityGraph, Resolved};
use crate::correlate::view::{bit, View, JOB_NAME};
use crate::correlate::vocab::attr;
use crate::event::{Attribute, Event, Value};

/// Keys of a pod's shared attribute list: an event carrying any of them itself gets the
/// missing ones appended one by one instead of the list.
const POD_KEYS: u32 = bit::POD_UID
    | bit::POD_NAME
    | bit::NAMESPACE
    | bit::NODE
    | bit::DEPLOYMENT
    | bit::REPLICASET
    | bit::STATEFULSET
    | bit::DAEMONSET
    | bit::JOB;

/// The attribute (and its [`View::present`] bit) naming a workload of `kind`.
pub(super) fn workload_attribute(kind: Option<&str>) -> Option<(&'static str, u32)> {
    match kind? {
        "Deployment" => Some((attr::DEPLOYMENT, bit::DEPLOYMENT)),
        "ReplicaSet" => Some((attr::REPLICASET, bit::REPLICASET)),
        "StatefulSet" => Some((attr::STATEFULSET, bit::STATEFULSET)),
        "DaemonSet" => Some((attr::DAEMONSET, bit::DAEMONSET)),
        "Job" => Some((JOB_NAME, bit::JOB)),
        _ => None,
    }
}

/// Appends `key` = `value` unless the event already carries `key` (`present & flag`).
/// Inlined: most calls find the key present or the value unknown, and a call costs more
/// than that test.
#[inline(always)]
fn push_missing(e: &mut Event, present: u32, flag: u32, key: &'static str, value: Option<&str>) {
    if present & flag == 0 {
        if let Some(v) = value {
            e.attributes.push(Attribute {
                key: CompactString::const_new(key),
                value: Value::Str(CompactString::new(v)),
            });
        }
    }
}

/// Adds the entity attributes an event does not carry yet (from `r` and what the graph
/// says about it), and sets its container id when it had none.
pub fn enrich(e: &mut Event, graph: &EntityGraph, r: &Resolved<'_>) {
    let present = View::of(e).present;
    enrich_missing(e, graph, r, present);
}

/// [`enrich`] with the keys the event carries already (`View::present`).
pub fn enrich_missing(e: &mut Event, graph: &EntityGraph, r: &Resolved<'_>, present: u32) {
    if e.container_id.is_none() {
        e.container_id = r.container.as_ref().map(|c| Arc::clone(c.name()));
    }
    let (mut d, pod) = graph.process_and_pod(r);
    // The pod's attributes: its shared list, unless the event names the pod itself.
    let mut pod_present = present;
    match (pod, &r.pod_uid) {
        (Some(p), Some(uid)) if present & POD_KEYS == 0 && e.shared_attributes.is_none() => {
            e.shared_attributes = Some(graph.pod_attributes(uid, p));
            pod_present |= POD_KEYS;
        }
        (Some(p), _) => graph.describe_pod(p, &mut d),
        (None, _) => {}
    }
    let workload = workload_attribute(d.workload_kind);
    // At most one growth of the attribute list.
    let missing = |some: bool, flag: u32| usize::from(some && pod_present & flag == 0);
    let most = missing(r.pod_uid.is_some(), bit::POD_UID)
        + missing(d.pod_name.is_some(), bit::POD_NAME)
        + missing(d.namespace.is_some(), bit::NAMESPACE)
        + missing(d.node.is_some(), bit::NODE)
        + missing(r.unit.is_some(), bit::UNIT)
        + missing(d.exe.is_some(), bit::EXE)
        + missing(d.ppid.is_some(), bit::PPID)
        + workload.map_or(0, |(_, flag)| missing(d.workload_name.is_some(), flag));
    if most == 0 {
        return;
    }
    e.attributes.reserve(most);
    // The container id lives in the envelope (sinks write it as `container_id`, exporters as
    // `container.id`); no second copy as an attribute.
    push_missing(
        e,
        pod_present,
        bit::POD_UID,
        attr::POD_UID,
        r.pod_uid.as_deref(),
    );
    push_missing(e, pod_present, bit::POD_NAME, attr::POD_NAME, d.pod_name);
    push_missing(e, pod_present, bit::NAMESPACE, attr::NAMESPACE, d.namespace);
    push_missing(e, pod_present, bit::NODE, attr::NODE, d.node);
    push_missing(e, present, bit::UNIT, attr::UNIT, r.unit.as_deref());
    push_missing(e, present, bit::EXE, attr::PROCESS_EXE, d.exe);
    if present & bit::PPID == 0 {
        if let Some(p) = d.ppid {
            e.attributes.push(Attribute {
                key: CompactString::const_new(attr::PROCESS_PPID),
                value: Value::Int(i64::from(p)),
            });
        }
    }
    if let Some((key, flag)) = workload {
        push_missing(e, pod_present, flag, key, d.workload_name);
    }
}
