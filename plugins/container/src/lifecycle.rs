//! Container lifecycle from cgroup events: which cgroups belong to which container, when a
//! container is created, started (first process moved in), destroyed (last cgroup
//! removed), and which container an exit or an OOM kill belongs to. Pure: the caller passes
//! decoded records and applies the resulting [`Action`]s (events, kernel watch list).

use std::collections::{BTreeMap, HashMap};

use tapio_cgroup_info::{parse_container, CgroupKey, ContainerRef};

use crate::death::{classify, Death};
use crate::record::Proc;

/// A container as far as its cgroups tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Id, runtime, pod uid.
    pub reference: ContainerRef,
    /// Its cgroups (one per hierarchy on v1 hosts) and their paths.
    pub cgroups: BTreeMap<CgroupKey, String>,
    /// Whether a process was seen moving in.
    pub started: bool,
}

/// What happened, for the event builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The first cgroup of a container appeared.
    Create,
    /// The first process moved into the container.
    Start {
        /// tgid.
        pid: u32,
        /// comm.
        comm: String,
    },
    /// The OOM killer chose a process of the container.
    Oom {
        /// The victim.
        proc: Proc,
    },
    /// A process of the container exited.
    Exit {
        /// The process.
        proc: Proc,
        /// How it died.
        death: Death,
    },
    /// The last cgroup of the container was removed.
    Destroy,
}

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// CLOCK_BOOTTIME ns.
    pub ts_boot_ns: u64,
    /// The container.
    pub container: ContainerRef,
    /// The cgroup it happened in, and that cgroup's path.
    pub cgroup: (CgroupKey, String),
    /// What happened.
    pub change: Change,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Emit this event.
    Emit(Lifecycle),
    /// Put this cgroup into the kernel's watch list (its exits are reported).
    Watch(CgroupKey),
    /// Remove this cgroup from the kernel's watch list.
    Unwatch(CgroupKey),
}

/// The state machine. See the module docs.
#[derive(Debug)]
pub struct Tracker {
    containers: HashMap<String, Container>,
    by_cgroup: HashMap<CgroupKey, String>,
    oom_victims: HashMap<u32, u64>,
    oom_memory_ns: u64,
}

impl Tracker {
    /// A tracker that attributes an exit to the OOM killer when the OOM kill of that pid
    /// was seen within `oom_memory_ns` before.
    pub fn new(oom_memory_ns: u64) -> Self {
        Tracker {
            containers: HashMap::new(),
            by_cgroup: HashMap::new(),
            oom_victims: HashMap::new(),
            oom_memory_ns,
        }
    }

    /// The containers known now.
    pub fn containers(&self) -> impl Iterator<Item = &Container> {
        self.containers.values()
    }

    /// The container of a cgroup, if known.
    pub fn container_of(&self, key: CgroupKey) -> Option<&Container> {
        self.by_cgroup
            .get(&key)
            .and_then(|id| self.containers.get(id))
    }

    /// Registers `key`; returns the container and whether it is new.
    fn register(&mut self, key: CgroupKey, path: &str) -> Option<(ContainerRef, bool)> {
        let reference = parse_container(path)?;
        let id = reference.id.clone();
        let is_new = !self.containers.contains_key(&id);
        let c = self
            .containers
            .entry(id.clone())
            .or_insert_with(|| Container {
                reference: reference.clone(),
                cgroups: BTreeMap::new(),
                started: false,
            });
        c.cgroups.insert(key, path.to_owned());
        self.by_cgroup.insert(key, id);
        Some((reference, is_new))
    }

    /// A container cgroup that existed before the collector started: tracked and
    /// watched, no event.
    pub fn existing(&mut self, key: CgroupKey, path: &str) -> Vec<Action> {
        match self.register(key, path) {
            Some(_) => {
                if let Some(c) = self
                    .by_cgroup
                    .get(&key)
                    .and_then(|id| self.containers.get_mut(id))
                {
                    c.started = true;
                }
                vec![Action::Watch(key)]
            }
            None => Vec::new(),
        }
    }

    /// A cgroup was created.
    pub fn mkdir(&mut self, ts_boot_ns: u64, key: CgroupKey, path: &str) -> Vec<Action> {
        let Some((container, is_new)) = self.register(key, path) else {
            return Vec::new();
        };
        let mut actions = vec![Action::Watch(key)];
        if is_new {
            actions.push(Action::Emit(Lifecycle {
                ts_boot_ns,
                container,
                cgroup: (key, path.to_owned()),
                change: Change::Create,
            }));
        }
        actions
    }

    /// A cgroup was removed.
    pub fn rmdir(&mut self, ts_boot_ns: u64, key: CgroupKey, path: &str) -> Vec<Action> {
        let Some(id) = self.by_cgroup.remove(&key) else {
            return Vec::new();
        };
        let mut actions = vec![Action::Unwatch(key)];
        let Some(c) = self.containers.get_mut(&id) else {
            return actions;
        };
        c.cgroups.remove(&key);
        if c.cgroups.is_empty() {
            let c = self.containers.remove(&id).expect("present");
            actions.push(Action::Emit(Lifecycle {
                ts_boot_ns,
                container: c.reference,
                cgroup: (key, path.to_owned()),
                change: Change::Destroy,
            }));
        }
        actions
    }

    /// A process moved into a cgroup.
    pub fn attach(
        &mut self,
        ts_boot_ns: u64,
        key: CgroupKey,
        path: &str,
        pid: u32,
        comm: &str,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if !self.by_cgroup.contains_key(&key) {
            // Created before we saw it (or the mkdir record was lost): track it now.
            match self.register(key, path) {
                Some(_) => actions.push(Action::Watch(key)),
                None => return actions,
            }
        }
        let Some(c) = self
            .by_cgroup
            .get(&key)
            .and_then(|id| self.containers.get_mut(id))
        else {
            return actions;
        };
        if !c.started {
            c.started = true;
            actions.push(Action::Emit(Lifecycle {
                ts_boot_ns,
                container: c.reference.clone(),
                cgroup: (key, path.to_owned()),
                change: Change::Start {
                    pid,
                    comm: comm.to_owned(),
                },
            }));
        }
        actions
    }

    /// The container cgroup of a process: its v2 cgroup, else its memory cgroup.
    fn locate(&self, proc: &Proc) -> Option<(CgroupKey, &Container)> {
        [proc.dfl, proc.memcg]
            .into_iter()
            .find_map(|k| self.container_of(k).map(|c| (k, c)))
    }

    /// The OOM killer chose `proc`.
    pub fn oom(&mut self, ts_boot_ns: u64, proc: &Proc) -> Vec<Action> {
        self.oom_victims.insert(proc.pid, ts_boot_ns);
        let Some((key, c)) = self.locate(proc) else {
            return Vec::new();
        };
        vec![Action::Emit(Lifecycle {
            ts_boot_ns,
            container: c.reference.clone(),
            cgroup: (key, c.cgroups.get(&key).cloned().unwrap_or_default()),
            change: Change::Oom { proc: proc.clone() },
        })]
    }

    /// `proc` exited with wait status `status`.
    pub fn exit(&mut self, ts_boot_ns: u64, proc: &Proc, status: u32) -> Vec<Action> {
        let oom_killed = self
            .oom_victims
            .remove(&proc.pid)
            .is_some_and(|t| ts_boot_ns.saturating_sub(t) <= self.oom_memory_ns);
        let Some((key, c)) = self.locate(proc) else {
            return Vec::new();
        };
        vec![Action::Emit(Lifecycle {
            ts_boot_ns,
            container: c.reference.clone(),
            cgroup: (key, c.cgroups.get(&key).cloned().unwrap_or_default()),
            change: Change::Exit {
                proc: proc.clone(),
                death: classify(status, oom_killed),
            },
        })]
    }

    /// Forgets OOM victims older than the memory (their exits were not seen).
    pub fn expire(&mut self, now_ns: u64) {
        let keep = self.oom_memory_ns;
        self.oom_victims
            .retain(|_, t| now_ns.saturating_sub(*t) <= keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::death::Reason;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn emitted(actions: &[Action]) -> Vec<&Change> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Emit(l) => Some(&l.change),
                _ => None,
            })
            .collect()
    }

    fn proc(pid: u32, memcg: CgroupKey) -> Proc {
        Proc {
            pid,
            comm: "app".into(),
            dfl: CgroupKey::new(0, 1),
            memcg,
        }
    }

    #[test]
    fn v1_lifecycle_with_oom() {
        let mut t = Tracker::new(30_000);
        let path = format!("/docker/{ID}");
        let mem = CgroupKey::new(4, 100);
        let cpu = CgroupKey::new(1, 200);
        // runc creates the container's cgroup in every hierarchy: one create event.
        let a = t.mkdir(1, mem, &path);
        assert_eq!(a[0], Action::Watch(mem));
        assert_eq!(emitted(&a), vec![&Change::Create]);
        assert!(emitted(&t.mkdir(2, cpu, &path)).is_empty());
        // Moving the first process in starts it, once.
        let a = t.attach(3, mem, &path, 50, "sh");
        assert_eq!(
            emitted(&a),
            vec![&Change::Start {
                pid: 50,
                comm: "sh".into()
            }]
        );
        assert!(emitted(&t.attach(4, cpu, &path, 50, "sh")).is_empty());
        // OOM then the exit: attributed, reason oom_kill.
        let victim = proc(50, mem);
        let a = t.oom(5, &victim);
        assert!(matches!(emitted(&a)[0], Change::Oom { .. }));
        let a = t.exit(6, &victim, 9);
        match emitted(&a)[0] {
            Change::Exit { death, .. } => {
                assert_eq!(death.reason, Reason::OomKill);
                assert_eq!(death.signal, Some(9));
            }
            other => panic!("{other:?}"),
        }
        // A later plain SIGKILL of the same pid number is a signal again.
        match emitted(&t.exit(7, &victim, 9))[0] {
            Change::Exit { death, .. } => assert_eq!(death.reason, Reason::Signal),
            other => panic!("{other:?}"),
        }
        // Removing the cgroups: destroy with the last one.
        let a = t.rmdir(8, mem, &path);
        assert_eq!(a, vec![Action::Unwatch(mem)]);
        let a = t.rmdir(9, cpu, &path);
        assert_eq!(emitted(&a), vec![&Change::Destroy]);
        assert_eq!(t.containers().count(), 0);
    }

    #[test]
    fn non_containers_are_ignored() {
        let mut t = Tracker::new(1);
        let k = CgroupKey::new(0, 5);
        assert!(t.mkdir(1, k, "/system.slice/ssh.service").is_empty());
        assert!(t
            .attach(1, k, "/system.slice/ssh.service", 1, "sshd")
            .is_empty());
        assert!(t.rmdir(1, k, "/system.slice/ssh.service").is_empty());
        assert!(t.exit(1, &proc(3, k), 0).is_empty());
        assert!(t.oom(1, &proc(3, k)).is_empty());
    }

    #[test]
    fn existing_and_late_containers() {
        let mut t = Tracker::new(1);
        let k = CgroupKey::new(0, 6);
        let path = format!("/system.slice/docker-{ID}.scope");
        assert_eq!(t.existing(k, &path), vec![Action::Watch(k)]);
        assert!(
            emitted(&t.attach(2, k, &path, 9, "x")).is_empty(),
            "already running"
        );
        // A container seen first at attach: watched and started.
        let k2 = CgroupKey::new(0, 7);
        let other = format!("/system.slice/docker-{}.scope", "b".repeat(64));
        let a = t.attach(3, k2, &other, 10, "y");
        assert_eq!(a[0], Action::Watch(k2));
        assert_eq!(emitted(&a).len(), 1);
        // v2: exits are found by the v2 cgroup.
        let p = Proc {
            pid: 10,
            comm: "y".into(),
            dfl: k2,
            memcg: k2,
        };
        assert_eq!(emitted(&t.exit(4, &p, 0)).len(), 1);
    }

    #[test]
    fn old_oom_memories_expire() {
        let mut t = Tracker::new(10);
        let mem = CgroupKey::new(4, 1);
        t.mkdir(0, mem, &format!("/docker/{ID}"));
        t.oom(0, &proc(5, mem));
        t.expire(100);
        match emitted(&t.exit(100, &proc(5, mem), 9))[0] {
            Change::Exit { death, .. } => assert_eq!(death.reason, Reason::Signal),
            other => panic!("{other:?}"),
        }
    }
}
