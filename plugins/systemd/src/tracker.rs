//! The unit state machine, free of D-Bus: baselines from `ListUnits`/`GetAll`, property
//! changes from `PropertiesChanged`, and the events they mean (state changes, failures,
//! restarts). Every input carries the sender's message serial so that a signal older than
//! the snapshot it races with is recognised and ignored.

use std::collections::HashMap;

use tapio_plugin_api::Severity;

use crate::pattern::Patterns;
use tapio_event_buffer::{OwnedEvent, Value};

/// `systemd.unit.state_change`.
pub const STATE_CHANGE: &str = "systemd.unit.state_change";
/// `systemd.unit.failed`.
pub const FAILED: &str = "systemd.unit.failed";
/// `systemd.unit.restart`.
pub const RESTART: &str = "systemd.unit.restart";

/// `si_code` of a main process that exited (`CLD_EXITED`).
const CLD_EXITED: i32 = 1;

/// Which D-Bus interface a set of properties came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Iface {
    /// `org.freedesktop.systemd1.Unit`: ActiveState, SubState.
    Unit,
    /// `org.freedesktop.systemd1.Service`: Result, NRestarts, MainPID, ExecMain*.
    Service,
}

/// The properties this collector reads; `None` = not in this update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props {
    /// `ActiveState`.
    pub active_state: Option<String>,
    /// `SubState`.
    pub sub_state: Option<String>,
    /// `Result` (services).
    pub result: Option<String>,
    /// `NRestarts` (services).
    pub n_restarts: Option<u32>,
    /// `MainPID` (services; 0 when none).
    pub main_pid: Option<u32>,
    /// `ExecMainPID` (services): the last main process, kept after it exits.
    pub exec_main_pid: Option<u32>,
    /// `ExecMainCode` (services): `CLD_EXITED`, `CLD_KILLED`, `CLD_DUMPED`.
    pub exec_main_code: Option<i32>,
    /// `ExecMainStatus` (services): exit status, or signal number when killed.
    pub exec_main_status: Option<i32>,
}

impl Props {
    fn merge(&mut self, update: &Props) {
        fn set<T: Clone>(dst: &mut Option<T>, src: &Option<T>) {
            if src.is_some() {
                dst.clone_from(src);
            }
        }
        set(&mut self.active_state, &update.active_state);
        set(&mut self.sub_state, &update.sub_state);
        set(&mut self.result, &update.result);
        set(&mut self.n_restarts, &update.n_restarts);
        set(&mut self.main_pid, &update.main_pid);
        set(&mut self.exec_main_pid, &update.exec_main_pid);
        set(&mut self.exec_main_code, &update.exec_main_code);
        set(&mut self.exec_main_status, &update.exec_main_status);
    }
}

#[derive(Debug, Default)]
struct Unit {
    props: Props,
    /// Serial of the message each interface's baseline came from: older signals are stale.
    baseline_serial: HashMap<Iface, u32>,
}

/// Every matching unit's last known state.
#[derive(Debug)]
pub struct Tracker {
    patterns: Patterns,
    units: HashMap<String, Unit>,
    stale_signals: u64,
}

impl Tracker {
    /// A tracker of the units matching `patterns`.
    pub fn new(patterns: Patterns) -> Self {
        Tracker {
            patterns,
            units: HashMap::new(),
            stale_signals: 0,
        }
    }

    /// Whether `unit` is one this collector watches.
    pub fn wants(&self, unit: &str) -> bool {
        self.patterns.matches(unit)
    }

    /// Forgets everything (after a reconnect, before the new snapshot).
    pub fn clear(&mut self) {
        self.units.clear();
    }

    /// Number of units tracked.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Signals ignored because a newer snapshot had already been taken.
    pub fn stale_signals(&self) -> u64 {
        self.stale_signals
    }

    /// The last known properties of `unit`.
    #[cfg(test)]
    pub fn props(&self, unit: &str) -> Option<&Props> {
        self.units.get(unit).map(|u| &u.props)
    }

    /// Records a snapshot of `iface` taken from the reply with `serial`: no events.
    pub fn baseline(&mut self, unit: &str, iface: Iface, props: &Props, serial: u32) {
        if !self.wants(unit) {
            return;
        }
        let u = self.units.entry(unit.to_owned()).or_default();
        u.props.merge(props);
        u.baseline_serial.insert(iface, serial);
    }

    /// A unit was loaded (`UnitNew`): a freshly loaded unit is inactive and never restarted.
    pub fn loaded(&mut self, unit: &str) {
        if !self.wants(unit) || self.units.contains_key(unit) {
            return;
        }
        let props = Props {
            active_state: Some("inactive".into()),
            sub_state: Some("dead".into()),
            n_restarts: unit.ends_with(".service").then_some(0),
            ..Props::default()
        };
        self.units.insert(
            unit.to_owned(),
            Unit {
                props,
                baseline_serial: HashMap::new(),
            },
        );
    }

    /// A unit was unloaded (`UnitRemoved`).
    pub fn unloaded(&mut self, unit: &str) {
        self.units.remove(unit);
    }

    /// Applies one `PropertiesChanged` signal (message `serial`) and returns its events.
    pub fn changed(
        &mut self,
        now_ns: u64,
        unit: &str,
        iface: Iface,
        update: &Props,
        serial: u32,
    ) -> Vec<OwnedEvent> {
        if !self.wants(unit) {
            return Vec::new();
        }
        let u = self.units.entry(unit.to_owned()).or_default();
        if u.baseline_serial.get(&iface).is_some_and(|&b| serial <= b) {
            self.stale_signals += 1;
            return Vec::new();
        }
        let before = u.props.clone();
        u.props.merge(update);
        let now = &u.props;
        let mut events = Vec::new();
        if let (Some(old), Some(new)) = (before.n_restarts, update.n_restarts) {
            if new > old {
                events.push(event(
                    now_ns,
                    RESTART,
                    Severity::Warning,
                    unit,
                    now,
                    &before,
                ));
            }
        }
        let state_moved = (update.active_state.is_some() || update.sub_state.is_some())
            && (before.active_state != now.active_state || before.sub_state != now.sub_state);
        if state_moved {
            events.push(event(
                now_ns,
                STATE_CHANGE,
                Severity::Info,
                unit,
                now,
                &before,
            ));
            let entered_failed = now.active_state.as_deref() == Some("failed")
                && before.active_state.as_deref() != Some("failed");
            // systemd >= 254 goes straight from running to auto-restart; older versions pass
            // through `failed` first (already reported above).
            let failed_restarting = now.sub_state.as_deref() == Some("auto-restart")
                && before.sub_state.as_deref() != Some("auto-restart")
                && before.active_state.as_deref() != Some("failed")
                && now.result.as_deref().is_some_and(|r| r != "success");
            if entered_failed || failed_restarting {
                events.push(event(now_ns, FAILED, Severity::Error, unit, now, &before));
            }
        }
        events
    }
}

/// One event with the unit's current state.
fn event(
    now_ns: u64,
    event_type: &'static str,
    severity: Severity,
    unit: &str,
    now: &Props,
    before: &Props,
) -> OwnedEvent {
    let mut attrs = vec![("systemd.unit", Value::Str(unit.to_owned()))];
    let mut text = |key: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            attrs.push((key, Value::Str(v.clone())));
        }
    };
    text("systemd.unit.active_state", &now.active_state);
    text("systemd.unit.sub_state", &now.sub_state);
    text("systemd.unit.previous_active_state", &before.active_state);
    text("systemd.unit.previous_sub_state", &before.sub_state);
    text("systemd.unit.result", &now.result);
    if let Some(n) = now.n_restarts {
        attrs.push(("systemd.unit.restarts", Value::UInt(n.into())));
    }
    let pid = match event_type {
        // The process that failed is gone: MainPID is 0, ExecMainPID names it.
        FAILED => now.exec_main_pid,
        _ => now.main_pid,
    };
    if let Some(pid) = pid.filter(|&p| p != 0) {
        attrs.push(("process.pid", Value::UInt(pid.into())));
    }
    if event_type == FAILED {
        match (now.exec_main_code, now.exec_main_status) {
            (Some(CLD_EXITED), Some(status)) => {
                attrs.push(("process.exit.code", Value::Int(status.into())))
            }
            (Some(_), Some(signal)) if signal > 0 => {
                attrs.push(("process.exit.signal", Value::Int(signal.into())))
            }
            _ => {}
        }
    }
    OwnedEvent::new(now_ns, event_type, severity)
        .with_attributes(attrs)
        .pid_from_attribute("process.pid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> Tracker {
        Tracker::new(Patterns::new(&["t-*.service".into()]).unwrap())
    }

    fn state(active: &str, sub: &str) -> Props {
        Props {
            active_state: Some(active.into()),
            sub_state: Some(sub.into()),
            ..Props::default()
        }
    }

    fn svc(result: &str, restarts: u32, main_pid: u32) -> Props {
        Props {
            result: Some(result.into()),
            n_restarts: Some(restarts),
            main_pid: Some(main_pid),
            ..Props::default()
        }
    }

    fn types(events: &[OwnedEvent]) -> Vec<&str> {
        events.iter().map(|e| e.event_type).collect()
    }

    #[test]
    fn state_changes_carry_previous_and_current_state() {
        let mut t = tracker();
        t.loaded("t-ok.service");
        assert!(t
            .changed(1, "t-ok.service", Iface::Service, &svc("success", 0, 42), 5)
            .is_empty());
        let e = t.changed(
            2,
            "t-ok.service",
            Iface::Unit,
            &state("active", "running"),
            6,
        );
        assert_eq!(types(&e), [STATE_CHANGE]);
        let e = &e[0];
        assert_eq!(
            e.attr("systemd.unit"),
            Some(&Value::Str("t-ok.service".into()))
        );
        assert_eq!(
            e.attr("systemd.unit.active_state"),
            Some(&Value::Str("active".into()))
        );
        assert_eq!(
            e.attr("systemd.unit.sub_state"),
            Some(&Value::Str("running".into()))
        );
        assert_eq!(
            e.attr("systemd.unit.previous_active_state"),
            Some(&Value::Str("inactive".into()))
        );
        assert_eq!(e.attr("process.pid"), Some(&Value::UInt(42)));
        assert_eq!(e.attr("systemd.unit.restarts"), Some(&Value::UInt(0)));
        // The same state again is no change.
        assert!(t
            .changed(
                3,
                "t-ok.service",
                Iface::Unit,
                &state("active", "running"),
                7
            )
            .is_empty());
    }

    #[test]
    fn entering_failed_reports_result_exit_code_and_pid() {
        let mut t = tracker();
        t.baseline(
            "t-fail.service",
            Iface::Unit,
            &state("active", "running"),
            10,
        );
        let exited = Props {
            result: Some("exit-code".into()),
            main_pid: Some(0),
            exec_main_pid: Some(77),
            exec_main_code: Some(CLD_EXITED),
            exec_main_status: Some(3),
            ..Props::default()
        };
        assert!(t
            .changed(1, "t-fail.service", Iface::Service, &exited, 11)
            .is_empty());
        let e = t.changed(
            2,
            "t-fail.service",
            Iface::Unit,
            &state("failed", "failed"),
            12,
        );
        assert_eq!(types(&e), [STATE_CHANGE, FAILED]);
        let f = &e[1];
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(
            f.attr("systemd.unit.result"),
            Some(&Value::Str("exit-code".into()))
        );
        assert_eq!(f.attr("process.exit.code"), Some(&Value::Int(3)));
        assert_eq!(f.attr("process.pid"), Some(&Value::UInt(77)));
    }

    #[test]
    fn killed_main_process_reports_the_signal() {
        let mut t = tracker();
        t.loaded("t-k.service");
        let killed = Props {
            result: Some("signal".into()),
            exec_main_code: Some(2),
            exec_main_status: Some(9),
            ..Props::default()
        };
        t.changed(1, "t-k.service", Iface::Service, &killed, 1);
        let e = t.changed(1, "t-k.service", Iface::Unit, &state("failed", "failed"), 2);
        assert_eq!(e[1].attr("process.exit.signal"), Some(&Value::Int(9)));
        assert_eq!(e[1].attr("process.exit.code"), None);
    }

    #[test]
    fn auto_restart_is_a_failure_and_the_restart_counts() {
        let mut t = tracker();
        t.loaded("t-r.service");
        t.changed(
            1,
            "t-r.service",
            Iface::Unit,
            &state("active", "running"),
            1,
        );
        t.changed(1, "t-r.service", Iface::Service, &svc("exit-code", 0, 0), 2);
        let e = t.changed(
            1,
            "t-r.service",
            Iface::Unit,
            &state("activating", "auto-restart"),
            3,
        );
        assert_eq!(types(&e), [STATE_CHANGE, FAILED]);
        let e = t.changed(1, "t-r.service", Iface::Service, &svc("success", 1, 99), 4);
        assert_eq!(types(&e), [RESTART]);
        assert_eq!(e[0].attr("systemd.unit.restarts"), Some(&Value::UInt(1)));
        assert_eq!(e[0].attr("process.pid"), Some(&Value::UInt(99)));
    }

    #[test]
    fn a_failure_is_reported_once_when_failed_precedes_auto_restart() {
        let mut t = tracker();
        t.loaded("t-r.service");
        t.changed(
            1,
            "t-r.service",
            Iface::Unit,
            &state("active", "running"),
            1,
        );
        t.changed(1, "t-r.service", Iface::Service, &svc("exit-code", 0, 0), 2);
        let e = t.changed(1, "t-r.service", Iface::Unit, &state("failed", "failed"), 3);
        assert_eq!(types(&e), [STATE_CHANGE, FAILED]);
        let e = t.changed(
            1,
            "t-r.service",
            Iface::Unit,
            &state("activating", "auto-restart"),
            4,
        );
        assert_eq!(types(&e), [STATE_CHANGE]);
    }

    #[test]
    fn signals_older_than_the_snapshot_are_ignored() {
        let mut t = tracker();
        t.baseline("t-a.service", Iface::Unit, &state("active", "running"), 100);
        assert!(t
            .changed(
                1,
                "t-a.service",
                Iface::Unit,
                &state("activating", "start"),
                99
            )
            .is_empty());
        assert_eq!(t.stale_signals(), 1);
        assert_eq!(
            t.props("t-a.service").unwrap().sub_state.as_deref(),
            Some("running")
        );
        assert_eq!(
            types(&t.changed(
                1,
                "t-a.service",
                Iface::Unit,
                &state("deactivating", "stop-sigterm"),
                101
            )),
            [STATE_CHANGE]
        );
    }

    #[test]
    fn units_outside_the_patterns_are_ignored() {
        let mut t = tracker();
        t.loaded("dbus.socket");
        t.baseline("dbus.service", Iface::Unit, &state("active", "running"), 1);
        assert!(t
            .changed(
                1,
                "other.service",
                Iface::Unit,
                &state("failed", "failed"),
                2
            )
            .is_empty());
        assert_eq!(t.len(), 0);
        t.loaded("t-x.service");
        t.unloaded("t-x.service");
        assert_eq!(t.len(), 0);
    }
}
