//! Configuration of the exporters: `export.grpc:`, `export.otlp:` and `orchestrator.nats:`.
//! Each struct's doc comments are its user documentation; `export.server`,
//! `export.otel_endpoint`, `export.batch_size` and `export.flush_interval` (the product
//! document's flags) stay in [`crate::config::Export`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tapio_plugin_api::config::duration;

/// `export.grpc:`: the stream to the Tapio server (`export.server`).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Export to the Tapio server. Also switched on by giving `--server`.
    pub enabled: bool,
    /// Compression of the stream: `gzip`, `zstd` or `none`.
    pub compression: Compression,
    /// TLS settings, used when `export.grpc_insecure` is false.
    pub tls: TlsConfig,
    /// Most batches sent and not yet acked.
    pub max_in_flight: usize,
    /// Most events held in memory (queued, batched or unacked); past it new batches go to
    /// the disk spool.
    pub memory_events: usize,
    /// The disk spool.
    pub spool: SpoolConfig,
    /// Reconnection backoff.
    pub backoff: BackoffConfig,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            enabled: false,
            compression: Compression::Gzip,
            tls: TlsConfig::default(),
            max_in_flight: 32,
            memory_events: 100_000,
            spool: SpoolConfig::default(),
            backoff: BackoffConfig::default(),
        }
    }
}

/// Stream compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip (every gRPC implementation accepts it).
    Gzip,
    /// zstd (smaller and faster; not every server accepts it).
    Zstd,
    /// No compression.
    None,
}

/// TLS of a client connection.
#[derive(Debug, Clone, Deserialize, Serialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the CA that signed the server's certificate (default: the system's
    /// trust store).
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS (with `key`).
    pub cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key: Option<PathBuf>,
    /// Name expected in the server's certificate (default: the host part of the address).
    pub domain: Option<String>,
}

/// `export.grpc.spool:`: where events go while the server is unreachable and the memory
/// bound is reached. Replayed in order on recovery; survives restarts and `kill -9`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Spool directory; empty disables the spool (past the memory bound, events are dropped
    /// and counted).
    pub dir: PathBuf,
    /// Most bytes on disk; past it the oldest segments are deleted (counted and logged).
    pub max_bytes: u64,
    /// Size of one segment file.
    pub segment_bytes: u64,
    /// fsync each record (survives power loss, slower); without it a record survives a
    /// crash of the process but not of the machine.
    pub fsync: bool,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: PathBuf::from("/var/lib/tapio/spool/grpc"),
            max_bytes: 1 << 30,
            segment_bytes: 8 << 20,
            fsync: false,
        }
    }
}

/// Exponential backoff with full jitter between reconnection attempts.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    /// First delay.
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub initial: Duration,
    /// Longest delay.
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

/// `export.otlp:`: OTLP logs (events) and traces (correlation groups) to
/// `export.otel_endpoint`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Export OTLP. Also switched on by giving `--otel-endpoint`.
    pub enabled: bool,
    /// Transport: `grpc` (port 4317) or `http` (HTTP/protobuf, port 4318).
    pub protocol: OtlpProtocol,
    /// Most events queued in memory; past it new events are dropped and counted.
    pub queue_events: usize,
    /// gzip the requests.
    pub gzip: bool,
    /// Most export requests in flight at once.
    pub max_in_flight: usize,
    /// Reconnection and retry backoff.
    pub backoff: BackoffConfig,
    /// Give up on one request after this long (it is retried).
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub timeout: Duration,
    /// TLS, used for an `https://` endpoint (an endpoint without a scheme uses TLS when
    /// `tls.ca` is set).
    pub tls: TlsConfig,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            enabled: false,
            protocol: OtlpProtocol::Grpc,
            queue_events: 200_000,
            gzip: false,
            max_in_flight: 4,
            backoff: BackoffConfig::default(),
            timeout: Duration::from_secs(10),
            tls: TlsConfig::default(),
        }
    }
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`/v1/logs`, `/v1/traces`).
    Http,
}

/// `orchestrator.nats:` (the product document's section): NATS JetStream export.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Publish to NATS JetStream.
    pub enabled: bool,
    /// Server URL (`nats://host:port`, `tls://host:port`).
    pub url: String,
    /// Subject prefix; each collector publishes to `<subject>.<collector>`.
    pub subject: String,
    /// JetStream stream, created if missing, covering `<subject>.>`.
    pub stream: String,
    /// Retention of a stream we create: `limits`, `interest` or `work_queue`.
    pub retention: String,
    /// Longest age of messages in a stream we create (0: unlimited).
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub max_age: Duration,
    /// Duplicate window of a stream we create (`Nats-Msg-Id` de-duplication).
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub duplicate_window: Duration,
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Token authentication.
    pub token: Option<String>,
    /// PEM CA file for TLS.
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM client key.
    pub tls_key: Option<PathBuf>,
    /// Most events queued in memory; past it new events are dropped and counted.
    pub queue_events: usize,
    /// Most publishes awaiting their JetStream ack.
    pub max_in_flight: usize,
    /// Retry backoff.
    pub backoff: BackoffConfig,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            enabled: false,
            url: "nats://localhost:4222".to_owned(),
            subject: "tapio.events".to_owned(),
            stream: "TAPIO_EVENTS".to_owned(),
            retention: "limits".to_owned(),
            max_age: Duration::from_secs(24 * 3600),
            duplicate_window: Duration::from_secs(120),
            user: None,
            password: None,
            token: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            queue_events: 200_000,
            max_in_flight: 1024,
            backoff: BackoffConfig::default(),
        }
    }
}
