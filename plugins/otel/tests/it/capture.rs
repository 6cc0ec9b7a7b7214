//! A small in-test host for the receiver that keeps each event's full trace context (the
//! testkit's `Captured` only says whether one was set; these tests compare exact ids).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tapio_plugin_api::{
    AttrValue, Collector, Config, EmitOutcome, Event, EventSink, EventSinkApi, HostApi, HostHandle,
    LogLevel, RSlice, RStr, RString, Severity, TraceContext,
};
use tapio_plugin_otel::OtelReceiver;
use tapio_plugin_testkit::Value;

/// An owned event with its trace context.
#[derive(Debug, Clone)]
pub struct Got {
    pub event_type: String,
    pub severity: Severity,
    pub timestamp_ns: u64,
    pub pid: Option<u32>,
    pub container_id: String,
    pub attrs: BTreeMap<String, Value>,
    pub trace: Option<TraceContext>,
}

impl Got {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }
    pub fn int(&self, key: &str) -> Option<i128> {
        self.attrs.get(key).and_then(Value::as_i128)
    }
    pub fn float(&self, key: &str) -> Option<f64> {
        match self.attrs.get(key) {
            Some(Value::Float(f)) => Some(*f),
            _ => None,
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
struct Shared {
    events: Mutex<Vec<Got>>,
    arrived: Condvar,
}

#[derive(Clone)]
struct Sink(Arc<Shared>);

fn owned(v: &AttrValue<'_>) -> Value {
    match v {
        AttrValue::Str(s) => Value::Str(s.to_string()),
        AttrValue::Int(i) => Value::Int(*i),
        AttrValue::UInt(u) => Value::UInt(*u),
        AttrValue::Float(f) => Value::Float(*f),
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Bytes(b) => Value::Bytes(b.to_vec()),
    }
}

impl EventSinkApi for Sink {
    fn emit(&self, events: RSlice<'_, Event<'_>>) -> EmitOutcome {
        let mut stored = self.0.events.lock().unwrap();
        for e in events.iter() {
            stored.push(Got {
                event_type: e.event_type.to_string(),
                severity: e.severity,
                timestamp_ns: e.timestamp_ns,
                pid: e.pid.into_option(),
                container_id: e.container_id.to_string(),
                attrs: e
                    .attributes
                    .iter()
                    .map(|a| (a.key.to_string(), owned(&a.value)))
                    .collect(),
                trace: e.trace.into_option(),
            });
        }
        self.0.arrived.notify_all();
        EmitOutcome {
            accepted: events.len() as u32,
            dropped: 0,
        }
    }
}

#[derive(Clone)]
struct Host;

impl HostApi for Host {
    fn log(&self, _: LogLevel, _: RStr<'_>, _: RStr<'_>) {}
    fn max_log_level(&self) -> LogLevel {
        LogLevel::Info
    }
    fn report_panic(&self, thread: RStr<'_>, message: RStr<'_>, location: RStr<'_>) {
        panic!("plugin panicked on {thread} at {location}: {message}");
    }
    fn state_dir(&self) -> RString {
        std::env::temp_dir().to_string_lossy().into_owned().into()
    }
}

/// A started receiver on random ports, stopped on drop.
pub struct Receiver {
    pub rx: OtelReceiver,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Starts with `config` (defaults filled, ports 0 unless set).
    pub fn start(config: serde_json::Value) -> Receiver {
        let mut config = config;
        let obj = config.as_object_mut().expect("object");
        obj.entry("grpc_address").or_insert("127.0.0.1:0".into());
        obj.entry("http_address").or_insert("127.0.0.1:0".into());
        let json =
            tapio_plugin_testkit::with_defaults::<OtelReceiver>(&config.to_string()).unwrap();
        let mut rx = OtelReceiver::create(HostHandle::new(Host), Config::from_json(&json)).unwrap();
        let shared = Arc::new(Shared::default());
        rx.start(EventSink::new(Sink(Arc::clone(&shared)))).unwrap();
        Receiver { rx, shared }
    }

    pub fn grpc(&self) -> String {
        self.rx.grpc_local_addr().unwrap().to_string()
    }

    pub fn http(&self) -> String {
        format!("http://{}", self.rx.http_local_addr().unwrap())
    }

    /// Waits until `done` holds over the events (or 15 s); returns them.
    pub fn wait_until(&self, mut done: impl FnMut(&[Got]) -> bool) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut events = self.shared.events.lock().unwrap();
        while !done(&events) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            events = self.shared.arrived.wait_timeout(events, left).unwrap().0;
        }
        events.clone()
    }

    pub fn events(&self) -> Vec<Got> {
        self.shared.events.lock().unwrap().clone()
    }

    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.rx
            .metrics()
            .into_iter()
            .filter(|m| m.name.as_str() == name)
            .find(|m| {
                labels.iter().all(|(k, v)| {
                    m.labels
                        .iter()
                        .any(|l| l.0.as_str() == *k && l.1.as_str() == *v)
                })
            })
            .map(|m| m.value)
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.rx.stop();
    }
}
