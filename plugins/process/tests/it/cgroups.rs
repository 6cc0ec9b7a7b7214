//! Test cgroups ([`TestCgroup`] from `tapio-ebpf-support`) and the memory hierarchy to limit
//! one in.

use std::path::PathBuf;

use tapio_cgroup_info::Hierarchies;

pub use tapio_ebpf_support::test_support::TestCgroup;

/// The memory hierarchy to limit a cgroup in: (mount point, limit file), v1 `memory` or a
/// v2 mount with the memory controller enabled for children.
pub fn memory_hierarchy() -> Option<(PathBuf, &'static str)> {
    let h = Hierarchies::read().ok()?;
    if let Some(v1) = h.of_controller("memory") {
        return Some((v1.mount_point.clone(), "memory.limit_in_bytes"));
    }
    let v2 = h.get(0)?;
    let controllers = std::fs::read_to_string(v2.mount_point.join("cgroup.controllers")).ok()?;
    if !controllers.split_whitespace().any(|c| c == "memory") {
        return None;
    }
    std::fs::write(v2.mount_point.join("cgroup.subtree_control"), "+memory").ok()?;
    Some((v2.mount_point.clone(), "memory.max"))
}
