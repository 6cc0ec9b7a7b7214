//! Cgroups as the eBPF plugins see them: which hierarchies are mounted where (cgroup v2 and
//! the v1 controllers), a cgroup id -> path resolver, and the container a cgroup path
//! belongs to (containerd, CRI-O, docker, podman; cgroupfs and systemd-slice layouts).
//!
//! A kernel cgroup id is the id of the cgroup's kernfs node, which is also the inode number
//! of its directory, unique within one hierarchy (not across v1 hierarchies): so ids are
//! always paired with a hierarchy id (0 = cgroup v2, as `cgroup_root.hierarchy_id`).
//!
//! Pure parsing lives in [`mounts`] and [`container`] (no file system access); [`resolver`]
//! reads `/proc` and the cgroup file systems.

#![warn(missing_docs, unreachable_pub)]

pub mod container;
pub mod mounts;
pub mod proc;
pub mod resolver;

pub use container::{parse_container, ContainerRef, Runtime};
pub use mounts::{Hierarchies, Hierarchy};
pub use resolver::{CgroupKey, CgroupResolver};
