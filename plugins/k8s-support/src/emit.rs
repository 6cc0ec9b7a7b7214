//! Events that own their data, lent to the host's sink in batches.
//!
//! `tapio_plugin_api::Event` borrows everything; collectors that build events from decoded
//! API objects keep them as [`OwnedEvent`]s and call [`emit_all`], which builds the borrowed
//! views on the stack for the duration of one `emit`.

use tapio_plugin_api::{Attribute, EmitOutcome, Event, EventSink, Severity, TraceContext};

/// An owned attribute value (the one every plugin's owned events use).
pub use tapio_event_buffer::Value as OwnedValue;

/// An event that owns its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedEvent {
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Dotted type (one declared in the plugin's `INFO`).
    pub event_type: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Container id, or empty.
    pub container_id: String,
    /// Attributes in insertion order.
    pub attributes: Vec<(&'static str, OwnedValue)>,
    /// Trace context the source carried, if any.
    pub trace: Option<TraceContext>,
}

impl OwnedEvent {
    /// An event of `event_type` at `timestamp_ns` (0 = now).
    pub fn new(event_type: &'static str, severity: Severity, timestamp_ns: u64) -> Self {
        OwnedEvent {
            timestamp_ns: if timestamp_ns == 0 {
                tapio_plugin_api::now_unix_nanos()
            } else {
                timestamp_ns
            },
            event_type,
            severity,
            container_id: String::new(),
            attributes: Vec::new(),
            trace: None,
        }
    }

    /// Adds a text attribute; empty text is left out (unknown is absent, never "").
    pub fn str(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        if !value.is_empty() {
            self.attributes.push((key, OwnedValue::Str(value)));
        }
        self
    }

    /// Adds a signed integer attribute.
    pub fn int(&mut self, key: &'static str, value: i64) -> &mut Self {
        self.attributes.push((key, OwnedValue::Int(value)));
        self
    }

    /// Adds an unsigned integer attribute.
    pub fn uint(&mut self, key: &'static str, value: u64) -> &mut Self {
        self.attributes.push((key, OwnedValue::UInt(value)));
        self
    }

    /// Adds a number attribute.
    pub fn float(&mut self, key: &'static str, value: f64) -> &mut Self {
        self.attributes.push((key, OwnedValue::Float(value)));
        self
    }

    /// Adds a boolean attribute.
    pub fn bool(&mut self, key: &'static str, value: bool) -> &mut Self {
        self.attributes.push((key, OwnedValue::Bool(value)));
        self
    }

    /// The text attribute `key`, if present.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find_map(|(k, v)| match v {
            OwnedValue::Str(s) if *k == key => Some(s.as_str()),
            _ => None,
        })
    }

    fn borrowed_attributes(&self) -> Vec<Attribute<'_>> {
        tapio_event_buffer::borrow_attributes(&self.attributes)
    }
}

/// Emits `events` as one batch; returns the sink's outcome.
pub fn emit_all(sink: &EventSink, events: &[OwnedEvent]) -> EmitOutcome {
    if events.is_empty() {
        return EmitOutcome::default();
    }
    let attrs: Vec<Vec<Attribute<'_>>> =
        events.iter().map(OwnedEvent::borrowed_attributes).collect();
    let batch: Vec<Event<'_>> = events
        .iter()
        .zip(&attrs)
        .map(|(e, a)| {
            let mut ev = Event::at(e.timestamp_ns, e.event_type, e.severity)
                .with_container_id(&e.container_id)
                .with_attributes(a);
            if let Some(t) = e.trace {
                ev = ev.with_trace(t);
            }
            ev
        })
        .collect();
    sink.emit(&batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_strings_are_left_out() {
        let mut e = OwnedEvent::new("a.b", Severity::Info, 7);
        e.str("k8s.pod.name", "")
            .str("k8s.namespace.name", "ns")
            .int("x.y", -1);
        assert_eq!(e.attributes.len(), 2);
        assert_eq!(e.get_str("k8s.namespace.name"), Some("ns"));
        assert_eq!(e.timestamp_ns, 7);
        assert!(OwnedEvent::new("a.b", Severity::Info, 0).timestamp_ns > 0);
    }
}
