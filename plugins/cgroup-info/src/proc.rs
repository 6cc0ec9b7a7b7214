//! The cgroups of a process, from `/proc/<pid>/cgroup`.

/// The path of the cgroup that says most about a process, from the text of its
/// `/proc/<pid>/cgroup`: its v2 cgroup (`0::/path`) unless that is the root, else its cgroup
/// in the v1 hierarchy of `controller` (`4:memory:/path`), else the v2 path.
pub fn telling_path(proc_cgroup: &str, controller: &str) -> Option<String> {
    let mut v2 = None;
    let mut v1 = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2 = Some(path);
        } else if controllers.split(',').any(|c| c == controller) {
            v1 = Some(path);
        }
    }
    match (v2, v1) {
        (Some(p), _) if p != "/" => Some(p.to_owned()),
        (_, Some(p)) => Some(p.to_owned()),
        (p, None) => p.map(str::to_owned),
    }
}

/// [`telling_path`] of a live process (`None` when it is gone).
pub fn process_cgroup_path(pid: u32, controller: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    telling_path(&text, controller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_v2_then_the_controller() {
        let hybrid = "9:name=systemd:/\n4:memory:/docker/abc\n1:cpu:/docker/abc\n0::/\n";
        assert_eq!(telling_path(hybrid, "cpu").as_deref(), Some("/docker/abc"));
        assert_eq!(telling_path(hybrid, "blkio").as_deref(), Some("/"));
        let v2 = "0::/system.slice/docker-abc.scope\n";
        assert_eq!(
            telling_path(v2, "cpu").as_deref(),
            Some("/system.slice/docker-abc.scope")
        );
        assert_eq!(telling_path("", "cpu"), None);
        let joint = "3:cpu,cpuacct:/k\n";
        assert_eq!(telling_path(joint, "cpuacct").as_deref(), Some("/k"));
    }

    #[test]
    fn reads_this_process() {
        assert!(process_cgroup_path(std::process::id(), "memory").is_some());
    }
}
