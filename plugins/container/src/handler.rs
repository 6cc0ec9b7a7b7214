//! The reader-thread side: applies records to the lifecycle tracker, keeps the kernel's
//! watch list in step, emits the events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tapio_cgroup_info::CgroupResolver;
use tapio_ebpf_support::aya::maps::{HashMap as BpfHashMap, MapData};
use tapio_ebpf_support::clock::{boot_now_ns, BootClock};
use tapio_ebpf_support::{EbpfError, RecordHandler};
use tapio_event_buffer::EventBuffer;
use tapio_plugin_api::EventSink;

use crate::events::lifecycle_event;
use crate::lifecycle::{Action, Tracker};
use crate::record::{decode, Sample, WatchKey};

/// Counters shared with the collector's `metrics()`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) decode_errors: AtomicU64,
    pub(crate) events_refused: AtomicU64,
    pub(crate) watch_errors: AtomicU64,
    pub(crate) containers: AtomicU64,
}

/// How long an OOM kill is remembered to explain the victim's exit.
const OOM_MEMORY_NS: u64 = 30_000_000_000;

pub(crate) struct Handler {
    sink: EventSink,
    clock: BootClock,
    tracker: Tracker,
    watched: Option<BpfHashMap<MapData, WatchKey, u8>>,
    buffer: EventBuffer,
    counters: Arc<Counters>,
}

impl Handler {
    pub(crate) fn new(sink: EventSink, counters: Arc<Counters>) -> Self {
        Handler {
            sink,
            clock: BootClock::new(),
            tracker: Tracker::new(OOM_MEMORY_NS),
            watched: None,
            buffer: EventBuffer::new(),
            counters,
        }
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Emit(l) => {
                    let ts = self.clock.to_unix_ns(l.ts_boot_ns);
                    self.buffer.push(lifecycle_event(&l, ts));
                }
                Action::Watch(key) => {
                    if let Some(map) = self.watched.as_mut() {
                        if map.insert(WatchKey::from(key), 1, 0).is_err() {
                            self.counters.watch_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Action::Unwatch(key) => {
                    if let Some(map) = self.watched.as_mut() {
                        let _ = map.remove(&WatchKey::from(key));
                    }
                }
            }
        }
        self.counters
            .containers
            .store(self.tracker.containers().count() as u64, Ordering::Relaxed);
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
    fn attached(&mut self, ebpf: &mut tapio_ebpf_support::aya::Ebpf) -> Result<(), EbpfError> {
        let map = ebpf.take_map("watched").ok_or(EbpfError::Map {
            object: "container",
            map: "watched",
            source: None,
        })?;
        let map = BpfHashMap::try_from(map).map_err(|e| EbpfError::Map {
            object: "container",
            map: "watched",
            source: Some(e),
        })?;
        self.watched = Some(map);
        // Containers running before the collector: tracked and watched, no create event.
        // The programs are attached already, so a container created during this scan is
        // also seen by its mkdir record.
        let mut resolver = CgroupResolver::for_this_host();
        resolver.scan_all();
        let mut actions = Vec::new();
        for (key, container) in resolver.containers() {
            if let Some(path) = resolver.cached_path(key) {
                log::debug!("container {} already running in {path}", container.id);
                actions.extend(self.tracker.existing(key, path));
            }
        }
        self.apply(actions);
        Ok(())
    }

    fn record(&mut self, bytes: &[u8]) {
        let timed = match decode(bytes) {
            Ok(t) => t,
            Err(e) => {
                if self.counters.decode_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!("container: {e}");
                }
                return;
            }
        };
        let ts = timed.ts_boot_ns;
        let actions = match timed.sample {
            Sample::Mkdir { key, path } => self.tracker.mkdir(ts, key, &path),
            Sample::Rmdir { key, path } => self.tracker.rmdir(ts, key, &path),
            Sample::Attach {
                key,
                path,
                pid,
                comm,
            } => self.tracker.attach(ts, key, &path, pid, &comm),
            Sample::Exit { proc, exit_code } => self.tracker.exit(ts, &proc, exit_code),
            Sample::Oom { proc } => self.tracker.oom(ts, &proc),
        };
        self.apply(actions);
    }

    fn flush(&mut self) {
        self.emit();
    }

    fn tick(&mut self) {
        self.tracker.expire(boot_now_ns());
        self.emit();
    }
}
