//! An in-process host for a plugin's own tests: no root, no `tapio-collector` binary, no
//! dlopen. Create a [`Harness`] for your [`Collector`] with a config, start it, wait for the
//! events you expect, check its health and metrics, stop it.
//!
//! ```text
//! let mut h = Harness::<Heartbeat>::create(r#"{"interval":"10ms","message":"hi"}"#)?;
//! h.start()?;
//! let events = h.wait_for(3, Duration::from_secs(2));
//! assert_eq!(events[0].event_type, "example.heartbeat");
//! h.stop()?;
//! ```
//!
//! [`spec::check`] runs the collector contract every plugin must meet.

#![warn(missing_docs)]

pub mod spec;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tapio_plugin_api::{
    AttrValue, Collector, Config, EmitOutcome, Event, EventSink, EventSinkApi, Health, HostApi,
    HostHandle, LogLevel, Metric, PluginError, RSlice, RStr, RString, Severity, TraceContext,
};

/// An owned copy of an emitted event, easy to assert on.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    /// Nanoseconds since the epoch.
    pub timestamp_ns: u64,
    /// Dotted type.
    pub event_type: String,
    /// Severity.
    pub severity: Severity,
    /// Process id.
    pub pid: Option<u32>,
    /// Thread id.
    pub tid: Option<u32>,
    /// Cgroup id.
    pub cgroup_id: Option<u64>,
    /// Container id (empty = none).
    pub container_id: String,
    /// Attributes by key.
    pub attributes: BTreeMap<String, Value>,
    /// Whether the plugin set a trace context.
    pub has_trace: bool,
    /// The trace context the plugin set, if any.
    pub trace: Option<TraceContext>,
}

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
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Value {
    /// The text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The integer (signed or unsigned), if it is one.
    pub fn as_i128(&self) -> Option<i128> {
        match *self {
            Value::Int(i) => Some(i.into()),
            Value::UInt(u) => Some(u.into()),
            _ => None,
        }
    }
}

impl Captured {
    fn copy(e: &Event<'_>) -> Self {
        Captured {
            timestamp_ns: e.timestamp_ns,
            event_type: e.event_type.to_string(),
            severity: e.severity,
            pid: e.pid.into_option(),
            tid: e.tid.into_option(),
            cgroup_id: e.cgroup_id.into_option(),
            container_id: e.container_id.to_string(),
            attributes: e
                .attributes
                .iter()
                .map(|a| {
                    let v = match a.value {
                        AttrValue::Str(s) => Value::Str(s.to_string()),
                        AttrValue::Int(i) => Value::Int(i),
                        AttrValue::UInt(u) => Value::UInt(u),
                        AttrValue::Float(f) => Value::Float(f),
                        AttrValue::Bool(b) => Value::Bool(b),
                        AttrValue::Bytes(b) => Value::Bytes(b.to_vec()),
                    };
                    (a.key.to_string(), v)
                })
                .collect(),
            has_trace: e.trace.is_some(),
            trace: e.trace.into_option(),
        }
    }

    /// The attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }

    /// The text attribute `key`.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(Value::as_str)
    }

    /// The integer attribute `key`.
    pub fn int(&self, key: &str) -> Option<i128> {
        self.attr(key).and_then(Value::as_i128)
    }
}

/// One log record the plugin wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Level.
    pub level: LogLevel,
    /// Target (module path).
    pub target: String,
    /// Text.
    pub message: String,
}

#[derive(Default)]
struct Shared {
    events: Mutex<Vec<Captured>>,
    arrived: Condvar,
    logs: Mutex<Vec<LogRecord>>,
    panics: Mutex<Vec<String>>,
    /// When set, emits accept at most this many more events, then drop (to test backpressure).
    capacity: Mutex<Option<usize>>,
    dropped: Mutex<u64>,
}

#[derive(Clone)]
struct TestHost {
    shared: Arc<Shared>,
    state_dir: PathBuf,
}

impl HostApi for TestHost {
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        self.shared.logs.lock().push(LogRecord {
            level,
            target: target.to_string(),
            message: message.to_string(),
        });
    }
    fn max_log_level(&self) -> LogLevel {
        LogLevel::Debug
    }
    fn report_panic(&self, thread: RStr<'_>, message: RStr<'_>, location: RStr<'_>) {
        self.shared
            .panics
            .lock()
            .push(format!("thread {thread} at {location}: {message}"));
    }
    fn state_dir(&self) -> RString {
        let _ = std::fs::create_dir_all(&self.state_dir);
        self.state_dir.to_string_lossy().into_owned().into()
    }
}

#[derive(Clone)]
struct TestSink(Arc<Shared>);

impl EventSinkApi for TestSink {
    fn emit(&self, events: RSlice<'_, Event<'_>>) -> EmitOutcome {
        let mut accepted = events.len();
        if let Some(room) = self.0.capacity.lock().as_mut() {
            accepted = accepted.min(*room);
            *room -= accepted;
        }
        let dropped = events.len() - accepted;
        *self.0.dropped.lock() += dropped as u64;
        let mut stored = self.0.events.lock();
        stored.extend(events[..accepted].iter().map(Captured::copy));
        self.0.arrived.notify_all();
        EmitOutcome {
            accepted: accepted as u32,
            dropped: dropped as u32,
        }
    }
}

/// An in-process host running one collector.
pub struct Harness<C: Collector> {
    collector: C,
    shared: Arc<Shared>,
    _state: Option<TempDir>,
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fresh_state_dir() -> TempDir {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tapio-testkit-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    TempDir(dir)
}

impl<C: Collector> Harness<C> {
    /// Creates the collector from `config_json` (a JSON object). Fields missing from it get
    /// their schema defaults, as the host would fill them.
    pub fn create(config_json: &str) -> Result<Self, PluginError> {
        let state = fresh_state_dir();
        let state_dir = state.0.clone();
        Self::create_with_state_dir(config_json, state_dir).map(|mut h| {
            h._state = Some(state);
            h
        })
    }

    /// Like [`create`](Self::create) with a state directory that outlives the harness (to
    /// test that a plugin resumes from its persisted state).
    pub fn create_with_state_dir(
        config_json: &str,
        state_dir: PathBuf,
    ) -> Result<Self, PluginError> {
        let json = with_defaults::<C>(config_json)?;
        let shared = Arc::new(Shared::default());
        let host = HostHandle::new(TestHost {
            shared: Arc::clone(&shared),
            state_dir,
        });
        let collector = C::create(host, Config::from_json(&json))?;
        Ok(Harness {
            collector,
            shared,
            _state: None,
        })
    }

    /// Makes the sink accept only `room` more events, then drop (backpressure tests).
    pub fn limit_sink(&self, room: usize) {
        *self.shared.capacity.lock() = Some(room);
    }

    /// Events the sink dropped because of [`limit_sink`](Self::limit_sink).
    pub fn dropped(&self) -> u64 {
        *self.shared.dropped.lock()
    }

    /// Starts the collector.
    pub fn start(&mut self) -> Result<(), PluginError> {
        self.collector
            .start(EventSink::new(TestSink(Arc::clone(&self.shared))))
    }

    /// Stops the collector; fails if `stop` takes longer than `deadline`.
    pub fn stop_within(&mut self, deadline: Duration) -> Result<(), String> {
        let started = Instant::now();
        let result = self.collector.stop().map_err(|e| e.to_string());
        let took = started.elapsed();
        if took > deadline {
            return Err(format!("stop took {took:?}, more than {deadline:?}"));
        }
        result
    }

    /// Stops the collector (5 s deadline).
    pub fn stop(&mut self) -> Result<(), String> {
        self.stop_within(Duration::from_secs(5))
    }

    /// The collector's health.
    pub fn health(&self) -> Health {
        self.collector.health()
    }

    /// The collector's metrics.
    pub fn metrics(&self) -> Vec<Metric> {
        self.collector.metrics()
    }

    /// The metric `name`'s value, if reported.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics()
            .into_iter()
            .find(|m| m.name.as_str() == name)
            .map(|m| m.value)
    }

    /// Every event captured so far.
    pub fn events(&self) -> Vec<Captured> {
        self.shared.events.lock().clone()
    }

    /// Removes and returns every event captured so far.
    pub fn take_events(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.shared.events.lock())
    }

    /// Waits until at least `n` events arrived or `timeout` passed; returns all events.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Captured> {
        self.wait_until(timeout, |events| events.len() >= n)
    }

    /// Waits until `done(events)` holds or `timeout` passed; returns all events.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[Captured]) -> bool,
    ) -> Vec<Captured> {
        let deadline = Instant::now() + timeout;
        let mut events = self.shared.events.lock();
        while !done(&events) {
            if self
                .shared
                .arrived
                .wait_until(&mut events, deadline)
                .timed_out()
            {
                break;
            }
        }
        events.clone()
    }

    /// Log records the plugin wrote by calling its [`HostHandle`] directly. (`log` and
    /// `tracing` output is routed to a host only when the export macro loads the plugin; the
    /// harness does not replace the test process's logger or panic hook.)
    pub fn logs(&self) -> Vec<LogRecord> {
        self.shared.logs.lock().clone()
    }

    /// Panics reported through the host handle.
    pub fn panics(&self) -> Vec<String> {
        self.shared.panics.lock().clone()
    }

    /// The collector itself.
    pub fn collector(&self) -> &C {
        &self.collector
    }
}

/// Fills schema defaults into `config_json`, rejecting fields the schema does not declare.
pub fn with_defaults<C: Collector>(config_json: &str) -> Result<String, PluginError> {
    let value: serde_json::Value = serde_json::from_str(if config_json.trim().is_empty() {
        "{}"
    } else {
        config_json
    })
    .map_err(|e| PluginError::config(format!("test config is not JSON: {e}")))?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(PluginError::config("test config must be a JSON object"));
    };
    let fields = C::INFO.config;
    for key in map.keys() {
        if !fields.iter().any(|f| f.name.as_str() == key) {
            return Err(PluginError::config(format!(
                "unknown field `{key}` (not in the plugin's schema)"
            )));
        }
    }
    for f in fields.iter() {
        if !map.contains_key(f.name.as_str()) {
            if let Some(v) = f.default.to_json() {
                map.insert(f.name.to_string(), v);
            }
        }
    }
    Ok(serde_json::Value::Object(map).to_string())
}
