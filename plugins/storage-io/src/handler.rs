//! The reader-thread side: decodes ring records, emits slow-I/O events at once and window
//! summaries when a window closes (and a last partial window at stop).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tapio_cgroup_info::{CgroupKey, CgroupResolver};
use tapio_ebpf_support::clock::{boot_now_ns, BootClock};
use tapio_ebpf_support::RecordHandler;
use tapio_event_buffer::EventBuffer;
use tapio_plugin_api::EventSink;

use crate::aggregate::Aggregator;
use crate::devices::DeviceNames;
use crate::events::{slow_event, summary_event, Context};
use crate::record::decode;

/// Counters shared with the collector's `metrics()`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Records that could not be decoded.
    pub(crate) decode_errors: AtomicU64,
    /// Events the host refused (its ring was full).
    pub(crate) events_refused: AtomicU64,
}

/// What the handler needs from the settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandlerSettings {
    pub(crate) slow_threshold_ns: u64,
    pub(crate) interval_ns: u64,
    pub(crate) max_processes: usize,
}

pub(crate) struct Handler {
    sink: EventSink,
    settings: HandlerSettings,
    clock: BootClock,
    devices: DeviceNames,
    cgroups: CgroupResolver,
    aggregator: Aggregator,
    buffer: EventBuffer,
    counters: Arc<Counters>,
    stopping: Arc<AtomicBool>,
}

impl Handler {
    pub(crate) fn new(
        sink: EventSink,
        settings: HandlerSettings,
        counters: Arc<Counters>,
        stopping: Arc<AtomicBool>,
    ) -> Self {
        Handler {
            sink,
            settings,
            clock: BootClock::new(),
            devices: DeviceNames::default(),
            cgroups: CgroupResolver::for_this_host(),
            aggregator: Aggregator::new(
                settings.interval_ns,
                settings.slow_threshold_ns,
                settings.max_processes,
            ),
            buffer: EventBuffer::new(),
            counters,
            stopping,
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
        let io = match decode(bytes) {
            Ok(io) => io,
            Err(e) => {
                if self.counters.decode_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!("storage-io: {e}");
                }
                return;
            }
        };
        self.aggregator.add(&io);
        if io.latency_ns >= self.settings.slow_threshold_ns {
            let container_id = self.container_of(io.cgroup_id);
            let timestamp_ns = self.clock.to_unix_ns(io.ts_boot_ns);
            let device_name = self.devices.name(io.dev).to_owned();
            let ctx = Context {
                device_name: &device_name,
                container_id: &container_id,
                timestamp_ns,
            };
            self.buffer
                .push(slow_event(&io, self.settings.slow_threshold_ns, &ctx));
        }
    }

    fn flush(&mut self) {
        self.emit();
    }

    fn tick(&mut self) {
        let now = boot_now_ns();
        self.aggregator.open(now);
        if !self.aggregator.due(now) && !self.stopping.load(Ordering::SeqCst) {
            return;
        }
        let timestamp_ns = self.clock.to_unix_ns(now);
        for summary in self.aggregator.cut(now) {
            let device_name = self.devices.name(summary.dev).to_owned();
            let container_id = match summary.scope {
                crate::aggregate::Scope::Process(_) => self.container_of(summary.acc.cgroup_id),
                crate::aggregate::Scope::Device => String::new(),
            };
            let ctx = Context {
                device_name: &device_name,
                container_id: &container_id,
                timestamp_ns,
            };
            self.buffer.push(summary_event(&summary, &ctx));
        }
        self.emit();
    }
}
