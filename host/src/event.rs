//! The host's owned event: what the ring carries, stages enrich and sinks write.
//!
//! A plugin lends [`tapio_plugin_api::Event`]s for one call; [`Event::copy_from_abi`] copies
//! them here. Short strings (up to 24 bytes: most types and attribute keys) are stored inline,
//! so the copy costs one allocation per event (the attribute vector) at most.

use std::sync::Arc;

use compact_str::CompactString;
use tapio_plugin_api as api;

pub use api::Severity;

/// A unique event id: a random per-process `nonce` and a sequence number, so ids never
/// repeat across restarts and a receiver can de-duplicate by id. All zero means "not
/// assigned yet". Two `u64`s rather than a `u128` keep [`Event`] 8-byte aligned (smaller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct EventId {
    /// Random per process.
    pub nonce: u64,
    /// Increments per event.
    pub seq: u64,
}

impl std::fmt::Display for EventId {
    /// Formats as a UUID-shaped string (8-4-4-4-12 hex digits).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, s) = (self.nonce, self.seq);
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (n >> 32) as u32,
            (n >> 16) as u16,
            n as u16,
            (s >> 48) as u16,
            s & 0xffff_ffff_ffff
        )
    }
}

/// W3C trace context of an event. Byte arrays (big-endian, as on the wire) keep it 1-byte
/// aligned and small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceContext {
    /// 16-byte trace id (never all zero once assigned).
    pub trace_id: [u8; 16],
    /// 8-byte span id.
    pub span_id: [u8; 8],
    /// Parent span id, all zero when none.
    pub parent_span_id: [u8; 8],
    /// W3C flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceContext {
    /// Copies a plugin-provided context.
    pub fn from_abi(t: &api::TraceContext) -> Self {
        TraceContext {
            trace_id: t.trace_id,
            span_id: t.span_id,
            parent_span_id: t.parent_span_id,
            flags: t.flags,
        }
    }

    /// Whether a parent span is set.
    pub fn has_parent(&self) -> bool {
        self.parent_span_id != [0; 8]
    }
}

/// Lowercase hex of `bytes` (trace and span ids).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Bytes first, one check at the end: pushing `char`s re-checks capacity and UTF-8
    // width for every digit (ids and trace ids are written for every exported event).
    let mut digits = vec![0; bytes.len() * 2];
    for (pair, b) in digits.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
    String::from_utf8(digits).expect("hex digits are ASCII")
}

/// An owned attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(CompactString),
    /// Signed integer.
    Int(i64),
    /// Unsigned integer.
    UInt(u64),
    /// Number.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl Value {
    fn copy_from_abi(v: &api::AttrValue<'_>) -> Self {
        match *v {
            api::AttrValue::Str(s) => Value::Str(CompactString::new(s.as_str())),
            api::AttrValue::Int(i) => Value::Int(i),
            api::AttrValue::UInt(u) => Value::UInt(u),
            api::AttrValue::Float(f) => Value::Float(f),
            api::AttrValue::Bool(b) => Value::Bool(b),
            api::AttrValue::Bytes(b) => Value::Bytes(b.as_slice().to_vec()),
        }
    }

    /// The value as text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer, if it is a (fitting) integer.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }
}

/// One owned attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Dotted key.
    pub key: CompactString,
    /// Value.
    pub value: Value,
}

/// An immutable attribute list several events refer to (a pod's entity attributes).
pub type SharedAttributes = Arc<[Attribute]>;

/// The host's owned event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique id, assigned by enrichment.
    pub id: EventId,
    /// Wall clock, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Dotted type.
    pub event_type: CompactString,
    /// Name of the plugin that emitted it.
    pub source: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Process id.
    pub pid: Option<u32>,
    /// Thread id.
    pub tid: Option<u32>,
    /// Kernel cgroup id.
    pub cgroup_id: Option<u64>,
    /// Container id (shared with the entity graph's copy when enrichment set it: one
    /// reference count instead of a 64-byte copy per event).
    pub container_id: Option<Arc<str>>,
    /// Attributes, in the order the plugin gave them (then what stages appended).
    pub attributes: Vec<Attribute>,
    /// Entity attributes shared with every other event of the same entity (set by
    /// enrichment: one reference count instead of a copy of each attribute per event).
    /// They come after [`Event::attributes`] and never repeat one of its keys; read both
    /// through [`Event::attribute`] and [`Event::all_attributes`].
    pub shared_attributes: Option<SharedAttributes>,
    /// Trace context: the plugin's, or assigned by enrichment.
    pub trace: Option<TraceContext>,
}

/// Spare attribute slots a copied plugin event gets, so the pipeline's enrichment (unit,
/// executable, parent pid, group ids; a pod's attributes when the event names the pod
/// itself) appends without growing the list on the pipeline thread (the copy runs on the
/// plugin's thread anyway).
pub const ATTRIBUTE_HEADROOM: usize = 8;

impl Event {
    /// Copies a borrowed plugin event (`source` is the plugin's interned name).
    pub fn copy_from_abi(e: &api::Event<'_>, source: &'static str) -> Self {
        let event_type = if e.event_type.is_empty() {
            CompactString::const_new("unknown")
        } else {
            CompactString::new(e.event_type.as_str())
        };
        Event {
            id: EventId::default(),
            timestamp_ns: e.timestamp_ns,
            event_type,
            source,
            severity: e.severity,
            pid: e.pid.into_option(),
            tid: e.tid.into_option(),
            cgroup_id: e.cgroup_id.into_option(),
            container_id: (!e.container_id.is_empty()).then(|| Arc::from(e.container_id.as_str())),
            attributes: {
                let mut attributes = Vec::with_capacity(e.attributes.len() + ATTRIBUTE_HEADROOM);
                attributes.extend(e.attributes.iter().map(|a| Attribute {
                    key: CompactString::new(a.key.as_str()),
                    value: Value::copy_from_abi(&a.value),
                }));
                attributes
            },
            shared_attributes: None,
            trace: e.trace.as_ref().map(TraceContext::from_abi).into_option(),
        }
    }

    /// A minimal event, for tests and synthetic host events.
    pub fn new(
        event_type: &str,
        source: &'static str,
        severity: Severity,
        timestamp_ns: u64,
    ) -> Self {
        Event {
            id: EventId::default(),
            timestamp_ns,
            event_type: CompactString::new(event_type),
            source,
            severity,
            pid: None,
            tid: None,
            cgroup_id: None,
            container_id: None,
            attributes: Vec::new(),
            shared_attributes: None,
            trace: None,
        }
    }

    /// The first attribute named `key`: the event's own, then the shared ones.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.all_attributes()
            .find(|a| a.key == key)
            .map(|a| &a.value)
    }

    /// Every attribute: the event's own in order, then the shared ones.
    pub fn all_attributes(&self) -> impl ExactSizeIterator<Item = &Attribute> + Clone {
        AllAttributes {
            own: self.attributes.iter(),
            shared: self.shared_attributes.as_deref().unwrap_or_default().iter(),
        }
    }
}

/// [`Event::all_attributes`]: `Chain` is not an `ExactSizeIterator`, and serializers want
/// the count up front.
#[derive(Clone)]
struct AllAttributes<'a> {
    own: std::slice::Iter<'a, Attribute>,
    shared: std::slice::Iter<'a, Attribute>,
}

impl<'a> Iterator for AllAttributes<'a> {
    type Item = &'a Attribute;

    fn next(&mut self) -> Option<&'a Attribute> {
        self.own.next().or_else(|| self.shared.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.own.len() + self.shared.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for AllAttributes<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use api::Attribute as A;

    #[test]
    fn copy_keeps_every_field() {
        let bytes = [1u8, 2, 3];
        let attrs = [
            A::str("k8s.pod.name", "web-0"),
            A::int("exit.code", -9),
            A::uint("process.pid", 42),
            A::float("ratio", 0.5),
            A::bool("ok", true),
            A::bytes("raw", &bytes),
        ];
        let trace = api::TraceContext {
            trace_id: [0xab; 16],
            span_id: [0xcd; 8],
            parent_span_id: [0; 8],
            flags: 1,
        };
        let abi = api::Event::at(77, "kernel.process.exit", Severity::High)
            .with_pid(42)
            .with_tid(43)
            .with_cgroup_id(44)
            .with_container_id("c0ffee")
            .with_attributes(&attrs)
            .with_trace(trace);
        let e = Event::copy_from_abi(&abi, "process");
        assert_eq!(e.timestamp_ns, 77);
        assert_eq!(e.event_type, "kernel.process.exit");
        assert_eq!(e.source, "process");
        assert_eq!(e.severity, Severity::High);
        assert_eq!((e.pid, e.tid, e.cgroup_id), (Some(42), Some(43), Some(44)));
        assert_eq!(e.container_id.as_deref(), Some("c0ffee"));
        assert_eq!(
            e.attribute("k8s.pod.name"),
            Some(&Value::Str("web-0".into()))
        );
        assert_eq!(e.attribute("exit.code").and_then(Value::as_i64), Some(-9));
        assert_eq!(e.attribute("raw"), Some(&Value::Bytes(vec![1, 2, 3])));
        let t = e.trace.unwrap();
        assert_eq!(hex(&t.trace_id), "ab".repeat(16));
        assert_eq!(hex(&t.span_id), "cd".repeat(8));
        assert!(!t.has_parent());
    }

    #[test]
    fn empty_type_becomes_unknown_and_empty_container_is_none() {
        let abi = api::Event::at(1, "", Severity::Info);
        let e = Event::copy_from_abi(&abi, "x");
        assert_eq!(e.event_type, "unknown");
        assert_eq!(e.container_id, None);
    }

    #[test]
    fn shared_attributes_come_after_the_events_own() {
        let attr = |k: &str, v: &str| Attribute {
            key: k.into(),
            value: Value::Str(v.into()),
        };
        let mut e = Event::new("x", "test", Severity::Info, 1);
        e.attributes.push(attr("own", "1"));
        e.attributes.push(attr("both", "own"));
        assert_eq!(e.all_attributes().len(), 2);
        e.shared_attributes = Some(vec![attr("pod", "web-0"), attr("both", "shared")].into());
        let keys: Vec<&str> = e.all_attributes().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["own", "both", "pod", "both"]);
        assert_eq!(e.all_attributes().len(), 4);
        assert_eq!(e.attribute("pod"), Some(&Value::Str("web-0".into())));
        // The event's own value wins.
        assert_eq!(e.attribute("both"), Some(&Value::Str("own".into())));
        assert_eq!(e.attribute("none"), None);
    }

    #[test]
    fn event_id_formats_like_a_uuid() {
        let id = EventId {
            nonce: 0x0123_4567_89ab_cdef,
            seq: 0x0011_2233_4455_6677,
        };
        assert_eq!(id.to_string(), "01234567-89ab-cdef-0011-223344556677");
    }
}
