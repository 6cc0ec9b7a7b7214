//! The reader-thread side: decodes packets, parses DNS messages, pairs responses with
//! queries, reports timeouts on every tick, and emits events in batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tapio_cgroup_info::{CgroupKey, CgroupResolver};
use tapio_ebpf_support::clock::{boot_now_ns, BootClock};
use tapio_ebpf_support::RecordHandler;
use tapio_event_buffer::EventBuffer;
use tapio_plugin_api::EventSink;

use crate::events::{query_event, response_event, timeout_event};
use crate::message::parse;
use crate::record::{decode, Direction, Packet};
use crate::tracker::{Key, Query, Tracker};

/// Counters shared with the collector's `metrics()`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Records that could not be decoded.
    pub(crate) decode_errors: AtomicU64,
    /// DNS messages that could not be parsed.
    pub(crate) malformed: AtomicU64,
    /// Queries going in, or responses going out (a DNS server on this host talking to a
    /// client on a watched port): not reported.
    pub(crate) unexpected: AtomicU64,
    /// Responses with no outstanding query (late after a timeout, or sent before start).
    pub(crate) unmatched: AtomicU64,
    /// Queries not tracked because too many were outstanding.
    pub(crate) untracked: AtomicU64,
    /// Events the host refused (its ring was full).
    pub(crate) events_refused: AtomicU64,
}

/// What the handler needs from the settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandlerSettings {
    pub(crate) timeout_ns: u64,
    pub(crate) max_pending: usize,
    pub(crate) queries: bool,
}

pub(crate) struct Handler {
    sink: EventSink,
    settings: HandlerSettings,
    clock: BootClock,
    cgroups: CgroupResolver,
    tracker: Tracker,
    buffer: EventBuffer,
    counters: Arc<Counters>,
}

impl Handler {
    pub(crate) fn new(sink: EventSink, settings: HandlerSettings, counters: Arc<Counters>) -> Self {
        Handler {
            sink,
            settings,
            clock: BootClock::new(),
            cgroups: CgroupResolver::for_this_host(),
            tracker: Tracker::new(settings.timeout_ns, settings.max_pending),
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

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn packet(&mut self, p: Packet) {
        let m = match parse(&p.payload) {
            Ok(m) => m,
            Err(e) => {
                if self.counters.malformed.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!("dns: {e}");
                }
                return;
            }
        };
        let key = Key {
            cookie: p.cookie,
            id: m.id,
            server: p.server(),
            transport: p.transport,
        };
        let timestamp_ns = self.clock.to_unix_ns(p.ts_boot_ns);
        let container_id = self.container_of(p.cgroup_id);
        match (p.direction, m.is_response) {
            (Direction::Egress, false) => {
                let q = Query {
                    ts_boot_ns: p.ts_boot_ns,
                    pid: p.pid,
                    tid: p.tid,
                    comm: p.comm.clone(),
                    cgroup_id: p.cgroup_id,
                    local: p.local(),
                    name: m.name.clone(),
                    qtype: m.qtype,
                };
                if self.settings.queries {
                    self.buffer
                        .push(query_event(&p, &m, &q, timestamp_ns, &container_id));
                }
                if !self.tracker.query(key, q) {
                    Self::count(&self.counters.untracked);
                }
            }
            (Direction::Ingress, true) => {
                let query = self.tracker.response(&key);
                if query.is_none() {
                    Self::count(&self.counters.unmatched);
                }
                self.buffer.push(response_event(
                    &p,
                    &m,
                    query.as_ref(),
                    timestamp_ns,
                    &container_id,
                ));
            }
            _ => Self::count(&self.counters.unexpected),
        }
    }

    fn emit(&mut self) {
        let outcome = self.buffer.emit(&self.sink);
        if outcome.dropped > 0 {
            self.counters
                .events_refused
                .fetch_add(u64::from(outcome.dropped), Ordering::Relaxed);
        }
    }
}

impl RecordHandler for Handler {
    fn record(&mut self, bytes: &[u8]) {
        match decode(bytes) {
            Ok(p) => self.packet(p),
            Err(e) => {
                if self.counters.decode_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!("dns: {e}");
                }
            }
        }
    }

    fn flush(&mut self) {
        self.emit();
    }

    fn tick(&mut self) {
        let now = boot_now_ns();
        let expired = self.tracker.expire(now);
        if !expired.is_empty() {
            let timestamp_ns = self.clock.to_unix_ns(now);
            for (key, q) in expired {
                let container_id = self.container_of(q.cgroup_id);
                self.buffer.push(timeout_event(
                    &key,
                    &q,
                    self.settings.timeout_ns,
                    timestamp_ns,
                    &container_id,
                ));
            }
        }
        self.emit();
    }
}
