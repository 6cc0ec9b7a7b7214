//! The collector contract, as one reusable check every plugin's tests call.
//!
//! [`check`] verifies, for a collector and a config:
//! - its descriptor: a lowercase name, a description, at least one documented event type,
//!   config defaults that match their declared kinds and choices;
//! - `create` accepts the config (with defaults filled);
//! - `start` returns, `health` and `metrics` answer within 100 ms while it runs;
//! - every event it emits within `run_for` has a declared event type, a non-zero timestamp
//!   near now, and dotted attribute keys;
//! - `stop` returns within 5 s.
//!
//! It returns the events seen, so a test can go on to assert on them.

use std::time::{Duration, Instant};

use tapio_plugin_api::{Collector, ConfigDefault, FieldKind};

use crate::{Captured, Harness};

/// Runs the contract; `Err` lists every violation found.
pub fn check<C: Collector>(config_json: &str, run_for: Duration) -> Result<Vec<Captured>, String> {
    let mut problems = descriptor_problems::<C>();
    let mut harness = match Harness::<C>::create(config_json) {
        Ok(h) => h,
        Err(e) => {
            problems.push(format!("create failed: {e}"));
            return Err(problems.join("\n"));
        }
    };
    if let Err(e) = harness.start() {
        problems.push(format!("start failed: {e}"));
        return Err(problems.join("\n"));
    }
    let started = Instant::now();
    std::thread::sleep(run_for);
    let t = Instant::now();
    let _ = harness.health();
    let _ = harness.metrics();
    if t.elapsed() > Duration::from_millis(100) {
        problems.push(format!(
            "health + metrics took {:?} (must be quick)",
            t.elapsed()
        ));
    }
    if let Err(e) = harness.stop() {
        problems.push(format!("stop: {e}"));
    }
    let events = harness.events();
    let declared: Vec<&str> = C::INFO
        .event_types
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let now = tapio_plugin_api::now_unix_nanos();
    let window_start =
        now.saturating_sub((started.elapsed() + Duration::from_secs(600)).as_nanos() as u64);
    for e in &events {
        if !declared.contains(&e.event_type.as_str()) {
            problems.push(format!(
                "event type {:?} is not declared in INFO.event_types",
                e.event_type
            ));
        }
        if e.timestamp_ns < window_start || e.timestamp_ns > now + 60_000_000_000 {
            problems.push(format!(
                "event {:?} has a timestamp far from now: {}",
                e.event_type, e.timestamp_ns
            ));
        }
        for key in e.attributes.keys() {
            if key.is_empty() || key.contains(' ') {
                problems.push(format!(
                    "event {:?} has a bad attribute key {key:?}",
                    e.event_type
                ));
            }
        }
    }
    problems.dedup();
    if problems.is_empty() {
        Ok(events)
    } else {
        Err(problems.join("\n"))
    }
}

/// Problems with the static descriptor alone.
pub fn descriptor_problems<C: Collector>() -> Vec<String> {
    let info = C::INFO;
    let mut problems = Vec::new();
    let name = info.name.as_str();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        problems.push(format!(
            "name {name:?} must be lowercase letters, digits, '-' or '_'"
        ));
    }
    if info.description.is_empty() {
        problems.push("description is empty".to_owned());
    }
    if info.event_types.is_empty() {
        problems.push("no event types declared".to_owned());
    }
    for t in info.event_types.iter() {
        if !t.name.contains('.') || t.description.is_empty() {
            problems.push(format!(
                "event type {:?} must be dotted and documented",
                t.name.as_str()
            ));
        }
    }
    for f in info.config.iter() {
        if f.doc.is_empty() {
            problems.push(format!("config field {:?} has no doc", f.name.as_str()));
        }
        let ok = match (f.kind, f.default) {
            (_, ConfigDefault::Required | ConfigDefault::Absent) => true,
            (FieldKind::Bool, ConfigDefault::Bool(_)) => true,
            (FieldKind::Int, ConfigDefault::Int(_)) => true,
            (FieldKind::UInt, ConfigDefault::UInt(_)) => true,
            (FieldKind::Float, ConfigDefault::Float(_)) => true,
            (FieldKind::String, ConfigDefault::Str(s)) => {
                f.choices.is_empty() || f.choices.contains(&s)
            }
            (FieldKind::Duration, ConfigDefault::Str(s)) => {
                tapio_plugin_api::config::parse_duration(s.as_str()).is_ok()
            }
            (FieldKind::StringList, ConfigDefault::StrList(items)) => {
                f.choices.is_empty() || items.iter().all(|i| f.choices.iter().any(|c| c == i))
            }
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "config field {:?}: default does not match kind {}",
                f.name.as_str(),
                f.kind.as_str()
            ));
        }
    }
    problems
}
