//! Events of the storage-io collector, built from decoded I/Os and window summaries.

use tapio_event_buffer::OwnedEvent;
use tapio_plugin_api::{EventTypeInfo, Severity};

use crate::aggregate::{Scope, Summary};
use crate::devices::dev_id;
use crate::record::{flags, Io};

/// Every event type this collector emits.
pub const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(
        "storage.io.slow",
        "One block request or fsync whose latency reached the slow threshold",
    ),
    EventTypeInfo::new(
        "storage.io.read",
        "Latency summary of block reads over a window, per device or per process",
    ),
    EventTypeInfo::new(
        "storage.io.write",
        "Latency summary of block writes, flushes and discards over a window, per device or per process",
    ),
    EventTypeInfo::new(
        "storage.io.fsync",
        "Latency summary of fsync and fdatasync calls over a window, per device or per process",
    ),
];

/// Names what the context of an event needs beyond the I/O itself.
pub struct Context<'a> {
    /// The device's name (`vda`).
    pub device_name: &'a str,
    /// The submitter's container id, if any.
    pub container_id: &'a str,
    /// Unix ns of the I/O's completion (or the summary's end).
    pub timestamp_ns: u64,
}

/// `error.type` of a failed I/O.
pub fn error_type(io: &Io) -> Option<String> {
    if io.error == 0 {
        return None;
    }
    Some(if io.op.is_sync_call() {
        match -io.error {
            libc::EIO => "EIO".into(),
            libc::ENOSPC => "ENOSPC".into(),
            libc::EDQUOT => "EDQUOT".into(),
            libc::EBADF => "EBADF".into(),
            libc::EINVAL => "EINVAL".into(),
            libc::EROFS => "EROFS".into(),
            other => format!("errno {other}"),
        }
    } else {
        match io.error {
            1 => "BLK_STS_NOTSUPP".into(),
            2 => "BLK_STS_TIMEOUT".into(),
            3 => "BLK_STS_NOSPC".into(),
            4 => "BLK_STS_TRANSPORT".into(),
            5 => "BLK_STS_TARGET".into(),
            7 => "BLK_STS_MEDIUM".into(),
            8 => "BLK_STS_PROTECTION".into(),
            9 => "BLK_STS_RESOURCE".into(),
            10 => "BLK_STS_IOERR".into(),
            other => format!("blk_status {other}"),
        }
    })
}

/// The `storage.io.slow` event of one I/O.
pub fn slow_event(io: &Io, threshold_ns: u64, ctx: &Context<'_>) -> OwnedEvent {
    let error = error_type(io);
    let severity = if error.is_some() {
        Severity::Error
    } else if threshold_ns > 0 && io.latency_ns >= threshold_ns.saturating_mul(10) {
        Severity::High
    } else {
        Severity::Warning
    };
    let mut e = OwnedEvent::new(ctx.timestamp_ns, "storage.io.slow", severity)
        .pid(io.pid)
        .tid(io.tid)
        .cgroup_id(io.cgroup_id)
        .container_id(ctx.container_id)
        .str("storage.io.operation", io.op.as_str())
        .str("storage.device.name", ctx.device_name)
        .str("storage.device.id", dev_id(io.dev))
        .uint("storage.io.latency_ns", io.latency_ns)
        .uint("storage.io.threshold_ns", threshold_ns);
    if io.pid != 0 {
        e = e
            .uint("process.pid", u64::from(io.pid))
            .uint("thread.id", u64::from(io.tid))
            .str("process.executable.name", &io.comm)
            .bool(
                "storage.io.attributed_at_issue",
                io.flags & flags::ISSUER != 0,
            );
    }
    if io.op.is_sync_call() {
        e = e.str("file.name", &io.file_name);
    } else {
        e = e
            .uint("storage.io.queue_ns", io.queue_ns)
            .uint("storage.io.bytes", u64::from(io.bytes))
            .uint("storage.io.sector", io.sector)
            .bool("storage.io.sync", io.flags & flags::SYNC != 0)
            .bool("storage.io.fua", io.flags & flags::FUA != 0);
    }
    if let Some(error) = error {
        e = e.str("error.type", error);
    }
    e
}

/// The summary event of one window group.
pub fn summary_event(s: &Summary, ctx: &Context<'_>) -> OwnedEvent {
    let acc = &s.acc;
    let severity = if acc.errors > 0 {
        Severity::Error
    } else if acc.slow > 0 {
        Severity::Warning
    } else {
        Severity::Info
    };
    let mut e = OwnedEvent::new(ctx.timestamp_ns, s.op.summary_event_type(), severity)
        .str(
            "storage.io.scope",
            match s.scope {
                Scope::Device => "device",
                Scope::Process(_) => "process",
            },
        )
        .str("storage.io.operation", s.op.as_str())
        .str("storage.device.name", ctx.device_name)
        .str("storage.device.id", dev_id(s.dev))
        .uint("storage.io.window_ns", s.window_ns)
        .uint("storage.io.count", acc.count)
        .uint("storage.io.errors", acc.errors)
        .uint("storage.io.slow_count", acc.slow)
        .uint("storage.io.latency.min_ns", acc.min_ns)
        .uint("storage.io.latency.mean_ns", acc.mean_ns())
        .uint(
            "storage.io.latency.p50_ns",
            acc.latency.value_at_quantile(0.50),
        )
        .uint(
            "storage.io.latency.p95_ns",
            acc.latency.value_at_quantile(0.95),
        )
        .uint(
            "storage.io.latency.p99_ns",
            acc.latency.value_at_quantile(0.99),
        )
        .uint("storage.io.latency.max_ns", acc.max_ns)
        .str("storage.io.latency.histogram", acc.buckets());
    if !s.op.is_sync_call() {
        e = e.uint("storage.io.bytes", acc.bytes).uint(
            "storage.io.queue.mean_ns",
            acc.queue_sum_ns / acc.count.max(1),
        );
    }
    if let Scope::Process(pid) = s.scope {
        e = e
            .pid(pid)
            .cgroup_id(acc.cgroup_id)
            .container_id(ctx.container_id)
            .uint("process.pid", u64::from(pid))
            .str("process.executable.name", &acc.comm);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Aggregator;
    use crate::record::Operation;
    use tapio_event_buffer::Value;

    fn io(op: Operation, latency_ns: u64, error: i32) -> Io {
        Io {
            ts_boot_ns: 5,
            op,
            latency_ns,
            queue_ns: 3,
            dev: 254 << 20,
            bytes: 8192,
            sector: 16,
            pid: 9,
            tid: 10,
            comm: "db".into(),
            cgroup_id: 77,
            error,
            fd: op.is_sync_call().then_some(4),
            file_name: if op.is_sync_call() {
                "wal".into()
            } else {
                String::new()
            },
            flags: flags::SYNC,
        }
    }

    fn ctx() -> Context<'static> {
        Context {
            device_name: "vda",
            container_id: "",
            timestamp_ns: 1,
        }
    }

    #[test]
    fn slow_block_write() {
        let e = slow_event(&io(Operation::Write, 15_000_000, 0), 10_000_000, &ctx());
        assert_eq!(e.event_type, "storage.io.slow");
        assert_eq!(e.severity, Severity::Warning);
        assert_eq!(
            e.attr("storage.io.operation"),
            Some(&Value::Str("write".into()))
        );
        assert_eq!(
            e.attr("storage.device.id"),
            Some(&Value::Str("254:0".into()))
        );
        assert_eq!(e.attr("storage.io.bytes"), Some(&Value::UInt(8192)));
        assert_eq!(e.attr("storage.io.sync"), Some(&Value::Bool(true)));
        assert_eq!(e.attr("file.name"), None);
        assert_eq!((e.pid, e.tid, e.cgroup_id), (Some(9), Some(10), Some(77)));
    }

    #[test]
    fn very_slow_and_failed() {
        assert_eq!(
            slow_event(&io(Operation::Read, 200_000_000, 0), 10_000_000, &ctx()).severity,
            Severity::High
        );
        let e = slow_event(&io(Operation::Fsync, 1, -libc::EIO), 0, &ctx());
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(e.attr("error.type"), Some(&Value::Str("EIO".into())));
        assert_eq!(e.attr("file.name"), Some(&Value::Str("wal".into())));
        assert_eq!(e.attr("storage.io.bytes"), None);
        let e = slow_event(&io(Operation::Write, 1, 10), 0, &ctx());
        assert_eq!(
            e.attr("error.type"),
            Some(&Value::Str("BLK_STS_IOERR".into()))
        );
    }

    #[test]
    fn summaries() {
        let mut a = Aggregator::new(10, 1_000, 5);
        a.add(&io(Operation::Fdatasync, 500, 0));
        a.add(&io(Operation::Fdatasync, 5_000, 0));
        let s = a.cut(20);
        assert_eq!(s.len(), 2);
        let device = summary_event(&s[0], &ctx());
        assert_eq!(device.event_type, "storage.io.fsync");
        assert_eq!(device.severity, Severity::Warning);
        assert_eq!(
            device.attr("storage.io.scope"),
            Some(&Value::Str("device".into()))
        );
        assert_eq!(device.attr("storage.io.count"), Some(&Value::UInt(2)));
        assert_eq!(device.pid, None);
        let process = summary_event(&s[1], &ctx());
        assert_eq!(
            process.attr("storage.io.scope"),
            Some(&Value::Str("process".into()))
        );
        assert_eq!(process.pid, Some(9));
        assert_eq!(
            process.attr("process.executable.name"),
            Some(&Value::Str("db".into()))
        );
    }
}
