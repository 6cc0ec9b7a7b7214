//! OTLP requests → tapio events, without copying what can be borrowed.
//!
//! Every span, log record and metric data point becomes one event. Strings, keys and bytes
//! are borrowed from the decoded request; only nested values (arrays, maps) are rendered
//! into owned JSON text. Events are lent to the sink in chunks of [`CHUNK`], so a large
//! request never builds one huge batch.
//!
//! Attribute order per event: resource attributes, then the receiver's own (`otel.*`,
//! `log.*`, `metric.*`), then the item's attributes; a later attribute with the same key
//! replaces the earlier one (the item's own value wins over its resource's).

pub mod logs;
pub mod metrics;
pub mod traces;

use std::ops::Range;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tapio_plugin_api::{Attribute, EmitOutcome, Event, EventSink, Severity, TraceContext};

/// Events per emit call.
pub const CHUNK: usize = 1024;

/// Where converted events go: the host's sink, or a test's.
pub trait Sink {
    /// Emits one chunk; see [`EmitOutcome`].
    fn emit(&self, events: &[Event<'_>]) -> EmitOutcome;
}

impl Sink for EventSink {
    fn emit(&self, events: &[Event<'_>]) -> EmitOutcome {
        EventSink::emit(self, events)
    }
}

/// An attribute value borrowed from the request, or rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'r> {
    /// Borrowed text.
    Str(&'r str),
    /// Rendered text (JSON of an array or map, or a computed value).
    Owned(String),
    /// Signed integer.
    Int(i64),
    /// Unsigned integer.
    UInt(u64),
    /// Number.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// Borrowed bytes.
    Bytes(&'r [u8]),
}

impl Val<'_> {
    fn as_attr_value(&self) -> tapio_plugin_api::AttrValue<'_> {
        use tapio_plugin_api::{AttrValue, RSlice, RStr};
        match self {
            Val::Str(s) => AttrValue::Str(RStr::from_str(s)),
            Val::Owned(s) => AttrValue::Str(RStr::from_str(s)),
            Val::Int(i) => AttrValue::Int(*i),
            Val::UInt(u) => AttrValue::UInt(*u),
            Val::Float(f) => AttrValue::Float(*f),
            Val::Bool(b) => AttrValue::Bool(*b),
            Val::Bytes(b) => AttrValue::Bytes(RSlice::from_slice(b)),
        }
    }
}

/// The value of an OTLP `AnyValue` as an attribute value; `None` for an empty value.
pub fn any_value(value: &AnyValue) -> Option<Val<'_>> {
    Some(match value.value.as_ref()? {
        any_value::Value::StringValue(s) => Val::Str(s),
        any_value::Value::BoolValue(b) => Val::Bool(*b),
        any_value::Value::IntValue(i) => Val::Int(*i),
        any_value::Value::DoubleValue(d) => Val::Float(*d),
        any_value::Value::BytesValue(b) => Val::Bytes(b),
        nested @ (any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_)) => {
            Val::Owned(to_json(Some(nested)).to_string())
        }
        // Only meaningful with a profiles dictionary, which logs, traces and metrics lack.
        any_value::Value::StringValueStrindex(_) => return None,
    })
}

/// JSON form of a nested value (bytes as lowercase hex).
fn to_json(value: Option<&any_value::Value>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        None | Some(any_value::Value::StringValueStrindex(_)) => J::Null,
        Some(any_value::Value::StringValue(s)) => J::from(s.as_str()),
        Some(any_value::Value::BoolValue(b)) => J::from(*b),
        Some(any_value::Value::IntValue(i)) => J::from(*i),
        Some(any_value::Value::DoubleValue(d)) => J::from(*d),
        Some(any_value::Value::BytesValue(b)) => J::from(hex(b)),
        Some(any_value::Value::ArrayValue(a)) => {
            J::Array(a.values.iter().map(|v| to_json(v.value.as_ref())).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|e| {
                    (
                        e.key.clone(),
                        to_json(e.value.as_ref().and_then(|v| v.value.as_ref())),
                    )
                })
                .collect(),
        ),
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// What a resource contributes to each of its items' events.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceCtx<'r> {
    /// All resource attributes (`service.name`, `k8s.pod.name`, ...).
    pub attributes: &'r [KeyValue],
    /// `process.pid`, when it is an integer that fits a pid.
    pub pid: Option<u32>,
    /// `container.id`, or empty.
    pub container_id: &'r str,
}

impl<'r> ResourceCtx<'r> {
    /// The context of `resource` (absent resource = no attributes).
    pub fn of(resource: Option<&'r Resource>) -> Self {
        let attributes = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let mut ctx = ResourceCtx {
            attributes,
            ..Self::default()
        };
        for kv in attributes {
            let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
            match (kv.key.as_str(), value) {
                ("process.pid", Some(any_value::Value::IntValue(pid))) => {
                    ctx.pid = u32::try_from(*pid).ok();
                }
                ("container.id", Some(any_value::Value::StringValue(id))) => {
                    ctx.container_id = id;
                }
                _ => {}
            }
        }
        ctx
    }
}

/// The instrumentation scope's name and version.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScopeCtx<'r> {
    /// `otel.scope.name`.
    pub name: &'r str,
    /// `otel.scope.version`.
    pub version: &'r str,
}

impl<'r> ScopeCtx<'r> {
    /// The context of `scope`.
    pub fn of(scope: Option<&'r InstrumentationScope>) -> Self {
        scope
            .map(|s| ScopeCtx {
                name: &s.name,
                version: &s.version,
            })
            .unwrap_or_default()
    }
}

/// One event being built.
#[derive(Debug, Clone)]
struct Pending<'r> {
    timestamp_ns: u64,
    event_type: &'static str,
    severity: Severity,
    pid: Option<u32>,
    container_id: &'r str,
    trace: Option<TraceContext>,
    attrs: Range<usize>,
}

/// What happened to the items of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Items turned into events and taken by the sink.
    pub accepted: u64,
    /// Items turned into events that the sink refused (ring full).
    pub dropped: u64,
    /// Items rejected as invalid (bad trace or span id).
    pub invalid: u64,
}

impl Tally {
    /// Items rejected, for OTLP's `partial_success`.
    pub fn rejected(&self) -> u64 {
        self.dropped + self.invalid
    }

    /// The `partial_success.error_message` for `what` (`spans`, ...), empty when none.
    pub fn message(&self, what: &str) -> String {
        let mut parts = Vec::new();
        if self.invalid > 0 {
            parts.push(format!(
                "{} {what} rejected: invalid trace id or span id (trace ids are 16 non-zero bytes, span ids 8)",
                self.invalid
            ));
        }
        if self.dropped > 0 {
            parts.push(format!(
                "{} {what} dropped: the collector's event ring is full, slow down",
                self.dropped
            ));
        }
        parts.join("; ")
    }
}

/// Builds events chunk by chunk and emits each full chunk.
pub struct Batch<'r, 's, S: Sink + ?Sized> {
    sink: &'s S,
    attrs: Vec<(&'r str, Val<'r>)>,
    events: Vec<Pending<'r>>,
    current: Option<Pending<'r>>,
    tally: Tally,
}

impl<'r, 's, S: Sink + ?Sized> Batch<'r, 's, S> {
    /// An empty batch emitting into `sink`.
    pub fn new(sink: &'s S) -> Self {
        Batch {
            sink,
            attrs: Vec::new(),
            events: Vec::with_capacity(CHUNK),
            current: None,
            tally: Tally::default(),
        }
    }

    /// Starts an event with the resource's pid, container id and attributes and the
    /// scope's name and version.
    pub fn begin(
        &mut self,
        timestamp_ns: u64,
        event_type: &'static str,
        severity: Severity,
        resource: &ResourceCtx<'r>,
        scope: &ScopeCtx<'r>,
    ) {
        debug_assert!(self.current.is_none(), "previous event not finished");
        let start = self.attrs.len();
        self.current = Some(Pending {
            timestamp_ns,
            event_type,
            severity,
            pid: resource.pid,
            container_id: resource.container_id,
            trace: None,
            attrs: start..start,
        });
        self.attributes(resource.attributes);
        self.str_nonempty("otel.scope.name", scope.name);
        self.str_nonempty("otel.scope.version", scope.version);
    }

    /// Sets the current event's trace context.
    pub fn trace(&mut self, trace: TraceContext) {
        if let Some(p) = self.current.as_mut() {
            p.trace = Some(trace);
        }
    }

    /// Adds (or replaces) an attribute of the current event.
    pub fn attr(&mut self, key: &'r str, value: Val<'r>) {
        let Some(p) = self.current.as_ref() else {
            return;
        };
        let start = p.attrs.start;
        match self.attrs[start..].iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((key, value)),
        }
    }

    /// Adds a text attribute unless it is empty.
    pub fn str_nonempty(&mut self, key: &'r str, value: &'r str) {
        if !value.is_empty() {
            self.attr(key, Val::Str(value));
        }
    }

    /// Adds OTLP key-values as attributes (empty values are skipped).
    pub fn attributes(&mut self, kvs: &'r [KeyValue]) {
        for kv in kvs {
            if let Some(v) = kv.value.as_ref().and_then(any_value) {
                self.attr(&kv.key, v);
            }
        }
    }

    /// Finishes the current event; emits a chunk when full.
    pub fn finish(&mut self) {
        if let Some(mut p) = self.current.take() {
            p.attrs.end = self.attrs.len();
            self.events.push(p);
            if self.events.len() >= CHUNK {
                self.flush();
            }
        }
    }

    /// Counts an item rejected as invalid.
    pub fn reject_invalid(&mut self) {
        self.tally.invalid += 1;
    }

    /// Emits what is pending and returns the tally.
    pub fn done(mut self) -> Tally {
        self.flush();
        self.tally
    }

    fn flush(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let attrs: Vec<Attribute<'_>> = self
            .attrs
            .iter()
            .map(|(k, v)| Attribute {
                key: tapio_plugin_api::RStr::from_str(k),
                value: v.as_attr_value(),
            })
            .collect();
        let events: Vec<Event<'_>> = self
            .events
            .iter()
            .map(|p| {
                let mut e = Event::at(p.timestamp_ns, p.event_type, p.severity)
                    .with_container_id(p.container_id)
                    .with_attributes(&attrs[p.attrs.clone()]);
                if let Some(pid) = p.pid {
                    e = e.with_pid(pid);
                }
                if let Some(t) = p.trace {
                    e = e.with_trace(t);
                }
                e
            })
            .collect();
        let outcome = self.sink.emit(&events);
        self.tally.accepted += u64::from(outcome.accepted);
        // Whatever the sink did not take counts as dropped.
        self.tally.dropped += (events.len() as u64).saturating_sub(u64::from(outcome.accepted));
        drop(events);
        drop(attrs);
        self.events.clear();
        self.attrs.clear();
    }
}

/// A 16-byte trace id that is not all zeros.
pub fn trace_id(bytes: &[u8]) -> Option<[u8; 16]> {
    let id: [u8; 16] = bytes.try_into().ok()?;
    (id != [0; 16]).then_some(id)
}

/// An 8-byte span id that is not all zeros.
pub fn span_id(bytes: &[u8]) -> Option<[u8; 8]> {
    let id: [u8; 8] = bytes.try_into().ok()?;
    (id != [0; 8]).then_some(id)
}

/// The event time: `t` when set, else `fallback` when set, else now.
pub fn time_or(t: u64, fallback: u64) -> u64 {
    if t != 0 {
        t
    } else if fallback != 0 {
        fallback
    } else {
        tapio_plugin_api::now_unix_nanos()
    }
}

#[cfg(test)]
pub mod test_sink;
