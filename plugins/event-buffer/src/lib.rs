//! Owned events, for plugins that build events in one place and emit them later.
//!
//! [`tapio_plugin_api::Event`] borrows its strings and attributes for one `emit` call. A
//! reader thread that decodes records, aggregates and emits in batches needs owned values in
//! between: [`OwnedEvent`] holds them, and [`EventBuffer::emit`] lends the whole batch to the
//! sink in one call (the host copies it), then clears the buffer.

#![warn(missing_docs, unreachable_pub)]

use tapio_plugin_api::{Attribute, EmitOutcome, Event, EventSink, Severity, TraceContext};

/// An owned attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(String),
    /// Signed integer.
    Int(i64),
    /// Unsigned integer.
    UInt(u64),
    /// Number.
    Float(f64),
    /// Boolean.
    Bool(bool),
}

/// An event with owned fields; convert with [`EventBuffer::emit`].
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedEvent {
    /// Unix nanoseconds.
    pub timestamp_ns: u64,
    /// Dotted type.
    pub event_type: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Process id.
    pub pid: Option<u32>,
    /// Thread id.
    pub tid: Option<u32>,
    /// Kernel cgroup id.
    pub cgroup_id: Option<u64>,
    /// Container id (empty = none).
    pub container_id: String,
    /// Attributes, in order.
    pub attributes: Vec<(&'static str, Value)>,
    /// Trace context the source carried, if any.
    pub trace: Option<TraceContext>,
}

impl OwnedEvent {
    /// An event of `event_type` at `timestamp_ns` with no other fields.
    pub fn new(timestamp_ns: u64, event_type: &'static str, severity: Severity) -> Self {
        OwnedEvent {
            timestamp_ns,
            event_type,
            severity,
            pid: None,
            tid: None,
            cgroup_id: None,
            container_id: String::new(),
            attributes: Vec::new(),
            trace: None,
        }
    }
    /// An event of `event_type` at `timestamp_ns`, or now when that is 0 (a source object
    /// without a timestamp).
    pub fn at_or_now(event_type: &'static str, severity: Severity, timestamp_ns: u64) -> Self {
        let at = if timestamp_ns == 0 {
            tapio_plugin_api::now_unix_nanos()
        } else {
            timestamp_ns
        };
        Self::new(at, event_type, severity)
    }
    /// Sets the process id (0 = unknown: left unset).
    pub fn pid(mut self, pid: u32) -> Self {
        self.pid = (pid != 0).then_some(pid);
        self
    }
    /// Sets the thread id (0 = unknown: left unset).
    pub fn tid(mut self, tid: u32) -> Self {
        self.tid = (tid != 0).then_some(tid);
        self
    }
    /// Sets the cgroup id (0 = unknown: left unset).
    pub fn cgroup_id(mut self, id: u64) -> Self {
        self.cgroup_id = (id != 0).then_some(id);
        self
    }
    /// Sets the container id.
    pub fn container_id(mut self, id: impl Into<String>) -> Self {
        self.container_id = id.into();
        self
    }
    /// Adds a text attribute (skipped when empty).
    pub fn str(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.push_str(key, value);
        self
    }
    /// Adds a signed integer attribute.
    pub fn int(mut self, key: &'static str, value: i64) -> Self {
        self.push_int(key, value);
        self
    }
    /// Adds an unsigned integer attribute.
    pub fn uint(mut self, key: &'static str, value: u64) -> Self {
        self.push_uint(key, value);
        self
    }
    /// Adds a number attribute.
    pub fn float(mut self, key: &'static str, value: f64) -> Self {
        self.push_float(key, value);
        self
    }
    /// Adds a boolean attribute.
    pub fn bool(mut self, key: &'static str, value: bool) -> Self {
        self.push_bool(key, value);
        self
    }
    /// Appends a text attribute in place (skipped when empty); for events filled field by
    /// field (the by-value builders above suit events built in one expression).
    pub fn push_str(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        if !value.is_empty() {
            self.attributes.push((key, Value::Str(value)));
        }
        self
    }
    /// Appends a signed integer attribute in place.
    pub fn push_int(&mut self, key: &'static str, value: i64) -> &mut Self {
        self.attributes.push((key, Value::Int(value)));
        self
    }
    /// Appends an unsigned integer attribute in place.
    pub fn push_uint(&mut self, key: &'static str, value: u64) -> &mut Self {
        self.attributes.push((key, Value::UInt(value)));
        self
    }
    /// Appends a number attribute in place.
    pub fn push_float(&mut self, key: &'static str, value: f64) -> &mut Self {
        self.attributes.push((key, Value::Float(value)));
        self
    }
    /// Appends a boolean attribute in place.
    pub fn push_bool(&mut self, key: &'static str, value: bool) -> &mut Self {
        self.attributes.push((key, Value::Bool(value)));
        self
    }
    /// The text attribute `key`, if set.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
    /// Replaces the attributes.
    pub fn with_attributes(mut self, attributes: Vec<(&'static str, Value)>) -> Self {
        self.attributes = attributes;
        self
    }
    /// Sets the envelope's process id from the unsigned attribute `key` (a correlation key
    /// the host reads from the envelope), when present and non-zero.
    pub fn pid_from_attribute(self, key: &str) -> Self {
        match self.attr(key) {
            Some(Value::UInt(p)) => match u32::try_from(*p) {
                Ok(pid) => self.pid(pid),
                Err(_) => self,
            },
            _ => self,
        }
    }
    /// The attribute `key`, if set.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// Events waiting to be emitted, with the totals of what the sink accepted and refused.
#[derive(Debug, Default)]
pub struct EventBuffer {
    events: Vec<OwnedEvent>,
    /// Events the sink accepted so far.
    pub accepted: u64,
    /// Events the sink refused (ring full) so far.
    pub refused: u64,
}

impl EventBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }
    /// Queues an event.
    pub fn push(&mut self, event: OwnedEvent) {
        self.events.push(event);
    }
    /// Queued events.
    pub fn len(&self) -> usize {
        self.events.len()
    }
    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
    /// Takes the queued events out (tests and callers without a sink).
    pub fn take(&mut self) -> Vec<OwnedEvent> {
        std::mem::take(&mut self.events)
    }

    /// Emits every queued event as one batch and clears the buffer.
    pub fn emit(&mut self, sink: &EventSink) -> EmitOutcome {
        let outcome = emit_all(sink, &self.events);
        self.accepted += u64::from(outcome.accepted);
        self.refused += u64::from(outcome.dropped);
        self.events.clear();
        outcome
    }
}

/// Borrowed views of owned attributes, for one `emit` call.
fn borrow_attributes<'a>(attributes: &'a [(&'static str, Value)]) -> Vec<Attribute<'a>> {
    attributes
        .iter()
        .map(|(key, value)| match value {
            Value::Str(s) => Attribute::str(key, s),
            Value::Int(i) => Attribute::int(key, *i),
            Value::UInt(u) => Attribute::uint(key, *u),
            Value::Float(f) => Attribute::float(key, *f),
            Value::Bool(b) => Attribute::bool(key, *b),
        })
        .collect()
}

/// Lends `events` to the sink as one borrowed batch (the host copies it); nothing is
/// emitted for an empty slice.
pub fn emit_all(sink: &EventSink, events: &[OwnedEvent]) -> EmitOutcome {
    if events.is_empty() {
        return EmitOutcome::default();
    }
    let attributes: Vec<Vec<Attribute<'_>>> = events
        .iter()
        .map(|e| borrow_attributes(&e.attributes))
        .collect();
    let batch: Vec<Event<'_>> = events
        .iter()
        .zip(&attributes)
        .map(|(e, attrs)| {
            let mut event = Event::at(e.timestamp_ns, e.event_type, e.severity)
                .with_container_id(&e.container_id)
                .with_attributes(attrs);
            if let Some(pid) = e.pid {
                event = event.with_pid(pid);
            }
            if let Some(tid) = e.tid {
                event = event.with_tid(tid);
            }
            if let Some(id) = e.cgroup_id {
                event = event.with_cgroup_id(id);
            }
            if let Some(t) = e.trace {
                event = event.with_trace(t);
            }
            event
        })
        .collect();
    sink.emit(&batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_skips_unknown_ids_and_empty_text() {
        let e = OwnedEvent::new(1, "a.b", Severity::Info)
            .pid(0)
            .tid(5)
            .cgroup_id(0)
            .str("empty", "")
            .str("k", "v")
            .uint("n", 3);
        assert_eq!((e.pid, e.tid, e.cgroup_id), (None, Some(5), None));
        assert_eq!(e.attr("k"), Some(&Value::Str("v".into())));
        assert_eq!(e.attr("empty"), None);
        assert_eq!(e.attr("n"), Some(&Value::UInt(3)));
    }

    #[test]
    fn the_envelope_pid_comes_from_the_process_pid_attribute() {
        let e = OwnedEvent::new(1, "a.b", Severity::Info)
            .with_attributes(vec![("process.pid", Value::UInt(42))])
            .pid_from_attribute("process.pid");
        assert_eq!(e.pid, Some(42));
        let none = OwnedEvent::new(1, "a.b", Severity::Info)
            .with_attributes(vec![("process.pid", Value::Str("x".into()))])
            .pid_from_attribute("process.pid");
        assert_eq!(none.pid, None, "only an unsigned pid is an envelope pid");
    }
}
