//! The receiver's settings: listen addresses and the request size limit.

use std::net::SocketAddr;

use serde::Deserialize;
use tapio_plugin_api::ConfigField;

/// Default request size limit: 20 MiB, as the OTLP specification recommends.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 20 << 20;

/// The config schema, in `INFO.config`.
pub const SCHEMA: &[ConfigField] = &[
    ConfigField::string(
        "grpc_address",
        "127.0.0.1:4317",
        "Address of the OTLP/gRPC listener (`host:port`); empty disables it.",
    ),
    ConfigField::string(
        "http_address",
        "127.0.0.1:4318",
        "Address of the OTLP/HTTP (binary protobuf) listener; empty disables it.",
    ),
    ConfigField::uint(
        "max_request_bytes",
        DEFAULT_MAX_REQUEST_BYTES,
        "Largest request accepted, after decompression (gRPC message or HTTP body); larger ones get RESOURCE_EXHAUSTED / HTTP 413.",
    ),
    ConfigField::uint(
        "worker_threads",
        2,
        "Threads of the receiver's own async runtime.",
    ),
];

/// The parsed settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// gRPC listen address text.
    pub grpc_address: String,
    /// HTTP listen address text.
    pub http_address: String,
    /// Request size limit.
    pub max_request_bytes: u64,
    /// Runtime threads.
    pub worker_threads: u64,
}

/// Settings after validation.
#[derive(Debug, Clone)]
pub struct Validated {
    /// gRPC listener, if enabled.
    pub grpc: Option<SocketAddr>,
    /// HTTP listener, if enabled.
    pub http: Option<SocketAddr>,
    /// Request size limit, bytes.
    pub max_request_bytes: usize,
    /// Runtime threads.
    pub worker_threads: usize,
}

impl Settings {
    /// Validates every field, reporting all problems at once.
    pub fn validate(&self) -> Result<Validated, Vec<String>> {
        let mut problems = Vec::new();
        let mut addr = |field: &str, text: &str| -> Option<SocketAddr> {
            let text = text.trim();
            if text.is_empty() {
                return None;
            }
            match text.parse() {
                Ok(a) => Some(a),
                Err(e) => {
                    problems.push(format!("{field}: {text:?} is not an ip:port address ({e})"));
                    None
                }
            }
        };
        let grpc = addr("grpc_address", &self.grpc_address);
        let http = addr("http_address", &self.http_address);
        if self.grpc_address.trim().is_empty() && self.http_address.trim().is_empty() {
            problems
                .push("grpc_address and http_address are both empty: nothing to listen on".into());
        }
        if self.max_request_bytes < 1024 || self.max_request_bytes > u64::from(u32::MAX) {
            problems.push(format!(
                "max_request_bytes must be between 1024 and {} (got {})",
                u32::MAX,
                self.max_request_bytes
            ));
        }
        if !(1..=64).contains(&self.worker_threads) {
            problems.push(format!(
                "worker_threads must be between 1 and 64 (got {})",
                self.worker_threads
            ));
        }
        if problems.is_empty() {
            Ok(Validated {
                grpc,
                http,
                max_request_bytes: self.max_request_bytes as usize,
                worker_threads: self.worker_threads as usize,
            })
        } else {
            Err(problems)
        }
    }
}
