//! Integration tests of the container collector against the real kernel: cgroups with
//! container-runtime names created by the test (markers: their unique container ids),
//! processes moved into them, one OOM-killed. Run serially; each skips (or fails under
//! `TAPIO_REQUIRE_ALL_TESTS=1`) when BPF or the needed cgroup hierarchy is unavailable.

mod cgroups;

use std::process::{Command, Stdio};
use std::time::Duration;

use cgroups::{container_id, TestCgroup};
use tapio_cgroup_info::Hierarchies;
use tapio_ebpf_support::test_support::{
    assert_unprivileged_start_names_the_capability, bpf_ready, serial, skip,
};
use tapio_plugin_api::HealthStatus;
use tapio_plugin_container::ContainerCollector;
use tapio_plugin_testkit::{spec, Captured, Harness, Value};

fn wait_healthy(h: &Harness<ContainerCollector>) {
    for _ in 0..100 {
        if h.health().status == HealthStatus::Healthy {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("collector not healthy: {:?}", h.health());
}

fn of_container<'a>(events: &'a [Captured], id: &str) -> Vec<&'a Captured> {
    events.iter().filter(|e| e.container_id == id).collect()
}

fn types(events: &[&Captured]) -> Vec<String> {
    events.iter().map(|e| e.event_type.clone()).collect()
}

#[test]
fn collector_contract() {
    let _serial = serial();
    if !bpf_ready("collector_contract") {
        return;
    }
    spec::check::<ContainerCollector>("{}", Duration::from_millis(300)).unwrap();
}

#[test]
fn cgroup_created_and_removed_gives_container_events() {
    let _serial = serial();
    const TEST: &str = "cgroup_created_and_removed_gives_container_events";
    if !bpf_ready(TEST) {
        return;
    }
    let hierarchies = Hierarchies::read().unwrap();
    let Some(v2) = hierarchies.get(0) else {
        skip(TEST, "cgroup v2 is not mounted", "a cgroup2 mount");
        return;
    };
    let mut h = Harness::<ContainerCollector>::create("{}").unwrap();
    h.start().unwrap();
    wait_healthy(&h);

    let id = container_id();
    let scope = format!("cri-containerd-{id}.scope");
    let parent = format!("tapio-it-{}", std::process::id());
    let mut cg = TestCgroup::create(&v2.mount_point, &[&parent, &scope]).unwrap();
    let mut child = cg
        .spawn_into(Command::new("sleep").arg("30").stdout(Stdio::null()))
        .unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: plain syscall on our child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    child.wait().unwrap();
    cg.remove().unwrap();

    let events = h.wait_until(Duration::from_secs(5), |events| {
        events
            .iter()
            .any(|e| e.container_id == id && e.event_type == "container.destroy")
    });
    h.stop().unwrap();
    let ours = of_container(&events, &id);
    assert_eq!(
        types(&ours),
        [
            "container.create",
            "container.start",
            "container.exit",
            "container.destroy"
        ],
        "{ours:#?}"
    );
    let expected_path = format!("/{parent}/{scope}");
    for e in &ours {
        assert_eq!(e.str("container.id"), Some(id.as_str()));
        assert_eq!(e.str("container.runtime.name"), Some("containerd"));
        assert_eq!(e.str("cgroup.path"), Some(expected_path.as_str()));
        assert_eq!(e.int("cgroup.hierarchy"), Some(0));
        assert!(e.cgroup_id.is_some(), "v2 cgroup ids are event cgroup ids");
    }
    assert_eq!(ours[1].pid, Some(pid));
    let exit = ours[2];
    assert_eq!(exit.pid, Some(pid));
    assert_eq!(exit.str("process.executable.name"), Some("sleep"));
    assert_eq!(exit.str("process.exit.reason"), Some("signal"));
    assert_eq!(exit.int("process.exit.signal"), Some(15));
    assert_eq!(exit.str("process.exit.signal.name"), Some("SIGTERM"));
}

/// The memory hierarchy to limit a cgroup in: (mount point, limit file), v1 `memory` or a
/// v2 mount with the memory controller.
fn memory_hierarchy(h: &Hierarchies) -> Option<(std::path::PathBuf, &'static str)> {
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

#[test]
fn oom_kill_in_a_memory_limited_container() {
    let _serial = serial();
    const TEST: &str = "oom_kill_in_a_memory_limited_container";
    if !bpf_ready(TEST) {
        return;
    }
    let hierarchies = Hierarchies::read().unwrap();
    let Some((root, limit_file)) = memory_hierarchy(&hierarchies) else {
        skip(
            TEST,
            "no memory controller is mounted",
            "cgroup v1 memory or v2 with memory",
        );
        return;
    };
    let mut h = Harness::<ContainerCollector>::create("{}").unwrap();
    h.start().unwrap();
    wait_healthy(&h);

    let id = container_id();
    let parent = format!("tapio-it-oom-{}", std::process::id());
    let mut cg = TestCgroup::create(&root, &[&parent, "docker", &id]).unwrap();
    if limit_file == "memory.max" {
        std::fs::write(root.join(&parent).join("cgroup.subtree_control"), "+memory").unwrap();
        std::fs::write(
            root.join(&parent)
                .join("docker")
                .join("cgroup.subtree_control"),
            "+memory",
        )
        .unwrap();
    }
    cg.set(limit_file, &(32u64 << 20).to_string()).unwrap();
    // dd reads 512 MiB of zeros into one buffer: every page is touched and charged to the
    // 32 MiB cgroup; the OOM killer must kill it.
    let mut child = cg
        .spawn_into(
            Command::new("dd")
                .args(["if=/dev/zero", "of=/dev/null", "bs=512M", "count=1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap();
    let pid = child.id();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "dd was not OOM-killed: {status:?}"
    );
    cg.remove().unwrap();

    let events = h.wait_until(Duration::from_secs(5), |events| {
        events
            .iter()
            .any(|e| e.container_id == id && e.event_type == "container.destroy")
    });
    h.stop().unwrap();
    let ours = of_container(&events, &id);
    assert_eq!(
        types(&ours),
        [
            "container.create",
            "container.start",
            "container.oom",
            "container.exit",
            "container.destroy"
        ],
        "{ours:#?}"
    );
    for e in &ours {
        assert_eq!(e.str("container.runtime.name"), Some("docker"));
        assert_eq!(
            e.str("cgroup.path"),
            Some(format!("/{parent}/docker/{id}").as_str())
        );
    }
    let oom = ours[2];
    assert_eq!(oom.pid, Some(pid));
    assert_eq!(oom.str("process.executable.name"), Some("dd"));
    assert_eq!(oom.severity, tapio_plugin_api::Severity::Critical);
    let exit = ours[3];
    assert_eq!(exit.pid, Some(pid));
    assert_eq!(exit.str("process.exit.reason"), Some("oom_kill"));
    assert_eq!(exit.int("process.exit.signal"), Some(9));
    assert_eq!(exit.attr("process.exit.code"), None);
    assert_eq!(
        exit.attr("process.exit.core_dumped"),
        Some(&Value::Bool(false))
    );
}

#[test]
fn unprivileged_reports_missing_capability() {
    assert_unprivileged_start_names_the_capability::<ContainerCollector>(
        "unprivileged_reports_missing_capability",
    );
}
