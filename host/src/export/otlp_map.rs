//! Pure mapping of host events to OTLP: every event becomes a log record; a correlation
//! group (`tapio.correlation.group`) becomes one span per element of its
//! `tapio.group.spans` attribute, all with the group's trace id and their parent links.
//!
//! Log record: `time_unix_nano` = event time, severity number and text mapped from ours
//! (debug 5, info 9, low 10, medium 11, warning 13, high 15, error 17, critical 21), body and
//! `event_name` = the event type, trace and span ids and flags from the event's trace
//! context, attributes = the event's plus `tapio.event.id`, `tapio.source`, and
//! `process.pid`, `thread.id`, `container.id`, `tapio.cgroup.id` when set.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::Link, span::SpanKind, Span};

use crate::event::{Event, Severity, Value};

/// Type of the events that carry a correlation group.
pub const GROUP_TYPE: &str = "tapio.correlation.group";

/// OTLP severity number of ours.
pub fn severity_number(s: Severity) -> i32 {
    match s {
        Severity::Debug => 5,
        Severity::Info => 9,
        Severity::Low => 10,
        Severity::Medium => 11,
        Severity::Warning => 13,
        Severity::High => 15,
        Severity::Error => 17,
        Severity::Critical => 21,
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn str_kv(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

fn attr_value(v: &Value) -> any_value::Value {
    match v {
        Value::Str(s) => any_value::Value::StringValue(s.to_string()),
        Value::Int(i) => any_value::Value::IntValue(*i),
        Value::UInt(u) => match i64::try_from(*u) {
            Ok(i) => any_value::Value::IntValue(i),
            Err(_) => any_value::Value::StringValue(u.to_string()),
        },
        Value::Float(f) => any_value::Value::DoubleValue(*f),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Bytes(b) => any_value::Value::BytesValue(b.clone()),
    }
}

/// The resource of this node.
pub fn resource(host: &str, node: &str) -> Resource {
    Resource {
        attributes: vec![
            str_kv("service.name", "tapio-collector"),
            str_kv("service.version", env!("CARGO_PKG_VERSION")),
            str_kv("host.name", host),
            str_kv("k8s.node.name", node),
        ],
        ..Default::default()
    }
}

/// The instrumentation scope of everything we export.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "tapio-collector".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..Default::default()
    }
}

/// The log record of `e`; `observed_ns` is when the exporter saw it.
pub fn log_record(e: &Event, observed_ns: u64) -> LogRecord {
    let mut attributes = Vec::with_capacity(e.all_attributes().len() + 6);
    attributes.push(str_kv("tapio.event.id", &e.id.to_string()));
    attributes.push(str_kv("tapio.source", e.source));
    if let Some(pid) = e.pid {
        attributes.push(kv(
            "process.pid",
            any_value::Value::IntValue(i64::from(pid)),
        ));
    }
    if let Some(tid) = e.tid {
        attributes.push(kv("thread.id", any_value::Value::IntValue(i64::from(tid))));
    }
    if let Some(c) = &e.container_id {
        attributes.push(str_kv("container.id", c));
    }
    if let Some(cg) = e.cgroup_id {
        attributes.push(kv("tapio.cgroup.id", attr_value(&Value::UInt(cg))));
    }
    for a in e.all_attributes() {
        attributes.push(kv(&a.key, attr_value(&a.value)));
    }
    let (trace_id, span_id, flags) = match &e.trace {
        Some(t) => (t.trace_id.to_vec(), t.span_id.to_vec(), u32::from(t.flags)),
        None => (Vec::new(), Vec::new(), 0),
    };
    LogRecord {
        time_unix_nano: e.timestamp_ns,
        observed_time_unix_nano: observed_ns,
        severity_number: severity_number(e.severity),
        severity_text: e.severity.as_str().to_owned(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(e.event_type.to_string())),
        }),
        attributes,
        trace_id,
        span_id,
        flags,
        event_name: e.event_type.to_string(),
        ..Default::default()
    }
}

/// A group element of `tapio.group.spans`.
#[derive(Debug, serde::Deserialize)]
struct GroupSpan {
    span_id: String,
    #[serde(default)]
    parent_span_id: String,
    name: String,
    start_ns: u64,
    end_ns: u64,
    #[serde(default)]
    event_id: String,
    /// The trace the member event was delivered with.
    #[serde(default)]
    event_trace_id: String,
    /// Joined before the group was confirmed: delivered in its own trace.
    #[serde(default)]
    early: bool,
}

/// Why a group event cannot become spans.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GroupError {
    /// No `trace.trace_id`.
    #[error("group event without a trace id")]
    NoTrace,
    /// `tapio.group.spans` missing or not text.
    #[error("tapio.group.spans is missing or not text")]
    NoSpans,
    /// `tapio.group.spans` is not the documented JSON.
    #[error("tapio.group.spans is malformed: {0}")]
    Malformed(String),
}

fn unhex<const N: usize>(s: &str) -> Result<[u8; N], GroupError> {
    let bad = || GroupError::Malformed(format!("{s:?} is not {} hex digits", N * 2));
    if s.len() != N * 2 {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The spans of a correlation group event.
pub fn group_spans(e: &Event) -> Result<Vec<Span>, GroupError> {
    let trace = e.trace.ok_or(GroupError::NoTrace)?;
    let text = e
        .attribute("tapio.group.spans")
        .and_then(Value::as_str)
        .ok_or(GroupError::NoSpans)?;
    let elements: Vec<GroupSpan> =
        serde_json::from_str(text).map_err(|err| GroupError::Malformed(err.to_string()))?;
    let mut common = vec![str_kv("tapio.group.event.id", &e.id.to_string())];
    for key in [
        "tapio.group.id",
        "tapio.group.intent",
        "tapio.group.rule",
        "tapio.group.confidence",
    ] {
        if let Some(v) = e.attribute(key) {
            common.push(kv(key, attr_value(v)));
        }
    }
    elements
        .into_iter()
        .map(|g| {
            let span_id = unhex::<8>(&g.span_id)?;
            let parent = if g.parent_span_id.is_empty() {
                Vec::new()
            } else {
                unhex::<8>(&g.parent_span_id)?.to_vec()
            };
            let mut attributes = common.clone();
            if !g.event_id.is_empty() {
                attributes.push(str_kv("tapio.event.id", &g.event_id));
            }
            // A member delivered before the group was confirmed lives in its own trace: a
            // link to it lets a backend go from the group's span to the event's.
            let mut links = Vec::new();
            if g.early && !g.event_trace_id.is_empty() {
                let linked = unhex::<16>(&g.event_trace_id)?;
                if linked != trace.trace_id {
                    links.push(Link {
                        trace_id: linked.to_vec(),
                        span_id: span_id.to_vec(),
                        attributes: vec![str_kv("tapio.link", "early_member")],
                        ..Default::default()
                    });
                }
            }
            Ok(Span {
                trace_id: trace.trace_id.to_vec(),
                span_id: span_id.to_vec(),
                parent_span_id: parent,
                flags: u32::from(trace.flags),
                name: g.name,
                kind: SpanKind::Internal as i32,
                start_time_unix_nano: g.start_ns,
                end_time_unix_nano: g.end_ns,
                attributes,
                links,
                ..Default::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attribute, EventId, TraceContext};

    fn group() -> Event {
        let mut e = Event::new(GROUP_TYPE, "correlation", Severity::High, 10);
        e.id = EventId { nonce: 1, seq: 2 };
        e.trace = Some(TraceContext {
            trace_id: [0xab; 16],
            span_id: [1; 8],
            parent_span_id: [0; 8],
            flags: 1,
        });
        let spans = r#"[{"span_id":"0000000000000001","parent_span_id":"","name":"oom","start_ns":1,"end_ns":5,"event_id":"e1"},
                        {"span_id":"0000000000000002","parent_span_id":"0000000000000001","name":"restart","start_ns":6,"end_ns":9,"event_id":"e2"}]"#;
        for (k, v) in [
            ("tapio.group.spans", Value::Str(spans.into())),
            ("tapio.group.id", Value::Str("g-1".into())),
            ("tapio.group.intent", Value::Str("oom-restart".into())),
            ("tapio.group.rule", Value::Str("oom_then_restart".into())),
            ("tapio.group.confidence", Value::Float(0.9)),
        ] {
            e.attributes.push(Attribute {
                key: k.into(),
                value: v,
            });
        }
        e
    }

    #[test]
    fn a_group_becomes_linked_spans_of_one_trace() {
        let spans = group_spans(&group()).unwrap();
        assert_eq!(spans.len(), 2);
        assert!(spans.iter().all(|s| s.trace_id == vec![0xab; 16]));
        assert_eq!(spans[0].parent_span_id, Vec::<u8>::new());
        assert_eq!(spans[1].parent_span_id, spans[0].span_id);
        assert_eq!(spans[1].name, "restart");
        assert_eq!(
            (spans[1].start_time_unix_nano, spans[1].end_time_unix_nano),
            (6, 9)
        );
        let keys: Vec<&str> = spans[0].attributes.iter().map(|k| k.key.as_str()).collect();
        for k in [
            "tapio.group.id",
            "tapio.group.intent",
            "tapio.group.rule",
            "tapio.group.confidence",
            "tapio.event.id",
        ] {
            assert!(keys.contains(&k), "{k} missing: {keys:?}");
        }
    }

    #[test]
    fn an_early_member_links_to_the_trace_it_was_delivered_in() {
        let mut e = group();
        let spans = r#"[{"span_id":"0000000000000001","parent_span_id":"","name":"oom","start_ns":1,"end_ns":5,"event_id":"e1","event_trace_id":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","early":true},
                        {"span_id":"0000000000000002","parent_span_id":"0000000000000001","name":"restart","start_ns":6,"end_ns":9,"event_id":"e2","event_trace_id":"abababababababababababababababab","early":false}]"#;
        for a in &mut e.attributes {
            if a.key == "tapio.group.spans" {
                a.value = Value::Str(spans.into());
            }
        }
        let spans = group_spans(&e).unwrap();
        assert_eq!(spans[0].links.len(), 1);
        assert_eq!(spans[0].links[0].trace_id, vec![0xcd; 16]);
        assert_eq!(spans[0].links[0].span_id, spans[0].span_id);
        assert!(
            spans[1].links.is_empty(),
            "a member in the group's trace needs no link"
        );
    }

    #[test]
    fn malformed_groups_are_refused_with_the_reason() {
        let mut e = group();
        e.trace = None;
        assert_eq!(group_spans(&e).unwrap_err(), GroupError::NoTrace);
        let mut e = group();
        e.attributes[0].value = Value::Str("[{\"span_id\":\"zz\"}]".into());
        assert!(matches!(group_spans(&e), Err(GroupError::Malformed(_))));
        let mut e = group();
        e.attributes.remove(0);
        assert_eq!(group_spans(&e).unwrap_err(), GroupError::NoSpans);
    }

    #[test]
    fn a_log_record_keeps_severity_attributes_and_trace() {
        let mut e = Event::new("kernel.oom", "memory", Severity::Critical, 77);
        e.pid = Some(5);
        e.attributes.push(Attribute {
            key: "big".into(),
            value: Value::UInt(u64::MAX),
        });
        // Enrichment's shared attributes are exported like the event's own.
        e.shared_attributes = Some(
            vec![Attribute {
                key: "k8s.pod.name".into(),
                value: Value::Str("web".into()),
            }]
            .into(),
        );
        e.trace = Some(TraceContext {
            trace_id: [7; 16],
            span_id: [8; 8],
            parent_span_id: [0; 8],
            flags: 1,
        });
        let r = log_record(&e, 99);
        assert_eq!(
            (r.severity_number, r.severity_text.as_str()),
            (21, "critical")
        );
        assert_eq!(r.time_unix_nano, 77);
        assert_eq!(r.trace_id, vec![7; 16]);
        assert_eq!(r.span_id, vec![8; 8]);
        assert_eq!(r.event_name, "kernel.oom");
        let get = |k: &str| {
            r.attributes
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(
            get("k8s.pod.name"),
            Some(any_value::Value::StringValue("web".into()))
        );
        assert_eq!(get("process.pid"), Some(any_value::Value::IntValue(5)));
        assert_eq!(
            get("big"),
            Some(any_value::Value::StringValue(u64::MAX.to_string()))
        );
        let severities: Vec<i32> = Severity::ALL.iter().map(|s| severity_number(*s)).collect();
        assert!(severities.windows(2).all(|w| w[0] < w[1]), "order kept");
    }
}
