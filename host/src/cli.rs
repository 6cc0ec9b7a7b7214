//! The command line: the flags of the product document, the host's own, and the
//! subcommands. Flags given on the command line override the config file.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, Parser, Subcommand};

use crate::config::{CorrelationMode, HostConfig};

/// Node-level observability collector: loads collector plugins from a plugins directory,
/// correlates their events and exports them.
#[derive(Debug, Parser)]
#[command(
    name = "tapio-collector",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `run` (also accepted without the subcommand).
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collector (the default).
    Run(RunArgs),
    /// Inspect plugin files without starting them.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// The reference receiver of the gRPC export protocol: acks every batch and writes the
    /// events as JSON Lines, to check the export path end to end.
    Receive(crate::export::receive::ReceiveArgs),
    /// Check a config file: exit 0, or print FILE:LINE:COLUMN: FIELD: message and exit 1.
    CheckConfig {
        /// The config file.
        file: PathBuf,
        /// Also check each `collectors.<name>.config` against the plugins found here
        /// (default: the file's `plugins.dir`).
        #[arg(long)]
        plugins_dir: Option<PathBuf>,
    },
    /// Print reference documentation generated from the code (markdown).
    #[command(subcommand)]
    Docs(DocsCommand),
}

/// `docs` subcommands.
#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// The config reference: every field of the config file, then each plugin's schema.
    Config {
        /// Plugins whose `collectors.<name>.config` schema is documented.
        #[arg(long, default_value = "/usr/lib/tapio/plugins.d")]
        plugins_dir: PathBuf,
    },
    /// The metrics reference: every metric the host exports on `/metrics`.
    Metrics,
}

/// `plugins` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// One line per plugin file: name, version, API version, and loaded or refused with the
    /// reason. Starts nothing.
    List {
        /// The plugins directory (default: the config's `plugins.dir`).
        #[arg(long)]
        plugins_dir: Option<PathBuf>,
        /// Config file whose `plugins:` section (allowlist, strict modes) applies.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a plugin's descriptor, event types and config schema.
    Inspect {
        /// The plugin file.
        file: PathBuf,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    tapio_plugin_api::config::parse_duration(s)
}

/// Flags of `run`. Those of the product document keep its defaults.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// YAML config file (the container image sets `TAPIO_CONFIG=/etc/tapio/config.yaml`).
    #[arg(long, value_name = "FILE", env = "TAPIO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Plugins directory (overrides `plugins.dir`).
    #[arg(long, value_name = "DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Serve /healthz, /readyz and Prometheus /metrics on HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// Write every delivered event as JSON Lines to PATH (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    pub jsonl: Option<String>,
    /// Print every delivered event, one readable line each, to stdout.
    #[arg(long)]
    pub console: bool,
    /// Tapio server address; giving it enables the gRPC export (`export.grpc.enabled`).
    #[arg(long, default_value = "localhost:9090")]
    pub server: String,
    /// OTEL collector endpoint; giving it enables the OTLP export (`export.otlp.enabled`).
    #[arg(long, default_value = "localhost:4317")]
    pub otel_endpoint: String,
    /// Enable the eBPF collectors.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub enable_ebpf: bool,
    /// Enable the Kubernetes collectors.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub enable_k8s: bool,
    /// Enable the systemd collector.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub enable_systemd: bool,
    /// Enable the journald collector.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub enable_journald: bool,
    /// Event buffer size: events per export batch.
    #[arg(long, default_value_t = 1000)]
    pub buffer_size: usize,
    /// Event flush interval: longest wait before a partial batch is exported.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub flush_interval: Duration,
    /// Correlation mode.
    #[arg(long, value_enum, default_value = "semantic")]
    pub correlation: CorrelationMode,
    /// Use an insecure (plaintext) gRPC connection.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub grpc_insecure: bool,
    /// Log level or tracing filter (overrides `orchestrator.log_level`; RUST_LOG overrides both).
    #[arg(long)]
    pub log_level: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl RunArgs {
    /// Applies the flags given on the command line (`matches` are those of the command the
    /// flags were parsed under) to `config`. Defaults that were not typed do not override.
    pub fn apply(&self, matches: &ArgMatches, config: &mut HostConfig) {
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        if let Some(dir) = &self.plugins_dir {
            config.plugins.dir = dir.clone();
        }
        if let Some(addr) = &self.metrics_addr {
            config.metrics.addr = Some(addr.clone());
        }
        if let Some(path) = &self.jsonl {
            config.output.jsonl = Some(path.clone());
        }
        if self.console {
            config.output.console = true;
        }
        if given("server") {
            config.export.server = self.server.clone();
            config.export.grpc.enabled = true;
        }
        if given("otel_endpoint") {
            config.export.otel_endpoint = self.otel_endpoint.clone();
            config.export.otlp.enabled = true;
        }
        if given("buffer_size") {
            config.export.batch_size = self.buffer_size;
        }
        if given("flush_interval") {
            config.export.flush_interval = self.flush_interval;
        }
        if given("correlation") {
            config.pipeline.correlation = self.correlation;
        }
        if given("grpc_insecure") {
            config.export.grpc_insecure = self.grpc_insecure;
        }
        if let Some(level) = &self.log_level {
            config.orchestrator.log_level = level.clone();
        }
    }

    /// Plugin tags switched off by `--enable-<tag>=false`.
    pub fn disabled_tags(&self) -> Vec<String> {
        [
            ("ebpf", self.enable_ebpf),
            ("k8s", self.enable_k8s),
            ("systemd", self.enable_systemd),
            ("journald", self.enable_journald),
        ]
        .into_iter()
        .filter(|(_, enabled)| !enabled)
        .map(|(tag, _)| tag.to_owned())
        .collect()
    }
}

/// Parses the command line; returns the run flags and the matches they came from.
pub fn parse() -> (Cli, ArgMatches) {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    (cli, matches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    fn parse_args(args: &[&str]) -> (Cli, ArgMatches) {
        let matches = Cli::command().try_get_matches_from(args).unwrap();
        (Cli::from_arg_matches(&matches).unwrap(), matches)
    }

    #[test]
    fn product_document_defaults() {
        let (cli, _) = parse_args(&["tapio-collector"]);
        let r = cli.run;
        assert_eq!(r.server, "localhost:9090");
        assert_eq!(r.otel_endpoint, "localhost:4317");
        assert!(
            r.enable_ebpf
                && r.enable_k8s
                && r.enable_systemd
                && r.enable_journald
                && r.grpc_insecure
        );
        assert_eq!(r.buffer_size, 1000);
        assert_eq!(r.flush_interval, Duration::from_secs(1));
        assert_eq!(r.correlation, CorrelationMode::Semantic);
    }

    #[test]
    fn only_typed_flags_override_the_file() {
        let mut config = HostConfig::default();
        config.export.batch_size = 5000;
        config.pipeline.correlation = CorrelationMode::Basic;
        let (cli, m) = parse_args(&[
            "tapio-collector",
            "--flush-interval",
            "250ms",
            "--enable-ebpf=false",
            "--enable-k8s",
        ]);
        cli.run.apply(&m, &mut config);
        assert_eq!(
            config.export.batch_size, 5000,
            "default --buffer-size must not override"
        );
        assert_eq!(config.pipeline.correlation, CorrelationMode::Basic);
        assert_eq!(config.export.flush_interval, Duration::from_millis(250));
        assert_eq!(cli.run.disabled_tags(), vec!["ebpf".to_owned()]);
    }

    #[test]
    fn run_subcommand_takes_the_same_flags() {
        let (cli, m) = parse_args(&[
            "tapio-collector",
            "run",
            "--buffer-size",
            "64",
            "--jsonl",
            "-",
        ]);
        let Some(Command::Run(run)) = cli.command else {
            panic!("expected run")
        };
        let (_, sub) = m.subcommand().unwrap();
        let mut config = HostConfig::default();
        run.apply(sub, &mut config);
        assert_eq!(config.export.batch_size, 64);
        assert_eq!(config.output.jsonl.as_deref(), Some("-"));
    }
}
