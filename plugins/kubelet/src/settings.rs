//! The plugin's config: schema (validated by the host) and the parsed form.

use std::time::Duration;

use serde::Deserialize;
use tapio_plugin_api::{config::duration, ConfigField, PluginError};

/// The parsed config.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Base URL of the kubelet.
    pub endpoint: String,
    /// Bearer token file (re-read before each request).
    pub token_file: String,
    /// CA bundle that signed the kubelet's serving certificate.
    pub ca_file: String,
    /// Client certificate (PEM), empty = none.
    pub client_cert_file: String,
    /// Its key (PEM).
    pub client_key_file: String,
    /// Accept any kubelet certificate.
    pub insecure_skip_verify: bool,
    /// Poll period.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Deadline of each request.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// More restarts than this is a crash loop.
    pub crash_loop_restarts: u64,
    /// How long a running pod may be not ready before it is reported.
    #[serde(with = "duration")]
    pub not_ready_grace: Duration,
    /// Node memory available below this (bytes) is memory pressure.
    pub memory_available_bytes: u64,
    /// Ephemeral storage use above this percentage is reported.
    pub ephemeral_storage_percent: f64,
    /// Longest delay between retries.
    #[serde(with = "duration")]
    pub retry_max: Duration,
}

/// The schema the host validates.
pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::string(
        "endpoint",
        "https://127.0.0.1:10250",
        "Kubelet base URL (`https://${NODE_IP}:10250` in a DaemonSet; `http://...:10255` for the read-only port).",
    ),
    ConfigField::string(
        "token_file",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "Bearer token file, re-read before each request; a missing file means no token.",
    ),
    ConfigField::string(
        "ca_file",
        "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        "CA bundle that signed the kubelet's serving certificate.",
    ),
    ConfigField::string("client_cert_file", "", "Client certificate (PEM) for x509 authentication; empty: none."),
    ConfigField::string("client_key_file", "", "Private key (PEM) of client_cert_file."),
    ConfigField::bool(
        "insecure_skip_verify",
        false,
        "Accept any kubelet serving certificate (self-signed kubelet certificates).",
    ),
    ConfigField::duration("interval", "10s", "Time between two polls of /pods and /stats/summary."),
    ConfigField::duration("timeout", "5s", "Deadline of each request."),
    ConfigField::uint("crash_loop_restarts", 3, "A container restarted more times than this is in a crash loop (critical)."),
    ConfigField::duration("not_ready_grace", "30s", "How long a running pod may stay not ready before it is reported."),
    ConfigField::uint(
        "memory_available_bytes",
        104_857_600,
        "Node memory available below this many bytes is memory pressure (the kubelet's default eviction threshold, 100Mi).",
    ),
    ConfigField::float(
        "ephemeral_storage_percent",
        50.0,
        "Report a pod whose ephemeral storage use exceeds this percentage of its limit (of the node filesystem without a limit), and the node filesystem above it.",
    ),
    ConfigField::duration("retry_max", "60s", "Longest delay between retries when the kubelet is unreachable (backoff starts at 1s)."),
];

impl Settings {
    /// Checks what the schema cannot; reports every problem at once.
    pub fn validate(&self) -> Result<(), PluginError> {
        let mut problems = Vec::new();
        if !(self.endpoint.starts_with("https://") || self.endpoint.starts_with("http://")) {
            problems.push(format!(
                "endpoint {:?} must start with https:// or http://",
                self.endpoint
            ));
        }
        if self.client_cert_file.is_empty() != self.client_key_file.is_empty() {
            problems.push("client_cert_file and client_key_file go together".to_owned());
        }
        if self.interval < Duration::from_millis(100) {
            problems.push("interval must be at least 100ms".to_owned());
        }
        if self.timeout.is_zero() || self.retry_max.is_zero() {
            problems.push("timeout and retry_max must be greater than zero".to_owned());
        }
        if !(self.ephemeral_storage_percent > 0.0 && self.ephemeral_storage_percent <= 100.0) {
            problems.push("ephemeral_storage_percent must be in (0, 100]".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PluginError::config(problems.join("; ")))
        }
    }
}
