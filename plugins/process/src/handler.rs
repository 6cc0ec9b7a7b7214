//! The reader-thread side: decodes records, builds events, emits them per batch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tapio_ebpf_support::clock::BootClock;
use tapio_ebpf_support::RecordHandler;
use tapio_event_buffer::EventBuffer;
use tapio_plugin_api::EventSink;

use crate::events::{exec_event, exit_event, oom_event, signal_event};
use crate::record::{decode, Sample};

/// Counters shared with the collector's `metrics()`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) decode_errors: AtomicU64,
    pub(crate) events_refused: AtomicU64,
    pub(crate) execs: AtomicU64,
    pub(crate) exits: AtomicU64,
    pub(crate) signals: AtomicU64,
    pub(crate) ooms: AtomicU64,
}

pub(crate) struct Handler {
    sink: EventSink,
    clock: BootClock,
    buffer: EventBuffer,
    counters: Arc<Counters>,
}

impl Handler {
    pub(crate) fn new(sink: EventSink, counters: Arc<Counters>) -> Self {
        Handler {
            sink,
            clock: BootClock::new(),
            buffer: EventBuffer::new(),
            counters,
        }
    }
}

impl RecordHandler for Handler {
    fn record(&mut self, bytes: &[u8]) {
        let (ts_boot, sample) = match decode(bytes) {
            Ok(decoded) => decoded,
            Err(e) => {
                if self.counters.decode_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!("process: cannot decode a record: {e}");
                }
                return;
            }
        };
        let ts = self.clock.to_unix_ns(ts_boot);
        let (event, counter) = match &sample {
            Sample::Exec(e) => (exec_event(e, ts), &self.counters.execs),
            Sample::Exit(x) => (exit_event(x, ts_boot, ts), &self.counters.exits),
            Sample::Signal(s) => (signal_event(s, ts), &self.counters.signals),
            Sample::Oom(o) => (oom_event(o, ts), &self.counters.ooms),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.buffer.push(event);
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
