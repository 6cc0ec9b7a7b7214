//! Memory-cgroup reclaim pressure: reclaims per cgroup over a window (stall time, pages,
//! memcg vs direct), with the process that stalled longest. Pure: time is passed in.

use std::collections::HashMap;

use tapio_cgroup_info::CgroupKey;

use crate::record::TaskRef;

/// Reclaims of one cgroup in a window.
#[derive(Debug, Clone)]
pub struct Pressure {
    /// The cgroup.
    pub cgroup: CgroupKey,
    /// A v2 cgroup id of its tasks.
    pub cgroup_id: u64,
    /// Memcg reclaims (the cgroup hit its limit).
    pub memcg_count: u64,
    /// Direct reclaims (the machine ran short).
    pub direct_count: u64,
    /// Sum of stalls (ns).
    pub stall_total_ns: u64,
    /// Longest stall (ns).
    pub stall_max_ns: u64,
    /// Pages reclaimed.
    pub pages: u64,
    /// The task with the longest total stall, and that stall.
    pub top: Option<(TaskRef, u64)>,
    per_task: HashMap<u32, (TaskRef, u64)>,
}

/// Accumulates reclaims and cuts windows.
#[derive(Debug)]
pub struct ReclaimWindows {
    interval_ns: u64,
    window_start_ns: Option<u64>,
    groups: HashMap<CgroupKey, Pressure>,
}

impl ReclaimWindows {
    /// Windows of `interval_ns`.
    pub fn new(interval_ns: u64) -> Self {
        ReclaimWindows {
            interval_ns,
            window_start_ns: None,
            groups: HashMap::new(),
        }
    }

    /// Starts the first window at `now_ns` if none is open.
    pub fn open(&mut self, now_ns: u64) {
        self.window_start_ns.get_or_insert(now_ns);
    }

    /// Adds one reclaim.
    pub fn add(&mut self, ts_ns: u64, memcg: bool, stall_ns: u64, pages: u64, task: &TaskRef) {
        self.open(ts_ns);
        let p = self.groups.entry(task.cgroup).or_insert_with(|| Pressure {
            cgroup: task.cgroup,
            cgroup_id: task.cgroup_id,
            memcg_count: 0,
            direct_count: 0,
            stall_total_ns: 0,
            stall_max_ns: 0,
            pages: 0,
            top: None,
            per_task: HashMap::new(),
        });
        if memcg {
            p.memcg_count += 1;
        } else {
            p.direct_count += 1;
        }
        p.stall_total_ns += stall_ns;
        p.stall_max_ns = p.stall_max_ns.max(stall_ns);
        p.pages += pages;
        let entry = p
            .per_task
            .entry(task.pid)
            .or_insert_with(|| (task.clone(), 0));
        entry.1 += stall_ns;
    }

    /// Whether the window is over at `now_ns`.
    pub fn due(&self, now_ns: u64) -> bool {
        self.window_start_ns
            .is_some_and(|start| now_ns.saturating_sub(start) >= self.interval_ns)
    }

    /// Closes the window; returns (its length, the cgroups, most stall first).
    pub fn cut(&mut self, now_ns: u64) -> (u64, Vec<Pressure>) {
        let window_ns = self
            .window_start_ns
            .map_or(0, |start| now_ns.saturating_sub(start));
        self.window_start_ns = Some(now_ns);
        let mut out: Vec<Pressure> = self
            .groups
            .drain()
            .map(|(_, mut p)| {
                p.top = p
                    .per_task
                    .drain()
                    .map(|(_, v)| v)
                    .max_by(|a, b| a.1.cmp(&b.1).then(b.0.pid.cmp(&a.0.pid)));
                p
            })
            .collect();
        out.sort_by(|a, b| {
            b.stall_total_ns
                .cmp(&a.stall_total_ns)
                .then(a.cgroup.cmp(&b.cgroup))
        });
        (window_ns, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(pid: u32, cg: u64) -> TaskRef {
        TaskRef {
            pid,
            tid: pid,
            comm: format!("p{pid}"),
            cgroup_id: 1,
            cgroup: CgroupKey::new(4, cg),
        }
    }

    #[test]
    fn per_cgroup_with_top_task() {
        let mut w = ReclaimWindows::new(100);
        w.add(10, true, 1_000, 32, &task(1, 7));
        w.add(20, true, 5_000, 10, &task(2, 7));
        w.add(30, false, 2_000, 5, &task(1, 7));
        w.add(40, true, 9, 1, &task(3, 8));
        assert!(!w.due(109));
        assert!(w.due(110));
        let (len, groups) = w.cut(110);
        assert_eq!(len, 100);
        assert_eq!(groups.len(), 2);
        let g = &groups[0];
        assert_eq!(g.cgroup, CgroupKey::new(4, 7));
        assert_eq!(
            (
                g.memcg_count,
                g.direct_count,
                g.stall_total_ns,
                g.stall_max_ns,
                g.pages
            ),
            (2, 1, 8_000, 5_000, 47)
        );
        let (top, stall) = g.top.clone().unwrap();
        assert_eq!((top.pid, stall), (2, 5_000));
        assert!(w.cut(300).1.is_empty());
    }
}
