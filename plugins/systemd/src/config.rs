//! The systemd collector's settings: the schema the host validates, and the checks that
//! need more than a type (patterns, bus address, backoff bounds), all reported at once.

use std::time::Duration;

use serde::Deserialize;
use tapio_plugin_api::{config::duration, ConfigField, RStr};

use crate::pattern::Patterns;

static DEFAULT_UNITS: [RStr<'static>; 1] = [RStr::from_str("*.service")];

/// `bus_address` value meaning the system bus.
pub const SYSTEM_BUS: &str = "system";

/// The config schema, in `INFO.config`.
pub const SCHEMA: &[ConfigField] = &[
    ConfigField::string(
        "bus_address",
        SYSTEM_BUS,
        "D-Bus message bus where systemd's manager (`org.freedesktop.systemd1`) is: `system` \
         for the system bus (`$DBUS_SYSTEM_BUS_ADDRESS` or /run/dbus/system_bus_socket), \
         `session` for the session bus of a `systemd --user`, or an address such as \
         `unix:path=/run/user/1000/bus`.",
    ),
    ConfigField::string_list(
        "units",
        &DEFAULT_UNITS,
        "Unit name globs (`*`, `?`, `[a-z]`, as `systemctl list-units PATTERN`); a unit is \
         watched when any matches.",
    ),
    ConfigField::duration(
        "call_timeout",
        "5s",
        "Deadline of each D-Bus call (connect, Subscribe, ListUnits, GetAll).",
    ),
    ConfigField::duration(
        "min_backoff",
        "500ms",
        "First wait before reconnecting after the bus or systemd went away (doubles per failure).",
    ),
    ConfigField::duration(
        "max_backoff",
        "30s",
        "Longest wait between two reconnection attempts.",
    ),
];

/// The parsed settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `system`, `session` or a D-Bus address.
    pub bus_address: String,
    /// Unit globs.
    pub units: Vec<String>,
    /// Per-call deadline.
    #[serde(with = "duration")]
    pub call_timeout: Duration,
    /// First reconnect wait.
    #[serde(with = "duration")]
    pub min_backoff: Duration,
    /// Reconnect wait cap.
    #[serde(with = "duration")]
    pub max_backoff: Duration,
}

impl Settings {
    /// The compiled patterns, or every problem the settings have.
    pub fn validate(&self) -> Result<Patterns, Vec<String>> {
        let mut problems = Vec::new();
        let patterns = match Patterns::new(&self.units) {
            Ok(p) => Some(p),
            Err(bad) => {
                problems.extend(bad.into_iter().map(|b| format!("units: {b}")));
                None
            }
        };
        if self.units.is_empty() {
            problems.push("units: at least one pattern is required".to_owned());
        }
        let address = self.bus_address.trim();
        if address.is_empty() {
            problems.push("bus_address must not be empty (use `system`)".to_owned());
        } else if address != SYSTEM_BUS && address != "session" && !address.contains(':') {
            problems.push(format!(
                "bus_address {address:?} is neither `system`, `session` nor a D-Bus address \
                 such as `unix:path=/run/dbus/system_bus_socket`"
            ));
        }
        if self.call_timeout.is_zero() {
            problems.push("call_timeout must be greater than zero".to_owned());
        }
        if self.min_backoff.is_zero() {
            problems.push("min_backoff must be greater than zero".to_owned());
        }
        if self.max_backoff < self.min_backoff {
            problems.push(format!(
                "max_backoff ({:?}) must not be shorter than min_backoff ({:?})",
                self.max_backoff, self.min_backoff
            ));
        }
        match patterns {
            Some(p) if problems.is_empty() => Ok(p),
            _ => Err(problems),
        }
    }
}

/// The wait after `failures` failed attempts in a row: `min` doubled per failure after the
/// first, capped at `max`.
pub fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u32::MAX);
    min.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            bus_address: "system".into(),
            units: vec!["*.service".into()],
            call_timeout: Duration::from_secs(5),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut s = settings();
        s.units = vec!["bad[".into()];
        s.bus_address = "nowhere".into();
        s.call_timeout = Duration::ZERO;
        s.max_backoff = Duration::from_millis(1);
        let problems = s.validate().unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(settings().validate().is_ok());
        let mut s = settings();
        s.bus_address = "unix:path=/tmp/x/bus".into();
        assert!(s.validate().is_ok());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let ms = Duration::from_millis;
        assert_eq!(backoff(ms(500), ms(4000), 0), ms(500));
        assert_eq!(backoff(ms(500), ms(4000), 1), ms(500));
        assert_eq!(backoff(ms(500), ms(4000), 2), ms(1000));
        assert_eq!(backoff(ms(500), ms(4000), 4), ms(4000));
        assert_eq!(backoff(ms(500), ms(4000), 90), ms(4000));
    }
}
