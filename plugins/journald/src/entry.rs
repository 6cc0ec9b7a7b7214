//! One journal entry as the collector reads it, and the `journald.entry` event it becomes:
//! PRIORITY mapped to a severity, the well-known fields mapped to attributes.

use tapio_plugin_api::{Attribute, Event, Severity};

/// `journald.entry`.
pub const ENTRY: &str = "journald.entry";

/// The fields of one entry the collector uses, copied out of the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// `__REALTIME_TIMESTAMP`, microseconds since the epoch.
    pub realtime_usec: u64,
    /// The entry's cursor (as `journalctl` prints it in `__CURSOR`).
    pub cursor: String,
    /// The boot id of the entry header, 32 hex digits.
    pub boot_id: String,
    /// `MESSAGE`.
    pub message: Option<String>,
    /// `_SYSTEMD_UNIT`.
    pub unit: Option<String>,
    /// `PRIORITY`, when it is 0-7.
    pub priority: Option<u8>,
    /// `SYSLOG_IDENTIFIER`.
    pub identifier: Option<String>,
    /// `_PID`.
    pub pid: Option<u32>,
    /// Configured extra fields present in the entry: (attribute key, value).
    pub extra: Vec<(String, String)>,
}

/// The severity of a syslog priority: emerg, alert and crit are critical.
pub fn severity(priority: Option<u8>) -> Severity {
    match priority {
        Some(0..=2) => Severity::Critical,
        Some(3) => Severity::Error,
        Some(4) => Severity::Warning,
        Some(5) => Severity::Low,
        Some(7) => Severity::Debug,
        _ => Severity::Info,
    }
}

/// Parses `PRIORITY`: a single digit 0-7, anything else is no priority.
pub fn parse_priority_field(value: &str) -> Option<u8> {
    match value.trim().parse::<u8>() {
        Ok(p) if p <= 7 => Some(p),
        _ => None,
    }
}

impl Entry {
    /// The attributes of this entry's event (borrowing from it).
    pub fn attributes(&self) -> Vec<Attribute<'_>> {
        let mut attrs = Vec::with_capacity(8 + self.extra.len());
        if let Some(u) = &self.unit {
            attrs.push(Attribute::str("systemd.unit", u));
        }
        if let Some(m) = &self.message {
            attrs.push(Attribute::str("log.record.original", m));
        }
        if let Some(i) = &self.identifier {
            attrs.push(Attribute::str("syslog.identifier", i));
        }
        if let Some(p) = self.pid {
            attrs.push(Attribute::uint("process.pid", p.into()));
        }
        if let Some(p) = self.priority {
            attrs.push(Attribute::uint("journald.priority", p.into()));
        }
        attrs.push(Attribute::str("journald.cursor", &self.cursor));
        attrs.push(Attribute::str("host.boot_id", &self.boot_id));
        for (key, value) in &self.extra {
            attrs.push(Attribute::str(key, value));
        }
        attrs
    }

    /// The event, with `attrs` from [`Entry::attributes`].
    pub fn event<'a>(&self, attrs: &'a [Attribute<'a>]) -> Event<'a> {
        let mut e = Event::at(
            self.realtime_usec.saturating_mul(1000),
            ENTRY,
            severity(self.priority),
        )
        .with_attributes(attrs);
        if let Some(pid) = self.pid {
            e = e.with_pid(pid);
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_map_to_severities() {
        let got: Vec<Severity> = (0..=7).map(|p| severity(Some(p))).collect();
        assert_eq!(
            got,
            [
                Severity::Critical,
                Severity::Critical,
                Severity::Critical,
                Severity::Error,
                Severity::Warning,
                Severity::Low,
                Severity::Info,
                Severity::Debug,
            ]
        );
        assert_eq!(severity(None), Severity::Info);
        assert_eq!(parse_priority_field("3"), Some(3));
        assert_eq!(parse_priority_field("9"), None);
        assert_eq!(parse_priority_field("x"), None);
    }

    #[test]
    fn attributes_name_the_well_known_fields() {
        let e = Entry {
            realtime_usec: 5,
            cursor: "s=1;i=2".into(),
            boot_id: "ab".into(),
            message: Some("hi".into()),
            unit: Some("a.service".into()),
            priority: Some(3),
            identifier: Some("app".into()),
            pid: Some(42),
            extra: vec![("journald.field.CODE_LINE".into(), "7".into())],
        };
        let attrs = e.attributes();
        let keys: Vec<&str> = attrs.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "systemd.unit",
                "log.record.original",
                "syslog.identifier",
                "process.pid",
                "journald.priority",
                "journald.cursor",
                "host.boot_id",
                "journald.field.CODE_LINE",
            ]
        );
        let ev = e.event(&attrs);
        assert_eq!(ev.timestamp_ns, 5000);
        assert_eq!(ev.severity, Severity::Error);
    }
}
