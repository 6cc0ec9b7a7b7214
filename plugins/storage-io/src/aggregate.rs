//! Periodic latency summaries: per device and operation, and per process, device and
//! operation, over a window of `interval`. Pure: time is passed in (CLOCK_BOOTTIME ns).

use std::collections::HashMap;

use hdrhistogram::Histogram;

use crate::record::{Io, Operation};

/// Latency accumulated for one key over a window.
#[derive(Debug, Clone)]
pub struct Accumulator {
    /// I/Os completed.
    pub count: u64,
    /// Bytes completed.
    pub bytes: u64,
    /// I/Os that failed.
    pub errors: u64,
    /// I/Os at or above the slow threshold.
    pub slow: u64,
    /// Sum of queue times (block).
    pub queue_sum_ns: u64,
    /// Exact smallest latency (ns).
    pub min_ns: u64,
    /// Exact largest latency (ns).
    pub max_ns: u64,
    /// Latency distribution (ns, 2 significant digits).
    pub latency: Histogram<u64>,
    /// Last comm seen (process scope).
    pub comm: String,
    /// Last cgroup id seen (process scope).
    pub cgroup_id: u64,
}

impl Accumulator {
    fn new() -> Self {
        Accumulator {
            count: 0,
            bytes: 0,
            errors: 0,
            slow: 0,
            queue_sum_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            latency: Histogram::new(2).expect("2 significant digits is valid"),
            comm: String::new(),
            cgroup_id: 0,
        }
    }

    fn add(&mut self, io: &Io, slow_threshold_ns: u64) {
        self.count += 1;
        self.bytes += u64::from(io.bytes);
        self.errors += u64::from(io.error != 0);
        self.slow += u64::from(io.latency_ns >= slow_threshold_ns);
        self.queue_sum_ns += io.queue_ns;
        self.min_ns = self.min_ns.min(io.latency_ns);
        self.max_ns = self.max_ns.max(io.latency_ns);
        // Auto-resizing histogram: `record` grows it; it only fails beyond u64 range.
        let _ = self.latency.record(io.latency_ns.max(1));
    }

    /// Mean latency in ns.
    pub fn mean_ns(&self) -> u64 {
        self.latency.mean() as u64
    }

    /// Log2 buckets of the latency in microseconds, non-empty ones only:
    /// `"<=1us:3,<=2us:0,..."` is shortened to `"1us:3,4us:10"` (upper bound: count).
    pub fn buckets(&self) -> String {
        let mut counts = [0u64; 40];
        for v in self.latency.iter_recorded() {
            let us = v.value_iterated_to() / 1000;
            let slot = (64 - us.leading_zeros()) as usize;
            counts[slot.min(39)] += v.count_since_last_iteration();
        }
        counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(slot, c)| format!("{}us:{c}", 1u64 << slot))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Who a summary is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// All I/O of a device.
    Device,
    /// I/O of one process (tgid).
    Process(u32),
}

/// One summary of a window.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Device or process.
    pub scope: Scope,
    /// Device (kernel dev_t).
    pub dev: u32,
    /// Operation.
    pub op: Operation,
    /// Window length (ns).
    pub window_ns: u64,
    /// The numbers.
    pub acc: Accumulator,
}

type Key = (Scope, u32, Operation);

/// Accumulates I/Os and cuts windows.
#[derive(Debug)]
pub struct Aggregator {
    interval_ns: u64,
    slow_threshold_ns: u64,
    max_processes: usize,
    window_start_ns: Option<u64>,
    groups: HashMap<Key, Accumulator>,
}

impl Aggregator {
    /// Windows of `interval_ns`; per-process summaries for at most `max_processes` processes
    /// (the busiest) per window.
    pub fn new(interval_ns: u64, slow_threshold_ns: u64, max_processes: usize) -> Self {
        Aggregator {
            interval_ns,
            slow_threshold_ns,
            max_processes,
            window_start_ns: None,
            groups: HashMap::new(),
        }
    }

    /// Starts the first window at `now_ns` if none is open.
    pub fn open(&mut self, now_ns: u64) {
        self.window_start_ns.get_or_insert(now_ns);
    }

    /// Adds one I/O.
    pub fn add(&mut self, io: &Io) {
        self.open(io.ts_boot_ns);
        let threshold = self.slow_threshold_ns;
        self.groups
            .entry((Scope::Device, io.dev, io.op))
            .or_insert_with(Accumulator::new)
            .add(io, threshold);
        if io.pid != 0 {
            let acc = self
                .groups
                .entry((Scope::Process(io.pid), io.dev, io.op))
                .or_insert_with(Accumulator::new);
            acc.add(io, threshold);
            if acc.comm != io.comm {
                acc.comm.clone_from(&io.comm);
            }
            acc.cgroup_id = io.cgroup_id;
        }
    }

    /// Whether the window is over at `now_ns`.
    pub fn due(&self, now_ns: u64) -> bool {
        self.window_start_ns
            .is_some_and(|start| now_ns.saturating_sub(start) >= self.interval_ns)
    }

    /// Closes the window at `now_ns` (whether due or not) and returns its summaries, device
    /// scope first, then the busiest processes; opens the next window.
    pub fn cut(&mut self, now_ns: u64) -> Vec<Summary> {
        let window_ns = self
            .window_start_ns
            .map_or(0, |start| now_ns.saturating_sub(start));
        self.window_start_ns = Some(now_ns);
        let mut groups: Vec<(Key, Accumulator)> = self.groups.drain().collect();
        // Busiest processes: total I/O count per pid across devices and operations.
        let mut per_pid: HashMap<u32, u64> = HashMap::new();
        for ((scope, _, _), acc) in &groups {
            if let Scope::Process(pid) = scope {
                *per_pid.entry(*pid).or_default() += acc.count;
            }
        }
        let mut ranked: Vec<(u32, u64)> = per_pid.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let kept: std::collections::HashSet<u32> = ranked
            .iter()
            .take(self.max_processes)
            .map(|(pid, _)| *pid)
            .collect();
        groups.retain(|((scope, _, _), _)| match scope {
            Scope::Device => true,
            Scope::Process(pid) => kept.contains(pid),
        });
        groups.sort_by_key(|g| g.0);
        groups
            .into_iter()
            .map(|((scope, dev, op), acc)| Summary {
                scope,
                dev,
                op,
                window_ns,
                acc,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(pid: u32, op: Operation, latency_ns: u64, ts: u64) -> Io {
        Io {
            ts_boot_ns: ts,
            op,
            latency_ns,
            queue_ns: 10,
            dev: 7,
            bytes: 4096,
            sector: 0,
            pid,
            tid: pid,
            comm: format!("p{pid}"),
            cgroup_id: 1,
            error: 0,
            fd: None,
            file_name: String::new(),
            flags: 0,
        }
    }

    #[test]
    fn windows_and_scopes() {
        let mut a = Aggregator::new(1_000, 500, 10);
        assert!(!a.due(0));
        for i in 0..10 {
            a.add(&io(5, Operation::Write, 100 + i * 100, 100));
        }
        a.add(&io(0, Operation::Flush, 2_000_000, 150));
        assert!(!a.due(1_099));
        assert!(a.due(1_100));
        let s = a.cut(1_100);
        let keys: Vec<(Scope, Operation)> = s.iter().map(|s| (s.scope, s.op)).collect();
        assert_eq!(
            keys,
            vec![
                (Scope::Device, Operation::Write),
                (Scope::Device, Operation::Flush),
                (Scope::Process(5), Operation::Write)
            ]
        );
        let w = &s[0].acc;
        assert_eq!((w.count, w.bytes, w.slow, w.errors), (10, 40960, 6, 0));
        assert_eq!((w.min_ns, w.max_ns), (100, 1000));
        assert_eq!(s[0].window_ns, 1_000);
        assert_eq!(s[2].acc.comm, "p5");
        assert!(a.cut(1_200).is_empty());
    }

    #[test]
    fn keeps_only_the_busiest_processes() {
        let mut a = Aggregator::new(1, 1, 2);
        for (pid, n) in [(1, 1), (2, 5), (3, 3)] {
            for _ in 0..n {
                a.add(&io(pid, Operation::Read, 10, 0));
            }
        }
        let pids: Vec<Scope> = a.cut(5).iter().map(|s| s.scope).collect();
        assert_eq!(
            pids,
            vec![Scope::Device, Scope::Process(2), Scope::Process(3)]
        );
    }

    #[test]
    fn buckets_are_log2_microseconds() {
        let mut acc = Accumulator::new();
        for l in [500, 1_500, 3_000, 3_500, 1_000_000] {
            acc.add(&io(1, Operation::Read, l, 0), u64::MAX);
        }
        assert_eq!(acc.buckets(), "1us:1,2us:1,4us:2,1024us:1");
    }
}
