//! Live systemd unit failure: a real `systemd --user` manager (started through the systemd
//! plugin's `sandbox.sh`, linked here as `sandbox.sh`: its own cgroup in every hierarchy,
//! verified before exec, private mount namespace and runtime dir) runs a unit that logs an
//! error and exits 3. The real systemd plugin reports `systemd.unit.failed` over D-Bus; the
//! unit's journal lines reach a real journal file (the unit writes export-format entries to
//! `systemd-journal-remote`, as journald would for it) read by the real journald plugin; the
//! real process plugin sees the main process exit. The collector forms a
//! `systemd-unit-failure` group with the failure and the unit's error lines; its info line and
//! another unit's error line stay out.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{wait_for, Host, HostOptions};

#[allow(dead_code)]
#[path = "../../../plugins/systemd/tests/it/manager.rs"]
mod sd_manager;

use sd_manager::{systemctl, Dirs, UserManager};

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// The built-in unit failure rule with a short window so the test does not wait 2 minutes.
const FAST_UNIT_FAILURE: &str = r#"
rules:
  - id: systemd-unit-failure
    intent: systemd_unit_failure
    description: A systemd unit failed.
    group_by: unit
    window: 3s
    steps:
      - id: exit
        name: main process exited
        types: [kernel.process.exit]
        where:
          - { attr: process.exit.code, ne: 0 }
      - id: failed
        name: unit failed
        types: [systemd.unit.failed]
      - id: journal
        name: journal errors
        types: [journald.entry]
        min_severity: warning
    causes:
      - exit -> failed
      - failed -> journal
    confirm: [failed]
    min_steps: 1
    severity: high
"#;

fn missing() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (cgroups and mount namespaces)".into());
    }
    for tool in [
        "systemd",
        "systemctl",
        "busctl",
        "dbus-daemon",
        "unshare",
        "findmnt",
        "journalctl",
    ] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()));
        if !found {
            return Some(format!("`{tool}` not found"));
        }
    }
    for file in [JOURNAL_REMOTE, "/usr/lib/systemd/user/dbus.socket"] {
        if !Path::new(file).exists() {
            return Some(format!("{file} missing"));
        }
    }
    None
}

/// `systemd-journal-remote` writing `file` from the FIFO `fifo`; the test keeps a write end
/// open so the unit's writes never end the stream.
struct JournalRemote {
    child: Child,
    _writer: std::fs::File,
}

impl JournalRemote {
    fn start(file: &Path, fifo: &Path) -> Self {
        assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
        let child = Command::new(JOURNAL_REMOTE)
            .arg(format!("--output={}", file.display()))
            .arg(fifo)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run systemd-journal-remote");
        let writer = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
        JournalRemote {
            child,
            _writer: writer,
        }
    }
}

impl Drop for JournalRemote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn journal_entries(file: &Path) -> usize {
    Command::new("journalctl")
        .arg("--file")
        .arg(file)
        .args(["-o", "json", "--no-pager"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.starts_with('{'))
                .count()
        })
        .unwrap_or(0)
}

/// A shell script appending one export-format journal entry of `unit` to `fifo`.
fn log_line(fifo: &Path, unit: &str, priority: u8, message: &str) -> String {
    format!(
        "t=$(date +%s%6N); printf '__REALTIME_TIMESTAMP=%s\\n__MONOTONIC_TIMESTAMP=%s\\n_BOOT_ID=0123456789abcdef0123456789abcdef\\n_SYSTEMD_UNIT={unit}\\nSYSLOG_IDENTIFIER=app\\n_PID=%s\\nPRIORITY={priority}\\nMESSAGE={message}\\n\\n' \"$t\" \"$t\" \"$$\" >> {fifo}\n",
        fifo = fifo.display()
    )
}

fn attr<'a>(e: &'a Value, key: &str) -> &'a str {
    e["attributes"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {e}"))
}

#[test]
fn live_systemd_unit_failure_forms_a_group_with_its_journal_lines() {
    const TEST: &str = "live_systemd_unit_failure_forms_a_group_with_its_journal_lines";
    if let Some(why) = missing() {
        let msg = format!(
            "SKIP {TEST}: {why} (needs root, .ci/deps/platform-sd.sh: systemd dbus dbus-user-session util-linux systemd-journal-remote)"
        );
        if std::env::var("TAPIO_REQUIRE_ALL_TESTS").as_deref() == Ok("1") {
            panic!("{msg}; TAPIO_REQUIRE_ALL_TESTS=1");
        }
        eprintln!("{msg}");
        return;
    }
    let libs = crate::correlation_live::build_plugins(&["systemd", "journald", "process"]);
    let dirs = Dirs::new();
    let work: PathBuf = dirs.runtime.parent().unwrap().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let journal = work.join("units.journal");
    let fifo = work.join("units.fifo");
    let _remote = JournalRemote::start(&journal, &fifo);
    let unit = format!("tapio-corr-{}.service", std::process::id());
    let other = format!("tapio-corr-other-{}.service", std::process::id());
    // The failing unit: an info line, an error line, then exit 3.
    let script = work.join("fail.sh");
    std::fs::write(
        &script,
        format!(
            "{}{}sleep 0.3\nexit 3\n",
            log_line(&fifo, &unit, 6, "starting worker"),
            log_line(
                &fifo,
                &unit,
                3,
                "cannot open /var/lib/worker/db: permission denied"
            ),
        ),
    )
    .unwrap();
    dirs.write_unit(
        &unit,
        &format!("[Service]\nExecStart=/bin/sh {}\n", script.display()),
    );
    // Another unit's error line, written by the test: not part of the group.
    let other_script = work.join("other.sh");
    std::fs::write(
        &other_script,
        log_line(&fifo, &other, 3, "unrelated error of another unit"),
    )
    .unwrap();
    let rules = work.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("unit.yaml"), FAST_UNIT_FAILURE).unwrap();
    // A first entry so the journal file exists before the journald plugin opens it.
    assert!(Command::new("sh")
        .arg("-c")
        .arg(log_line(&fifo, "setup.service", 6, "journal ready"))
        .status()
        .unwrap()
        .success());
    assert!(
        wait_for(Duration::from_secs(20), || (journal_entries(&journal) >= 1)
            .then_some(()))
        .is_some(),
        "systemd-journal-remote wrote no journal"
    );
    let mut manager = UserManager::start(&dirs);
    let mut host = Host::start(HostOptions {
        plugins_yaml: "  strict_modes: false\n".into(),
        yaml: format!(
            "collectors:\n  systemd:\n    config:\n      bus_address: {bus:?}\n      units: [\"tapio-corr-*.service\"]\n      min_backoff: 100ms\n      max_backoff: 400ms\n  journald:\n    config:\n      files: [{journal:?}]\n      start_at: head\n      poll_interval: 100ms\n      max_backoff: 500ms\n  process:\n    config: {{}}\ncorrelation:\n  rules_dir: {rules:?}\n",
            bus = dirs.bus_address(),
            journal = journal.display().to_string(),
            rules = rules.display().to_string(),
        ),
        preinstalled: vec![
            (libs[0].clone(), "systemd.so".into()),
            (libs[1].clone(), "journald.so".into()),
            (libs[2].clone(), "process.so".into()),
        ],
        ..HostOptions::default()
    });
    let healthy = wait_for(Duration::from_secs(30), || {
        let up = |p: &str| host.metric("tapio_plugin_up", &format!("plugin=\"{p}\"")) == Some(1.0);
        (up("systemd") && up("journald") && up("process")).then_some(())
    });
    assert!(healthy.is_some(), "plugins not up; log:\n{}", host.log());
    // Let the systemd plugin list the units before the failure.
    std::thread::sleep(Duration::from_secs(1));
    let out = systemctl(&dirs, &["start", &unit]);
    // `start` of a failing Type=simple unit succeeds; the failure comes after.
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(Command::new("sh")
        .arg(&other_script)
        .status()
        .unwrap()
        .success());
    let is_group = |e: &Value| {
        e["type"] == "tapio.correlation.group"
            && e["attributes"]["tapio.group.rule"] == "systemd-unit-failure"
            && e.to_string().contains(&unit)
    };
    let events = host
        .wait_events(Duration::from_secs(30), |ev| ev.iter().any(is_group))
        .unwrap_or_else(|| host.events());
    manager.kill();
    let ours: Vec<&Value> = events
        .iter()
        .filter(|e| e.to_string().contains(&unit))
        .collect();
    let group = events.iter().find(|e| is_group(e)).unwrap_or_else(|| {
        panic!(
            "no unit failure group for {unit}; its events: {ours:#?}\nlog:\n{}",
            host.log()
        )
    });
    let failed = events
        .iter()
        .find(|e| {
            e["type"] == "systemd.unit.failed" && e["attributes"]["systemd.unit"] == unit.as_str()
        })
        .expect("systemd.unit.failed of our unit");
    let error_line = events
        .iter()
        .find(|e| {
            e["type"] == "journald.entry"
                && e["attributes"]["log.record.original"]
                    .as_str()
                    .is_some_and(|m| m.contains("permission denied"))
        })
        .expect("the unit's error line");
    let info_line = events
        .iter()
        .find(|e| {
            e["type"] == "journald.entry"
                && e["attributes"]["log.record.original"] == "starting worker"
        })
        .expect("the unit's info line");
    let other_line = events
        .iter()
        .find(|e| {
            e["type"] == "journald.entry" && e["attributes"]["systemd.unit"] == other.as_str()
        })
        .expect("the other unit's error line");
    let members: Value = serde_json::from_str(attr(group, "tapio.group.spans")).unwrap();
    let member_ids: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["event_id"].as_str().unwrap())
        .collect();
    for (what, e, inside) in [
        ("unit failed", failed, true),
        ("error line", error_line, true),
        ("info line", info_line, false),
        ("other unit's error", other_line, false),
    ] {
        assert_eq!(
            member_ids.contains(&e["id"].as_str().unwrap()),
            inside,
            "{what} member={} of {group:#}",
            !inside
        );
    }
    let chain: Value = serde_json::from_str(attr(group, "tapio.group.chain")).unwrap();
    let steps: Vec<&str> = chain
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["exit", "failed", "journal"], "chain {chain:#}");
    // The root cause: the unit's main process exiting with status 3, seen by the kernel.
    let root_id = attr(group, "tapio.group.root_cause.event_id");
    let root = events
        .iter()
        .find(|e| e["id"] == root_id)
        .expect("root cause delivered");
    assert_eq!(root["type"], "kernel.process.exit", "{root:#}");
    assert_eq!(root["attributes"]["process.exit.code"], 3, "{root:#}");
    assert_eq!(
        root["attributes"]["systemd.unit"],
        unit.as_str(),
        "{root:#}"
    );
    assert!(member_ids.contains(&root_id));
    // The failure confirmed the group: it carries the group id.
    assert_eq!(
        failed["attributes"]["tapio.group.id"], group["attributes"]["tapio.group.id"],
        "{failed:#}"
    );
    let exits: Vec<&&Value> = ours
        .iter()
        .filter(|e| e["type"] == "kernel.process.exit")
        .collect();
    eprintln!(
        "unit group {}: chain {steps:?}, root cause {}, {} members; exit events of the unit: {}",
        attr(group, "tapio.group.id"),
        attr(group, "tapio.group.root_cause.event_id"),
        member_ids.len(),
        exits.len()
    );
    host.terminate(Duration::from_secs(10));
}
