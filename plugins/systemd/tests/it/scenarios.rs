//! The collector against a real manager: exact transitions of units that start, stop, fail
//! (exit 3) and restart (Restart=on-failure); the collector contract; an unreachable bus,
//! then a manager that appears, goes away and comes back.

use std::time::Duration;

use serde_json::json;
use tapio_plugin_api::{HealthStatus, Severity};
use tapio_plugin_systemd::SystemdCollector;
use tapio_plugin_testkit::{spec, Captured, Harness};

use crate::manager::{show, systemctl, BusMonitor, Dirs, UserManager};
use crate::{can_run, serial};

const WAIT: Duration = Duration::from_secs(30);

fn config(dirs: &Dirs) -> String {
    json!({
        "bus_address": dirs.bus_address(),
        "units": ["t-*.service"],
        "min_backoff": "100ms",
        "max_backoff": "400ms",
        "call_timeout": "5s",
    })
    .to_string()
}

fn write_units(dirs: &Dirs) {
    dirs.write_unit(
        "t-ok.service",
        "[Service]\nExecStart=/bin/sleep 600\nStandardOutput=null\n",
    );
    dirs.write_unit(
        "t-fail.service",
        "[Service]\nExecStart=/bin/sh -c 'sleep 0.2; exit 3'\n",
    );
    // Fails twice (exit 3), then runs: exactly two automatic restarts.
    let count = dirs.runtime.parent().unwrap().join("restart-count");
    dirs.write_unit(
        "t-restart.service",
        &format!(
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nRestart=on-failure\nRestartSec=100ms\n\
             ExecStart=/bin/sh -c 'n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; \
             sleep 0.2; [ $n -ge 3 ] && exec sleep 600; exit 3'\n",
            c = count.display()
        ),
    );
    // Not matched by `t-*.service`: never reported.
    dirs.write_unit("other.service", "[Service]\nExecStart=/bin/sleep 600\n");
}

fn of_unit<'a>(events: &'a [Captured], unit: &str) -> Vec<&'a Captured> {
    events
        .iter()
        .filter(|e| e.str("systemd.unit") == Some(unit))
        .collect()
}

/// `(type, active, sub)` of each event of `unit`.
fn transitions(events: &[Captured], unit: &str) -> Vec<(String, String, String)> {
    of_unit(events, unit)
        .iter()
        .map(|e| {
            (
                e.event_type.trim_start_matches("systemd.unit.").to_owned(),
                e.str("systemd.unit.active_state").unwrap_or("").to_owned(),
                e.str("systemd.unit.sub_state").unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn t(kind: &str, active: &str, sub: &str) -> (String, String, String) {
    (kind.into(), active.into(), sub.into())
}

/// `want` appears in `got` in order (transient states systemd may coalesce are listed in
/// `want` too; the exact sequence is compared with the bus monitor at the end of the test).
fn assert_in_order(got: &[(String, String, String)], want: &[(String, String, String)]) {
    let mut rest = got.iter();
    for w in want {
        assert!(
            rest.any(|g| g == w),
            "{w:?} missing (in order) from {got:#?}"
        );
    }
}

fn wait_healthy(h: &Harness<SystemdCollector>) {
    let deadline = std::time::Instant::now() + WAIT;
    while h.health().status != HealthStatus::Healthy {
        assert!(
            std::time::Instant::now() < deadline,
            "not healthy: {:?}",
            h.health()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_unit(dirs: &Dirs, unit: &str) {
    let out = systemctl(dirs, &["start", unit]);
    assert!(
        out.status.success(),
        "start {unit}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn start_stop_fail_and_restart_give_exact_transitions() {
    if !can_run("start_stop_fail_and_restart_give_exact_transitions") {
        return;
    }
    let _serial = serial();
    let dirs = Dirs::new();
    write_units(&dirs);
    let _manager = UserManager::start(&dirs);
    let monitor = BusMonitor::start(&dirs);
    let mut h = Harness::<SystemdCollector>::create(&config(&dirs)).unwrap();
    h.start().unwrap();
    wait_healthy(&h);

    // Start, then stop, a unit that runs.
    start_unit(&dirs, "t-ok.service");
    let main_pid: u64 = show(&dirs, "t-ok.service", "MainPID").parse().unwrap();
    let events = h.wait_until(WAIT, |e| {
        of_unit(e, "t-ok.service")
            .iter()
            .any(|e| e.str("systemd.unit.sub_state") == Some("running"))
    });
    let running = of_unit(&events, "t-ok.service")
        .into_iter()
        .find(|e| e.str("systemd.unit.sub_state") == Some("running"))
        .expect("no running transition");
    assert_eq!(running.int("process.pid"), Some(main_pid.into()));
    assert_eq!(
        running.pid.map(u64::from),
        Some(main_pid),
        "the envelope's pid"
    );
    assert_eq!(
        running.str("systemd.unit.previous_active_state"),
        Some("inactive")
    );
    assert!(systemctl(&dirs, &["stop", "t-ok.service"]).status.success());
    let events = h.wait_until(WAIT, |e| {
        of_unit(e, "t-ok.service")
            .iter()
            .any(|e| e.str("systemd.unit.sub_state") == Some("dead"))
    });
    eprintln!("t-ok: {:?}", transitions(&events, "t-ok.service"));
    assert_in_order(
        &transitions(&events, "t-ok.service"),
        &[
            t("state_change", "active", "running"),
            t("state_change", "inactive", "dead"),
        ],
    );

    // A unit whose main process exits 3.
    start_unit(&dirs, "t-fail.service");
    let events = h.wait_until(WAIT, |e| {
        of_unit(e, "t-fail.service")
            .iter()
            .any(|e| e.event_type == "systemd.unit.failed")
    });
    eprintln!("t-fail: {:?}", transitions(&events, "t-fail.service"));
    assert_in_order(
        &transitions(&events, "t-fail.service"),
        &[
            t("state_change", "active", "running"),
            t("state_change", "failed", "failed"),
            t("failed", "failed", "failed"),
        ],
    );
    let failed = of_unit(&events, "t-fail.service")
        .into_iter()
        .find(|e| e.event_type == "systemd.unit.failed")
        .unwrap();
    assert_eq!(failed.severity, Severity::Error);
    assert_eq!(failed.str("systemd.unit.result"), Some("exit-code"));
    assert_eq!(failed.int("process.exit.code"), Some(3));
    assert_eq!(show(&dirs, "t-fail.service", "ExecMainStatus"), "3");
    let exec_pid: i128 = show(&dirs, "t-fail.service", "ExecMainPID")
        .parse()
        .unwrap();
    assert_eq!(failed.int("process.pid"), Some(exec_pid));

    // A unit that fails twice and is restarted twice by systemd, then runs.
    start_unit(&dirs, "t-restart.service");
    let events = h.wait_until(WAIT, |e| {
        let r = of_unit(e, "t-restart.service");
        r.iter()
            .filter(|e| e.event_type == "systemd.unit.restart")
            .count()
            == 2
            && r.iter().any(|e| {
                e.str("systemd.unit.sub_state") == Some("running")
                    && e.int("systemd.unit.restarts") == Some(2)
            })
    });
    eprintln!("t-restart: {:?}", transitions(&events, "t-restart.service"));
    // systemd 252 passes through `failed` before `auto-restart` (and, here, `inactive/dead`
    // before each new start: transient states such as that one may be coalesced by systemd
    // under load, so the exact published sequence is checked against the bus monitor below).
    let cycle = [
        t("state_change", "active", "running"),
        t("state_change", "failed", "failed"),
        t("failed", "failed", "failed"),
        t("state_change", "activating", "auto-restart"),
        t("restart", "activating", "auto-restart"),
    ];
    let mut want = [cycle.clone(), cycle].concat();
    want.push(t("state_change", "active", "running"));
    assert_in_order(&transitions(&events, "t-restart.service"), &want);
    let r = of_unit(&events, "t-restart.service");
    let restarts: Vec<i128> = r
        .iter()
        .filter(|e| e.event_type == "systemd.unit.restart")
        .filter_map(|e| e.int("systemd.unit.restarts"))
        .collect();
    assert_eq!(restarts, [1, 2]);
    let failures: Vec<&&Captured> = r
        .iter()
        .filter(|e| e.event_type == "systemd.unit.failed")
        .collect();
    assert_eq!(failures.len(), 2, "{r:#?}");
    for f in &failures {
        assert_eq!(f.int("process.exit.code"), Some(3));
        assert_eq!(f.str("systemd.unit.result"), Some("exit-code"));
    }
    assert_eq!(show(&dirs, "t-restart.service", "NRestarts"), "2");
    let last = r.last().unwrap();
    assert_eq!(
        last.int("process.pid"),
        Some(
            show(&dirs, "t-restart.service", "MainPID")
                .parse::<i128>()
                .unwrap()
        )
    );

    // A unit outside the patterns is never reported.
    start_unit(&dirs, "other.service");
    std::thread::sleep(Duration::from_millis(500));
    assert!(of_unit(&h.events(), "other.service").is_empty());
    assert_eq!(h.health().status, HealthStatus::Healthy);
    assert_eq!(h.metric("dropped_events_total"), Some(0.0));
    let events = h.events();
    h.stop().unwrap();

    // The oracle: every state systemd published on the bus for the watched units, in
    // order, is exactly one state change reported by the collector.
    let published = monitor.finish();
    for unit in ["t-ok.service", "t-fail.service", "t-restart.service"] {
        let reported: Vec<(String, String)> = transitions(&events, unit)
            .into_iter()
            .filter(|(kind, ..)| kind == "state_change")
            .map(|(_, a, s)| (a, s))
            .collect();
        // A unit is published once when loaded (inactive/dead): the collector's baseline.
        let mut published = published.get(unit).cloned().unwrap_or_default();
        assert_eq!(
            published.first(),
            Some(&("inactive".into(), "dead".into())),
            "{unit}"
        );
        published.remove(0);
        assert_eq!(
            published, reported,
            "{unit}: published on the bus vs reported"
        );
    }
    assert!(
        published.contains_key("other.service"),
        "the monitor saw other.service"
    );
}

#[test]
fn meets_the_collector_contract() {
    if !can_run("meets_the_collector_contract") {
        return;
    }
    let _serial = serial();
    let dirs = Dirs::new();
    write_units(&dirs);
    let _manager = UserManager::start(&dirs);
    let d = dirs.runtime.clone();
    // Start a unit while the contract runs, so that it sees real events.
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let _ = std::process::Command::new("systemctl")
            .env("XDG_RUNTIME_DIR", d)
            .args(["--user", "start", "t-fail.service"])
            .status();
    });
    let events = spec::check::<SystemdCollector>(&config(&dirs), Duration::from_secs(3)).unwrap();
    starter.join().unwrap();
    assert!(
        events.iter().any(|e| e.event_type == "systemd.unit.failed"),
        "{events:#?}"
    );
}

#[test]
fn unreachable_bus_is_unhealthy_then_recovers_by_itself() {
    if !can_run("unreachable_bus_is_unhealthy_then_recovers_by_itself") {
        return;
    }
    let _serial = serial();
    let dirs = Dirs::new();
    write_units(&dirs);
    // No manager, no bus yet.
    let mut h = Harness::<SystemdCollector>::create(&config(&dirs)).unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let health = h.health();
    assert_eq!(health.status, HealthStatus::Failed, "{health:?}");
    assert!(
        health.reason.contains("cannot connect to the bus"),
        "{health:?}"
    );
    assert!(health.reason.contains(&dirs.bus_address()), "{health:?}");
    assert!(
        h.metric("connection_failures_total").unwrap() >= 2.0,
        "backoff retries"
    );

    // The manager appears: the collector connects by itself and reports.
    let mut manager = UserManager::start(&dirs);
    wait_healthy(&h);
    start_unit(&dirs, "t-ok.service");
    h.wait_until(WAIT, |e| !of_unit(e, "t-ok.service").is_empty());

    // The manager and its bus go away: unhealthy again, with the reason.
    manager.kill();
    let deadline = std::time::Instant::now() + WAIT;
    while h.health().status == HealthStatus::Healthy {
        assert!(std::time::Instant::now() < deadline, "still healthy");
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("after kill: {:?}", h.health());

    // A new manager on the same bus path: recovered, and its units are reported.
    let _manager = UserManager::start(&dirs);
    wait_healthy(&h);
    h.take_events();
    start_unit(&dirs, "t-fail.service");
    let events = h.wait_until(WAIT, |e| {
        of_unit(e, "t-fail.service")
            .iter()
            .any(|e| e.event_type == "systemd.unit.failed")
    });
    assert!(!of_unit(&events, "t-fail.service").is_empty());
    assert!(h.metric("sessions_total").unwrap() >= 2.0);
    h.stop().unwrap();
}

#[test]
fn manager_reexec_on_a_live_bus_is_noticed_and_survived() {
    if !can_run("manager_reexec_on_a_live_bus_is_noticed_and_survived") {
        return;
    }
    let _serial = serial();
    let dirs = Dirs::new();
    write_units(&dirs);
    let _manager = UserManager::start(&dirs);
    let mut h = Harness::<SystemdCollector>::create(&config(&dirs)).unwrap();
    h.start().unwrap();
    wait_healthy(&h);
    assert_eq!(h.metric("sessions_total"), Some(1.0));
    // systemd re-executes itself: it leaves the bus (NameOwnerChanged) and comes back, while
    // the bus daemon keeps running.
    let out = systemctl(&dirs, &["daemon-reexec"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + WAIT;
    while h.metric("sessions_total") < Some(2.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "no new session: {:?}",
            h.health()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(h.metric("resyncs_total").unwrap() >= 1.0);
    assert_eq!(
        h.metric("connection_failures_total"),
        Some(0.0),
        "a re-exec is no failure"
    );
    wait_healthy(&h);
    // Subscribed again: units are reported as before.
    start_unit(&dirs, "t-fail.service");
    let events = h.wait_until(WAIT, |e| {
        of_unit(e, "t-fail.service")
            .iter()
            .any(|e| e.event_type == "systemd.unit.failed")
    });
    let failed = of_unit(&events, "t-fail.service")
        .into_iter()
        .find(|e| e.event_type == "systemd.unit.failed")
        .unwrap();
    assert_eq!(failed.int("process.exit.code"), Some(3));
    h.stop().unwrap();
}

#[test]
fn daemon_reload_neither_invents_nor_loses_transitions() {
    if !can_run("daemon_reload_neither_invents_nor_loses_transitions") {
        return;
    }
    let _serial = serial();
    let dirs = Dirs::new();
    write_units(&dirs);
    let _manager = UserManager::start(&dirs);
    let mut h = Harness::<SystemdCollector>::create(&config(&dirs)).unwrap();
    h.start().unwrap();
    wait_healthy(&h);
    start_unit(&dirs, "t-ok.service");
    h.wait_until(WAIT, |e| {
        of_unit(e, "t-ok.service")
            .iter()
            .any(|e| e.str("systemd.unit.sub_state") == Some("running"))
    });
    h.take_events();
    // A reload unloads and reloads every unit: a running unit stays running, nothing moved.
    let out = systemctl(&dirs, &["daemon-reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + WAIT;
    while h.metric("resyncs_total") < Some(1.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "no resync after the reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(h.metric("sessions_total"), Some(1.0), "same subscription");
    assert!(
        of_unit(&h.events(), "t-ok.service").is_empty(),
        "a reload is no transition: {:#?}",
        h.events()
    );
    // The state it knows is still the real one.
    assert!(systemctl(&dirs, &["stop", "t-ok.service"]).status.success());
    let events = h.wait_until(WAIT, |e| {
        of_unit(e, "t-ok.service")
            .iter()
            .any(|e| e.str("systemd.unit.sub_state") == Some("dead"))
    });
    let first = of_unit(&events, "t-ok.service")[0];
    assert_eq!(
        first.str("systemd.unit.previous_active_state"),
        Some("active")
    );
    assert_eq!(
        first.str("systemd.unit.previous_sub_state"),
        Some("running")
    );
    assert_eq!(h.metric("connection_failures_total"), Some(0.0));
    h.stop().unwrap();
}

#[test]
fn bad_config_is_refused_with_every_problem() {
    let err = match Harness::<SystemdCollector>::create(
        &json!({"units": ["ok", "bad["], "bus_address": "nowhere", "max_backoff": "1ms"})
            .to_string(),
    ) {
        Ok(_) => panic!("bad config accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("unterminated '['"), "{err}");
    assert!(err.contains("bus_address"), "{err}");
    assert!(err.contains("max_backoff"), "{err}");
}
