//! The attributes correlation reads from one event, picked in ONE pass over its attribute
//! list ([`View::of`]) instead of one linear scan per key: the entity graph, the resolution
//! and the enrichment of an event all read this view.
//!
//! Semantics match [`Event::attribute`]: the first attribute of a key wins; text values are
//! taken only when non-empty (an empty string names nothing), and [`View::present`] records
//! which enrichment keys the event carries at all (whatever their value), so enrichment
//! never adds a second copy of a key.

use crate::correlate::vocab::attr;
use crate::event::{Event, Value};

/// Bit flags of [`View::present`]: keys the enrichment may add.
pub mod bit {
    /// `k8s.pod.uid`.
    pub const POD_UID: u32 = 1 << 0;
    /// `k8s.pod.name`.
    pub const POD_NAME: u32 = 1 << 1;
    /// `k8s.namespace.name`.
    pub const NAMESPACE: u32 = 1 << 2;
    /// `k8s.node.name`.
    pub const NODE: u32 = 1 << 3;
    /// `systemd.unit`.
    pub const UNIT: u32 = 1 << 4;
    /// `process.executable.name`.
    pub const EXE: u32 = 1 << 5;
    /// `process.parent_pid`.
    pub const PPID: u32 = 1 << 6;
    /// `k8s.deployment.name`.
    pub const DEPLOYMENT: u32 = 1 << 7;
    /// `k8s.replicaset.name`.
    pub const REPLICASET: u32 = 1 << 8;
    /// `k8s.statefulset.name`.
    pub const STATEFULSET: u32 = 1 << 9;
    /// `k8s.daemonset.name`.
    pub const DAEMONSET: u32 = 1 << 10;
    /// `k8s.job.name`.
    pub const JOB: u32 = 1 << 11;
    // Keys that are read but never added (first-occurrence tracking only).
    pub(super) const PID: u32 = 1 << 12;
    pub(super) const EXE_PATH: u32 = 1 << 13;
    pub(super) const CONTAINER: u32 = 1 << 14;
    pub(super) const CGROUP_PATH: u32 = 1 << 15;
    pub(super) const CGROUP_ID: u32 = 1 << 16;
    pub(super) const OBJECT_KIND: u32 = 1 << 17;
    pub(super) const OBJECT_NAME: u32 = 1 << 18;
    pub(super) const OWNER_KIND: u32 = 1 << 19;
    pub(super) const OWNER_NAME: u32 = 1 << 20;
    pub(super) const LABELS: u32 = 1 << 21;
    pub(super) const POD_IP: u32 = 1 << 22;
    pub(super) const SELECTOR: u32 = 1 << 23;
    pub(super) const SERVICE_IP: u32 = 1 << 24;
    pub(super) const PEER_ADDR: u32 = 1 << 25;
    pub(super) const SERVER_ADDR: u32 = 1 << 26;
    pub(super) const DNS_NAME: u32 = 1 << 27;
}

/// The job name attribute (no constant in the vocabulary of its own).
pub const JOB_NAME: &str = "k8s.job.name";

/// What correlation reads from one event.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct View<'a> {
    /// The envelope pid, else `process.pid`.
    pub pid: Option<u32>,
    /// `process.parent_pid`.
    pub ppid: Option<u32>,
    /// `process.executable.name`.
    pub exe: Option<&'a str>,
    /// `process.executable.path`.
    pub exe_path: Option<&'a str>,
    /// The envelope container id, else `container.id`.
    pub container: Option<&'a str>,
    /// The envelope cgroup id.
    pub cgroup_id: Option<u64>,
    /// `cgroup.path`.
    pub cgroup_path: Option<&'a str>,
    /// `cgroup.id` (the id of `cgroup.path`).
    pub cgroup_path_id: Option<u64>,
    /// `k8s.pod.uid`.
    pub pod_uid: Option<&'a str>,
    /// `k8s.pod.name`.
    pub pod_name: Option<&'a str>,
    /// `k8s.namespace.name`.
    pub namespace: Option<&'a str>,
    /// `k8s.node.name`.
    pub node: Option<&'a str>,
    /// `systemd.unit`.
    pub unit: Option<&'a str>,
    /// `k8s.object.kind`.
    pub object_kind: Option<&'a str>,
    /// `k8s.object.name`.
    pub object_name: Option<&'a str>,
    /// `k8s.owner.kind`.
    pub owner_kind: Option<&'a str>,
    /// `k8s.owner.name`.
    pub owner_name: Option<&'a str>,
    /// `k8s.object.labels`.
    pub labels: Option<&'a str>,
    /// `k8s.pod.ip`.
    pub pod_ip: Option<&'a str>,
    /// `k8s.service.selector`.
    pub selector: Option<&'a str>,
    /// `k8s.service.cluster_ip`.
    pub service_ip: Option<&'a str>,
    /// `network.peer.address`.
    pub peer_addr: Option<&'a str>,
    /// `server.address`.
    pub server_addr: Option<&'a str>,
    /// `dns.question.name`.
    pub dns_name: Option<&'a str>,
    /// Keys present (see [`bit`]), whatever their value.
    pub present: u32,
}

fn text(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

/// The bit of a key correlation reads (0: not one of them).
fn key_bit(k: &str) -> u32 {
    // Dispatch on the first byte: most keys of an event are none of these.
    match k.as_bytes().first() {
        Some(b'k') => match k {
            attr::POD_UID => bit::POD_UID,
            attr::POD_NAME => bit::POD_NAME,
            attr::NAMESPACE => bit::NAMESPACE,
            attr::NODE => bit::NODE,
            attr::DEPLOYMENT => bit::DEPLOYMENT,
            attr::REPLICASET => bit::REPLICASET,
            attr::STATEFULSET => bit::STATEFULSET,
            attr::DAEMONSET => bit::DAEMONSET,
            JOB_NAME => bit::JOB,
            attr::OBJECT_KIND => bit::OBJECT_KIND,
            attr::OBJECT_NAME => bit::OBJECT_NAME,
            attr::OWNER_KIND => bit::OWNER_KIND,
            attr::OWNER_NAME => bit::OWNER_NAME,
            attr::OBJECT_LABELS => bit::LABELS,
            attr::POD_IP => bit::POD_IP,
            attr::SERVICE_SELECTOR => bit::SELECTOR,
            attr::SERVICE_IP => bit::SERVICE_IP,
            _ => 0,
        },
        Some(b'p') => match k {
            attr::PROCESS_PID => bit::PID,
            attr::PROCESS_PPID => bit::PPID,
            attr::PROCESS_EXE => bit::EXE,
            "process.executable.path" => bit::EXE_PATH,
            _ => 0,
        },
        Some(b'c') => match k {
            attr::CONTAINER_ID => bit::CONTAINER,
            attr::CGROUP_PATH => bit::CGROUP_PATH,
            "cgroup.id" => bit::CGROUP_ID,
            _ => 0,
        },
        Some(b's') => match k {
            attr::UNIT => bit::UNIT,
            attr::SERVER_ADDR => bit::SERVER_ADDR,
            _ => 0,
        },
        Some(b'n') if k == attr::PEER_ADDR => bit::PEER_ADDR,
        Some(b'd') if k == attr::DNS_NAME => bit::DNS_NAME,
        _ => 0,
    }
}

impl<'a> View<'a> {
    /// The peer the event is about: its peer address, else its server address, else its
    /// DNS name (the network graph's key).
    pub fn peer(&self) -> Option<&'a str> {
        self.peer_addr.or(self.server_addr).or(self.dns_name)
    }

    /// Reads `e` in one pass over its attributes.
    pub fn of(e: &'a Event) -> Self {
        let mut v = View {
            pid: e.pid,
            cgroup_id: e.cgroup_id,
            container: e.container_id.as_deref(),
            ..View::default()
        };
        let mut pid_attr = None;
        let mut container_attr = None;
        for a in e.all_attributes() {
            let b = key_bit(&a.key);
            if b == 0 || v.present & b != 0 {
                continue;
            }
            v.present |= b;
            let val = &a.value;
            match b {
                bit::POD_UID => v.pod_uid = text(val),
                bit::POD_NAME => v.pod_name = text(val),
                bit::NAMESPACE => v.namespace = text(val),
                bit::NODE => v.node = text(val),
                bit::UNIT => v.unit = text(val),
                bit::EXE => v.exe = text(val),
                bit::PPID => v.ppid = val.as_i64().and_then(|p| u32::try_from(p).ok()),
                bit::PID => pid_attr = val.as_i64().and_then(|p| u32::try_from(p).ok()),
                bit::EXE_PATH => v.exe_path = text(val),
                bit::CONTAINER => container_attr = text(val),
                bit::CGROUP_PATH => v.cgroup_path = text(val),
                bit::CGROUP_ID => v.cgroup_path_id = val.as_i64().map(|c| c as u64),
                bit::OBJECT_KIND => v.object_kind = text(val),
                bit::OBJECT_NAME => v.object_name = text(val),
                bit::OWNER_KIND => v.owner_kind = text(val),
                bit::OWNER_NAME => v.owner_name = text(val),
                bit::LABELS => v.labels = text(val),
                bit::POD_IP => v.pod_ip = text(val),
                bit::SELECTOR => v.selector = text(val),
                bit::SERVICE_IP => v.service_ip = text(val),
                bit::PEER_ADDR => v.peer_addr = text(val),
                bit::SERVER_ADDR => v.server_addr = text(val),
                bit::DNS_NAME => v.dns_name = text(val),
                _ => {}
            }
        }
        v.pid = v.pid.or(pid_attr);
        v.container = v.container.or(container_attr);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attribute, Severity};

    fn ev(attrs: &[(&str, Value)]) -> Event {
        let mut e = Event::new("x", "test", Severity::Info, 1);
        for (k, v) in attrs {
            e.attributes.push(Attribute {
                key: (*k).into(),
                value: v.clone(),
            });
        }
        e
    }

    #[test]
    fn agrees_with_attribute_lookups() {
        let e = ev(&[
            ("other", Value::Str("x".into())),
            (attr::POD_UID, Value::Str("".into())),
            (attr::POD_UID, Value::Str("second".into())),
            (attr::NAMESPACE, Value::Str("prod".into())),
            (attr::PROCESS_PID, Value::Int(42)),
            (attr::PROCESS_PPID, Value::UInt(7)),
            (attr::CONTAINER_ID, Value::Str("c1".into())),
            ("cgroup.id", Value::Int(99)),
            (attr::PEER_ADDR, Value::Str("10.0.0.1".into())),
            (attr::DEPLOYMENT, Value::Str("".into())),
        ]);
        let v = View::of(&e);
        // The first pod uid is empty: it names nothing, but the key is present.
        assert_eq!(v.pod_uid, None);
        assert_ne!(v.present & bit::POD_UID, 0);
        assert_ne!(v.present & bit::DEPLOYMENT, 0);
        assert_eq!(v.present & bit::POD_NAME, 0);
        assert_eq!(v.namespace, Some("prod"));
        assert_eq!(v.pid, Some(42));
        assert_eq!(v.ppid, Some(7));
        assert_eq!(v.container, Some("c1"));
        assert_eq!(v.cgroup_path_id, Some(99));
        assert_eq!(v.peer_addr, Some("10.0.0.1"));
        // The envelope wins over attributes.
        let mut e2 = e.clone();
        e2.pid = Some(1);
        e2.container_id = Some("env".into());
        let v2 = View::of(&e2);
        assert_eq!((v2.pid, v2.container), (Some(1), Some("env")));
    }
}
