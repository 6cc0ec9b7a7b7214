//! The reader-thread side: decodes ring records into events, attributes them to containers
//! by cgroup, and emits them in batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tapio_cgroup_info::{CgroupKey, CgroupResolver};
use tapio_ebpf_support::clock::BootClock;
use tapio_ebpf_support::RecordHandler;
use tapio_event_buffer::EventBuffer;
use tapio_plugin_api::EventSink;

use crate::events::event;
use crate::record::decode;

/// Counters shared with the collector's `metrics()`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Records that could not be decoded.
    pub(crate) decode_errors: AtomicU64,
    /// Events the host refused (its ring was full).
    pub(crate) events_refused: AtomicU64,
}

pub(crate) struct Handler {
    sink: EventSink,
    clock: BootClock,
    cgroups: CgroupResolver,
    buffer: EventBuffer,
    counters: Arc<Counters>,
}

impl Handler {
    pub(crate) fn new(sink: EventSink, counters: Arc<Counters>) -> Self {
        Handler {
            sink,
            clock: BootClock::new(),
            cgroups: CgroupResolver::for_this_host(),
            buffer: EventBuffer::new(),
            counters,
        }
    }

    fn container_of(&mut self, cgroup_id: u64) -> String {
        if cgroup_id == 0 {
            return String::new();
        }
        self.cgroups
            .container(CgroupKey::new(0, cgroup_id))
            .map(|c| c.id)
            .unwrap_or_default()
    }
}

impl RecordHandler for Handler {
    fn record(&mut self, bytes: &[u8]) {
        let conn = match decode(bytes) {
            Ok(conn) => conn,
            Err(e) => {
                if self.counters.decode_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!("network: {e}");
                }
                return;
            }
        };
        let container_id = self.container_of(conn.cgroup_id);
        let timestamp_ns = self.clock.to_unix_ns(conn.ts_boot_ns);
        self.buffer.push(event(&conn, timestamp_ns, &container_id));
    }

    fn flush(&mut self) {
        let outcome = self.buffer.emit(&self.sink);
        if outcome.dropped > 0 {
            self.counters
                .events_refused
                .fetch_add(u64::from(outcome.dropped), Ordering::Relaxed);
        }
    }
}
