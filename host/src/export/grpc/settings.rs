//! The gRPC exporter's settings, resolved and checked from `export.server`,
//! `export.grpc_insecure` and `export.grpc.*`, and the tonic endpoint made from them.

use std::time::Duration;

use tonic::transport::Endpoint;

use super::NAME;
use crate::config::HostConfig;
use crate::export::config::{BackoffConfig, Compression};
use crate::export::spool::SpoolSettings;
use crate::export::{tls, ExportError};

/// Everything the gRPC exporter needs, resolved from the config.
#[derive(Debug, Clone)]
pub struct GrpcSettings {
    /// `http(s)://host:port` of the server.
    pub uri: String,
    /// TLS, or `None` for plaintext.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// Stream compression.
    pub compression: Compression,
    /// Events per batch.
    pub batch_size: usize,
    /// Longest wait of a partial batch.
    pub flush_interval: Duration,
    /// Most unacked batches.
    pub max_in_flight: usize,
    /// Most events in memory before batches go to the spool.
    pub memory_events: usize,
    /// The spool, if any.
    pub spool: Option<SpoolSettings>,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// The node's host name.
    pub host: String,
}

impl GrpcSettings {
    /// Resolves `export.server`, `export.grpc_insecure` and `export.grpc.*`.
    pub fn from_config(c: &HostConfig, host: &str) -> Result<Self, ExportError> {
        let e = &c.export;
        let g = &e.grpc;
        let bad = |message: String| ExportError::Config {
            exporter: NAME,
            message,
        };
        if e.server.trim().is_empty() {
            return Err(bad("export.server is empty".into()));
        }
        let scheme = if e.grpc_insecure { "http" } else { "https" };
        let uri = if e.server.contains("://") {
            e.server.clone()
        } else {
            format!("{scheme}://{}", e.server)
        };
        let parsed: http_uri::Uri = uri
            .parse()
            .map_err(|err| bad(format!("export.server {:?}: {err}", e.server)))?;
        let server_host = parsed.host().unwrap_or("localhost").to_owned();
        let tls = if e.grpc_insecure {
            None
        } else {
            Some(tls::tonic_client(
                NAME,
                &g.tls,
                "export.grpc.tls",
                &server_host,
            )?)
        };
        if g.max_in_flight == 0 {
            return Err(bad("export.grpc.max_in_flight must be at least 1".into()));
        }
        let spool = (!g.spool.dir.as_os_str().is_empty()).then(|| SpoolSettings {
            dir: g.spool.dir.clone(),
            max_bytes: g.spool.max_bytes,
            segment_bytes: g.spool.segment_bytes.min(g.spool.max_bytes / 2).max(4096),
            fsync: g.spool.fsync,
        });
        Ok(GrpcSettings {
            uri,
            tls,
            compression: g.compression,
            batch_size: e.batch_size.max(1),
            flush_interval: e.flush_interval,
            max_in_flight: g.max_in_flight,
            memory_events: g.memory_events,
            spool,
            backoff: g.backoff,
            host: host.to_owned(),
        })
    }
}

/// The `http` crate's URI (re-exported by tonic).
mod http_uri {
    pub use tonic::codegen::http::Uri;
}

/// The tonic endpoint (keep-alives, TLS) of the server.
pub(super) fn endpoint(s: &GrpcSettings) -> Result<Endpoint, ExportError> {
    let mut ep = Endpoint::from_shared(s.uri.clone())
        .map_err(|e| ExportError::Config {
            exporter: NAME,
            message: format!("export.server {:?}: {e}", s.uri),
        })?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    if let Some(tls) = &s.tls {
        ep = ep
            .tls_config(tls.clone())
            .map_err(|e| ExportError::Config {
                exporter: NAME,
                message: format!("TLS: {e}"),
            })?;
    }
    Ok(ep)
}
