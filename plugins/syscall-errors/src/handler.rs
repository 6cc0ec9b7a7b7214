//! The reader-thread side: flips the kernel's generation every report interval and drains
//! the aggregates of retired generations (which no BPF program writes any more, so their
//! counts are final) into events. The ring is not used.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapio_ebpf_support::aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray};
use tapio_ebpf_support::aya::Ebpf;
use tapio_ebpf_support::clock::BootClock;
use tapio_ebpf_support::{EbpfError, RecordHandler};
use tapio_event_buffer::EventBuffer;
use tapio_plugin_api::EventSink;

use crate::events::aggregate_event;
use crate::record::{Aggregate, RawKey, RawValue};

/// Counters shared with the collector's `metrics()`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) stopping: AtomicBool,
    pub(crate) events_refused: AtomicU64,
    pub(crate) aggregates: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) map_errors: AtomicU64,
    /// The kernel's `counts`: [0] = allow-listed failures seen, [class] = failures not
    /// aggregated because of the rate limit.
    pub(crate) kernel_counts: [AtomicU64; 4],
}

struct Maps {
    agg: BpfHashMap<MapData, RawKey, RawValue>,
    ctl: Array<MapData, u32>,
    counts: PerCpuArray<MapData, u64>,
}

pub(crate) struct Handler {
    sink: EventSink,
    clock: BootClock,
    buffer: EventBuffer,
    counters: Arc<Counters>,
    maps: Option<Maps>,
    report_interval: Duration,
    gen: u32,
    retired: bool,
    last_flip: Instant,
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, EbpfError>
where
    T: TryFrom<tapio_ebpf_support::aya::maps::Map, Error = tapio_ebpf_support::aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(EbpfError::Map {
        object: "syscall-errors",
        map: name,
        source: None,
    })?;
    T::try_from(map).map_err(|e| EbpfError::Map {
        object: "syscall-errors",
        map: name,
        source: Some(e),
    })
}

impl Handler {
    pub(crate) fn new(sink: EventSink, counters: Arc<Counters>, report_interval: Duration) -> Self {
        Handler {
            sink,
            clock: BootClock::new(),
            buffer: EventBuffer::new(),
            counters,
            maps: None,
            report_interval,
            gen: 0,
            retired: false,
            last_flip: Instant::now(),
        }
    }

    /// Emits and deletes every aggregate whose generation `drain_gen` accepts.
    fn drain(&mut self, drain_gen: impl Fn(u32) -> bool) {
        let Some(maps) = self.maps.as_mut() else {
            return;
        };
        let keys: Vec<RawKey> = maps
            .agg
            .keys()
            .filter_map(Result::ok)
            .filter(|k| drain_gen(k.gen))
            .collect();
        let clock = self.clock;
        for key in keys {
            match maps.agg.get(&key, 0) {
                Ok(value) => {
                    let a = Aggregate::from_raw(&key, &value);
                    self.counters.aggregates.fetch_add(1, Ordering::Relaxed);
                    self.counters.failures.fetch_add(a.count, Ordering::Relaxed);
                    self.buffer
                        .push(aggregate_event(&a, |t| clock.to_unix_ns(t)));
                }
                Err(e) => {
                    if self.counters.map_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        log::warn!("syscall-errors: cannot read an aggregate: {e}");
                    }
                }
            }
            if maps.agg.remove(&key).is_err() {
                self.counters.map_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        for index in 0..4u32 {
            if let Ok(values) = maps.counts.get(&index, 0) {
                let total: u64 = values.iter().copied().sum();
                self.counters.kernel_counts[index as usize].store(total, Ordering::Relaxed);
            }
        }
        let outcome = self.buffer.emit(&self.sink);
        if outcome.dropped > 0 {
            self.counters
                .events_refused
                .fetch_add(u64::from(outcome.dropped), Ordering::Relaxed);
        }
    }
}

impl RecordHandler for Handler {
    fn attached(&mut self, ebpf: &mut Ebpf) -> Result<(), EbpfError> {
        let mut maps = Maps {
            agg: take(ebpf, "agg")?,
            ctl: take(ebpf, "ctl")?,
            counts: take(ebpf, "counts")?,
        };
        self.gen = 0;
        maps.ctl.set(0, self.gen, 0).map_err(|e| EbpfError::Map {
            object: "syscall-errors",
            map: "ctl",
            source: Some(e),
        })?;
        self.maps = Some(maps);
        self.retired = false;
        self.last_flip = Instant::now();
        Ok(())
    }

    fn record(&mut self, _bytes: &[u8]) {
        // The program writes no records; aggregates are read from the `agg` map.
    }

    fn tick(&mut self) {
        if self.retired {
            // Retired at the previous tick (at least one poll interval ago): no program
            // still runs with that generation.
            let current = self.gen;
            self.drain(|gen| gen != current);
            self.retired = false;
        }
        if self.last_flip.elapsed() >= self.report_interval {
            if let Some(maps) = self.maps.as_mut() {
                let next = self.gen.wrapping_add(1);
                if maps.ctl.set(0, next, 0).is_ok() {
                    self.gen = next;
                    self.retired = true;
                } else {
                    self.counters.map_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.last_flip = Instant::now();
        }
    }

    fn flush(&mut self) {
        // Called by the runtime after the programs are detached (the ring never holds
        // records, so there is no other flush): every aggregate is final.
        if self.counters.stopping.load(Ordering::SeqCst) {
            self.drain(|_| true);
        }
    }
}
