//! The reader-thread side: reclaim windows, RSS growth, and periodic scans of the kernel's
//! map of outstanding allocations.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tapio_cgroup_info::{CgroupKey, CgroupResolver};
use tapio_ebpf_support::aya::maps::{HashMap as BpfHashMap, MapData};
use tapio_ebpf_support::clock::{boot_now_ns, BootClock};
use tapio_ebpf_support::{EbpfError, RecordHandler};
use tapio_event_buffer::EventBuffer;
use tapio_plugin_api::EventSink;

use crate::allocs::OutstandingTracker;
use crate::events::{
    growth_event, outstanding_event, pressure_event, CallerLocation, CgroupInfo, RssParts,
};
use crate::reclaim::ReclaimWindows;
use crate::record::{decode, Alloc, AllocKey, Sample};
use crate::rss::RssTracker;
use crate::{maps, uprobes};

/// Counters and status shared with the collector.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) decode_errors: AtomicU64,
    pub(crate) events_refused: AtomicU64,
    pub(crate) outstanding: AtomicU64,
    /// Processes whose allocations could not be tracked, with why.
    pub(crate) uprobe_problems: Mutex<Vec<String>>,
    /// Processes whose allocations are tracked.
    pub(crate) tracked_pids: Mutex<Vec<u32>>,
}

/// What the handler needs from the settings.
#[derive(Debug, Clone)]
pub(crate) struct HandlerSettings {
    pub(crate) reclaim_interval_ns: u64,
    pub(crate) rss_threshold: u64,
    pub(crate) rss_window_ns: u64,
    pub(crate) pids: Vec<u32>,
    pub(crate) min_alloc_age_ns: u64,
    pub(crate) scan_interval_ns: u64,
}

pub(crate) struct Handler {
    sink: EventSink,
    settings: HandlerSettings,
    clock: BootClock,
    cgroups: CgroupResolver,
    reclaim: ReclaimWindows,
    rss: RssTracker,
    outstanding: OutstandingTracker,
    allocs: Option<BpfHashMap<MapData, AllocKey, Alloc>>,
    last_scan_ns: u64,
    last_expire_ns: u64,
    buffer: EventBuffer,
    shared: Arc<Shared>,
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

/// The comm of a live process.
fn comm_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_default()
}

impl Handler {
    pub(crate) fn new(
        sink: EventSink,
        settings: HandlerSettings,
        shared: Arc<Shared>,
        stopping: Arc<AtomicBool>,
    ) -> Self {
        Handler {
            sink,
            clock: BootClock::new(),
            cgroups: CgroupResolver::for_this_host(),
            reclaim: ReclaimWindows::new(settings.reclaim_interval_ns),
            rss: RssTracker::new(settings.rss_threshold, settings.rss_window_ns),
            outstanding: OutstandingTracker::new(settings.min_alloc_age_ns),
            allocs: None,
            last_scan_ns: 0,
            last_expire_ns: 0,
            buffer: EventBuffer::new(),
            settings,
            shared,
            stopping,
        }
    }

    fn emit(&mut self) {
        let outcome = self.buffer.emit(&self.sink);
        if outcome.dropped > 0 {
            self.shared
                .events_refused
                .fetch_add(u64::from(outcome.dropped), Ordering::Relaxed);
        }
    }

    /// Reads the outstanding allocations, forgets those of exited processes, reports the
    /// old ones.
    fn scan_allocations(&mut self, now: u64) {
        let Some(map) = self.allocs.as_mut() else {
            return;
        };
        let snapshot: Vec<(AllocKey, Alloc)> = map.iter().filter_map(Result::ok).collect();
        let mut alive: HashMap<u32, bool> = HashMap::new();
        let mut live = Vec::with_capacity(snapshot.len());
        for (key, alloc) in snapshot {
            let is_alive = *alive
                .entry(key.pid)
                .or_insert_with(|| std::path::Path::new(&format!("/proc/{}", key.pid)).exists());
            if is_alive {
                live.push((key, alloc));
            } else {
                let _ = map.remove(&key);
            }
        }
        self.shared
            .outstanding
            .store(live.len() as u64, Ordering::Relaxed);
        let due = self.outstanding.scan(&live, now);
        if due.is_empty() {
            return;
        }
        let ts = self.clock.to_unix_ns(now);
        let mut maps_cache: HashMap<u32, Vec<maps::Mapping>> = HashMap::new();
        let mut comms: HashMap<u32, String> = HashMap::new();
        for (key, alloc) in due {
            let mapped = maps_cache.entry(key.pid).or_insert_with(|| {
                std::fs::read_to_string(format!("/proc/{}/maps", key.pid))
                    .map(|t| maps::parse(&t))
                    .unwrap_or_default()
            });
            let caller = maps::locate(mapped, alloc.caller)
                .map(|(module, offset)| CallerLocation {
                    module: module.to_owned(),
                    offset,
                })
                .unwrap_or_default();
            let comm = comms.entry(key.pid).or_insert_with(|| comm_of(key.pid));
            let age = now.saturating_sub(alloc.ts_boot_ns);
            self.buffer
                .push(outstanding_event(&key, &alloc, age, comm, &caller, ts));
        }
    }
}

impl RecordHandler for Handler {
    fn attached(&mut self, ebpf: &mut tapio_ebpf_support::aya::Ebpf) -> Result<(), EbpfError> {
        let map = ebpf.take_map("allocs").ok_or(EbpfError::Map {
            object: "memory",
            map: "allocs",
            source: None,
        })?;
        let map = BpfHashMap::try_from(map).map_err(|e| EbpfError::Map {
            object: "memory",
            map: "allocs",
            source: Some(e),
        })?;
        self.allocs = Some(map);
        let mut loaded = HashSet::new();
        let mut problems = Vec::new();
        let mut tracked = Vec::new();
        for &pid in &self.settings.pids {
            match uprobes::attach(ebpf, pid, &mut loaded) {
                Ok(()) => tracked.push(pid),
                Err(e) => {
                    let mut text = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        text.push_str(": ");
                        text.push_str(&s.to_string());
                        source = s.source();
                    }
                    log::warn!("memory: allocation tracking of pid {pid} unavailable: {text}");
                    problems.push(format!("pid {pid}: {text}"));
                }
            }
        }
        *self.shared.uprobe_problems.lock() = problems;
        *self.shared.tracked_pids.lock() = tracked;
        Ok(())
    }

    fn record(&mut self, bytes: &[u8]) {
        let sample = match decode(bytes) {
            Ok(s) => s,
            Err(e) => {
                if self.shared.decode_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!("memory: {e}");
                }
                return;
            }
        };
        match sample {
            Sample::Reclaim {
                ts_boot_ns,
                memcg,
                stall_ns,
                pages,
                task,
            } => self.reclaim.add(ts_boot_ns, memcg, stall_ns, pages, &task),
            Sample::Rss {
                ts_boot_ns,
                task,
                file,
                anon,
                shmem,
                swap,
            } => {
                let resident = file + anon + shmem;
                if let Some(growth) = self.rss.add(task.pid, ts_boot_ns, resident) {
                    let info = cgroup_info(&mut self.cgroups, task.cgroup);
                    let ts = self.clock.to_unix_ns(ts_boot_ns);
                    let parts = RssParts {
                        anon,
                        file,
                        shmem,
                        swap,
                    };
                    self.buffer
                        .push(growth_event(&growth, &task, parts, ts, &info));
                }
            }
        }
    }

    fn flush(&mut self) {
        self.emit();
    }

    fn tick(&mut self) {
        let now = boot_now_ns();
        let stopping = self.stopping.load(Ordering::SeqCst);
        self.reclaim.open(now);
        if self.reclaim.due(now) || stopping {
            let (window_ns, groups) = self.reclaim.cut(now);
            let ts = self.clock.to_unix_ns(now);
            for p in groups {
                let info = cgroup_info(&mut self.cgroups, p.cgroup);
                self.buffer.push(pressure_event(&p, window_ns, ts, &info));
            }
        }
        if now.saturating_sub(self.last_scan_ns) >= self.settings.scan_interval_ns {
            self.last_scan_ns = now;
            self.scan_allocations(now);
        }
        if now.saturating_sub(self.last_expire_ns) >= self.settings.rss_window_ns {
            self.last_expire_ns = now;
            self.rss
                .expire(now.saturating_sub(self.settings.rss_window_ns));
        }
        self.emit();
    }
}
