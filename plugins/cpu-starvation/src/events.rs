//! Events of the cpu-starvation collector.

use tapio_cgroup_info::CgroupKey;
use tapio_event_buffer::OwnedEvent;
use tapio_plugin_api::{EventTypeInfo, Severity};

use crate::aggregate::{TaskWaits, Window};
use crate::level::Level;
use crate::record::Wait;

/// Every event type this collector emits.
pub const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(
        "resource.scheduling_delay",
        "Run-queue waits of a task or a cgroup over a window: count, total, longest, starvation level",
    ),
    EventTypeInfo::new(
        "resource.noisy_neighbor",
        "The task that held the CPU for most of another task's run-queue waits in a window",
    ),
    EventTypeInfo::new(
        "resource.starvation",
        "One run-queue wait at or above the starvation threshold (reported at once)",
    ),
];

/// What the events say about a cgroup: its path and its container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupInfo {
    /// Path inside its hierarchy (empty = unknown).
    pub path: String,
    /// Container id (empty = none).
    pub container_id: String,
}

/// Settings the events depend on.
#[derive(Debug, Clone, Copy)]
pub struct EventSettings {
    /// Smallest share of a task's total wait a neighbour must hold to be reported.
    pub noisy_neighbor_share: f64,
    /// Smallest total wait in a window for a noisy-neighbour report (ns).
    pub noisy_neighbor_min_wait_ns: u64,
}

fn level_counts(t: &TaskWaits) -> String {
    Level::ALL
        .iter()
        .map(|l| format!("{}:{}", l.as_str(), t.per_level[l.index()]))
        .collect::<Vec<_>>()
        .join(",")
}

/// Every event of a closed window, at `timestamp_ns` (Unix). `cgroup` resolves a cgroup
/// key, `process_cgroup` the cgroup of a (neighbour) process by pid.
pub fn window_events(
    w: &Window,
    timestamp_ns: u64,
    settings: &EventSettings,
    cgroup: &mut dyn FnMut(CgroupKey) -> CgroupInfo,
    process_cgroup: &mut dyn FnMut(u32) -> CgroupInfo,
) -> Vec<OwnedEvent> {
    let mut events = Vec::new();
    for t in &w.tasks {
        let info = cgroup(t.task.cgroup);
        let level = t.level();
        events.push(
            OwnedEvent::new(timestamp_ns, "resource.scheduling_delay", level.severity())
                .pid(t.task.pid)
                .tid(t.task.tid)
                .cgroup_id(t.task.cgroup_id)
                .container_id(info.container_id.clone())
                .str("resource.scope", "task")
                .uint("process.pid", u64::from(t.task.pid))
                .uint("thread.id", u64::from(t.task.tid))
                .str("thread.name", &t.task.comm)
                .str("cgroup.path", &info.path)
                .uint("resource.window_ns", w.window_ns)
                .uint("resource.cpu.wait.count", t.count)
                .uint("resource.cpu.wait.total_ns", t.total_ns)
                .uint("resource.cpu.wait.max_ns", t.max_ns)
                .uint("resource.cpu.wait.mean_ns", t.total_ns / t.count.max(1))
                .uint("resource.cpu.wait.others_ran_ns", t.busy_ns)
                .str("resource.starvation.level", level.as_str())
                .str("resource.starvation.level_counts", level_counts(t)),
        );
        let Some(top) = t.top_neighbor() else {
            continue;
        };
        let share = top.overlap_ns as f64 / t.total_ns.max(1) as f64;
        if share < settings.noisy_neighbor_share || t.total_ns < settings.noisy_neighbor_min_wait_ns
        {
            continue;
        }
        let nb_info = process_cgroup(top.task.pid);
        events.push(
            OwnedEvent::new(
                timestamp_ns,
                "resource.noisy_neighbor",
                level.severity().max(Severity::Low),
            )
            .pid(t.task.pid)
            .tid(t.task.tid)
            .cgroup_id(t.task.cgroup_id)
            .container_id(info.container_id.clone())
            .uint("process.pid", u64::from(t.task.pid))
            .uint("thread.id", u64::from(t.task.tid))
            .str("thread.name", &t.task.comm)
            .str("cgroup.path", &info.path)
            .uint("resource.window_ns", w.window_ns)
            .uint("resource.cpu.wait.total_ns", t.total_ns)
            .uint("resource.neighbor.pid", u64::from(top.task.pid))
            .uint("resource.neighbor.thread.id", u64::from(top.task.tid))
            .str("resource.neighbor.thread.name", &top.task.comm)
            .str("resource.neighbor.cgroup.path", &nb_info.path)
            .str("resource.neighbor.container.id", &nb_info.container_id)
            .uint("resource.neighbor.overlap_ns", top.overlap_ns)
            .uint("resource.neighbor.wait_count", top.count)
            .float("resource.neighbor.share", share.min(1.0))
            .bool(
                "resource.neighbor.same_cgroup",
                !nb_info.path.is_empty() && nb_info.path == info.path,
            ),
        );
    }
    for (key, c) in &w.cgroups {
        let info = cgroup(*key);
        let level = Level::of(c.max_ns);
        events.push(
            OwnedEvent::new(timestamp_ns, "resource.scheduling_delay", level.severity())
                .cgroup_id(c.cgroup_id)
                .container_id(info.container_id)
                .str("resource.scope", "cgroup")
                .str("cgroup.path", info.path)
                .uint("cgroup.id", key.id)
                .uint("cgroup.hierarchy", u64::from(key.hierarchy))
                .uint("resource.window_ns", w.window_ns)
                .uint("resource.cpu.wait.count", c.count)
                .uint("resource.cpu.wait.total_ns", c.total_ns)
                .uint("resource.cpu.wait.max_ns", c.max_ns)
                .uint("resource.cpu.wait.mean_ns", c.total_ns / c.count.max(1))
                .uint("resource.cpu.wait.tasks", c.tasks)
                .str("resource.starvation.level", level.as_str()),
        );
    }
    events
}

/// The `resource.starvation` event of one long wait.
pub fn starvation_event(
    wait: &Wait,
    timestamp_ns: u64,
    info: &CgroupInfo,
    neighbor: Option<&CgroupInfo>,
) -> OwnedEvent {
    let level = Level::of(wait.delay_ns);
    let mut e = OwnedEvent::new(timestamp_ns, "resource.starvation", level.severity())
        .pid(wait.task.pid)
        .tid(wait.task.tid)
        .cgroup_id(wait.task.cgroup_id)
        .container_id(info.container_id.clone())
        .uint("process.pid", u64::from(wait.task.pid))
        .uint("thread.id", u64::from(wait.task.tid))
        .str("thread.name", &wait.task.comm)
        .str("cgroup.path", &info.path)
        .uint("resource.cpu.wait_ns", wait.delay_ns)
        .uint("cpu.logical_number", u64::from(wait.cpu))
        .str("resource.starvation.level", level.as_str());
    e = e.uint("resource.cpu.wait.others_ran_ns", wait.busy_ns);
    if let Some(nb) = &wait.neighbor {
        e = e
            .uint("resource.neighbor.pid", u64::from(nb.pid))
            .uint("resource.neighbor.thread.id", u64::from(nb.tid))
            .str("resource.neighbor.thread.name", &nb.comm)
            .uint("resource.neighbor.overlap_ns", wait.overlap_ns);
        if let Some(nb_info) = neighbor {
            e = e
                .str("resource.neighbor.cgroup.path", &nb_info.path)
                .str("resource.neighbor.container.id", &nb_info.container_id);
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Aggregator;
    use crate::record::{Neighbor, Task};
    use tapio_event_buffer::Value;

    fn task(tid: u32, cgroup: u64) -> Task {
        Task {
            pid: 7,
            tid,
            comm: format!("t{tid}"),
            cgroup_id: cgroup,
            cgroup: CgroupKey::new(0, cgroup),
        }
    }

    fn wait(tid: u32, nb: u32, delay_ns: u64, overlap_ns: u64) -> Wait {
        Wait {
            ts_boot_ns: 1,
            cpu: 1,
            delay_ns,
            task: task(tid, 50),
            neighbor: Some(Neighbor {
                pid: 8,
                tid: nb,
                comm: format!("t{nb}"),
            }),
            overlap_ns,
            busy_ns: overlap_ns,
            flags: 0,
        }
    }

    fn info(key: CgroupKey) -> CgroupInfo {
        CgroupInfo {
            path: format!("/cg{}", key.id),
            container_id: String::new(),
        }
    }

    const SETTINGS: EventSettings = EventSettings {
        noisy_neighbor_share: 0.5,
        noisy_neighbor_min_wait_ns: 1_000_000,
    };

    #[test]
    fn window_gives_task_neighbour_and_cgroup_events() {
        let mut a = Aggregator::new(10, 10);
        a.add(&wait(1, 2, 4_000_000, 3_000_000));
        a.add(&wait(1, 3, 2_000_000, 1_000_000));
        let events = window_events(&a.cut(20), 99, &SETTINGS, &mut info, &mut |pid| {
            info(CgroupKey::new(9, u64::from(pid)))
        });
        let types: Vec<&str> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            [
                "resource.scheduling_delay",
                "resource.noisy_neighbor",
                "resource.scheduling_delay"
            ]
        );
        let task = &events[0];
        assert_eq!(task.severity, Severity::Low);
        assert_eq!(task.attr("resource.cpu.wait.count"), Some(&Value::UInt(2)));
        assert_eq!(
            task.attr("resource.cpu.wait.max_ns"),
            Some(&Value::UInt(4_000_000))
        );
        assert_eq!(task.attr("cgroup.path"), Some(&Value::Str("/cg50".into())));
        let nn = &events[1];
        assert_eq!(
            nn.attr("resource.neighbor.thread.id"),
            Some(&Value::UInt(2))
        );
        assert_eq!(nn.attr("resource.neighbor.share"), Some(&Value::Float(0.5)));
        assert_eq!(
            nn.attr("resource.neighbor.same_cgroup"),
            Some(&Value::Bool(false))
        );
        assert_eq!(
            nn.attr("resource.neighbor.cgroup.path"),
            Some(&Value::Str("/cg8".into()))
        );
        assert_eq!(
            events[2].attr("resource.scope"),
            Some(&Value::Str("cgroup".into()))
        );
    }

    #[test]
    fn small_share_is_no_noisy_neighbour() {
        let mut a = Aggregator::new(10, 10);
        a.add(&wait(1, 2, 4_000_000, 1_000_000));
        let events = window_events(&a.cut(20), 99, &SETTINGS, &mut info, &mut |pid| {
            info(CgroupKey::new(9, u64::from(pid)))
        });
        assert!(events
            .iter()
            .all(|e| e.event_type != "resource.noisy_neighbor"));
    }

    #[test]
    fn starvation_event_levels() {
        let w = wait(1, 2, 700_000_000, 600_000_000);
        let e = starvation_event(
            &w,
            5,
            &info(w.task.cgroup),
            Some(&info(CgroupKey::new(0, 60))),
        );
        assert_eq!(e.severity, Severity::High);
        assert_eq!(
            e.attr("resource.starvation.level"),
            Some(&Value::Str("severe".into()))
        );
        assert_eq!(
            e.attr("resource.neighbor.thread.name"),
            Some(&Value::Str("t2".into()))
        );
    }
}
