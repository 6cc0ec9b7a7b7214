//! Exporters: events leave the node. Three exporters behind the [`Sink`] trait, each enabled
//! by config or flag, any combination at once:
//!
//! - [`grpc`]: the `tapio.v1.CollectorService/StreamEvents` stream to the Tapio server
//!   (acks, flow control, at-least-once with a disk [`spool`]);
//! - [`otlp`]: OTLP logs (every event) and traces (correlation groups);
//! - [`nats`]: NATS JetStream, one subject per collector, `Nats-Msg-Id` = event id.
//!
//! Each exporter is a [`queue::QueueSink`] on the pipeline thread (never blocks: it hands
//! the shared batch to a bounded [`queue::Inbox`] and counts what does not fit) and its own
//! thread running a single-threaded tokio runtime that batches, sends, retries and counts
//! ([`stats::ExporterStats`]). [`receive`] is the reference receiver of the gRPC protocol
//! (`tapio-collector receive`).
//!
//! User and server-author documentation: `host/src/export/README.md`.

pub mod backoff;
pub mod config;
pub mod encode;
pub mod grpc;
pub mod nats;
pub mod otlp;
pub mod otlp_map;
pub mod proto;
pub mod queue;
pub mod receive;
pub mod shared;
pub mod spool;
pub mod stats;
pub mod tls;
pub mod wire;

use std::sync::Arc;

use crate::config::HostConfig;
use crate::sink::Sink;
pub use stats::ExporterStats;

/// An exporter that cannot be built from the config.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A setting is invalid.
    #[error("{exporter}: {message}")]
    Config {
        /// The exporter.
        exporter: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A file (certificate, key, spool) cannot be used.
    #[error("{exporter}: {what} {path}: {source}")]
    File {
        /// The exporter.
        exporter: &'static str,
        /// What the file is for.
        what: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The exporter thread cannot start.
    #[error("{exporter}: cannot start its thread: {source}")]
    Thread {
        /// The exporter.
        exporter: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The enabled exporters as sinks, and their counters (for `/metrics`).
pub struct Exporters {
    /// One sink per enabled exporter.
    pub sinks: Vec<Box<dyn Sink>>,
    /// Their counters.
    pub stats: Vec<Arc<ExporterStats>>,
}

/// Builds every enabled exporter.
pub fn build(config: &HostConfig, host: &str) -> Result<Exporters, ExportError> {
    let mut out = Exporters {
        sinks: Vec::new(),
        stats: Vec::new(),
    };
    let e = &config.export;
    if e.grpc.enabled {
        let (sink, stats) = grpc::spawn(grpc::GrpcSettings::from_config(config, host)?)?;
        out.sinks.push(Box::new(sink));
        out.stats.push(stats);
    }
    if e.otlp.enabled {
        let (sink, stats) = otlp::spawn(otlp::OtlpSettings::from_config(config, host)?)?;
        out.sinks.push(Box::new(sink));
        out.stats.push(stats);
    }
    if config.orchestrator.nats.enabled {
        let (sink, stats) = nats::spawn(nats::NatsSettings::from_config(config, host)?)?;
        out.sinks.push(Box::new(sink));
        out.stats.push(stats);
    }
    Ok(out)
}

/// Starts an exporter's thread, named `thread_name`, running the future `make` returns on
/// the thread's own current-thread tokio runtime (exporters never share the host's), and
/// returns the pipeline's sink that feeds it through `inbox`.
pub(crate) fn spawn_exporter<F, Fut>(
    exporter: &'static str,
    thread_name: &str,
    inbox: Arc<queue::Inbox>,
    make: F,
) -> Result<queue::QueueSink, ExportError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let thread = std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(make()),
                Err(e) => {
                    tracing::error!(exporter, error = %e, "cannot start the exporter runtime")
                }
            }
        })
        .map_err(|source| ExportError::Thread { exporter, source })?;
    Ok(queue::QueueSink::new(exporter, inbox, thread))
}

/// `e` and its sources, joined (tonic's transport errors hide the cause).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}
