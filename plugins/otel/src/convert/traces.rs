//! Spans → `otel.span` events carrying the span's own trace context.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use tapio_plugin_api::{Severity, TraceContext};

use super::{span_id, time_or, trace_id, Batch, ResourceCtx, ScopeCtx, Sink, Tally, Val};

/// Event type of a span.
pub const SPAN: &str = "otel.span";

/// Converts and emits every span of `request`.
pub fn convert<S: Sink + ?Sized>(request: &ExportTraceServiceRequest, sink: &S) -> Tally {
    let mut batch = Batch::new(sink);
    for rs in &request.resource_spans {
        let resource = ResourceCtx::of(rs.resource.as_ref());
        for ss in &rs.scope_spans {
            let scope = ScopeCtx::of(ss.scope.as_ref());
            for span in &ss.spans {
                match context(span) {
                    Some(trace) => span_event(&mut batch, &resource, &scope, span, trace),
                    None => batch.reject_invalid(),
                }
            }
        }
    }
    batch.done()
}

/// The span's trace context, or `None` when its ids are invalid.
fn context(span: &Span) -> Option<TraceContext> {
    let parent_span_id = match span.parent_span_id.as_slice() {
        [] => [0; 8],
        bytes => bytes.try_into().ok()?,
    };
    Some(TraceContext {
        trace_id: trace_id(&span.trace_id)?,
        span_id: span_id(&span.span_id)?,
        parent_span_id,
        // The low 8 bits of OTLP span flags are the W3C trace flags.
        flags: (span.flags & 0xff) as u8,
    })
}

fn kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Internal) => "internal",
        Ok(SpanKind::Server) => "server",
        Ok(SpanKind::Client) => "client",
        Ok(SpanKind::Producer) => "producer",
        Ok(SpanKind::Consumer) => "consumer",
        _ => "unspecified",
    }
}

fn span_event<'r, S: Sink + ?Sized>(
    batch: &mut Batch<'r, '_, S>,
    resource: &ResourceCtx<'r>,
    scope: &ScopeCtx<'r>,
    span: &'r Span,
    trace: TraceContext,
) {
    let status = span
        .status
        .as_ref()
        .map(|s| StatusCode::try_from(s.code).unwrap_or(StatusCode::Unset))
        .unwrap_or(StatusCode::Unset);
    let severity = if status == StatusCode::Error {
        Severity::Error
    } else {
        Severity::Info
    };
    batch.begin(
        time_or(span.start_time_unix_nano, span.end_time_unix_nano),
        SPAN,
        severity,
        resource,
        scope,
    );
    batch.trace(trace);
    batch.attr("otel.span.name", Val::Str(&span.name));
    batch.attr("otel.span.kind", Val::Str(kind_name(span.kind)));
    match status {
        StatusCode::Ok => batch.attr("otel.status_code", Val::Str("OK")),
        StatusCode::Error => batch.attr("otel.status_code", Val::Str("ERROR")),
        StatusCode::Unset => {}
    }
    if let Some(s) = span.status.as_ref() {
        batch.str_nonempty("otel.status_description", &s.message);
    }
    if span.end_time_unix_nano >= span.start_time_unix_nano && span.start_time_unix_nano != 0 {
        batch.attr(
            "otel.span.duration_ns",
            Val::UInt(span.end_time_unix_nano - span.start_time_unix_nano),
        );
    }
    if !span.events.is_empty() {
        batch.attr("otel.span.event_count", Val::UInt(span.events.len() as u64));
    }
    if !span.links.is_empty() {
        batch.attr("otel.span.link_count", Val::UInt(span.links.len() as u64));
    }
    batch.str_nonempty("otel.span.trace_state", &span.trace_state);
    batch.attributes(&span.attributes);
    batch.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_sink::TestSink;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    pub fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv(
                            "service.name",
                            any_value::Value::StringValue("checkout".into()),
                        ),
                        kv("process.pid", any_value::Value::IntValue(4242)),
                        kv(
                            "container.id",
                            any_value::Value::StringValue("c0ffee".into()),
                        ),
                        kv("region", any_value::Value::StringValue("resource".into())),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(
                        opentelemetry_proto::tonic::common::v1::InstrumentationScope {
                            name: "tests".into(),
                            version: "1.0".into(),
                            ..Default::default()
                        },
                    ),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn span(trace: u8, id: u8, parent: Option<u8>) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            flags: 0x301,
            name: format!("span-{id}"),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 3_500,
            attributes: vec![kv("region", any_value::Value::StringValue("span".into()))],
            ..Default::default()
        }
    }

    #[test]
    fn span_keeps_ids_resource_and_attributes() {
        let sink = TestSink::default();
        let mut failed = span(1, 3, Some(2));
        failed.status = Some(Status {
            code: StatusCode::Error as i32,
            message: "boom".into(),
        });
        let tally = convert(&request(vec![span(1, 2, None), failed]), &sink);
        assert_eq!(
            tally,
            Tally {
                accepted: 2,
                dropped: 0,
                invalid: 0
            }
        );
        let got = sink.got.borrow();
        let root = &got[0];
        assert_eq!(root.event_type, SPAN);
        assert_eq!(root.timestamp_ns, 1_000);
        assert_eq!(root.pid, Some(4242));
        assert_eq!(root.container_id, "c0ffee");
        let t = root.trace.unwrap();
        assert_eq!(
            (t.trace_id, t.span_id, t.parent_span_id, t.flags),
            ([1; 16], [2; 8], [0; 8], 1)
        );
        assert_eq!(root.attr("service.name"), Some("checkout"));
        assert_eq!(root.attr("otel.scope.name"), Some("tests"));
        assert_eq!(root.attr("otel.span.kind"), Some("server"));
        assert_eq!(root.attr("otel.span.duration_ns"), Some("2500"));
        assert_eq!(root.attr("region"), Some("span"), "the span's value wins");
        assert_eq!(root.attrs.iter().filter(|(k, _)| k == "region").count(), 1);
        assert_eq!(root.severity, Severity::Info);
        let child = &got[1];
        assert_eq!(child.trace.unwrap().parent_span_id, [2; 8]);
        assert_eq!(child.severity, Severity::Error);
        assert_eq!(child.attr("otel.status_code"), Some("ERROR"));
        assert_eq!(child.attr("otel.status_description"), Some("boom"));
    }

    #[test]
    fn invalid_ids_are_rejected_and_counted() {
        let sink = TestSink::default();
        let mut short = span(1, 2, None);
        short.trace_id = vec![1; 8];
        let zero = span(0, 2, None);
        let mut bad_parent = span(1, 2, None);
        bad_parent.parent_span_id = vec![1, 2, 3];
        let tally = convert(
            &request(vec![short, zero, bad_parent, span(1, 4, None)]),
            &sink,
        );
        assert_eq!(
            tally,
            Tally {
                accepted: 1,
                dropped: 0,
                invalid: 3
            }
        );
        assert_eq!(tally.rejected(), 3);
        assert!(tally
            .message("spans")
            .starts_with("3 spans rejected: invalid trace id"));
    }

    #[test]
    fn ring_drops_are_counted_across_chunks() {
        let sink = TestSink::default();
        sink.room.set(Some(1500));
        let spans = (0..3000u32).map(|i| {
            let mut s = span(1, 2, None);
            s.span_id = (u64::from(i) + 1).to_be_bytes().to_vec();
            s
        });
        let tally = convert(&request(spans.collect()), &sink);
        assert_eq!(
            tally,
            Tally {
                accepted: 1500,
                dropped: 1500,
                invalid: 0
            }
        );
        assert_eq!(sink.calls.get(), 3, "chunks of {}", crate::convert::CHUNK);
        assert!(tally.message("spans").contains("1500 spans dropped"));
    }

    #[test]
    fn nested_values_are_rendered_as_json() {
        use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
        let sink = TestSink::default();
        let mut s = span(1, 2, None);
        s.attributes = vec![
            kv(
                "list",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(any_value::Value::IntValue(1)),
                        },
                        AnyValue {
                            value: Some(any_value::Value::StringValue("a".into())),
                        },
                    ],
                }),
            ),
            kv(
                "map",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![kv("k", any_value::Value::BytesValue(vec![0xab]))],
                }),
            ),
            KeyValue {
                key: "empty".into(),
                value: None,
                ..Default::default()
            },
        ];
        convert(&request(vec![s]), &sink);
        let got = sink.got.borrow();
        assert_eq!(got[0].attr("list"), Some(r#"[1,"a"]"#));
        assert_eq!(got[0].attr("map"), Some(r#"{"k":"ab"}"#));
        assert_eq!(got[0].attr("empty"), None);
    }
}
