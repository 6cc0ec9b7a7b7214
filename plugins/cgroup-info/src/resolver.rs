//! Cgroup id -> path, per hierarchy.
//!
//! The resolver learns paths three ways: from the events the plugin sees (`cgroup_mkdir`
//! gives id and path: [`CgroupResolver::insert`]), from a scan of a hierarchy's directory
//! tree (the inode number of a cgroup directory is its id), done on the first miss and then
//! at most once per `rescan_interval`, and it forgets removed cgroups
//! ([`CgroupResolver::remove`]).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{parse_container, ContainerRef, Hierarchies};

/// A cgroup: its hierarchy id (0 = v2) and its id in that hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CgroupKey {
    /// Hierarchy id.
    pub hierarchy: u32,
    /// Cgroup id (kernfs node id = directory inode).
    pub id: u64,
}

impl CgroupKey {
    /// A key.
    pub const fn new(hierarchy: u32, id: u64) -> Self {
        CgroupKey { hierarchy, id }
    }

    /// The cgroup that says most about a task, from what the BPF programs record: its v2
    /// cgroup (`dfl_id`) unless that is the root (id 1) or unknown, else its cgroup in a v1
    /// controller's hierarchy (`ctrl_hierarchy`, `ctrl_id`), as on hybrid hosts where
    /// containers live in the v1 hierarchies.
    pub fn pick(dfl_id: u64, ctrl_hierarchy: u32, ctrl_id: u64) -> Self {
        if dfl_id > 1 || ctrl_id == 0 {
            CgroupKey::new(0, dfl_id)
        } else {
            CgroupKey::new(ctrl_hierarchy, ctrl_id)
        }
    }
}

/// Resolves cgroup ids to paths and containers. Not thread-safe: one per reader thread.
#[derive(Debug)]
pub struct CgroupResolver {
    hierarchies: Hierarchies,
    paths: HashMap<CgroupKey, String>,
    last_scan: HashMap<u32, Instant>,
    rescan_interval: Duration,
    max_entries: usize,
}

impl CgroupResolver {
    /// A resolver over `hierarchies`; a hierarchy is rescanned at most once per
    /// `rescan_interval` on misses.
    pub fn new(hierarchies: Hierarchies, rescan_interval: Duration) -> Self {
        CgroupResolver {
            hierarchies,
            paths: HashMap::new(),
            last_scan: HashMap::new(),
            rescan_interval,
            max_entries: 200_000,
        }
    }

    /// A resolver over this machine's hierarchies (empty when `/proc` is unreadable).
    pub fn for_this_host() -> Self {
        let hierarchies = Hierarchies::read().unwrap_or_else(|e| {
            log::warn!("cannot read cgroup hierarchies: {e}");
            Hierarchies::default()
        });
        Self::new(hierarchies, Duration::from_secs(1))
    }

    /// The hierarchies.
    pub fn hierarchies(&self) -> &Hierarchies {
        &self.hierarchies
    }

    /// Records that `key` has `path` (from a mkdir event).
    pub fn insert(&mut self, key: CgroupKey, path: &str) {
        if self.paths.len() >= self.max_entries {
            self.paths.clear();
        }
        self.paths.insert(key, path.to_owned());
    }

    /// Forgets `key` (from an rmdir event); returns its path if it was known.
    pub fn remove(&mut self, key: CgroupKey) -> Option<String> {
        self.paths.remove(&key)
    }

    /// The path of `key`, scanning its hierarchy on a miss (rate limited).
    pub fn path(&mut self, key: CgroupKey) -> Option<&str> {
        if !self.paths.contains_key(&key) {
            self.scan(key.hierarchy, false);
        }
        self.paths.get(&key).map(String::as_str)
    }

    /// The path of `key` if already known (no scan).
    pub fn cached_path(&self, key: CgroupKey) -> Option<&str> {
        self.paths.get(&key).map(String::as_str)
    }

    /// The container of `key`, if its path names one.
    pub fn container(&mut self, key: CgroupKey) -> Option<ContainerRef> {
        self.path(key).and_then(parse_container)
    }

    /// Scans hierarchy `hierarchy` now unless it was scanned within the rescan interval
    /// (`force` ignores the interval). Returns how many cgroups it found.
    pub fn scan(&mut self, hierarchy: u32, force: bool) -> usize {
        let now = Instant::now();
        if !force {
            if let Some(last) = self.last_scan.get(&hierarchy) {
                if now.duration_since(*last) < self.rescan_interval {
                    return 0;
                }
            }
        }
        self.last_scan.insert(hierarchy, now);
        let Some(h) = self.hierarchies.get(hierarchy).cloned() else {
            return 0;
        };
        let mut found = 0;
        let mut stack = vec![h.mount_point.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            if let Some(path) = h.path_of(&dir) {
                self.insert(CgroupKey::new(hierarchy, meta.ino()), &path);
                found += 1;
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
        }
        found
    }

    /// Scans every hierarchy now.
    pub fn scan_all(&mut self) -> usize {
        let ids: Vec<u32> = self.hierarchies.iter().map(|h| h.id).collect();
        ids.into_iter().map(|id| self.scan(id, true)).sum()
    }

    /// Every known cgroup whose path names a container.
    pub fn containers(&self) -> Vec<(CgroupKey, ContainerRef)> {
        self.paths
            .iter()
            .filter_map(|(k, p)| parse_container(p).map(|c| (*k, c)))
            .collect()
    }

    /// The directory of `key` on this machine, when its hierarchy is mounted.
    pub fn dir(&mut self, key: CgroupKey) -> Option<std::path::PathBuf> {
        let path = self.path(key)?.to_owned();
        self.hierarchies.get(key.hierarchy)?.dir_of(&path)
    }
}

/// The inode number (= cgroup id) of a cgroup directory.
pub fn cgroup_id_of(dir: &Path) -> std::io::Result<u64> {
    std::fs::metadata(dir).map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hierarchy;

    fn fake_hierarchy(root: &Path) -> Hierarchies {
        Hierarchies::from_list([Hierarchy {
            id: 0,
            controllers: vec![],
            mount_point: root.to_path_buf(),
            mount_root: "/".to_owned(),
        }])
    }

    #[test]
    fn scans_on_miss_and_rate_limits() {
        let dir = tempfile::tempdir().unwrap();
        let id = "a".repeat(64);
        let container_dir = dir.path().join("docker").join(&id);
        std::fs::create_dir_all(&container_dir).unwrap();
        let ino = cgroup_id_of(&container_dir).unwrap();
        let mut r = CgroupResolver::new(fake_hierarchy(dir.path()), Duration::from_secs(3600));
        let key = CgroupKey::new(0, ino);
        assert_eq!(r.path(key), Some(format!("/docker/{id}").as_str()));
        assert_eq!(r.container(key).unwrap().id, id);
        assert_eq!(r.dir(key), Some(container_dir.clone()));

        // A directory created after the scan is not found until the interval passes...
        let later = dir.path().join("later");
        std::fs::create_dir(&later).unwrap();
        let later_key = CgroupKey::new(0, cgroup_id_of(&later).unwrap());
        assert_eq!(r.path(later_key), None);
        // ...unless an event tells us, or a forced scan runs.
        r.insert(later_key, "/later");
        assert_eq!(r.path(later_key), Some("/later"));
        assert_eq!(r.remove(later_key).as_deref(), Some("/later"));
        assert!(r.scan(0, true) >= 3);
        assert_eq!(r.cached_path(later_key), Some("/later"));
        assert_eq!(r.containers().len(), 1);
    }

    #[test]
    fn picks_the_telling_cgroup() {
        assert_eq!(CgroupKey::pick(4242, 4, 35), CgroupKey::new(0, 4242));
        assert_eq!(CgroupKey::pick(1, 4, 35), CgroupKey::new(4, 35));
        assert_eq!(CgroupKey::pick(1, 0, 0), CgroupKey::new(0, 1));
        assert_eq!(CgroupKey::pick(0, 0, 0), CgroupKey::new(0, 0));
    }

    #[test]
    fn unknown_hierarchy_resolves_nothing() {
        let mut r = CgroupResolver::new(Hierarchies::default(), Duration::ZERO);
        assert_eq!(r.path(CgroupKey::new(7, 1)), None);
        assert_eq!(r.scan_all(), 0);
    }
}
