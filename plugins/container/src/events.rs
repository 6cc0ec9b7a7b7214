//! Events of the container collector.

use tapio_event_buffer::OwnedEvent;
use tapio_plugin_api::{EventTypeInfo, Severity};

use crate::death::{signal_name, Reason};
use crate::lifecycle::{Change, Lifecycle};

/// Every event type this collector emits.
pub const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(
        "container.create",
        "The first cgroup of a container was created",
    ),
    EventTypeInfo::new(
        "container.start",
        "The first process moved into a container's cgroup",
    ),
    EventTypeInfo::new(
        "container.oom",
        "The OOM killer chose a process of a container",
    ),
    EventTypeInfo::new(
        "container.exit",
        "A process of a container exited, with its exit code or signal and the death reason",
    ),
    EventTypeInfo::new(
        "container.destroy",
        "The last cgroup of a container was removed",
    ),
];

/// The event of one lifecycle change at `timestamp_ns` (Unix).
pub fn lifecycle_event(l: &Lifecycle, timestamp_ns: u64) -> OwnedEvent {
    let (event_type, severity) = match &l.change {
        Change::Create => ("container.create", Severity::Info),
        Change::Start { .. } => ("container.start", Severity::Info),
        Change::Oom { .. } => ("container.oom", Severity::Critical),
        Change::Exit { death, .. } => (
            "container.exit",
            match death.reason {
                Reason::NormalExit if death.exit_code == Some(0) => Severity::Info,
                Reason::NormalExit | Reason::Signal => Severity::Warning,
                Reason::OomKill | Reason::SegmentationFault | Reason::Abort | Reason::Crash => {
                    Severity::Error
                }
            },
        ),
        Change::Destroy => ("container.destroy", Severity::Info),
    };
    let (key, path) = &l.cgroup;
    let mut e = OwnedEvent::new(timestamp_ns, event_type, severity)
        .container_id(l.container.id.clone())
        .str("container.id", &l.container.id)
        .str("container.runtime.name", l.container.runtime.as_str())
        .str("cgroup.path", path)
        .uint("cgroup.id", key.id)
        .uint("cgroup.hierarchy", u64::from(key.hierarchy));
    if key.hierarchy == 0 {
        e = e.cgroup_id(key.id);
    }
    if let Some(uid) = &l.container.pod_uid {
        e = e.str("k8s.pod.uid", uid);
    }
    match &l.change {
        Change::Start { pid, comm } => {
            e = e
                .pid(*pid)
                .uint("process.pid", u64::from(*pid))
                .str("process.executable.name", comm);
        }
        Change::Oom { proc } => {
            e = e
                .pid(proc.pid)
                .uint("process.pid", u64::from(proc.pid))
                .str("process.executable.name", &proc.comm);
        }
        Change::Exit { proc, death } => {
            e = e
                .pid(proc.pid)
                .uint("process.pid", u64::from(proc.pid))
                .str("process.executable.name", &proc.comm)
                .str("process.exit.reason", death.reason.as_str())
                .bool("process.exit.core_dumped", death.core_dumped);
            if let Some(code) = death.exit_code {
                e = e.int("process.exit.code", i64::from(code));
            }
            if let Some(signal) = death.signal {
                e = e
                    .int("process.exit.signal", i64::from(signal))
                    .str("process.exit.signal.name", signal_name(signal));
            }
        }
        Change::Create | Change::Destroy => {}
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::death::classify;
    use crate::record::Proc;
    use tapio_cgroup_info::{CgroupKey, ContainerRef, Runtime};
    use tapio_event_buffer::Value;

    fn lifecycle(change: Change) -> Lifecycle {
        Lifecycle {
            ts_boot_ns: 1,
            container: ContainerRef {
                id: "c".repeat(64),
                runtime: Runtime::Containerd,
                pod_uid: Some("1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d".into()),
            },
            cgroup: (CgroupKey::new(4, 9), "/kubepods/x".into()),
            change,
        }
    }

    #[test]
    fn oom_exit() {
        let proc = Proc {
            pid: 7,
            comm: "java".into(),
            dfl: CgroupKey::new(0, 1),
            memcg: CgroupKey::new(4, 9),
        };
        let e = lifecycle_event(
            &lifecycle(Change::Exit {
                proc,
                death: classify(9, true),
            }),
            5,
        );
        assert_eq!(e.event_type, "container.exit");
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(e.container_id, "c".repeat(64));
        assert_eq!(
            e.attr("process.exit.reason"),
            Some(&Value::Str("oom_kill".into()))
        );
        assert_eq!(
            e.attr("process.exit.signal.name"),
            Some(&Value::Str("SIGKILL".into()))
        );
        assert_eq!(e.attr("process.exit.code"), None);
        assert_eq!(
            e.attr("k8s.pod.uid"),
            Some(&Value::Str("1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d".into()))
        );
        assert_eq!(
            e.cgroup_id, None,
            "a v1 cgroup id is not the event's (v2) cgroup id"
        );
    }

    #[test]
    fn create_and_clean_exit() {
        let e = lifecycle_event(&lifecycle(Change::Create), 5);
        assert_eq!(
            (e.event_type, e.severity),
            ("container.create", Severity::Info)
        );
        assert_eq!(
            e.attr("container.runtime.name"),
            Some(&Value::Str("containerd".into()))
        );
        let proc = Proc {
            pid: 7,
            comm: "sh".into(),
            dfl: CgroupKey::new(0, 1),
            memcg: CgroupKey::new(4, 9),
        };
        let e = lifecycle_event(
            &lifecycle(Change::Exit {
                proc,
                death: classify(0, false),
            }),
            5,
        );
        assert_eq!(e.severity, Severity::Info);
        assert_eq!(e.attr("process.exit.code"), Some(&Value::Int(0)));
    }
}
