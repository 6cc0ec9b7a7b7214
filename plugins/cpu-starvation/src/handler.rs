//! The reader-thread side: decodes waits, reports starvation at once, and window events when
//! a window closes (and a last partial window at stop).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tapio_cgroup_info::{CgroupKey, CgroupResolver};
use tapio_ebpf_support::clock::{boot_now_ns, BootClock};
use tapio_ebpf_support::RecordHandler;
use tapio_event_buffer::EventBuffer;
use tapio_plugin_api::EventSink;

use crate::aggregate::Aggregator;
use crate::events::{starvation_event, window_events, CgroupInfo, EventSettings};
use crate::record::decode;

/// Counters shared with the collector's `metrics()`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) decode_errors: AtomicU64,
    pub(crate) events_refused: AtomicU64,
}

/// What the handler needs from the settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandlerSettings {
    pub(crate) interval_ns: u64,
    pub(crate) max_tasks: usize,
    pub(crate) starvation_ns: u64,
    pub(crate) events: EventSettings,
}

pub(crate) struct Handler {
    sink: EventSink,
    settings: HandlerSettings,
    clock: BootClock,
    cgroups: CgroupResolver,
    aggregator: Aggregator,
    starved_in_window: HashSet<u32>,
    buffer: EventBuffer,
    counters: Arc<Counters>,
    stopping: Arc<AtomicBool>,
}

fn cgroup_info(resolver: &mut CgroupResolver, key: CgroupKey) -> CgroupInfo {
    match resolver.path(key) {
        Some(path) => CgroupInfo {
            container_id: tapio_cgroup_info::parse_container(path)
                .map(|c| c.id)
                .unwrap_or_default(),
            path: path.to_owned(),
        },
        None => CgroupInfo::default(),
    }
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
            cgroups: CgroupResolver::for_this_host(),
            aggregator: Aggregator::new(settings.interval_ns, settings.max_tasks),
            starved_in_window: HashSet::new(),
            buffer: EventBuffer::new(),
            counters,
            stopping,
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
        let wait = match decode(bytes) {
            Ok(w) => w,
            Err(e) => {
                if self.counters.decode_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!("cpu-starvation: {e}");
                }
                return;
            }
        };
        self.aggregator.add(&wait);
        if wait.delay_ns >= self.settings.starvation_ns
            && self.starved_in_window.insert(wait.task.tid)
        {
            let info = cgroup_info(&mut self.cgroups, wait.task.cgroup);
            let nb_info = wait.neighbor.as_ref().map(|nb| {
                let path =
                    tapio_cgroup_info::proc::process_cgroup_path(nb.pid, "cpu").unwrap_or_default();
                CgroupInfo {
                    container_id: tapio_cgroup_info::parse_container(&path)
                        .map(|c| c.id)
                        .unwrap_or_default(),
                    path,
                }
            });
            let ts = self.clock.to_unix_ns(wait.ts_boot_ns);
            self.buffer
                .push(starvation_event(&wait, ts, &info, nb_info.as_ref()));
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
        let window = self.aggregator.cut(now);
        self.starved_in_window.clear();
        let ts = self.clock.to_unix_ns(now);
        let resolver = &mut self.cgroups;
        let mut process_cgroup = |pid: u32| {
            let path = tapio_cgroup_info::proc::process_cgroup_path(pid, "cpu").unwrap_or_default();
            CgroupInfo {
                container_id: tapio_cgroup_info::parse_container(&path)
                    .map(|c| c.id)
                    .unwrap_or_default(),
                path,
            }
        };
        let events = window_events(
            &window,
            ts,
            &self.settings.events,
            &mut |key| cgroup_info(resolver, key),
            &mut process_cgroup,
        );
        for e in events {
            self.buffer.push(e);
        }
        self.emit();
    }
}
