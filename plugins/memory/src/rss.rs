//! RSS growth: per process, the sampled RSS readings of the last `window`; when the newest
//! reading exceeds the smallest one in the window by `threshold` bytes, that is a growth
//! (reported once; the window restarts from the newest reading). Pure: time is passed in.

use std::collections::{HashMap, VecDeque};

/// A reported growth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growth {
    /// The process.
    pub pid: u32,
    /// RSS at the start (the window's smallest reading), bytes.
    pub from_bytes: u64,
    /// RSS now, bytes.
    pub to_bytes: u64,
    /// Time between the two readings (ns).
    pub over_ns: u64,
}

/// Tracks RSS per process.
#[derive(Debug)]
pub struct RssTracker {
    threshold: u64,
    window_ns: u64,
    samples: HashMap<u32, VecDeque<(u64, u64)>>,
}

impl RssTracker {
    /// Growths of at least `threshold` bytes within `window_ns`.
    pub fn new(threshold: u64, window_ns: u64) -> Self {
        RssTracker {
            threshold,
            window_ns,
            samples: HashMap::new(),
        }
    }

    /// Adds a reading of `rss` bytes at `ts_ns`; returns a growth when one completes.
    pub fn add(&mut self, pid: u32, ts_ns: u64, rss: u64) -> Option<Growth> {
        let window = self.window_ns;
        let samples = self.samples.entry(pid).or_default();
        while samples
            .front()
            .is_some_and(|(t, _)| ts_ns.saturating_sub(*t) > window)
        {
            samples.pop_front();
        }
        // Only the running minimums matter: drop earlier readings that are not smaller.
        while samples.back().is_some_and(|(_, r)| *r >= rss) {
            samples.pop_back();
        }
        let growth = samples.front().and_then(|&(t, min)| {
            (rss.saturating_sub(min) >= self.threshold).then_some(Growth {
                pid,
                from_bytes: min,
                to_bytes: rss,
                over_ns: ts_ns.saturating_sub(t),
            })
        });
        if growth.is_some() {
            samples.clear();
        }
        samples.push_back((ts_ns, rss));
        growth
    }

    /// Forgets processes without a reading since `before_ns` (exited or idle).
    pub fn expire(&mut self, before_ns: u64) {
        self.samples
            .retain(|_, s| s.back().is_some_and(|(t, _)| *t >= before_ns));
    }

    /// Processes tracked.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no process is tracked.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn growth_within_the_window_is_reported_once() {
        let mut t = RssTracker::new(100 * MB, 10_000);
        assert_eq!(t.add(1, 0, 50 * MB), None);
        assert_eq!(t.add(1, 1_000, 40 * MB), None);
        assert_eq!(t.add(1, 2_000, 120 * MB), None);
        let g = t.add(1, 3_000, 141 * MB).unwrap();
        assert_eq!(
            (g.from_bytes, g.to_bytes, g.over_ns),
            (40 * MB, 141 * MB, 2_000)
        );
        // The window restarted from 141 MB.
        assert_eq!(t.add(1, 4_000, 200 * MB), None);
        assert!(t.add(1, 5_000, 241 * MB).is_some());
    }

    #[test]
    fn slow_growth_outside_the_window_is_not() {
        let mut t = RssTracker::new(100 * MB, 1_000);
        assert_eq!(t.add(1, 0, 0), None);
        assert_eq!(t.add(1, 900, 60 * MB), None);
        assert_eq!(
            t.add(1, 1_800, 120 * MB),
            None,
            "0 MB dropped out of the window"
        );
        assert!(
            t.add(2, 1_800, 500 * MB).is_none(),
            "processes are separate"
        );
    }

    #[test]
    fn expires_idle_processes() {
        let mut t = RssTracker::new(MB, 1_000);
        t.add(1, 10, 1);
        t.add(2, 500, 1);
        t.expire(100);
        assert_eq!(t.len(), 1);
    }
}
