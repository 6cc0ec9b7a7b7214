//! The journald collector's settings: the schema the host validates, and the checks that
//! need more than a type (priority names, match syntax, one source at a time), all reported
//! at once.

use std::time::Duration;

use serde::Deserialize;
use tapio_plugin_api::{config::duration, ConfigField, RStr};

static EMPTY: [RStr<'static>; 0] = [];
static START_AT: [RStr<'static>; 2] = [RStr::from_str("tail"), RStr::from_str("head")];

/// The config schema, in `INFO.config`.
pub const SCHEMA: &[ConfigField] = &[
    ConfigField::string(
        "directory",
        "",
        "Read the journal files in this directory (and its machine-id subdirectories) instead \
         of the system journal.",
    )
    .optional(),
    ConfigField::string_list(
        "files",
        &EMPTY,
        "Read these journal files instead of the system journal (not with `directory`).",
    ),
    ConfigField::string_list(
        "units",
        &EMPTY,
        "Only entries whose `_SYSTEMD_UNIT` is one of these unit names (empty = any unit).",
    ),
    ConfigField::string(
        "max_priority",
        "",
        "Only entries with this PRIORITY or more urgent: 0-7 or emerg, alert, crit, err, \
         warning, notice, info, debug (empty = no priority filter; a filter excludes entries \
         without PRIORITY, as `journalctl -p` does).",
    )
    .optional(),
    ConfigField::string_list(
        "matches",
        &EMPTY,
        "Extra `FIELD=value` matches, as `journalctl FIELD=value`: matches on the same field \
         are alternatives (OR), different fields must all match (AND).",
    ),
    ConfigField::string_list(
        "fields",
        &EMPTY,
        "Extra journal fields copied to each event as `journald.field.<FIELD>` when present.",
    ),
    ConfigField::bool(
        "follow",
        true,
        "Keep waiting for new entries; false = stop reading at the end of the journal.",
    ),
    ConfigField::string(
        "start_at",
        "tail",
        "Where to begin when no cursor was persisted yet: `tail` (only new entries) or \
         `head` (everything in the journal).",
    )
    .choices(&START_AT),
    ConfigField::duration(
        "poll_interval",
        "250ms",
        "Longest wait for new entries before checking for stop (new entries wake it at once).",
    ),
    ConfigField::uint(
        "batch_size",
        256,
        "Entries emitted per batch; the cursor is persisted after each batch.",
    ),
    ConfigField::duration(
        "max_backoff",
        "30s",
        "Longest wait between attempts to open an unreadable journal (doubles from 250ms).",
    ),
];

/// The parsed settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Journal directory.
    #[serde(default)]
    pub directory: Option<String>,
    /// Journal files.
    pub files: Vec<String>,
    /// `_SYSTEMD_UNIT` filter.
    pub units: Vec<String>,
    /// PRIORITY filter.
    #[serde(default)]
    pub max_priority: Option<String>,
    /// `FIELD=value` matches.
    pub matches: Vec<String>,
    /// Extra fields to copy.
    pub fields: Vec<String>,
    /// Follow mode.
    pub follow: bool,
    /// `tail` or `head`.
    pub start_at: String,
    /// Longest wait.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// Entries per batch.
    pub batch_size: u64,
    /// Reopen backoff cap.
    #[serde(with = "duration")]
    pub max_backoff: Duration,
}

/// Where entries come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The system journal (/run/log/journal, /var/log/journal).
    System,
    /// A directory of journal files.
    Directory(String),
    /// Journal files.
    Files(Vec<String>),
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The source.
    pub source: Source,
    /// `(field, value)` matches, units and priorities included.
    pub matches: Vec<(String, String)>,
    /// Extra fields and their attribute keys.
    pub fields: Vec<(String, String)>,
    /// Follow mode.
    pub follow: bool,
    /// Begin at the head when there is no cursor.
    pub from_head: bool,
    /// Longest wait.
    pub poll_interval: Duration,
    /// Entries per batch.
    pub batch_size: usize,
    /// Reopen backoff cap.
    pub max_backoff: Duration,
}

/// syslog priority names, index = value.
const PRIORITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// A priority given as 0-7 or its syslog name.
pub fn parse_priority(text: &str) -> Option<u8> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u8>() {
        return (n <= 7).then_some(n);
    }
    PRIORITIES
        .iter()
        .position(|p| p.eq_ignore_ascii_case(text))
        .and_then(|i| u8::try_from(i).ok())
}

/// Whether `name` is a valid journal field name (what sd-journal accepts in a match:
/// uppercase letters, digits and `_`, not starting with a digit).
pub fn valid_field(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

impl Settings {
    /// The validated plan, or every problem the settings have.
    pub fn plan(&self) -> Result<Plan, Vec<String>> {
        let mut problems = Vec::new();
        let directory = self
            .directory
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty());
        let source = match (directory, self.files.is_empty()) {
            (Some(_), false) => {
                problems.push("set either directory or files, not both".to_owned());
                Source::System
            }
            (Some(d), true) => Source::Directory(d.to_owned()),
            (None, false) => {
                if self.files.iter().any(|f| f.trim().is_empty()) {
                    problems.push("files: an entry is empty".to_owned());
                }
                Source::Files(self.files.clone())
            }
            (None, true) => Source::System,
        };
        let mut matches = Vec::new();
        for unit in &self.units {
            if unit.trim().is_empty() {
                problems.push("units: an entry is empty".to_owned());
            } else {
                matches.push(("_SYSTEMD_UNIT".to_owned(), unit.trim().to_owned()));
            }
        }
        if let Some(p) = self
            .max_priority
            .as_deref()
            .filter(|p| !p.trim().is_empty())
        {
            match parse_priority(p) {
                Some(max) => {
                    for n in 0..=max {
                        matches.push(("PRIORITY".to_owned(), n.to_string()));
                    }
                }
                None => problems.push(format!(
                    "max_priority {p:?} is not 0-7 or one of {}",
                    PRIORITIES.join(", ")
                )),
            }
        }
        for m in &self.matches {
            match m.split_once('=') {
                Some((field, value)) if valid_field(field) => {
                    matches.push((field.to_owned(), value.to_owned()))
                }
                _ => problems.push(format!(
                    "matches: {m:?} is not FIELD=value (FIELD: A-Z, 0-9, _, not starting with a digit)"
                )),
            }
        }
        let mut fields = Vec::new();
        for f in &self.fields {
            if valid_field(f) {
                fields.push((f.clone(), format!("journald.field.{f}")));
            } else {
                problems.push(format!(
                    "fields: {f:?} is not a journal field name (A-Z, 0-9, _)"
                ));
            }
        }
        if self.poll_interval.is_zero() {
            problems.push("poll_interval must be greater than zero".to_owned());
        }
        if self.batch_size == 0 || self.batch_size > 65_536 {
            problems.push("batch_size must be within 1..=65536".to_owned());
        }
        if self.max_backoff < Duration::from_millis(250) {
            problems.push("max_backoff must be at least 250ms".to_owned());
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Plan {
            source,
            matches,
            fields,
            follow: self.follow,
            from_head: self.start_at == "head",
            poll_interval: self.poll_interval,
            batch_size: usize::try_from(self.batch_size).unwrap_or(256),
            max_backoff: self.max_backoff,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            directory: None,
            files: vec![],
            units: vec![],
            max_priority: None,
            matches: vec![],
            fields: vec![],
            follow: true,
            start_at: "tail".into(),
            poll_interval: Duration::from_millis(250),
            batch_size: 256,
            max_backoff: Duration::from_secs(30),
        }
    }

    #[test]
    fn priorities_by_number_or_name() {
        assert_eq!(parse_priority("3"), Some(3));
        assert_eq!(parse_priority("warning"), Some(4));
        assert_eq!(parse_priority("CRIT"), Some(2));
        assert_eq!(parse_priority("8"), None);
        assert_eq!(parse_priority("loud"), None);
    }

    #[test]
    fn filters_become_sd_journal_matches() {
        let mut s = settings();
        s.units = vec!["a.service".into(), "b.service".into()];
        s.max_priority = Some("err".into());
        s.matches = vec!["SYSLOG_IDENTIFIER=app".into(), "_COMM=x=y".into()];
        s.fields = vec!["CODE_FILE".into()];
        let plan = s.plan().unwrap();
        let m: Vec<String> = plan
            .matches
            .iter()
            .map(|(f, v)| format!("{f}={v}"))
            .collect();
        assert_eq!(
            m,
            [
                "_SYSTEMD_UNIT=a.service",
                "_SYSTEMD_UNIT=b.service",
                "PRIORITY=0",
                "PRIORITY=1",
                "PRIORITY=2",
                "PRIORITY=3",
                "SYSLOG_IDENTIFIER=app",
                "_COMM=x=y",
            ]
        );
        assert_eq!(
            plan.fields,
            [("CODE_FILE".into(), "journald.field.CODE_FILE".into())]
        );
        assert_eq!(plan.source, Source::System);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut s = settings();
        s.directory = Some("/var/log/journal".into());
        s.files = vec!["a.journal".into()];
        s.max_priority = Some("loud".into());
        s.matches = vec!["lower=x".into(), "NOEQUALS".into()];
        s.fields = vec!["bad field".into()];
        s.batch_size = 0;
        let problems = s.plan().unwrap_err();
        assert_eq!(problems.len(), 6, "{problems:#?}");
    }
}
