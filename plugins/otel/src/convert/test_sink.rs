//! A capturing sink for the converters' unit tests, with an optional capacity.

use std::cell::{Cell, RefCell};

use tapio_plugin_api::{AttrValue, EmitOutcome, Event, Severity, TraceContext};

use super::Sink;

/// An owned copy of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Got {
    /// Event time.
    pub timestamp_ns: u64,
    /// Dotted type.
    pub event_type: String,
    /// Severity.
    pub severity: Severity,
    /// Process id.
    pub pid: Option<u32>,
    /// Container id.
    pub container_id: String,
    /// Trace context.
    pub trace: Option<TraceContext>,
    /// Attributes, values rendered as text.
    pub attrs: Vec<(String, String)>,
}

impl Got {
    /// The attribute `key` rendered as text (`Str` as is, numbers with `{}`).
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Captures every emitted event; takes at most `room` when set.
#[derive(Default)]
pub struct TestSink {
    /// What was taken.
    pub got: RefCell<Vec<Got>>,
    /// How many more events it takes (`None` = unlimited).
    pub room: Cell<Option<usize>>,
    /// Emit calls.
    pub calls: Cell<usize>,
}

fn render(v: &AttrValue<'_>) -> String {
    match v {
        AttrValue::Str(s) => s.to_string(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::UInt(u) => u.to_string(),
        AttrValue::Float(f) => f.to_string(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Bytes(b) => format!("bytes:{}", super::hex(b)),
    }
}

impl Sink for TestSink {
    fn emit(&self, events: &[Event<'_>]) -> EmitOutcome {
        self.calls.set(self.calls.get() + 1);
        let take = match self.room.get() {
            Some(room) => {
                let n = room.min(events.len());
                self.room.set(Some(room - n));
                n
            }
            None => events.len(),
        };
        self.got.borrow_mut().extend(events[..take].iter().map(|e| {
            Got {
                timestamp_ns: e.timestamp_ns,
                event_type: e.event_type.to_string(),
                severity: e.severity,
                pid: e.pid.into_option(),
                container_id: e.container_id.to_string(),
                trace: e.trace.into_option(),
                attrs: e
                    .attributes
                    .iter()
                    .map(|a| (a.key.to_string(), render(&a.value)))
                    .collect(),
            }
        }));
        EmitOutcome {
            accepted: take as u32,
            dropped: (events.len() - take) as u32,
        }
    }
}
