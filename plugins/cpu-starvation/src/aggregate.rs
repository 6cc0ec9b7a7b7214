//! Windows of run-queue waits: per task, per cgroup, and who ran while each task waited.
//! Pure: time is passed in (CLOCK_BOOTTIME ns).

use std::collections::HashMap;

use tapio_cgroup_info::CgroupKey;

use crate::level::Level;
use crate::record::{Neighbor, Task, Wait};

/// Waits of one task in a window.
#[derive(Debug, Clone)]
pub struct TaskWaits {
    /// The task (last seen identity).
    pub task: Task,
    /// Number of waits.
    pub count: u64,
    /// Sum of waits (ns).
    pub total_ns: u64,
    /// Sum of the parts of the waits other tasks ran on the CPU (ns).
    pub busy_ns: u64,
    /// Longest wait (ns).
    pub max_ns: u64,
    /// Waits per level ([`Level::index`]).
    pub per_level: [u64; 4],
    /// Neighbours by thread id: who ran while it waited.
    pub neighbors: HashMap<u32, NeighborTime>,
}

/// How much one neighbour ran while a task waited.
#[derive(Debug, Clone)]
pub struct NeighborTime {
    /// The neighbour.
    pub task: Neighbor,
    /// Overlap with the waits (ns).
    pub overlap_ns: u64,
    /// Waits in which it was the neighbour.
    pub count: u64,
}

impl TaskWaits {
    /// The level of the longest wait.
    pub fn level(&self) -> Level {
        Level::of(self.max_ns)
    }

    /// The neighbour that ran longest while this task waited.
    pub fn top_neighbor(&self) -> Option<&NeighborTime> {
        self.neighbors.values().max_by(|a, b| {
            a.overlap_ns
                .cmp(&b.overlap_ns)
                .then(b.task.tid.cmp(&a.task.tid))
        })
    }
}

/// Waits of one cgroup in a window.
#[derive(Debug, Clone, Default)]
pub struct CgroupWaits {
    /// A v2 cgroup id of one of its tasks (for the event's cgroup id).
    pub cgroup_id: u64,
    /// Number of waits.
    pub count: u64,
    /// Sum of waits (ns).
    pub total_ns: u64,
    /// Longest wait (ns).
    pub max_ns: u64,
    /// Distinct tasks that waited.
    pub tasks: u64,
}

/// The result of a window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Window length (ns).
    pub window_ns: u64,
    /// Per task, most total wait first (at most `max_tasks`).
    pub tasks: Vec<TaskWaits>,
    /// Per cgroup, most total wait first.
    pub cgroups: Vec<(CgroupKey, CgroupWaits)>,
    /// Tasks left out of `tasks` by the limit.
    pub tasks_omitted: usize,
}

/// Accumulates waits and cuts windows.
#[derive(Debug)]
pub struct Aggregator {
    interval_ns: u64,
    max_tasks: usize,
    window_start_ns: Option<u64>,
    tasks: HashMap<u32, TaskWaits>,
    cgroups: HashMap<CgroupKey, (CgroupWaits, std::collections::HashSet<u32>)>,
}

impl Aggregator {
    /// Windows of `interval_ns`, reporting at most `max_tasks` tasks each.
    pub fn new(interval_ns: u64, max_tasks: usize) -> Self {
        Aggregator {
            interval_ns,
            max_tasks,
            window_start_ns: None,
            tasks: HashMap::new(),
            cgroups: HashMap::new(),
        }
    }

    /// Starts the first window at `now_ns` if none is open.
    pub fn open(&mut self, now_ns: u64) {
        self.window_start_ns.get_or_insert(now_ns);
    }

    /// Adds one wait.
    pub fn add(&mut self, wait: &Wait) {
        self.open(wait.ts_boot_ns);
        let t = self
            .tasks
            .entry(wait.task.tid)
            .or_insert_with(|| TaskWaits {
                task: wait.task.clone(),
                count: 0,
                total_ns: 0,
                busy_ns: 0,
                max_ns: 0,
                per_level: [0; 4],
                neighbors: HashMap::new(),
            });
        if t.task != wait.task {
            t.task = wait.task.clone();
        }
        t.count += 1;
        t.total_ns += wait.delay_ns;
        t.busy_ns += wait.busy_ns;
        t.max_ns = t.max_ns.max(wait.delay_ns);
        t.per_level[Level::of(wait.delay_ns).index()] += 1;
        if let Some(nb) = &wait.neighbor {
            let n = t.neighbors.entry(nb.tid).or_insert_with(|| NeighborTime {
                task: nb.clone(),
                overlap_ns: 0,
                count: 0,
            });
            n.overlap_ns += wait.overlap_ns;
            n.count += 1;
        }
        let (c, members) = self.cgroups.entry(wait.task.cgroup).or_default();
        c.cgroup_id = wait.task.cgroup_id;
        c.count += 1;
        c.total_ns += wait.delay_ns;
        c.max_ns = c.max_ns.max(wait.delay_ns);
        members.insert(wait.task.tid);
    }

    /// Whether the window is over at `now_ns`.
    pub fn due(&self, now_ns: u64) -> bool {
        self.window_start_ns
            .is_some_and(|start| now_ns.saturating_sub(start) >= self.interval_ns)
    }

    /// Closes the window at `now_ns` and opens the next one.
    pub fn cut(&mut self, now_ns: u64) -> Window {
        let window_ns = self
            .window_start_ns
            .map_or(0, |start| now_ns.saturating_sub(start));
        self.window_start_ns = Some(now_ns);
        let mut tasks: Vec<TaskWaits> = self.tasks.drain().map(|(_, t)| t).collect();
        tasks.sort_by(|a, b| {
            b.total_ns
                .cmp(&a.total_ns)
                .then(a.task.tid.cmp(&b.task.tid))
        });
        let tasks_omitted = tasks.len().saturating_sub(self.max_tasks);
        tasks.truncate(self.max_tasks);
        let mut cgroups: Vec<(CgroupKey, CgroupWaits)> = self
            .cgroups
            .drain()
            .map(|(k, (mut c, members))| {
                c.tasks = members.len() as u64;
                (k, c)
            })
            .collect();
        cgroups.sort_by(|a, b| b.1.total_ns.cmp(&a.1.total_ns).then(a.0.cmp(&b.0)));
        Window {
            window_ns,
            tasks,
            cgroups,
            tasks_omitted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(tid: u32, cgroup: u64) -> Task {
        Task {
            pid: 1,
            tid,
            comm: format!("t{tid}"),
            cgroup_id: cgroup,
            cgroup: CgroupKey::new(0, cgroup),
        }
    }

    fn wait(tid: u32, nb: Option<u32>, delay_ns: u64, overlap_ns: u64) -> Wait {
        Wait {
            ts_boot_ns: 10,
            cpu: 0,
            delay_ns,
            task: task(tid, 100 + u64::from(tid % 2)),
            neighbor: nb.map(|n| Neighbor {
                pid: 2,
                tid: n,
                comm: format!("n{n}"),
            }),
            overlap_ns,
            busy_ns: overlap_ns,
            flags: 0,
        }
    }

    #[test]
    fn per_task_per_cgroup_and_neighbours() {
        let mut a = Aggregator::new(1_000, 10);
        a.add(&wait(1, Some(9), 5_000_000, 4_000_000));
        a.add(&wait(1, Some(8), 150_000_000, 1_000_000));
        a.add(&wait(1, Some(9), 3_000_000, 3_000_000));
        a.add(&wait(2, None, 1_000_000, 0));
        a.add(&wait(3, Some(9), 2_000_000, 2_000_000));
        assert!(a.due(1_010));
        let w = a.cut(1_010);
        assert_eq!(w.window_ns, 1_000);
        let t1 = &w.tasks[0];
        assert_eq!(t1.task.tid, 1);
        assert_eq!(
            (t1.count, t1.total_ns, t1.max_ns),
            (3, 158_000_000, 150_000_000)
        );
        assert_eq!(t1.per_level, [2, 1, 0, 0]);
        assert_eq!(t1.level(), Level::Moderate);
        let top = t1.top_neighbor().unwrap();
        assert_eq!((top.task.tid, top.overlap_ns, top.count), (9, 7_000_000, 2));
        assert!(
            w.tasks[2].top_neighbor().is_none(),
            "task 2 waited on an idle CPU"
        );
        // Cgroups: tids 1 and 3 are in 101, tid 2 in 100.
        assert_eq!(w.cgroups[0].0, CgroupKey::new(0, 101));
        assert_eq!((w.cgroups[0].1.count, w.cgroups[0].1.tasks), (4, 2));
        assert_eq!(w.cgroups[1].0, CgroupKey::new(0, 100));
        assert!(a.cut(2_000).tasks.is_empty());
    }

    #[test]
    fn limits_tasks() {
        let mut a = Aggregator::new(1, 2);
        for tid in 1..=5 {
            a.add(&wait(tid, None, u64::from(tid) * 1000, 0));
        }
        let w = a.cut(100);
        let tids: Vec<u32> = w.tasks.iter().map(|t| t.task.tid).collect();
        assert_eq!(tids, vec![5, 4]);
        assert_eq!(w.tasks_omitted, 3);
        assert_eq!(w.cgroups.len(), 2, "cgroups still count every task");
    }
}
