//! Log records → `otel.log` events, with the record's trace context when it has one.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use tapio_plugin_api::{Severity, TraceContext};

use super::{
    any_value, span_id, time_or, trace_id, Batch, ResourceCtx, ScopeCtx, Sink, Tally, Val,
};

/// Event type of a log record.
pub const LOG: &str = "otel.log";

/// Converts and emits every log record of `request`.
pub fn convert<S: Sink + ?Sized>(request: &ExportLogsServiceRequest, sink: &S) -> Tally {
    let mut batch = Batch::new(sink);
    for rl in &request.resource_logs {
        let resource = ResourceCtx::of(rl.resource.as_ref());
        for sl in &rl.scope_logs {
            let scope = ScopeCtx::of(sl.scope.as_ref());
            for record in &sl.log_records {
                match context(record) {
                    Ok(trace) => log_event(&mut batch, &resource, &scope, record, trace),
                    Err(()) => batch.reject_invalid(),
                }
            }
        }
    }
    batch.done()
}

/// The record's trace context: `Ok(None)` without ids, `Err` with malformed ones.
fn context(record: &LogRecord) -> Result<Option<TraceContext>, ()> {
    if record.trace_id.is_empty() && record.span_id.is_empty() {
        return Ok(None);
    }
    let trace = trace_id(&record.trace_id).ok_or(())?;
    let span = match record.span_id.as_slice() {
        [] => [0; 8],
        bytes => span_id(bytes).ok_or(())?,
    };
    Ok(Some(TraceContext {
        trace_id: trace,
        span_id: span,
        parent_span_id: [0; 8],
        flags: (record.flags & 0xff) as u8,
    }))
}

/// OTLP severity number (1..=24) → severity; text as a fallback when the number is unset.
pub fn severity(number: i32, text: &str) -> Severity {
    match number {
        1..=8 => Severity::Debug,
        9..=12 => Severity::Info,
        13..=16 => Severity::Warning,
        17..=20 => Severity::Error,
        21..=24 => Severity::Critical,
        _ => match text.to_ascii_lowercase().as_str() {
            "trace" | "debug" => Severity::Debug,
            "warn" | "warning" => Severity::Warning,
            "error" => Severity::Error,
            "fatal" | "critical" => Severity::Critical,
            _ => Severity::Info,
        },
    }
}

fn log_event<'r, S: Sink + ?Sized>(
    batch: &mut Batch<'r, '_, S>,
    resource: &ResourceCtx<'r>,
    scope: &ScopeCtx<'r>,
    record: &'r LogRecord,
    trace: Option<TraceContext>,
) {
    batch.begin(
        time_or(record.time_unix_nano, record.observed_time_unix_nano),
        LOG,
        severity(record.severity_number, &record.severity_text),
        resource,
        scope,
    );
    if let Some(t) = trace {
        batch.trace(t);
    }
    if let Some(body) = record.body.as_ref().and_then(any_value) {
        batch.attr("log.body", body);
    }
    batch.str_nonempty("log.severity_text", &record.severity_text);
    if record.severity_number != 0 {
        batch.attr(
            "log.severity_number",
            Val::Int(i64::from(record.severity_number)),
        );
    }
    batch.str_nonempty("event.name", &record.event_name);
    batch.attributes(&record.attributes);
    batch.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_sink::TestSink;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

    fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn record(number: i32, body: &str) -> LogRecord {
        LogRecord {
            time_unix_nano: 0,
            observed_time_unix_nano: 77,
            severity_number: number,
            severity_text: "WARN".into(),
            body: Some(AnyValue {
                value: Some(V::StringValue(body.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn maps_severity_body_time_and_trace() {
        let sink = TestSink::default();
        let mut traced = record(17, "failed");
        traced.trace_id = vec![9; 16];
        traced.span_id = vec![8; 8];
        traced.flags = 1;
        let tally = convert(&request(vec![record(13, "slow"), traced]), &sink);
        assert_eq!(tally.accepted, 2);
        let got = sink.got.borrow();
        assert_eq!(got[0].timestamp_ns, 77, "observed time when time is unset");
        assert_eq!(got[0].severity, Severity::Warning);
        assert_eq!(got[0].attr("log.body"), Some("slow"));
        assert_eq!(got[0].attr("log.severity_number"), Some("13"));
        assert_eq!(got[0].trace, None);
        let t = got[1].trace.unwrap();
        assert_eq!((t.trace_id, t.span_id, t.flags), ([9; 16], [8; 8], 1));
        assert_eq!(got[1].severity, Severity::Error);
    }

    #[test]
    fn severity_table() {
        assert_eq!(severity(1, ""), Severity::Debug);
        assert_eq!(severity(9, ""), Severity::Info);
        assert_eq!(severity(24, ""), Severity::Critical);
        assert_eq!(severity(0, "Error"), Severity::Error);
        assert_eq!(severity(0, ""), Severity::Info);
    }

    #[test]
    fn malformed_ids_are_rejected() {
        let sink = TestSink::default();
        let mut bad = record(9, "x");
        bad.trace_id = vec![1; 5];
        let tally = convert(&request(vec![bad]), &sink);
        assert_eq!(tally.invalid, 1);
        assert!(sink.got.borrow().is_empty());
    }
}
