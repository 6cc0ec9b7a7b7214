//! Reading recorded event streams: the JSON Lines the `jsonl` sink writes (one event object
//! per line) back into events, for scenario tests and offline replays. `timestamp_ns` (an
//! integer) may replace `timestamp` (RFC 3339 UTC); ids are reassigned by the pipeline.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use compact_str::CompactString;
use parking_lot::Mutex;
use serde_json::Value as J;

use crate::event::{Attribute, Event, Severity, TraceContext, Value};

/// A line that is not a valid recorded event.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ReplayError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Interns a source name (events hold `&'static str`); each distinct name is leaked once.
pub fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = NAMES.get_or_init(Default::default).lock();
    if let Some(s) = set.get(name) {
        return s;
    }
    let s: &'static str = Box::leak(name.to_owned().into_boxed_str());
    set.insert(s);
    s
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` into nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day): (i32, u8, u8) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':');
    let (h, mi, sec): (u8, u8, u8) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    let mut nanos: u32 = 0;
    for (i, c) in frac.chars().take(9).enumerate() {
        nanos += c.to_digit(10)? * 10u32.pow(8 - i as u32);
    }
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, day).ok()?;
    let tm = time::Time::from_hms_nano(h, mi, sec, nanos).ok()?;
    let ns = time::PrimitiveDateTime::new(date, tm)
        .assume_utc()
        .unix_timestamp_nanos();
    u64::try_from(ns).ok()
}

fn severity(s: &str) -> Option<Severity> {
    Severity::ALL.into_iter().find(|v| v.as_str() == s)
}

/// Parses one recorded event.
pub fn parse_line(text: &str, line: usize) -> Result<Event, ReplayError> {
    let err = |message: String| ReplayError { line, message };
    let v: J = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| err("not a JSON object".into()))?;
    let ts = match (obj.get("timestamp_ns"), obj.get("timestamp")) {
        (Some(n), _) => n
            .as_u64()
            .ok_or_else(|| err("timestamp_ns: not an integer".into()))?,
        (None, Some(J::String(s))) => {
            parse_rfc3339(s).ok_or_else(|| err(format!("timestamp: {s:?} is not RFC 3339 UTC")))?
        }
        _ => return Err(err("timestamp or timestamp_ns is required".into())),
    };
    let ty = obj
        .get("type")
        .and_then(J::as_str)
        .ok_or_else(|| err("type is required".into()))?;
    let source = intern(obj.get("source").and_then(J::as_str).unwrap_or("replay"));
    let sev = match obj.get("severity").and_then(J::as_str) {
        Some(s) => severity(s).ok_or_else(|| err(format!("severity: unknown {s:?}")))?,
        None => Severity::Info,
    };
    let mut e = Event::new(ty, source, sev, ts);
    let u32_of = |k: &str| {
        obj.get(k)
            .and_then(J::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    e.pid = u32_of("pid");
    e.tid = u32_of("tid");
    e.cgroup_id = obj.get("cgroup_id").and_then(J::as_u64);
    e.container_id = obj.get("container_id").and_then(J::as_str).map(Arc::from);
    if let Some(attrs) = obj.get("attributes") {
        let attrs = attrs
            .as_object()
            .ok_or_else(|| err("attributes: not an object".into()))?;
        for (k, v) in attrs {
            let value = match v {
                J::String(s) => Value::Str(CompactString::new(s)),
                J::Bool(b) => Value::Bool(*b),
                J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => Value::Int(i),
                    (None, Some(u), _) => Value::UInt(u),
                    (_, _, Some(f)) => Value::Float(f),
                    _ => return Err(err(format!("attributes.{k}: bad number"))),
                },
                other => Value::Str(CompactString::new(other.to_string())),
            };
            e.attributes.push(Attribute {
                key: CompactString::new(k),
                value,
            });
        }
    }
    if let Some(t) = obj.get("trace_id").and_then(J::as_str) {
        let trace_id =
            unhex::<16>(t).ok_or_else(|| err("trace_id: 32 hex digits expected".into()))?;
        let span = |k: &str| obj.get(k).and_then(J::as_str).map(unhex::<8>);
        let span_id = match span("span_id") {
            Some(Some(s)) => s,
            None => [0; 8],
            Some(None) => return Err(err("span_id: 16 hex digits expected".into())),
        };
        let parent_span_id = match span("parent_span_id") {
            Some(Some(s)) => s,
            None => [0; 8],
            Some(None) => return Err(err("parent_span_id: 16 hex digits expected".into())),
        };
        e.trace = Some(TraceContext {
            trace_id,
            span_id,
            parent_span_id,
            flags: 1,
        });
    }
    Ok(e)
}

/// Parses a whole stream; blank lines and lines starting with `#` are skipped.
pub fn parse_stream(text: &str) -> Result<Vec<Event>, ReplayError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| parse_line(l, i + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::json::JsonEvent;

    #[test]
    fn sink_output_round_trips() {
        let mut e = Event::new(
            "kernel.memory.oom_kill",
            "memory",
            Severity::Critical,
            1_700_000_000_123_456_789,
        );
        e.pid = Some(42);
        e.cgroup_id = Some(7);
        e.container_id = Some("abc".into());
        e.attributes.push(Attribute {
            key: "n".into(),
            value: Value::Int(-3),
        });
        e.attributes.push(Attribute {
            key: "s".into(),
            value: Value::Str("x".into()),
        });
        e.trace = Some(TraceContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: [3; 8],
            flags: 1,
        });
        let line = serde_json::to_string(&JsonEvent {
            event: &e,
            host: "h",
        })
        .unwrap();
        let back = parse_line(&line, 1).unwrap();
        assert_eq!(back.timestamp_ns, e.timestamp_ns);
        assert_eq!(back.event_type, e.event_type);
        assert_eq!(back.source, "memory");
        assert_eq!(
            (back.pid, back.cgroup_id, back.container_id.clone()),
            (e.pid, e.cgroup_id, e.container_id.clone())
        );
        assert_eq!(back.attributes, e.attributes);
        assert_eq!(back.trace, e.trace);
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err =
            parse_stream("# comment\n{\"type\":\"x\",\"timestamp_ns\":1}\n{\"type\":\"x\"}\n")
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: timestamp or timestamp_ns is required"
        );
    }
}
