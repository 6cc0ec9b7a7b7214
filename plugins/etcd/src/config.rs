//! The etcd collector's settings: the schema the host validates, and the checks that need
//! more than a type (endpoint URLs, TLS files), all reported at once.

use std::time::Duration;

use serde::Deserialize;
use tapio_plugin_api::{config::duration, ConfigField, RStr};

/// Default DB size warning threshold: 8 GiB (etcd's maximum recommended backend quota).
pub const DEFAULT_DB_SIZE_WARNING: u64 = 8 << 30;

static DEFAULT_ENDPOINTS: [RStr<'static>; 1] = [RStr::from_str("http://127.0.0.1:2379")];

/// The config schema, in `INFO.config`.
pub const SCHEMA: &[ConfigField] = &[
    ConfigField::string_list(
        "endpoints",
        &DEFAULT_ENDPOINTS,
        "Client URLs of the etcd members to watch (`http://` or `https://`), each polled on its own.",
    ),
    ConfigField::duration("interval", "10s", "Time between two polls of an endpoint."),
    ConfigField::duration(
        "timeout",
        "2s",
        "Deadline of one HTTP request (`/health` or `/metrics`), connection included.",
    ),
    ConfigField::duration(
        "max_backoff",
        "1m",
        "Longest wait between retries of an unreachable endpoint (the wait doubles from `interval`).",
    ),
    ConfigField::duration(
        "health_latency_warning",
        "500ms",
        "A `/health` answer slower than this raises `etcd.health.slow`.",
    ),
    ConfigField::uint(
        "db_size_warning_bytes",
        DEFAULT_DB_SIZE_WARNING,
        "A backend database larger than this raises `etcd.db.size_exceeded` (default 8 GiB).",
    ),
    ConfigField::duration(
        "wal_fsync_warning",
        "100ms",
        "A WAL fsync p99 latency (over one poll interval) above this raises `etcd.wal.fsync_slow`.",
    ),
    ConfigField::bool(
        "emit_status",
        true,
        "Emit one `etcd.endpoint.status` event with every metric per successful poll.",
    ),
    ConfigField::string(
        "ca_file",
        "",
        "PEM file of the CA(s) that signed the members' server certificates (https endpoints).",
    )
    .optional(),
    ConfigField::string(
        "cert_file",
        "",
        "PEM client certificate (chain) for members started with `--client-cert-auth`.",
    )
    .optional(),
    ConfigField::string("key_file", "", "PEM private key of `cert_file`.").optional(),
    ConfigField::bool(
        "insecure_skip_verify",
        false,
        "Accept any server certificate (testing only: disables TLS authentication).",
    ),
];

/// The parsed settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Client URLs.
    pub endpoints: Vec<String>,
    /// Poll interval.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Per-request deadline.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Backoff cap.
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    /// Slow health-check threshold.
    #[serde(with = "duration")]
    pub health_latency_warning: Duration,
    /// DB size threshold, bytes.
    pub db_size_warning_bytes: u64,
    /// WAL fsync p99 threshold.
    #[serde(with = "duration")]
    pub wal_fsync_warning: Duration,
    /// Whether to emit status events.
    pub emit_status: bool,
    /// CA bundle path.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Client certificate path.
    #[serde(default)]
    pub cert_file: Option<String>,
    /// Client key path.
    #[serde(default)]
    pub key_file: Option<String>,
    /// Disable server certificate verification.
    pub insecure_skip_verify: bool,
}

impl Settings {
    /// Every problem that the types alone do not catch, in one list.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.endpoints.is_empty() {
            problems.push("endpoints: at least one endpoint is required".to_owned());
        }
        for e in &self.endpoints {
            if let Err(why) = crate::endpoint::Endpoint::parse(e) {
                problems.push(format!("endpoints: {why}"));
            }
        }
        if self.interval.is_zero() {
            problems.push("interval must be greater than zero".to_owned());
        }
        if self.timeout.is_zero() {
            problems.push("timeout must be greater than zero".to_owned());
        }
        if self.max_backoff < self.interval {
            problems.push(format!(
                "max_backoff ({:?}) must not be shorter than interval ({:?})",
                self.max_backoff, self.interval
            ));
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => problems.push("cert_file is set but key_file is not".to_owned()),
            (None, Some(_)) => problems.push("key_file is set but cert_file is not".to_owned()),
            _ => {}
        }
        problems
    }
}
