//! The event of one aggregate. Pure.

use tapio_event_buffer::OwnedEvent;
use tapio_plugin_api::EventTypeInfo;

use crate::errno;
use crate::record::Aggregate;
use crate::syscalls::category;

/// Every event type this collector emits.
pub const EVENT_TYPES: &[EventTypeInfo] = &[EventTypeInfo::new(
    "kernel.syscall.error",
    "Failed system calls of one process with one syscall and errno, counted over one report \
     interval",
)];

/// `kernel.syscall.error` at the first failure's time; `to_unix` converts boot time.
pub fn aggregate_event(a: &Aggregate, to_unix: impl Fn(u64) -> u64) -> OwnedEvent {
    let errno_name = errno::name(a.errno);
    let mut e = OwnedEvent::new(
        to_unix(a.first_boot_ns),
        "kernel.syscall.error",
        a.class.severity(),
    )
    .pid(a.pid)
    .tid(a.tid)
    .uint("process.pid", u64::from(a.pid))
    .str("process.executable.name", &a.comm)
    .str("syscall.name", &a.syscall.name)
    .uint("syscall.id", u64::from(a.syscall.nr))
    .str("syscall.category", category(&a.syscall.name))
    .int("error.errno", i64::from(a.errno))
    .str("error.name", &errno_name)
    .str("error.type", errno_name)
    .uint("syscall.error.count", a.count)
    .uint("syscall.error.first_timestamp", to_unix(a.first_boot_ns))
    .str("syscall.error.severity_class", a.class.as_str());
    if a.cgroup_id != 0 {
        e = e.cgroup_id(a.cgroup_id);
    }
    if a.syscall.compat {
        e = e.bool("syscall.compat", true);
    }
    if !a.path.is_empty() {
        e = e.str("file.path", &a.path);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Class;
    use crate::syscalls::resolve;
    use tapio_event_buffer::Value;
    use tapio_plugin_api::Severity;

    #[test]
    fn builds_the_event() {
        let a = Aggregate {
            pid: 5,
            tid: 6,
            comm: "cat".into(),
            cgroup_id: 9,
            syscall: resolve(257),
            errno: 28,
            class: Class::Critical,
            count: 42,
            first_boot_ns: 100,
            path: "/data/f".into(),
        };
        let e = aggregate_event(&a, |t| t + 1000);
        assert_eq!(e.timestamp_ns, 1100);
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.attr("syscall.name"), Some(&Value::Str("openat".into())));
        assert_eq!(e.attr("error.name"), Some(&Value::Str("ENOSPC".into())));
        assert_eq!(e.attr("syscall.error.count"), Some(&Value::UInt(42)));
        assert_eq!(e.attr("file.path"), Some(&Value::Str("/data/f".into())));
        assert_eq!(e.attr("syscall.category"), Some(&Value::Str("file".into())));
        assert_eq!(e.attr("syscall.compat"), None);
    }
}
