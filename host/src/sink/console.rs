//! The human-readable view: one line per delivered event on stdout.
//!
//! `2026-11-22T08:00:00.123456789Z info     example   example.heartbeat pid=7 heartbeat.sequence=3 trace=5f0c...`

use std::io::{BufWriter, Write};

use crate::event::{hex, Event, Value};
use crate::sink::json::rfc3339_nanos;
use crate::sink::{EventBatch, Sink, SinkError};

/// Prints events to stdout.
pub struct ConsoleSink {
    out: BufWriter<std::io::Stdout>,
}

impl Default for ConsoleSink {
    fn default() -> Self {
        ConsoleSink {
            out: BufWriter::new(std::io::stdout()),
        }
    }
}

/// One event as a console line (without the newline).
pub fn format_line(e: &Event) -> String {
    use std::fmt::Write as _;
    let mut line = format!(
        "{} {:<8} {:<12} {}",
        rfc3339_nanos(e.timestamp_ns),
        e.severity.as_str(),
        e.source,
        e.event_type
    );
    if let Some(pid) = e.pid {
        let _ = write!(line, " pid={pid}");
    }
    if let Some(container) = &e.container_id {
        let _ = write!(line, " container={}", &container[..container.len().min(12)]);
    }
    for a in e.all_attributes() {
        let _ = match &a.value {
            Value::Str(v) => write!(line, " {}={:?}", a.key, v.as_str()),
            Value::Int(v) => write!(line, " {}={v}", a.key),
            Value::UInt(v) => write!(line, " {}={v}", a.key),
            Value::Float(v) => write!(line, " {}={v}", a.key),
            Value::Bool(v) => write!(line, " {}={v}", a.key),
            Value::Bytes(v) => write!(line, " {}=0x{}", a.key, hex(v)),
        };
    }
    if let Some(t) = &e.trace {
        let _ = write!(line, " trace={}", &hex(&t.trace_id)[..16]);
    }
    line
}

impl Sink for ConsoleSink {
    fn name(&self) -> &'static str {
        "console"
    }

    fn write(&mut self, batch: &EventBatch) -> Result<(), SinkError> {
        for e in batch.iter() {
            writeln!(self.out, "{}", format_line(e)).map_err(|source| SinkError::Io {
                sink: "console",
                source,
            })?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|source| SinkError::Io {
            sink: "console",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attribute, Severity};

    #[test]
    fn a_line_shows_the_events_own_attributes_then_the_shared_ones() {
        let mut e = Event::new("kernel.process.exec", "process", Severity::Info, 0);
        e.pid = Some(7);
        e.attributes.push(Attribute {
            key: "process.executable.name".into(),
            value: Value::Str("sh".into()),
        });
        e.shared_attributes = Some(
            vec![Attribute {
                key: "k8s.pod.name".into(),
                value: Value::Str("web-0".into()),
            }]
            .into(),
        );
        assert_eq!(
            format_line(&e),
            "1970-01-01T00:00:00.000000000Z info     process      kernel.process.exec pid=7 \
             process.executable.name=\"sh\" k8s.pod.name=\"web-0\""
        );
    }
}
