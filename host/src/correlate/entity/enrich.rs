//! Enrichment: the entity attributes an event does not carry yet, appended under their
//! OpenTelemetry names from what it resolved to.

use compact_str::CompactString;

use super::{Described, EntityGraph, Resolved};
use crate::correlate::view::{bit, View, JOB_NAME};
use crate::correlate::vocab::attr;
use crate::event::{Attribute, Event, Value};

/// Appends `key` = `value` unless the event already carries `key` (`present & flag`).
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

/// Appends the entity attributes an event does not carry yet (from `r` and what the graph
/// says about it), and sets its container id when it had none.
pub fn enrich(e: &mut Event, graph: &EntityGraph, r: &Resolved) {
    let present = View::of(e).present;
    enrich_missing(e, r, &graph.describe(r), present);
}

/// [`enrich`] with the keys the event carries already (`View::present`).
pub fn enrich_missing(e: &mut Event, r: &Resolved, d: &Described<'_>, present: u32) {
    if e.container_id.is_none() {
        e.container_id.clone_from(&r.container);
    }
    let workload = match d.workload_kind {
        Some("Deployment") => Some((attr::DEPLOYMENT, bit::DEPLOYMENT)),
        Some("ReplicaSet") => Some((attr::REPLICASET, bit::REPLICASET)),
        Some("StatefulSet") => Some((attr::STATEFULSET, bit::STATEFULSET)),
        Some("DaemonSet") => Some((attr::DAEMONSET, bit::DAEMONSET)),
        Some("Job") => Some((JOB_NAME, bit::JOB)),
        _ => None,
    };
    // At most one growth of the attribute list.
    let missing = |some: bool, flag: u32| usize::from(some && present & flag == 0);
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
        present,
        bit::POD_UID,
        attr::POD_UID,
        r.pod_uid.as_deref(),
    );
    push_missing(e, present, bit::POD_NAME, attr::POD_NAME, d.pod_name);
    push_missing(e, present, bit::NAMESPACE, attr::NAMESPACE, d.namespace);
    push_missing(e, present, bit::NODE, attr::NODE, d.node);
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
        push_missing(e, present, flag, key, d.workload_name);
    }
}
