//! The JSON form of an event, shared by the JSON Lines sink and JSON exporters.
//!
//! Keys: `id`, `timestamp` (RFC 3339, UTC, nanoseconds), `type`, `source`, `severity`,
//! `host`, `pid`, `tid`, `cgroup_id`, `container_id` (each only when set), `attributes` (an
//! object; bytes become lowercase hex), `trace_id`, `span_id`, `parent_span_id` (when set).

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::event::{hex, Event, Value};

/// Formats nanoseconds since the epoch as RFC 3339 UTC with nine fractional digits.
pub fn rfc3339_nanos(ns: u64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000000000Z".to_owned())
}

/// Serializes an event with the host name it was collected on.
pub struct JsonEvent<'a> {
    /// The event.
    pub event: &'a Event,
    /// The node's host name.
    pub host: &'a str,
}

struct Attributes<'a>(&'a Event);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let attributes = self.0.all_attributes();
        let mut map = s.serialize_map(Some(attributes.len()))?;
        for a in attributes {
            match &a.value {
                Value::Str(v) => map.serialize_entry(a.key.as_str(), v.as_str())?,
                Value::Int(v) => map.serialize_entry(a.key.as_str(), v)?,
                Value::UInt(v) => map.serialize_entry(a.key.as_str(), v)?,
                Value::Float(v) => map.serialize_entry(a.key.as_str(), v)?,
                Value::Bool(v) => map.serialize_entry(a.key.as_str(), v)?,
                Value::Bytes(v) => map.serialize_entry(a.key.as_str(), &hex(v))?,
            }
        }
        map.end()
    }
}

impl Serialize for JsonEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.event;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &e.id.to_string())?;
        map.serialize_entry("timestamp", &rfc3339_nanos(e.timestamp_ns))?;
        map.serialize_entry("type", e.event_type.as_str())?;
        map.serialize_entry("source", e.source)?;
        map.serialize_entry("severity", e.severity.as_str())?;
        map.serialize_entry("host", self.host)?;
        if let Some(pid) = e.pid {
            map.serialize_entry("pid", &pid)?;
        }
        if let Some(tid) = e.tid {
            map.serialize_entry("tid", &tid)?;
        }
        if let Some(cgroup) = e.cgroup_id {
            map.serialize_entry("cgroup_id", &cgroup)?;
        }
        if let Some(container) = &e.container_id {
            map.serialize_entry("container_id", &**container)?;
        }
        map.serialize_entry("attributes", &Attributes(e))?;
        match &e.trace {
            Some(t) => {
                map.serialize_entry("trace_id", &hex(&t.trace_id))?;
                map.serialize_entry("span_id", &hex(&t.span_id))?;
                if t.has_parent() {
                    map.serialize_entry("parent_span_id", &hex(&t.parent_span_id))?;
                }
            }
            None => {
                map.serialize_entry("trace_id", &())?;
                map.serialize_entry("span_id", &())?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attribute, EventId, Severity, TraceContext};

    #[test]
    fn timestamps_keep_nanoseconds() {
        assert_eq!(
            rfc3339_nanos(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn every_key_is_written() {
        let mut e = Event::new(
            "kernel.process.exec",
            "process",
            Severity::Warning,
            1_000_000_001,
        );
        e.id = EventId { nonce: 1, seq: 2 };
        e.pid = Some(42);
        e.container_id = Some("abc".into());
        e.attributes.push(Attribute {
            key: "process.executable.name".into(),
            value: Value::Str("sh".into()),
        });
        e.attributes.push(Attribute {
            key: "raw".into(),
            value: Value::Bytes(vec![0xde, 0xad]),
        });
        e.shared_attributes = Some(
            vec![Attribute {
                key: "k8s.namespace.name".into(),
                value: Value::Str("prod".into()),
            }]
            .into(),
        );
        e.trace = Some(TraceContext {
            trace_id: [0x11; 16],
            span_id: [0x22; 8],
            parent_span_id: [0; 8],
            flags: 1,
        });
        let v: serde_json::Value = serde_json::to_value(JsonEvent {
            event: &e,
            host: "node-1",
        })
        .unwrap();
        assert_eq!(v["id"], "00000000-0000-0001-0000-000000000002");
        assert_eq!(v["timestamp"], "1970-01-01T00:00:01.000000001Z");
        assert_eq!(v["type"], "kernel.process.exec");
        assert_eq!(v["source"], "process");
        assert_eq!(v["severity"], "warning");
        assert_eq!(v["host"], "node-1");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["container_id"], "abc");
        assert_eq!(v["attributes"]["process.executable.name"], "sh");
        assert_eq!(v["attributes"]["raw"], "dead");
        assert_eq!(v["attributes"]["k8s.namespace.name"], "prod");
        assert_eq!(v["attributes"].as_object().map(|a| a.len()), Some(3));
        assert_eq!(v["trace_id"], "11".repeat(16));
        assert_eq!(v["span_id"], "22".repeat(8));
        assert!(v.get("parent_span_id").is_none());
        assert!(v.get("tid").is_none());
    }
}
