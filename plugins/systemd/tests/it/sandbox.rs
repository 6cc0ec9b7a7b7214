//! The guard in `sandbox.sh`: it moves itself into a fresh cgroup in every hierarchy and
//! proves it before it would exec systemd; it refuses bad names and a shared runtime dir.

use std::process::Command;

use crate::manager::{fresh_name, sandbox_script, Dirs};
use crate::{can_run, serial};

#[test]
fn sandbox_enters_its_own_cgroup_in_every_hierarchy_before_exec() {
    if !can_run("sandbox_enters_its_own_cgroup_in_every_hierarchy_before_exec") {
        return;
    }
    let _serial = serial();
    let dirs = Dirs::new();
    let name = fresh_name();
    let state = dirs.runtime.parent().unwrap().join("state");
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let out = dirs
        .command("bash")
        .arg(sandbox_script())
        .args(["check", &name])
        .arg(&state)
        .output()
        .unwrap();
    let cleanup = Command::new("bash")
        .arg(sandbox_script())
        .arg("cleanup")
        .arg(&state)
        .status()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cleanup.success());
    // What the process that would have become systemd saw, hierarchy by hierarchy: our
    // own cgroup with the fresh child appended, never the root.
    let seen = String::from_utf8(out.stdout).unwrap();
    let mut seen: Vec<&str> = seen.lines().collect();
    let mut want: Vec<String> = ours
        .lines()
        .map(|l| {
            let (head, path) = l.rsplit_once(':').unwrap();
            format!("{head}:{}/{name}", path.trim_end_matches('/'))
        })
        .collect();
    seen.sort_unstable();
    want.sort_unstable();
    assert_eq!(seen, want);
    // The test process itself did not move, and the cgroups are gone.
    assert_eq!(std::fs::read_to_string("/proc/self/cgroup").unwrap(), ours);
    let listed = std::fs::read_to_string(state.join("cgroups")).unwrap_or_default();
    assert!(listed.is_empty(), "cleanup left {listed}");
}

#[test]
fn sandbox_refuses_bad_names_and_shared_runtime_dirs() {
    if !can_run("sandbox_refuses_bad_names_and_shared_runtime_dirs") {
        return;
    }
    let dirs = Dirs::new();
    let state = dirs.runtime.parent().unwrap().join("state");
    let bad_name = dirs
        .command("bash")
        .arg(sandbox_script())
        .args(["start", "../../escape"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(bad_name.status.code(), Some(97));
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("REFUSING"));
    let shared_runtime = dirs
        .command("bash")
        .env("XDG_RUNTIME_DIR", "/run/user/0")
        .arg(sandbox_script())
        .args(["start", &fresh_name()])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(shared_runtime.status.code(), Some(97));
    assert!(!state.join("cgroups").exists(), "no cgroup may be created");
}
