//! OTLP receiver: accepts OpenTelemetry traces, logs and metrics over OTLP/gRPC (4317) and
//! OTLP/HTTP with binary protobuf (4318), bound to 127.0.0.1 by default, and turns every
//! span, log record and metric data point into one event that keeps its trace context and
//! its resource attributes.
//!
//! Malformed or oversized requests get OTLP's error answers and never reach the ring; items
//! the ring refuses are reported back to the sender as rejected in `partial_success`.

#![warn(missing_docs)]

mod config;
pub mod convert;
mod grpc;
mod http;
mod ingest;
mod server;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;

use tapio_plugin_api::{
    export_plugin, Collector, Config, EventSink, EventTypeInfo, Health, HostHandle, Metric,
    PluginError, PluginInfo,
};

pub use crate::http::RpcStatus;
use crate::server::Running;
use crate::stats::Stats;

/// The OTLP receiver.
pub struct OtelReceiver {
    settings: config::Validated,
    stats: Arc<Stats>,
    running: Option<Running>,
}

const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(
        "otel.span",
        "One received span, with its trace id, span id and parent span id as trace context.",
    ),
    EventTypeInfo::new(
        "otel.log",
        "One received log record, with its trace context when it has one.",
    ),
    EventTypeInfo::new(
        "otel.metric",
        "One received metric data point (gauge, sum, histogram, exponential histogram, summary).",
    ),
];

impl OtelReceiver {
    /// The bound OTLP/gRPC address while running (useful with port 0).
    pub fn grpc_local_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().and_then(|r| r.grpc_addr)
    }

    /// The bound OTLP/HTTP address while running (useful with port 0).
    pub fn http_local_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().and_then(|r| r.http_addr)
    }
}

impl Collector for OtelReceiver {
    const INFO: PluginInfo = PluginInfo::new(
        "otel",
        "OTLP receiver: OpenTelemetry traces, logs and metrics over gRPC (4317) and HTTP/protobuf (4318)",
    )
    .event_types(EVENT_TYPES)
    .config(config::SCHEMA);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: config::Settings = config.parse()?;
        let settings = settings
            .validate()
            .map_err(|problems| PluginError::config(problems.join("; ")))?;
        Ok(OtelReceiver {
            settings,
            stats: Arc::default(),
            running: None,
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        if self.running.is_some() {
            return Err(PluginError::other("already started"));
        }
        let running = Running::start(&self.settings, sink, Arc::clone(&self.stats))
            .map_err(|e| PluginError::unavailable(error_chain(&e)))?;
        self.running = Some(running);
        Ok(())
    }

    fn health(&self) -> Health {
        if let Some(why) = self.running.as_ref().and_then(Running::failure) {
            return Health::failed(why);
        }
        match self.stats.recent_drops(tapio_plugin_api::now_unix_nanos()) {
            Some(why) => Health::degraded(why),
            None => Health::healthy(),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        self.stats.metrics()
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        if let Some(running) = self.running.take() {
            running.stop();
        }
        Ok(())
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

export_plugin!(OtelReceiver);
