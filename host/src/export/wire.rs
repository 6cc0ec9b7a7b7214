//! Conversion of the host's [`Event`] to the `tapio.v1.Event` message and back to JSON (the
//! receiver's `--jsonl`, same keys as the host's JSON Lines sink).

use crate::event::{hex, Event, Severity, Value};
use crate::export::proto as pb;
use crate::sink::json::rfc3339_nanos;

/// The wire severity of `s`.
pub fn severity(s: Severity) -> pb::Severity {
    match s {
        Severity::Debug => pb::Severity::Debug,
        Severity::Info => pb::Severity::Info,
        Severity::Low => pb::Severity::Low,
        Severity::Medium => pb::Severity::Medium,
        Severity::Warning => pb::Severity::Warning,
        Severity::High => pb::Severity::High,
        Severity::Error => pb::Severity::Error,
        Severity::Critical => pb::Severity::Critical,
    }
}

/// The host severity name of a wire severity (`unspecified` when unknown).
pub fn severity_name(s: i32) -> &'static str {
    match pb::Severity::try_from(s).unwrap_or(pb::Severity::Unspecified) {
        pb::Severity::Unspecified => "unspecified",
        pb::Severity::Debug => "debug",
        pb::Severity::Info => "info",
        pb::Severity::Low => "low",
        pb::Severity::Medium => "medium",
        pb::Severity::Warning => "warning",
        pb::Severity::High => "high",
        pb::Severity::Error => "error",
        pb::Severity::Critical => "critical",
    }
}

/// The wire form of `e`, collected on `host`. Every field is kept.
pub fn to_proto(e: &Event, host: &str) -> pb::Event {
    use pb::attribute::Value as V;
    pb::Event {
        id: e.id.to_string(),
        timestamp_ns: e.timestamp_ns,
        r#type: e.event_type.to_string(),
        source: e.source.to_owned(),
        severity: severity(e.severity) as i32,
        host: host.to_owned(),
        pid: e.pid,
        tid: e.tid,
        cgroup_id: e.cgroup_id,
        container_id: e.container_id.as_ref().map(|c| c.to_string()),
        attributes: e
            .all_attributes()
            .map(|a| pb::Attribute {
                key: a.key.to_string(),
                value: Some(match &a.value {
                    Value::Str(s) => V::StringValue(s.to_string()),
                    Value::Int(i) => V::IntValue(*i),
                    Value::UInt(u) => V::UintValue(*u),
                    Value::Float(f) => V::DoubleValue(*f),
                    Value::Bool(b) => V::BoolValue(*b),
                    Value::Bytes(b) => V::BytesValue(b.clone()),
                }),
            })
            .collect(),
        trace: e.trace.map(|t| pb::TraceContext {
            trace_id: t.trace_id.to_vec(),
            span_id: t.span_id.to_vec(),
            parent_span_id: if t.has_parent() {
                t.parent_span_id.to_vec()
            } else {
                Vec::new()
            },
            flags: u32::from(t.flags),
        }),
    }
}

/// The JSON form of a received event (the keys of the host's JSON Lines sink).
pub fn to_json(e: &pb::Event) -> serde_json::Value {
    use pb::attribute::Value as V;
    use serde_json::{json, Map, Value as J};
    let mut m = Map::new();
    m.insert("id".into(), J::from(e.id.clone()));
    m.insert("timestamp".into(), J::from(rfc3339_nanos(e.timestamp_ns)));
    m.insert("type".into(), J::from(e.r#type.clone()));
    m.insert("source".into(), J::from(e.source.clone()));
    m.insert("severity".into(), J::from(severity_name(e.severity)));
    m.insert("host".into(), J::from(e.host.clone()));
    if let Some(pid) = e.pid {
        m.insert("pid".into(), json!(pid));
    }
    if let Some(tid) = e.tid {
        m.insert("tid".into(), json!(tid));
    }
    if let Some(cg) = e.cgroup_id {
        m.insert("cgroup_id".into(), json!(cg));
    }
    if let Some(c) = &e.container_id {
        m.insert("container_id".into(), json!(c));
    }
    let mut attrs = Map::new();
    for a in &e.attributes {
        let v = match &a.value {
            Some(V::StringValue(s)) => J::from(s.clone()),
            Some(V::IntValue(i)) => J::from(*i),
            Some(V::UintValue(u)) => J::from(*u),
            Some(V::DoubleValue(f)) => J::from(*f),
            Some(V::BoolValue(b)) => J::from(*b),
            Some(V::BytesValue(b)) => J::from(hex(b)),
            None => J::Null,
        };
        attrs.insert(a.key.clone(), v);
    }
    m.insert("attributes".into(), J::Object(attrs));
    match &e.trace {
        Some(t) => {
            m.insert("trace_id".into(), J::from(hex(&t.trace_id)));
            m.insert("span_id".into(), J::from(hex(&t.span_id)));
            if !t.parent_span_id.is_empty() {
                m.insert("parent_span_id".into(), J::from(hex(&t.parent_span_id)));
            }
        }
        None => {
            m.insert("trace_id".into(), J::Null);
            m.insert("span_id".into(), J::Null);
        }
    }
    J::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attribute, EventId, TraceContext};
    use crate::sink::json::JsonEvent;

    #[test]
    fn the_wire_form_keeps_every_field_and_renders_like_the_jsonl_sink() {
        let mut e = Event::new("tapio.correlation.group", "correlation", Severity::High, 42);
        e.id = EventId { nonce: 7, seq: 9 };
        e.pid = Some(1);
        e.tid = Some(2);
        e.cgroup_id = Some(3);
        e.container_id = Some("c0".into());
        for (k, v) in [
            ("s", Value::Str("x".into())),
            ("i", Value::Int(-1)),
            ("u", Value::UInt(u64::MAX)),
            ("f", Value::Float(0.5)),
            ("b", Value::Bool(true)),
            ("raw", Value::Bytes(vec![0xab])),
            ("tapio.group.id", Value::Str("g1".into())),
        ] {
            e.attributes.push(Attribute {
                key: k.into(),
                value: v,
            });
        }
        e.shared_attributes = Some(
            vec![Attribute {
                key: "k8s.pod.name".into(),
                value: Value::Str("web-0".into()),
            }]
            .into(),
        );
        e.trace = Some(TraceContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: [3; 8],
            flags: 1,
        });
        let p = to_proto(&e, "node-1");
        // The shared attributes follow the event's own.
        let keys: Vec<&str> = p.attributes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "s",
                "i",
                "u",
                "f",
                "b",
                "raw",
                "tapio.group.id",
                "k8s.pod.name"
            ]
        );
        assert_eq!(p.id, "00000000-0000-0007-0000-000000000009");
        assert_eq!(p.severity, pb::Severity::High as i32);
        assert_eq!(p.trace.as_ref().unwrap().parent_span_id, vec![3; 8]);
        let ours = to_json(&p);
        let sink: serde_json::Value = serde_json::to_value(JsonEvent {
            event: &e,
            host: "node-1",
        })
        .unwrap();
        assert_eq!(ours, sink);
    }
}
