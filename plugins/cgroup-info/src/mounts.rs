//! Which cgroup hierarchies are mounted where.
//!
//! Built from `/proc/self/mountinfo` (cgroup and cgroup2 mounts with their super options,
//! which name the v1 controllers or `name=...`) and `/proc/self/cgroup`
//! (`<hierarchy id>:<controllers>:<path>` lines, which give each hierarchy's id). Hosts may
//! mount cgroup v2 alone (`/sys/fs/cgroup`), v1 controllers plus v2 at
//! `/sys/fs/cgroup/unified` (hybrid), or v1 only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Hierarchy id (`cgroup_root.hierarchy_id`); 0 for cgroup v2.
    pub id: u32,
    /// Controllers bound to it (`memory`, `cpu`, ... or `name=systemd`); empty for v2.
    pub controllers: Vec<String>,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The cgroup the mount shows as its root (`/` unless a sub-tree was bind-mounted).
    pub mount_root: String,
}

impl Hierarchy {
    /// The directory of cgroup `path` (a path inside the hierarchy, as the kernel reports
    /// it), or `None` when the mount does not show it.
    pub fn dir_of(&self, path: &str) -> Option<PathBuf> {
        let root = self.mount_root.trim_end_matches('/');
        let rest = path.strip_prefix(root)?;
        if !rest.is_empty() && !rest.starts_with('/') {
            return None;
        }
        Some(self.mount_point.join(rest.trim_start_matches('/')))
    }

    /// The cgroup path (inside the hierarchy) of directory `dir` under the mount point.
    pub fn path_of(&self, dir: &Path) -> Option<String> {
        let rest = dir.strip_prefix(&self.mount_point).ok()?;
        let root = self.mount_root.trim_end_matches('/');
        let rest = rest.to_str()?;
        Some(if rest.is_empty() {
            if root.is_empty() {
                "/".to_owned()
            } else {
                root.to_owned()
            }
        } else {
            format!("{root}/{rest}")
        })
    }
}

/// The mounted hierarchies, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchies {
    by_id: BTreeMap<u32, Hierarchy>,
}

/// One cgroup mount from mountinfo: (fs type is cgroup2, mount point, mount root, super
/// options).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    v2: bool,
    mount_point: PathBuf,
    root: String,
    options: Vec<String>,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok());
            if let Some(v) = octal {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let v2 = match right[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        mounts.push(CgroupMount {
            v2,
            mount_point: PathBuf::from(unescape(left[4])),
            root: unescape(left[3]),
            options: right[2].split(',').map(str::to_owned).collect(),
        });
    }
    mounts
}

/// `/proc/self/cgroup` lines: (hierarchy id, controllers).
fn parse_proc_cgroup(text: &str) -> Vec<(u32, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            Some((id, controllers))
        })
        .collect()
}

impl Hierarchies {
    /// Reads this machine's hierarchies (from this process's view of `/proc`).
    pub fn read() -> std::io::Result<Self> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")?;
        Ok(Self::parse(&mountinfo, &cgroup))
    }

    /// Builds the table from the texts of `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn parse(mountinfo: &str, proc_cgroup: &str) -> Self {
        let mounts = parse_mountinfo(mountinfo);
        let mut by_id = BTreeMap::new();
        for (id, controllers) in parse_proc_cgroup(proc_cgroup) {
            let mount = if id == 0 {
                mounts.iter().find(|m| m.v2)
            } else {
                mounts
                    .iter()
                    .find(|m| !m.v2 && controllers.iter().all(|c| m.options.contains(c)))
            };
            if let Some(m) = mount {
                by_id.insert(
                    id,
                    Hierarchy {
                        id,
                        controllers,
                        mount_point: m.mount_point.clone(),
                        mount_root: m.root.clone(),
                    },
                );
            }
        }
        Hierarchies { by_id }
    }

    /// A table of the given hierarchies (tests, or a view built elsewhere).
    pub fn from_list(list: impl IntoIterator<Item = Hierarchy>) -> Self {
        Hierarchies {
            by_id: list.into_iter().map(|h| (h.id, h)).collect(),
        }
    }

    /// The hierarchy `id`.
    pub fn get(&self, id: u32) -> Option<&Hierarchy> {
        self.by_id.get(&id)
    }

    /// The hierarchy a v1 controller (`memory`) is bound to.
    pub fn of_controller(&self, controller: &str) -> Option<&Hierarchy> {
        self.by_id
            .values()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }

    /// Every hierarchy, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Hierarchy> {
        self.by_id.values()
    }

    /// Whether cgroup v2 is mounted.
    pub fn has_v2(&self) -> bool {
        self.by_id.contains_key(&0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/52972c5f
1:cpu:/
0::/
";

    #[test]
    fn hybrid_host() {
        let h = Hierarchies::parse(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        assert!(h.has_v2());
        assert_eq!(
            h.get(0).unwrap().mount_point,
            Path::new("/sys/fs/cgroup/unified")
        );
        assert_eq!(
            h.get(4).unwrap().mount_point,
            Path::new("/sys/fs/cgroup/memory")
        );
        assert_eq!(h.of_controller("memory").unwrap().id, 4);
        assert_eq!(h.of_controller("name=systemd").unwrap().id, 9);
        assert_eq!(h.of_controller("cpu").unwrap().id, 1);
        assert!(h.of_controller("blkio").is_none());
    }

    #[test]
    fn pure_v2_host() {
        let mountinfo = "25 19 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = Hierarchies::parse(mountinfo, "0::/user.slice\n");
        assert_eq!(h.iter().count(), 1);
        assert_eq!(h.get(0).unwrap().mount_point, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn joint_controllers_and_escapes() {
        let mountinfo =
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                         50 31 0:40 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        let h = Hierarchies::parse(mountinfo, "3:cpu,cpuacct:/\n0::/\n");
        assert_eq!(h.of_controller("cpuacct").unwrap().id, 3);
        assert_eq!(h.get(0).unwrap().mount_point, Path::new("/mnt/my cg"));
    }

    #[test]
    fn paths_and_dirs_with_a_bind_mounted_subtree() {
        let h = Hierarchy {
            id: 0,
            controllers: vec![],
            mount_point: PathBuf::from("/sys/fs/cgroup"),
            mount_root: "/kubepods/pod1".to_owned(),
        };
        assert_eq!(
            h.dir_of("/kubepods/pod1/abc"),
            Some(PathBuf::from("/sys/fs/cgroup/abc"))
        );
        assert_eq!(h.dir_of("/kubepods/pod2/abc"), None);
        assert_eq!(h.dir_of("/kubepods/pod10"), None);
        assert_eq!(
            h.path_of(Path::new("/sys/fs/cgroup/abc")).as_deref(),
            Some("/kubepods/pod1/abc")
        );
        let root = Hierarchy {
            mount_root: "/".to_owned(),
            ..h
        };
        assert_eq!(
            root.dir_of("/a/b"),
            Some(PathBuf::from("/sys/fs/cgroup/a/b"))
        );
        assert_eq!(
            root.path_of(Path::new("/sys/fs/cgroup")).as_deref(),
            Some("/")
        );
        assert_eq!(
            root.path_of(Path::new("/sys/fs/cgroup/a/b")).as_deref(),
            Some("/a/b")
        );
    }
}
