//! Events built by the pure monitor logic as owned values, lent to the host in one batch.

use tapio_plugin_api::{Attribute, EmitOutcome, Event, EventSink, Severity};

/// An owned attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(String),
    /// Unsigned integer.
    UInt(u64),
    /// Signed integer.
    Int(i64),
}

/// An owned event, turned into a borrowed [`Event`] only for the emit call.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedEvent {
    /// Nanoseconds since the epoch.
    pub timestamp_ns: u64,
    /// Dotted type.
    pub event_type: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Attributes in emission order.
    pub attrs: Vec<(&'static str, Value)>,
}

impl OwnedEvent {
    /// The attribute `key`, if present.
    #[cfg(test)]
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

fn borrow<'a>(key: &'static str, value: &'a Value) -> Attribute<'a> {
    match value {
        Value::Str(s) => Attribute::str(key, s),
        Value::UInt(u) => Attribute::uint(key, *u),
        Value::Int(i) => Attribute::int(key, *i),
    }
}

/// Emits `events` as one batch.
pub fn emit(sink: &EventSink, events: &[OwnedEvent]) -> EmitOutcome {
    if events.is_empty() {
        return EmitOutcome::default();
    }
    let attrs: Vec<Vec<Attribute<'_>>> = events
        .iter()
        .map(|e| e.attrs.iter().map(|(k, v)| borrow(k, v)).collect())
        .collect();
    let batch: Vec<Event<'_>> = events
        .iter()
        .zip(&attrs)
        .map(|(e, a)| {
            let event = Event::at(e.timestamp_ns, e.event_type, e.severity).with_attributes(a);
            // `process.pid` is also the envelope's pid (a correlation key).
            match e.attrs.iter().find_map(|(k, v)| match (*k, v) {
                ("process.pid", Value::UInt(p)) => u32::try_from(*p).ok(),
                _ => None,
            }) {
                Some(pid) => event.with_pid(pid),
                None => event,
            }
        })
        .collect();
    sink.emit(&batch)
}
