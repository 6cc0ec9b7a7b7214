//! The event model as it crosses the plugin boundary.
//!
//! Ownership and lifetime: every type here BORROWS its strings and slices (`'a`). A plugin
//! builds events on its own stack or buffers and lends them to the host for the duration of
//! one [`EventSink::emit`](crate::EventSink::emit) call; the host copies what it keeps before
//! the call returns. Nothing the host receives here outlives the call.

use std::time::{SystemTime, UNIX_EPOCH};

use abi_stable::{
    std_types::{ROption, RSlice, RStr},
    StableAbi,
};

/// How much an event matters, lowest first (the eight levels of the product documents).
///
/// Ownership: plain value.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Diagnostic detail.
    Debug = 0,
    /// Normal operation.
    Info = 1,
    /// Worth noticing, no action needed.
    Low = 2,
    /// Deserves a look.
    Medium = 3,
    /// Something may go wrong.
    Warning = 4,
    /// Something is going wrong.
    High = 5,
    /// Something failed.
    Error = 6,
    /// A failure with wide impact.
    Critical = 7,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 8] = [
        Severity::Debug,
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::Warning,
        Severity::High,
        Severity::Error,
        Severity::Critical,
    ];

    /// The lowercase name used in configs and output (`"warning"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::Warning => "warning",
            Severity::High => "high",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// Parses a lowercase name as produced by [`Severity::as_str`].
    pub fn parse(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// W3C trace context a plugin already knows for an event (an OTLP span it received, a
/// Kubernetes object annotated with a trace id). Events without one get a trace context from
/// the host's correlation stage.
///
/// Ownership: plain value. An all-zero `parent_span_id` means "no parent".
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceContext {
    /// 16-byte trace id, big-endian as in W3C `traceparent`.
    pub trace_id: [u8; 16],
    /// 8-byte span id of the span this event belongs to or describes.
    pub span_id: [u8; 8],
    /// 8-byte id of the parent span, or zeros.
    pub parent_span_id: [u8; 8],
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
}

/// A typed attribute value. Borrowed for `'a`.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    /// UTF-8 text.
    Str(RStr<'a>),
    /// Signed integer.
    Int(i64),
    /// Unsigned integer.
    UInt(u64),
    /// Floating point number.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// Raw bytes (the host renders them as hex or base64 depending on the sink).
    Bytes(RSlice<'a, u8>),
}

/// One named attribute. Keys follow OpenTelemetry semantic conventions where one exists
/// (`process.pid`, `k8s.pod.name`, `network.peer.address`, ...). Borrowed for `'a`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct Attribute<'a> {
    /// Dotted attribute name.
    pub key: RStr<'a>,
    /// Typed value.
    pub value: AttrValue<'a>,
}

impl<'a> Attribute<'a> {
    /// A string attribute.
    pub const fn str(key: &'a str, value: &'a str) -> Self {
        Attribute {
            key: RStr::from_str(key),
            value: AttrValue::Str(RStr::from_str(value)),
        }
    }
    /// A signed integer attribute.
    pub const fn int(key: &'a str, value: i64) -> Self {
        Attribute {
            key: RStr::from_str(key),
            value: AttrValue::Int(value),
        }
    }
    /// An unsigned integer attribute.
    pub const fn uint(key: &'a str, value: u64) -> Self {
        Attribute {
            key: RStr::from_str(key),
            value: AttrValue::UInt(value),
        }
    }
    /// A floating point attribute.
    pub const fn float(key: &'a str, value: f64) -> Self {
        Attribute {
            key: RStr::from_str(key),
            value: AttrValue::Float(value),
        }
    }
    /// A boolean attribute.
    pub const fn bool(key: &'a str, value: bool) -> Self {
        Attribute {
            key: RStr::from_str(key),
            value: AttrValue::Bool(value),
        }
    }
    /// A bytes attribute.
    pub const fn bytes(key: &'a str, value: &'a [u8]) -> Self {
        Attribute {
            key: RStr::from_str(key),
            value: AttrValue::Bytes(RSlice::from_slice(value)),
        }
    }
}

/// One observation, borrowed for `'a` (see the module docs for the lifetime rule).
///
/// Build one with [`Event::new`] and the `with_*` methods:
///
/// ```
/// use tapio_plugin_api::{Attribute, Event, Severity};
/// let attrs = [Attribute::str("process.executable.name", "bash")];
/// let event = Event::new("kernel.process.exec", Severity::Info)
///     .with_pid(42)
///     .with_attributes(&attrs);
/// assert_eq!(event.event_type.as_str(), "kernel.process.exec");
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct Event<'a> {
    /// Wall-clock time of the observation, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Dotted type, lowercase, most general part first (`kernel.process.exec`).
    pub event_type: RStr<'a>,
    /// How much it matters.
    pub severity: Severity,
    /// Process id (thread-group id), when the event concerns a process.
    pub pid: ROption<u32>,
    /// Thread id, when known.
    pub tid: ROption<u32>,
    /// Kernel cgroup id (the inode of the cgroup v2 directory), when known.
    pub cgroup_id: ROption<u64>,
    /// Container id (full hex id), or empty when unknown.
    pub container_id: RStr<'a>,
    /// Typed attributes.
    pub attributes: RSlice<'a, Attribute<'a>>,
    /// Trace context the plugin already knows, if any.
    pub trace: ROption<TraceContext>,
}

/// Nanoseconds since the Unix epoch, now (wall clock).
pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl<'a> Event<'a> {
    /// An event of `event_type` stamped with the current wall-clock time and no other fields.
    pub fn new(event_type: &'a str, severity: Severity) -> Self {
        Self::at(now_unix_nanos(), event_type, severity)
    }

    /// An event with an explicit timestamp (nanoseconds since the Unix epoch).
    pub const fn at(timestamp_ns: u64, event_type: &'a str, severity: Severity) -> Self {
        Event {
            timestamp_ns,
            event_type: RStr::from_str(event_type),
            severity,
            pid: ROption::RNone,
            tid: ROption::RNone,
            cgroup_id: ROption::RNone,
            container_id: RStr::from_str(""),
            attributes: RSlice::from_slice(&[]),
            trace: ROption::RNone,
        }
    }

    /// Sets the process id.
    pub const fn with_pid(mut self, pid: u32) -> Self {
        self.pid = ROption::RSome(pid);
        self
    }

    /// Sets the thread id.
    pub const fn with_tid(mut self, tid: u32) -> Self {
        self.tid = ROption::RSome(tid);
        self
    }

    /// Sets the kernel cgroup id.
    pub const fn with_cgroup_id(mut self, cgroup_id: u64) -> Self {
        self.cgroup_id = ROption::RSome(cgroup_id);
        self
    }

    /// Sets the container id.
    pub const fn with_container_id(mut self, container_id: &'a str) -> Self {
        self.container_id = RStr::from_str(container_id);
        self
    }

    /// Sets the attributes.
    pub const fn with_attributes(mut self, attributes: &'a [Attribute<'a>]) -> Self {
        self.attributes = RSlice::from_slice(attributes);
        self
    }

    /// Sets a trace context the plugin already knows.
    pub const fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = ROption::RSome(trace);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_names_round_trip() {
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        assert_eq!(Severity::parse("fatal"), None);
    }

    #[test]
    fn severities_are_ordered_lowest_first() {
        assert!(Severity::Debug < Severity::Info);
        assert!(Severity::Warning < Severity::High);
        assert!(Severity::Error < Severity::Critical);
    }

    #[test]
    fn builder_sets_every_field() {
        let attrs = [
            Attribute::uint("process.pid", 7),
            Attribute::bool("ok", true),
        ];
        let trace = TraceContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: [0; 8],
            flags: 1,
        };
        let e = Event::at(5, "a.b", Severity::High)
            .with_pid(7)
            .with_tid(8)
            .with_cgroup_id(9)
            .with_container_id("abc")
            .with_attributes(&attrs)
            .with_trace(trace);
        assert_eq!(e.timestamp_ns, 5);
        assert_eq!(e.pid, ROption::RSome(7));
        assert_eq!(e.tid, ROption::RSome(8));
        assert_eq!(e.cgroup_id, ROption::RSome(9));
        assert_eq!(e.container_id.as_str(), "abc");
        assert_eq!(e.attributes.len(), 2);
        assert_eq!(e.trace, ROption::RSome(trace));
    }

    #[test]
    fn new_uses_wall_clock() {
        let before = now_unix_nanos();
        let e = Event::new("x", Severity::Info);
        assert!(e.timestamp_ns >= before && e.timestamp_ns <= now_unix_nanos());
    }
}
