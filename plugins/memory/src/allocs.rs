//! Outstanding allocations: from snapshots of the kernel's `allocs` map, the allocations
//! older than `min_age` not reported yet. Each allocation is reported once; its memory of
//! having been reported is dropped once it is freed (gone from the map). Pure.

use std::collections::HashSet;

use crate::record::{Alloc, AllocKey};

/// Reports each old allocation once.
#[derive(Debug)]
pub struct OutstandingTracker {
    min_age_ns: u64,
    /// (pid, address, allocation time): the time tells a reused address apart.
    reported: HashSet<(u32, u64, u64)>,
}

impl OutstandingTracker {
    /// Allocations become reportable when `min_age_ns` old.
    pub fn new(min_age_ns: u64) -> Self {
        OutstandingTracker {
            min_age_ns,
            reported: HashSet::new(),
        }
    }

    /// The allocations of `snapshot` (the whole map) to report at `now_ns`, oldest first.
    pub fn scan(&mut self, snapshot: &[(AllocKey, Alloc)], now_ns: u64) -> Vec<(AllocKey, Alloc)> {
        let present: HashSet<(u32, u64, u64)> = snapshot
            .iter()
            .map(|(k, a)| (k.pid, k.addr, a.ts_boot_ns))
            .collect();
        self.reported.retain(|r| present.contains(r));
        let mut due: Vec<(AllocKey, Alloc)> = snapshot
            .iter()
            .filter(|(k, a)| {
                now_ns.saturating_sub(a.ts_boot_ns) >= self.min_age_ns
                    && !self.reported.contains(&(k.pid, k.addr, a.ts_boot_ns))
            })
            .copied()
            .collect();
        due.sort_by_key(|(k, a)| (a.ts_boot_ns, k.pid, k.addr));
        for (k, a) in &due {
            self.reported.insert((k.pid, k.addr, a.ts_boot_ns));
        }
        due
    }

    /// Allocations reported and still outstanding.
    pub fn reported_outstanding(&self) -> usize {
        self.reported.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: u32, addr: u64, ts: u64) -> (AllocKey, Alloc) {
        (
            AllocKey { pid, _pad: 0, addr },
            Alloc {
                size: 1 << 20,
                ts_boot_ns: ts,
                caller: 0x401000,
                tid: pid,
                call: 1,
            },
        )
    }

    #[test]
    fn reports_old_ones_once() {
        let mut t = OutstandingTracker::new(100);
        let snap = vec![
            entry(1, 0x1000, 0),
            entry(1, 0x2000, 50),
            entry(2, 0x1000, 10),
        ];
        let due = t.scan(&snap, 120);
        let addrs: Vec<(u32, u64)> = due.iter().map(|(k, _)| (k.pid, k.addr)).collect();
        assert_eq!(addrs, vec![(1, 0x1000), (2, 0x1000)]);
        assert!(t.scan(&snap, 130).is_empty(), "already reported");
        let due = t.scan(&snap, 150);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0.addr, 0x2000);
        assert_eq!(t.reported_outstanding(), 3);
    }

    #[test]
    fn a_reused_address_is_a_new_allocation() {
        let mut t = OutstandingTracker::new(10);
        assert_eq!(t.scan(&[entry(1, 0x1000, 0)], 20).len(), 1);
        // Freed (gone), then allocated again at the same address.
        assert!(t.scan(&[], 30).is_empty());
        assert_eq!(t.reported_outstanding(), 0);
        assert_eq!(t.scan(&[entry(1, 0x1000, 25)], 40).len(), 1);
    }
}
