//! Kernel-side counters: `tapio_stats` (per-CPU: records produced, dropped because the ring
//! was full, two program-specific slots) and the reader's delivered count, as plugin metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use aya::maps::{MapData, PerCpuArray};
use parking_lot::Mutex;
use tapio_plugin_api::Metric;

/// Slot indices of `tapio_stats` (see `tapio.h`).
const PRODUCED: u32 = 0;
const DROPPED: u32 = 1;
const EXTRA: [u32; 2] = [2, 3];

/// A point-in-time sum of the per-CPU counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Records the programs tried to reserve.
    pub produced: u64,
    /// Reservations that failed because the ring was full.
    pub dropped: u64,
    /// Records the reader took out of the ring.
    pub delivered: u64,
    /// The program-specific slots.
    pub extra: [u64; 2],
}

/// The counters of one plugin, readable from any thread. Survives reloads of the object:
/// counts of earlier loads are kept as a base so the metrics stay monotonic.
#[derive(Default)]
pub struct KernelStats {
    map: Mutex<Option<PerCpuArray<MapData, u64>>>,
    base: Mutex<StatsSnapshot>,
    delivered: AtomicU64,
    names: Mutex<[Option<(&'static str, &'static str)>; 2]>,
}

impl KernelStats {
    /// Attaches the `tapio_stats` map of a freshly loaded object (folding the counts of a
    /// previous one into the base).
    pub(crate) fn attach(
        &self,
        map: PerCpuArray<MapData, u64>,
        names: [Option<(&'static str, &'static str)>; 2],
    ) {
        let mut current = self.map.lock();
        if let Some(old) = current.take() {
            let old = read_map(&old);
            let mut base = self.base.lock();
            base.produced += old.produced;
            base.dropped += old.dropped;
            base.extra[0] += old.extra[0];
            base.extra[1] += old.extra[1];
        }
        *current = Some(map);
        *self.names.lock() = names;
    }

    /// Counts records delivered by the reader.
    pub(crate) fn add_delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }

    /// Current totals.
    pub fn snapshot(&self) -> StatsSnapshot {
        let map = self.map.lock();
        let live = map.as_ref().map(read_map).unwrap_or_default();
        let base = *self.base.lock();
        StatsSnapshot {
            produced: base.produced + live.produced,
            dropped: base.dropped + live.dropped,
            delivered: self.delivered.load(Ordering::Relaxed),
            extra: [base.extra[0] + live.extra[0], base.extra[1] + live.extra[1]],
        }
    }

    /// The counters as plugin metrics.
    pub fn metrics(&self) -> Vec<Metric> {
        let s = self.snapshot();
        let mut metrics = vec![
            Metric::counter(
                "kernel_events_total",
                "Records the BPF programs produced (ring reservations attempted).",
                s.produced,
            ),
            Metric::counter(
                "kernel_dropped_events_total",
                "Records dropped in the kernel because the ring buffer was full.",
                s.dropped,
            ),
            Metric::counter(
                "ring_delivered_events_total",
                "Records the reader took out of the ring buffer.",
                s.delivered,
            ),
        ];
        for (slot, name) in self.names.lock().iter().enumerate() {
            if let Some((name, help)) = name {
                metrics.push(Metric::counter(name, help, s.extra[slot]));
            }
        }
        metrics
    }
}

/// Sums each slot over the CPUs (a missing slot reads 0).
fn read_map(map: &PerCpuArray<MapData, u64>) -> StatsSnapshot {
    let sum = |index: u32| -> u64 {
        map.get(&index, 0)
            .map(|values| values.iter().copied().sum())
            .unwrap_or(0)
    };
    StatsSnapshot {
        produced: sum(PRODUCED),
        dropped: sum(DROPPED),
        delivered: 0,
        extra: [sum(EXTRA[0]), sum(EXTRA[1])],
    }
}
