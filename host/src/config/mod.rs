//! The host's YAML configuration: the sections of the product documents (`orchestrator:`,
//! `collectors:`) plus the host's own (`plugins:`, `pipeline:`, `output:`, `export:`,
//! `metrics:`). Every struct's doc comments are its user documentation.
//!
//! Loading expands `${VAR}` / `${VAR:-default}`, parses with unknown fields denied, and
//! reports errors as `FILE:LINE:COLUMN: FIELD: message`. Each collector's `config:` section is
//! checked against that plugin's schema once the plugin is loaded ([`schema`]).

pub mod correlation;
pub mod env;
pub mod locate;
pub mod reload;
pub mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tapio_plugin_api::config::duration;

/// A config error pointing at a file and, where known, a line, column and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The config file (or `<defaults>`).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted path of the field, when known (`plugins.stop_timeout`).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    fn render(&self) -> String {
        let mut s = self.file.clone();
        if let Some(line) = self.line {
            s.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                s.push_str(&format!(":{column}"));
            }
        }
        s.push_str(": ");
        if let Some(field) = &self.field {
            s.push_str(field);
            s.push_str(": ");
        }
        s.push_str(&self.message);
        s
    }

    /// Builds an error from a serde_yaml_ng error, splitting out its path and location.
    /// serde_yaml_ng names the enclosing mapping and points at the key; the key found at
    /// that position in `text` completes the field path.
    pub fn from_yaml(file: &str, text: &str, err: &serde_yaml_ng::Error) -> Self {
        let source = text;
        let location = err.location();
        let mut text = err.to_string();
        // serde_yaml_ng appends " at line L column C"; we render the location ourselves.
        if let Some(pos) = text.rfind(" at line ") {
            text.truncate(pos);
        }
        // ... and prefixes the path as "a.b.c: ".
        let (mut field, message) = match text.split_once(": ") {
            Some((path, msg)) if is_path(path) => (Some(path.to_owned()), msg.to_owned()),
            _ => (None, text),
        };
        if let (Some(path), Some(loc)) = (&field, &location) {
            if let Some(key) = key_at(source, loc.line(), loc.column()) {
                if !path.ends_with(key) {
                    field = Some(format!("{path}.{key}"));
                }
            }
        }
        ConfigError {
            file: file.to_owned(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            field,
            message,
        }
    }
}

/// The mapping key starting at 1-based `line`:`column` of `text`, if a key starts there.
fn key_at(text: &str, line: usize, column: usize) -> Option<&str> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let rest = l.get(column.checked_sub(1)?..)?;
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))?;
    (end > 0 && rest[end..].starts_with(':')).then(|| &rest[..end])
}

fn is_path(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '[' | ']'))
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Serialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Global settings of the product documents.
    pub orchestrator: Orchestrator,
    /// Where plugins come from and how they are run.
    pub plugins: Plugins,
    /// The ring and the pipeline stages.
    pub pipeline: Pipeline,
    /// Local outputs (console, JSON Lines).
    pub output: Output,
    /// Exporters (gRPC to the Tapio server, OTLP; NATS is under `orchestrator.nats`).
    pub export: Export,
    /// The health and metrics endpoint.
    pub metrics: Metrics,
    /// Correlation rules, limits and business weights.
    pub correlation: correlation::Correlation,
    /// Per-collector settings, by plugin name.
    pub collectors: BTreeMap<String, CollectorSection>,
}

/// `orchestrator:` from the product documents.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Orchestrator {
    /// Worker threads of the host's async runtime (exporters, endpoints).
    pub workers: usize,
    /// Capacity of the shared ring, in events (rounded up to a power of two).
    pub buffer_size: usize,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`) or a tracing filter directive.
    pub log_level: String,
    /// NATS JetStream export.
    pub nats: Nats,
}

impl Default for Orchestrator {
    fn default() -> Self {
        Orchestrator {
            workers: 2,
            buffer_size: 65_536,
            log_level: "info".to_owned(),
            nats: Nats::default(),
        }
    }
}

/// `orchestrator.nats:`: NATS JetStream export (see [`crate::export::config::NatsConfig`]).
pub use crate::export::config::NatsConfig as Nats;

/// `plugins:`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Plugins {
    /// Directory scanned and watched for `.so` plugins.
    pub dir: PathBuf,
    /// Where content-addressed copies of plugin files are loaded from.
    pub runtime_dir: PathBuf,
    /// Root of per-plugin state directories (`<state_dir>/<plugin>`).
    pub state_dir: PathBuf,
    /// Refuse plugin files and the directory when writable by group or others, or owned by
    /// anyone but root or the service user (like sshd's StrictModes).
    pub strict_modes: bool,
    /// When not empty, only files with one of these sha256 digests may load.
    pub allowlist_sha256: Vec<String>,
    /// Deadline for a plugin's `create`.
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub create_timeout: Duration,
    /// Deadline for a plugin's `start`.
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub start_timeout: Duration,
    /// Deadline for a plugin's `stop`; a plugin missing it is reported and abandoned.
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub stop_timeout: Duration,
    /// Quiet time after a change in the plugins directory before it is acted on.
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub debounce: Duration,
}

impl Default for Plugins {
    fn default() -> Self {
        Plugins {
            dir: PathBuf::from("/usr/lib/tapio/plugins.d"),
            runtime_dir: PathBuf::from("/run/tapio/plugins"),
            state_dir: PathBuf::from("/var/lib/tapio"),
            strict_modes: true,
            allowlist_sha256: Vec::new(),
            create_timeout: Duration::from_secs(10),
            start_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(5),
            debounce: Duration::from_millis(300),
        }
    }
}

/// What a plugin's emit does when the ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Drop the new events and count them.
    Drop,
    /// Wait up to `pipeline.full_wait`, then drop and count.
    Wait,
}

/// Correlation mode (`--correlation`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationMode {
    /// Semantic groups, impact and predictions on top of basic.
    Semantic,
    /// Event ids, W3C trace context per entity and window, entity enrichment.
    Basic,
}

/// `pipeline:`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Pipeline {
    /// Policy when the ring is full.
    pub on_full: OnFull,
    /// How long an emit waits for room with `on_full: wait`.
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub full_wait: Duration,
    /// Most events the pipeline drains per batch. An event reaches the sinks when its whole
    /// batch is through the stages, so under a backlog this bounds how long an event waits
    /// behind the ones drained with it.
    pub batch_size: usize,
    /// Correlation mode.
    pub correlation: CorrelationMode,
    /// Events of the same entity within this window share a trace id.
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub trace_window: Duration,
    /// Interval of the status line in the log.
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub status_interval: Duration,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            on_full: OnFull::Drop,
            full_wait: Duration::from_millis(10),
            batch_size: 256,
            correlation: CorrelationMode::Semantic,
            trace_window: Duration::from_secs(30),
            status_interval: Duration::from_secs(10),
        }
    }
}

/// `output:`.
#[derive(Debug, Clone, Deserialize, Serialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Output {
    /// Write every delivered event as one JSON object per line to this file (`-`: stdout).
    pub jsonl: Option<String>,
    /// Print every delivered event, one human-readable line each, to stdout.
    pub console: bool,
}

/// `export:`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Export {
    /// Tapio server address for the gRPC stream (`--server`).
    pub server: String,
    /// Plaintext gRPC (`--grpc-insecure`).
    pub grpc_insecure: bool,
    /// OTLP endpoint (`--otel-endpoint`).
    pub otel_endpoint: String,
    /// Events per export batch (`--buffer-size`).
    pub batch_size: usize,
    /// Longest time an event waits for its batch (`--flush-interval`).
    #[serde(with = "duration")]
    #[schemars(with = "String", extend("format" = "duration"))]
    pub flush_interval: Duration,
    /// The gRPC stream to the Tapio server.
    pub grpc: crate::export::config::GrpcConfig,
    /// OTLP export.
    pub otlp: crate::export::config::OtlpConfig,
}

impl Default for Export {
    fn default() -> Self {
        Export {
            server: "localhost:9090".to_owned(),
            grpc_insecure: true,
            otel_endpoint: "localhost:4317".to_owned(),
            batch_size: 1000,
            flush_interval: Duration::from_secs(1),
            grpc: Default::default(),
            otlp: Default::default(),
        }
    }
}

/// `metrics:`.
#[derive(Debug, Clone, Deserialize, Serialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// `HOST:PORT` serving `/healthz`, `/readyz` and `/metrics`; absent disables it.
    pub addr: Option<String>,
}

/// `collectors.<name>:`.
#[derive(Debug, Clone, Deserialize, Serialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectorSection {
    /// Start the collector (default: the plugin's own default, normally yes).
    pub enabled: Option<bool>,
    /// The plugin's settings, checked against its schema.
    #[schemars(with = "Option<serde_json::Value>")]
    pub config: Option<serde_yaml_ng::Value>,
}

/// A parsed config and the expanded text it came from (kept to point at lines when a
/// plugin's section is checked against its schema later).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// Where it came from (`<defaults>` when no file was given).
    pub file: String,
    /// The text after variable expansion.
    pub text: String,
    /// The parsed config.
    pub config: HostConfig,
}

impl LoadedConfig {
    /// Built-in defaults, no file.
    pub fn defaults() -> Self {
        LoadedConfig {
            file: "<defaults>".to_owned(),
            text: String::new(),
            config: HostConfig::default(),
        }
    }

    /// Reads, expands and parses `path` with the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let raw = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            column: None,
            field: None,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&file, &raw, |name| std::env::var(name).ok())
    }

    /// Expands and parses `raw` (named `file` in errors).
    pub fn parse(
        file: &str,
        raw: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = env::expand(raw, env).map_err(|e| ConfigError {
            file: file.to_owned(),
            line: Some(e.line),
            column: None,
            field: None,
            message: e.message,
        })?;
        let mut config: HostConfig = if text.trim().is_empty() {
            HostConfig::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::from_yaml(file, &text, &e))?
        };
        if let Some(mode) = config.correlation.mode {
            config.pipeline.correlation = mode;
        }
        if let Some(window) = config.correlation.window {
            config.pipeline.trace_window = window;
        }
        let loaded = LoadedConfig {
            file: file.to_owned(),
            text,
            config,
        };
        loaded.check_values()?;
        Ok(loaded)
    }

    /// Checks values serde cannot (ranges).
    fn check_values(&self) -> Result<(), ConfigError> {
        let c = &self.config;
        let bad = |field: &str, message: &str| ConfigError {
            file: self.file.clone(),
            line: locate::line_of_field(&self.text, field),
            column: None,
            field: Some(field.to_owned()),
            message: message.to_owned(),
        };
        if c.orchestrator.buffer_size < 2 || c.orchestrator.buffer_size > 1 << 26 {
            return Err(bad(
                "orchestrator.buffer_size",
                "must be between 2 and 67108864 events",
            ));
        }
        if c.orchestrator.workers == 0 {
            return Err(bad("orchestrator.workers", "must be at least 1"));
        }
        if c.pipeline.batch_size == 0 {
            return Err(bad("pipeline.batch_size", "must be at least 1"));
        }
        if c.export.batch_size == 0 {
            return Err(bad("export.batch_size", "must be at least 1"));
        }
        if let Some((field, v)) = c.correlation.business.out_of_range().first() {
            return Err(bad(field, &format!("{v} is not a weight between 0 and 1")));
        }
        if c.correlation.limits.max_open_groups == 0 || c.correlation.limits.max_members == 0 {
            return Err(bad(
                "correlation.limits",
                "max_open_groups and max_members must be at least 1",
            ));
        }
        Ok(())
    }

    /// The plugin's config section, validated against its schema, with defaults filled.
    pub fn plugin_config(
        &self,
        plugin: &str,
        fields: &[tapio_plugin_api::ConfigField],
    ) -> Result<serde_json::Map<String, serde_json::Value>, ConfigError> {
        schema::validate(&self.file, &self.text, plugin, fields)
    }

    /// Whether `collectors.<plugin>.enabled` is set, and to what.
    pub fn enabled(&self, plugin: &str) -> Option<bool> {
        self.config.collectors.get(plugin).and_then(|c| c.enabled)
    }
}

#[cfg(test)]
mod tests;
