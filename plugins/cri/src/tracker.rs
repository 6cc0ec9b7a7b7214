//! Turns successive listings of the runtime into lifecycle changes.
//!
//! The runtime is listed on every poll (and on every container event when the runtime
//! streams them). [`Tracker::reconcile`] compares the listing with what it knew and returns
//! what happened in between, in time order: a container first seen already exited yields
//! created, started and exited; one that vanished yields removed. The first listing after
//! start is the baseline and yields nothing: existing containers are state, not changes.

use std::collections::HashMap;

use crate::model::{ContainerPhase, ContainerView, PodView};

/// One lifecycle change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A sandbox appeared.
    PodCreated(PodView),
    /// A sandbox went from ready to not ready.
    PodStopped(PodView),
    /// A sandbox disappeared.
    PodRemoved(PodView),
    /// A container appeared.
    ContainerCreated(ContainerView),
    /// A container started running.
    ContainerStarted(ContainerView),
    /// A container exited (its status details say how).
    ContainerExited(ContainerView),
    /// A container disappeared.
    ContainerRemoved(ContainerView),
}

impl Change {
    /// When it happened, ns since the epoch, as the runtime recorded it; `now_ns` for
    /// removals (the runtime keeps no record of those).
    pub fn timestamp_ns(&self, now_ns: i64) -> i64 {
        let status = |c: &ContainerView, f: fn(&crate::model::StatusDetails) -> i64| {
            c.status.as_ref().map(f).filter(|t| *t > 0)
        };
        match self {
            Change::PodCreated(p) => p.created_at_ns,
            Change::ContainerCreated(c) => c.created_at_ns,
            Change::ContainerStarted(c) => status(c, |s| s.started_at_ns).unwrap_or(now_ns),
            Change::ContainerExited(c) => status(c, |s| s.finished_at_ns).unwrap_or(now_ns),
            Change::PodStopped(_) | Change::PodRemoved(_) | Change::ContainerRemoved(_) => now_ns,
        }
    }
}

impl Change {
    /// Sort key: the timestamp, raised to the container's earlier stages so that a
    /// container's changes stay in lifecycle order. (containerd records `started_at` when
    /// the start call returns, which can be after a process that exits at once has
    /// `finished_at`: the events keep the runtime's times, the order stays logical.)
    fn order_key(&self, now_ns: i64) -> i64 {
        let ts = self.timestamp_ns(now_ns);
        match self {
            Change::ContainerStarted(c) | Change::ContainerExited(c) => {
                let started = c.status.as_ref().map_or(0, |s| s.started_at_ns);
                ts.max(c.created_at_ns).max(started)
            }
            _ => ts,
        }
    }
}

/// What the collector knows of the runtime.
#[derive(Debug, Default)]
pub struct Tracker {
    pods: HashMap<String, PodView>,
    containers: HashMap<String, ContainerView>,
    primed: bool,
}

impl Tracker {
    /// A tracker that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the container's `ContainerStatus` must be fetched before the next
    /// [`reconcile`](Self::reconcile): it is new or changed state, and running or exited.
    pub fn needs_status(&self, id: &str, phase: ContainerPhase) -> bool {
        if !matches!(phase, ContainerPhase::Running | ContainerPhase::Exited) {
            return false;
        }
        self.containers.get(id).is_none_or(|c| c.phase != phase)
    }

    /// The known sandboxes.
    pub fn pods(&self) -> impl Iterator<Item = &PodView> {
        self.pods.values()
    }

    /// Known sandboxes and containers.
    pub fn counts(&self) -> (usize, usize) {
        (self.pods.len(), self.containers.len())
    }

    /// Applies a full listing; returns the changes since the previous one, oldest first.
    pub fn reconcile(
        &mut self,
        pods: Vec<PodView>,
        containers: Vec<ContainerView>,
        now_ns: i64,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        let emit = self.primed;
        self.primed = true;

        let mut new_pods: HashMap<String, PodView> = HashMap::with_capacity(pods.len());
        for pod in pods {
            match self.pods.get(&pod.id) {
                None => {
                    changes.push(Change::PodCreated(pod.clone()));
                    if !pod.ready {
                        changes.push(Change::PodStopped(pod.clone()));
                    }
                }
                Some(old) if old.ready && !pod.ready => {
                    changes.push(Change::PodStopped(pod.clone()))
                }
                Some(_) => {}
            }
            new_pods.insert(pod.id.clone(), pod);
        }
        let removed_pods: Vec<PodView> = self
            .pods
            .drain()
            .filter(|(id, _)| !new_pods.contains_key(id))
            .map(|(_, p)| p)
            .collect();

        let mut new_containers: HashMap<String, ContainerView> =
            HashMap::with_capacity(containers.len());
        for mut c in containers {
            let old = self.containers.get(&c.id);
            if c.status.is_none() {
                // Keep details fetched earlier (the state did not change since).
                c.status = old.and_then(|o| o.status.clone());
            }
            let before = old.map(|o| o.phase);
            if before.is_none() {
                changes.push(Change::ContainerCreated(c.clone()));
            }
            let was_started = matches!(
                before,
                Some(ContainerPhase::Running | ContainerPhase::Exited)
            );
            let started_now = match c.phase {
                ContainerPhase::Running => true,
                // An exited container was started if the runtime recorded a start time.
                ContainerPhase::Exited => c.status.as_ref().is_some_and(|s| s.started_at_ns > 0),
                _ => false,
            };
            if started_now && !was_started {
                changes.push(Change::ContainerStarted(c.clone()));
            }
            if c.phase == ContainerPhase::Exited && before != Some(ContainerPhase::Exited) {
                changes.push(Change::ContainerExited(c.clone()));
            }
            new_containers.insert(c.id.clone(), c);
        }
        for (id, c) in self.containers.drain() {
            if !new_containers.contains_key(&id) {
                changes.push(Change::ContainerRemoved(c));
            }
        }
        changes.extend(removed_pods.into_iter().map(Change::PodRemoved));

        self.pods = new_pods;
        self.containers = new_containers;
        if !emit {
            return Vec::new();
        }
        // Stable: same-time changes keep their logical order (created before started).
        changes.sort_by_key(|c| c.order_key(now_ns));
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StatusDetails;

    fn pod(id: &str, ready: bool) -> PodView {
        PodView {
            id: id.into(),
            name: "web-0".into(),
            namespace: "shop".into(),
            uid: "u-1".into(),
            attempt: 0,
            ready,
            created_at_ns: 100,
            runtime_handler: String::new(),
        }
    }

    fn container(id: &str, phase: ContainerPhase, status: Option<StatusDetails>) -> ContainerView {
        ContainerView {
            id: id.into(),
            sandbox_id: "s1".into(),
            name: "app".into(),
            attempt: 0,
            image: "busybox".into(),
            image_ref: "sha256:1".into(),
            phase,
            created_at_ns: 200,
            pod_name: String::new(),
            pod_namespace: String::new(),
            pod_uid: String::new(),
            status,
        }
    }

    fn exited(code: i32) -> Option<StatusDetails> {
        Some(StatusDetails {
            started_at_ns: 300,
            finished_at_ns: 400,
            exit_code: code,
            reason: "Error".into(),
            message: String::new(),
        })
    }

    fn kinds(changes: &[Change]) -> Vec<&'static str> {
        changes
            .iter()
            .map(|c| match c {
                Change::PodCreated(_) => "pod.created",
                Change::PodStopped(_) => "pod.stopped",
                Change::PodRemoved(_) => "pod.removed",
                Change::ContainerCreated(_) => "created",
                Change::ContainerStarted(_) => "started",
                Change::ContainerExited(_) => "exited",
                Change::ContainerRemoved(_) => "removed",
            })
            .collect()
    }

    #[test]
    fn baseline_yields_nothing() {
        let mut t = Tracker::new();
        let c = t.reconcile(
            vec![pod("s1", true)],
            vec![container("c1", ContainerPhase::Running, None)],
            1,
        );
        assert!(c.is_empty());
        assert_eq!(t.counts(), (1, 1));
    }

    #[test]
    fn full_lifecycle_across_polls() {
        let mut t = Tracker::new();
        t.reconcile(vec![], vec![], 1);
        let c = t.reconcile(
            vec![pod("s1", true)],
            vec![container("c1", ContainerPhase::Created, None)],
            150,
        );
        assert_eq!(kinds(&c), ["pod.created", "created"]);
        assert!(t.needs_status("c1", ContainerPhase::Running));
        let running = Some(StatusDetails {
            started_at_ns: 300,
            ..Default::default()
        });
        let c = t.reconcile(
            vec![pod("s1", true)],
            vec![container("c1", ContainerPhase::Running, running)],
            350,
        );
        assert_eq!(kinds(&c), ["started"]);
        assert!(!t.needs_status("c1", ContainerPhase::Running));
        let c = t.reconcile(
            vec![pod("s1", true)],
            vec![container("c1", ContainerPhase::Exited, exited(3))],
            450,
        );
        assert_eq!(kinds(&c), ["exited"]);
        let Change::ContainerExited(x) = &c[0] else {
            unreachable!()
        };
        assert_eq!(x.status.as_ref().unwrap().exit_code, 3);
        let c = t.reconcile(vec![pod("s1", false)], vec![], 500);
        assert_eq!(kinds(&c), ["pod.stopped", "removed"]);
        let c = t.reconcile(vec![], vec![], 600);
        assert_eq!(kinds(&c), ["pod.removed"]);
    }

    #[test]
    fn short_lived_container_between_polls_yields_every_step_in_time_order() {
        let mut t = Tracker::new();
        t.reconcile(vec![pod("s1", true)], vec![], 1);
        let c = t.reconcile(
            vec![pod("s1", true)],
            vec![container("c1", ContainerPhase::Exited, exited(3))],
            500,
        );
        assert_eq!(kinds(&c), ["created", "started", "exited"]);
        let ts: Vec<i64> = c.iter().map(|c| c.timestamp_ns(500)).collect();
        assert_eq!(ts, [200, 300, 400]);
    }

    #[test]
    fn exit_recorded_before_the_start_time_still_follows_the_start() {
        let mut t = Tracker::new();
        t.reconcile(
            vec![],
            vec![container("c1", ContainerPhase::Created, None)],
            1,
        );
        let status = Some(StatusDetails {
            started_at_ns: 300,
            finished_at_ns: 290,
            exit_code: 3,
            ..Default::default()
        });
        let c = t.reconcile(
            vec![],
            vec![container("c1", ContainerPhase::Exited, status)],
            500,
        );
        assert_eq!(kinds(&c), ["started", "exited"]);
        assert_eq!(
            c[1].timestamp_ns(500),
            290,
            "the runtime's own time is kept"
        );
    }

    #[test]
    fn container_that_never_started_exits_without_start() {
        let mut t = Tracker::new();
        t.reconcile(vec![], vec![], 1);
        let failed = Some(StatusDetails {
            finished_at_ns: 250,
            exit_code: 128,
            reason: "StartError".into(),
            ..Default::default()
        });
        let c = t.reconcile(
            vec![],
            vec![container("c1", ContainerPhase::Exited, failed)],
            300,
        );
        assert_eq!(kinds(&c), ["created", "exited"]);
    }

    #[test]
    fn unchanged_listing_yields_nothing_and_keeps_details() {
        let mut t = Tracker::new();
        t.reconcile(vec![], vec![], 1);
        t.reconcile(
            vec![],
            vec![container("c1", ContainerPhase::Exited, exited(1))],
            2,
        );
        let c = t.reconcile(
            vec![],
            vec![container("c1", ContainerPhase::Exited, None)],
            3,
        );
        assert!(c.is_empty());
        let c = t.reconcile(vec![], vec![], 4);
        let Change::ContainerRemoved(x) = &c[0] else {
            unreachable!()
        };
        assert_eq!(x.status.as_ref().unwrap().exit_code, 1);
    }
}
