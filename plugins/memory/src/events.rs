//! Events of the memory collector.

use tapio_event_buffer::OwnedEvent;
use tapio_plugin_api::{EventTypeInfo, Severity};

use crate::reclaim::Pressure;
use crate::record::{call_name, Alloc, AllocKey, TaskRef};
use crate::rss::Growth;

/// Every event type this collector emits.
pub const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(
        "container.memory_pressure",
        "Memory reclaim in a cgroup over a window: reclaims, stall time, pages reclaimed, the process that stalled most",
    ),
    EventTypeInfo::new(
        "memory.rss_growth",
        "A process's resident memory grew by at least the threshold within the window",
    ),
    EventTypeInfo::new(
        "memory.allocation.outstanding",
        "A large allocation of a tracked process still not freed after the minimum age, with its caller",
    ),
];

/// A cgroup's path and container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupInfo {
    /// Path inside its hierarchy (empty = unknown).
    pub path: String,
    /// Container id (empty = none).
    pub container_id: String,
}

/// The `container.memory_pressure` event of one cgroup's window.
pub fn pressure_event(
    p: &Pressure,
    window_ns: u64,
    timestamp_ns: u64,
    info: &CgroupInfo,
) -> OwnedEvent {
    const MS: u64 = 1_000_000;
    let severity = if p.stall_max_ns >= 100 * MS || p.stall_total_ns >= 1_000 * MS {
        Severity::High
    } else if p.stall_total_ns >= 10 * MS {
        Severity::Warning
    } else {
        Severity::Low
    };
    let mut e = OwnedEvent::new(timestamp_ns, "container.memory_pressure", severity)
        .cgroup_id(p.cgroup_id)
        .container_id(info.container_id.clone())
        .str("cgroup.path", &info.path)
        .uint("cgroup.id", p.cgroup.id)
        .uint("cgroup.hierarchy", u64::from(p.cgroup.hierarchy))
        .uint("memory.reclaim.window_ns", window_ns)
        .uint("memory.reclaim.memcg_count", p.memcg_count)
        .uint("memory.reclaim.direct_count", p.direct_count)
        .uint("memory.reclaim.stall_total_ns", p.stall_total_ns)
        .uint("memory.reclaim.stall_max_ns", p.stall_max_ns)
        .uint("memory.reclaim.pages", p.pages);
    if let Some((task, stall)) = &p.top {
        e = e
            .pid(task.pid)
            .uint("process.pid", u64::from(task.pid))
            .str("process.executable.name", &task.comm)
            .uint("memory.reclaim.process_stall_ns", *stall);
    }
    e
}

/// RSS parts of the newest reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RssParts {
    /// Anonymous bytes.
    pub anon: u64,
    /// File-backed bytes.
    pub file: u64,
    /// Shared-memory bytes.
    pub shmem: u64,
    /// Swapped-out bytes.
    pub swap: u64,
}

/// The `memory.rss_growth` event.
pub fn growth_event(
    g: &Growth,
    task: &TaskRef,
    parts: RssParts,
    timestamp_ns: u64,
    info: &CgroupInfo,
) -> OwnedEvent {
    OwnedEvent::new(timestamp_ns, "memory.rss_growth", Severity::Warning)
        .pid(task.pid)
        .cgroup_id(task.cgroup_id)
        .container_id(info.container_id.clone())
        .uint("process.pid", u64::from(task.pid))
        .str("process.executable.name", &task.comm)
        .str("cgroup.path", &info.path)
        .uint("memory.rss.from_bytes", g.from_bytes)
        .uint("memory.rss.bytes", g.to_bytes)
        .uint("memory.rss.growth_bytes", g.to_bytes - g.from_bytes)
        .uint("memory.rss.growth_over_ns", g.over_ns)
        .uint("memory.rss.anon_bytes", parts.anon)
        .uint("memory.rss.file_bytes", parts.file)
        .uint("memory.rss.shmem_bytes", parts.shmem)
        .uint("memory.swap.bytes", parts.swap)
}

/// Where an allocation's caller is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerLocation {
    /// The file (executable or library) holding the caller's code; empty when unknown.
    pub module: String,
    /// Offset of the return address in that file.
    pub offset: u64,
}

/// The `memory.allocation.outstanding` event.
pub fn outstanding_event(
    key: &AllocKey,
    alloc: &Alloc,
    age_ns: u64,
    comm: &str,
    caller: &CallerLocation,
    timestamp_ns: u64,
) -> OwnedEvent {
    let mut e = OwnedEvent::new(
        timestamp_ns,
        "memory.allocation.outstanding",
        Severity::Warning,
    )
    .pid(key.pid)
    .tid(alloc.tid)
    .uint("process.pid", u64::from(key.pid))
    .uint("thread.id", u64::from(alloc.tid))
    .str("process.executable.name", comm)
    .str("memory.allocation.function", call_name(alloc.call))
    .uint("memory.allocation.size_bytes", alloc.size)
    .str("memory.allocation.address", format!("{:#x}", key.addr))
    .uint("memory.allocation.age_ns", age_ns)
    .str(
        "memory.allocation.caller.address",
        format!("{:#x}", alloc.caller),
    );
    if !caller.module.is_empty() {
        e = e
            .str("memory.allocation.caller.module", &caller.module)
            .str(
                "memory.allocation.caller.offset",
                format!("{:#x}", caller.offset),
            );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_cgroup_info::CgroupKey;
    use tapio_event_buffer::Value;

    #[test]
    fn outstanding_event_names_the_caller() {
        let key = AllocKey {
            pid: 10,
            _pad: 0,
            addr: 0x7f00_0000_1000,
        };
        let alloc = Alloc {
            size: 8 << 20,
            ts_boot_ns: 1,
            caller: 0x55d0_c4a2_0010,
            tid: 11,
            call: 1,
        };
        let caller = CallerLocation {
            module: "/usr/bin/app".into(),
            offset: 0x20010,
        };
        let e = outstanding_event(&key, &alloc, 5, "app", &caller, 9);
        assert_eq!(
            e.attr("memory.allocation.size_bytes"),
            Some(&Value::UInt(8 << 20))
        );
        assert_eq!(
            e.attr("memory.allocation.function"),
            Some(&Value::Str("malloc".into()))
        );
        assert_eq!(
            e.attr("memory.allocation.address"),
            Some(&Value::Str("0x7f0000001000".into()))
        );
        assert_eq!(
            e.attr("memory.allocation.caller.offset"),
            Some(&Value::Str("0x20010".into()))
        );
        assert_eq!((e.pid, e.tid), (Some(10), Some(11)));
    }

    #[test]
    fn pressure_severity() {
        let task = TaskRef {
            pid: 3,
            tid: 3,
            comm: "dd".into(),
            cgroup_id: 1,
            cgroup: CgroupKey::new(4, 9),
        };
        let mut w = crate::reclaim::ReclaimWindows::new(1);
        w.add(0, true, 200_000_000, 10, &task);
        let (len, groups) = w.cut(5);
        let e = pressure_event(&groups[0], len, 7, &CgroupInfo::default());
        assert_eq!(e.severity, Severity::High);
        assert_eq!(
            e.attr("process.executable.name"),
            Some(&Value::Str("dd".into()))
        );
        assert_eq!(e.attr("memory.reclaim.memcg_count"), Some(&Value::UInt(1)));
    }
}
