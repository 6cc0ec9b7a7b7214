//! Events of the process collector, built from decoded records. Pure.

use tapio_event_buffer::OwnedEvent;
use tapio_plugin_api::{EventTypeInfo, Severity};

use crate::death::{classify, signal_name, Reason};
use crate::record::{Exec, Exit, Oom, Signal};

/// Every event type this collector emits.
pub const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(
        "kernel.process.exec",
        "A process executed a program: pid, parent, uid, path, argv, cgroup",
    ),
    EventTypeInfo::new(
        "kernel.process.exit",
        "A process ended: exit code or signal, lifetime, death reason and killer",
    ),
    EventTypeInfo::new(
        "kernel.process.signal",
        "A fatal signal was generated for a process, with sender and target",
    ),
    EventTypeInfo::new(
        "kernel.memory.oom_kill",
        "The OOM killer chose a victim, with the task that triggered it",
    ),
];

/// `kernel.process.exec`.
pub fn exec_event(e: &Exec, timestamp_ns: u64) -> OwnedEvent {
    let args = serde_json::to_string(&e.args).unwrap_or_default();
    let mut ev = OwnedEvent::new(timestamp_ns, "kernel.process.exec", Severity::Info)
        .pid(e.pid)
        .cgroup_id(e.cgroup_id)
        .uint("process.pid", u64::from(e.pid))
        .uint("process.parent_pid", u64::from(e.ppid))
        .uint("process.user.id", u64::from(e.uid))
        .str("process.executable.name", &e.comm)
        .str("process.executable.path", &e.path)
        .str("process.command_args", args)
        .str("process.command_line", e.args.join(" "))
        .bool("process.command_args.truncated", e.args_truncated)
        .uint("cgroup.id", e.cgroup_id);
    if e.old_pid != e.pid {
        ev = ev.uint("process.exec.previous_thread_id", u64::from(e.old_pid));
    }
    ev
}

/// `kernel.process.exit`, with its death reason. `now_boot_ns` is the exit's own boot
/// timestamp (the lifetime ends there).
pub fn exit_event(x: &Exit, exit_boot_ns: u64, timestamp_ns: u64) -> OwnedEvent {
    let death = classify(x);
    let severity = match death.reason {
        Reason::NormalExit if death.exit_code == Some(0) => Severity::Info,
        Reason::NormalExit | Reason::Signal => Severity::Warning,
        Reason::OomKill | Reason::SegmentationFault | Reason::Abort | Reason::Crash => {
            Severity::Error
        }
    };
    let mut ev = OwnedEvent::new(timestamp_ns, "kernel.process.exit", severity)
        .pid(x.pid)
        .cgroup_id(x.cgroup_id)
        .uint("process.pid", u64::from(x.pid))
        .uint("process.parent_pid", u64::from(x.ppid))
        .str("process.executable.name", &x.comm)
        .str("process.death_reason", death.reason.as_str())
        .bool("process.exit.core_dumped", death.core_dumped)
        .uint(
            "process.lifetime_ns",
            exit_boot_ns.saturating_sub(x.start_boot_ns),
        )
        .uint("cgroup.id", x.cgroup_id);
    if let Some(code) = death.exit_code {
        ev = ev.int("process.exit.code", i64::from(code));
    }
    if let Some(signal) = death.signal {
        ev = ev
            .int("process.exit.signal", i64::from(signal))
            .str("process.exit.signal.name", signal_name(signal));
    }
    if let Some(k) = &death.killer {
        ev = ev
            .uint("process.killer.pid", u64::from(k.pid))
            .str("process.killer.executable.name", &k.comm)
            .bool("process.killer.kernel", k.code > 0);
    }
    ev
}

/// `kernel.process.signal`: the envelope pid is the target (the process it will kill).
pub fn signal_event(s: &Signal, timestamp_ns: u64) -> OwnedEvent {
    OwnedEvent::new(timestamp_ns, "kernel.process.signal", Severity::Warning)
        .pid(s.target_pid)
        .tid(s.target_tid)
        .cgroup_id(s.target_cgroup_id)
        .uint("process.pid", u64::from(s.target_pid))
        .str("process.executable.name", &s.target_comm)
        .int("process.signal.number", i64::from(s.signal))
        .str("process.signal.name", signal_name(s.signal))
        .int("process.signal.code", i64::from(s.code))
        .bool("process.signal.kernel", s.code > 0)
        .bool("process.signal.group", s.group)
        .uint("process.signal.sender.pid", u64::from(s.sender_pid))
        .uint("process.signal.sender.thread.id", u64::from(s.sender_tid))
        .str("process.signal.sender.executable.name", &s.sender_comm)
        .uint("process.signal.sender.cgroup.id", s.sender_cgroup_id)
}

/// `kernel.memory.oom_kill`.
pub fn oom_event(o: &Oom, timestamp_ns: u64) -> OwnedEvent {
    let mut ev = OwnedEvent::new(timestamp_ns, "kernel.memory.oom_kill", Severity::Critical)
        .pid(o.pid)
        .uint("process.pid", u64::from(o.pid))
        .uint("process.user.id", u64::from(o.uid))
        .str("process.executable.name", &o.comm)
        .uint("cgroup.id", o.cgroup_id)
        .uint("oom.memcg.id", o.memcg.0)
        .uint("oom.memcg.hierarchy", u64::from(o.memcg.1))
        .uint("oom.trigger.pid", u64::from(o.trigger_pid))
        .str("oom.trigger.executable.name", &o.trigger_comm);
    if o.cgroup_id != 0 {
        ev = ev.cgroup_id(o.cgroup_id);
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Killer;
    use tapio_event_buffer::Value;

    #[test]
    fn exec_carries_semconv_attributes() {
        let e = Exec {
            pid: 5,
            ppid: 4,
            uid: 0,
            old_pid: 5,
            cgroup_id: 9,
            comm: "echo".into(),
            path: "/bin/echo".into(),
            args: vec!["echo".into(), "a b".into()],
            args_truncated: false,
        };
        let ev = exec_event(&e, 1);
        assert_eq!(ev.pid, Some(5));
        assert_eq!(ev.attr("process.parent_pid"), Some(&Value::UInt(4)));
        assert_eq!(
            ev.attr("process.command_args"),
            Some(&Value::Str(r#"["echo","a b"]"#.into()))
        );
        assert_eq!(ev.attr("process.exec.previous_thread_id"), None);
    }

    #[test]
    fn exit_names_reason_and_killer() {
        let x = Exit {
            pid: 5,
            ppid: 4,
            comm: "sleep".into(),
            cgroup_id: 9,
            status: 15,
            start_boot_ns: 100,
            oom_killed: false,
            killer: Some(Killer {
                pid: 3,
                comm: "kill".into(),
                signal: 15,
                code: 0,
                ts_boot_ns: 150,
            }),
        };
        let ev = exit_event(&x, 300, 1);
        assert_eq!(ev.severity, Severity::Warning);
        assert_eq!(
            ev.attr("process.death_reason"),
            Some(&Value::Str("signal".into()))
        );
        assert_eq!(ev.attr("process.killer.pid"), Some(&Value::UInt(3)));
        assert_eq!(ev.attr("process.lifetime_ns"), Some(&Value::UInt(200)));
        assert_eq!(ev.attr("process.exit.code"), None);
        assert_eq!(
            ev.attr("process.exit.signal.name"),
            Some(&Value::Str("SIGTERM".into()))
        );
    }
}
