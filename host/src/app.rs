//! `tapio-collector run`: wires the ring, the pipeline, the plugin supervisor, the endpoints,
//! the status line, signals and systemd notifications together, and shuts them down in order.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::ArgMatches;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{LogFormat, RunArgs};
use crate::config::{LoadedConfig, OnFull};
use crate::export::ExporterStats;
use crate::pipeline::stage::Stage;
use crate::pipeline::{self, PipelineSettings};
use crate::plugin::library::LoadPolicy;
use crate::plugin::manager::ManagerSettings;
use crate::plugin::sink::FullPolicy;
use crate::plugin::stats::StatsRegistry;
use crate::plugin::supervisor::Supervisor;
use crate::sink::console::ConsoleSink;
use crate::sink::jsonl::JsonlSink;
use crate::sink::Sink;
use crate::telemetry::{http, status, systemd, Observer};

/// Counters of the enabled exporters.
type ExporterStatsList = Vec<Arc<ExporterStats>>;

/// Loads the config file (or defaults) and applies the command-line flags.
pub fn load_config(args: &RunArgs, matches: &ArgMatches) -> anyhow::Result<LoadedConfig> {
    let mut loaded = match &args.config {
        Some(path) => {
            LoadedConfig::load(path).map_err(|e| anyhow::anyhow!("invalid config: {e}"))?
        }
        None => LoadedConfig::defaults(),
    };
    args.apply(matches, &mut loaded.config);
    Ok(loaded)
}

/// Installs the log subscriber (RUST_LOG overrides the configured level).
pub fn init_logging(level: &str, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The node's host name.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_owned();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn manager_settings(loaded: &LoadedConfig, disabled_tags: Vec<String>) -> ManagerSettings {
    let c = &loaded.config;
    ManagerSettings {
        dir: c.plugins.dir.clone(),
        runtime_dir: c.plugins.runtime_dir.clone(),
        state_dir: c.plugins.state_dir.clone(),
        policy: LoadPolicy {
            strict_modes: c.plugins.strict_modes,
            allowlist_sha256: c.plugins.allowlist_sha256.clone(),
        },
        create_timeout: c.plugins.create_timeout,
        start_timeout: c.plugins.start_timeout,
        stop_timeout: c.plugins.stop_timeout,
        full_policy: match c.pipeline.on_full {
            OnFull::Drop => FullPolicy::Drop,
            OnFull::Wait => FullPolicy::Wait(c.pipeline.full_wait),
        },
        disabled_tags,
    }
}

fn sinks(
    loaded: &LoadedConfig,
    host: &str,
) -> anyhow::Result<(Vec<Box<dyn Sink>>, ExporterStatsList)> {
    let c = &loaded.config;
    let exporters = crate::export::build(c, host).context("cannot start an exporter")?;
    let mut sinks: Vec<Box<dyn Sink>> = exporters.sinks;
    if let Some(target) = &c.output.jsonl {
        let sink = JsonlSink::open(target, host.to_owned())
            .with_context(|| format!("cannot open --jsonl {target}"))?;
        sinks.push(Box::new(sink));
    }
    if c.output.console {
        sinks.push(Box::new(ConsoleSink::default()));
    }
    if sinks.is_empty() {
        tracing::warn!("no sink is configured: events are counted but not written (use --jsonl, --console or an exporter)");
    }
    Ok((sinks, exporters.stats))
}

/// Runs the collector until SIGTERM or SIGINT.
pub fn run(args: RunArgs, matches: ArgMatches) -> anyhow::Result<()> {
    let loaded = load_config(&args, &matches)?;
    init_logging(&loaded.config.orchestrator.log_level, args.log_format);
    let workers = loaded.config.orchestrator.workers;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("tapio-rt")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args, matches, loaded))
}

async fn run_async(args: RunArgs, matches: ArgMatches, loaded: LoadedConfig) -> anyhow::Result<()> {
    // Handlers first: a SIGHUP during startup must not kill the process.
    let mut sigterm =
        signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut sigint =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;
    let host = host_name();
    let c = loaded.config.clone();
    // What the settings fixed at start were built from (compared with each SIGHUP's file).
    let started_with = loaded.clone();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %loaded.file,
        plugins_dir = %c.plugins.dir.display(),
        host = %host,
        "tapio-collector starting"
    );
    let (correlation, rule_reloader) = crate::correlate::setup::build(&c)
        .map_err(|e| anyhow::anyhow!("invalid correlation rules: {e}"))?;
    tracing::info!(
        mode = ?c.pipeline.correlation,
        rules = correlation.engine().rules().len(),
        rules_dir = ?c.correlation.rules_dir,
        "correlation ready"
    );
    std::fs::create_dir_all(&c.plugins.runtime_dir).with_context(|| {
        format!(
            "cannot create plugins.runtime_dir {}",
            c.plugins.runtime_dir.display()
        )
    })?;

    let (producer, consumer) = tapio_ring::ring(c.orchestrator.buffer_size);
    let stages: Vec<Box<dyn Stage>> = vec![Box::new(correlation)];
    let (sinks, exporters) = sinks(&loaded, &host)?;
    let pipeline = pipeline::spawn(
        consumer,
        stages,
        sinks,
        PipelineSettings {
            batch_size: c.pipeline.batch_size,
        },
    )
    .context("cannot start the pipeline thread")?;

    let stats = Arc::new(StatsRegistry::default());
    let disabled_tags = args.disabled_tags();
    let mut supervisor = Supervisor::spawn(
        manager_settings(&loaded, disabled_tags.clone()),
        Arc::new(loaded.clone()),
        producer.clone(),
        Arc::clone(&stats),
    )
    .context("cannot start the plugin supervisor")?;
    if let Err(e) = supervisor.watch(&c.plugins.dir, c.plugins.debounce) {
        tracing::error!(error = %e, "plugins directory is not watched: new files load only on SIGHUP or the 30 s rescan");
    }

    let observer = Observer {
        plugins: Arc::clone(&stats),
        manager: supervisor.status_handle(),
        pipeline: pipeline.stats(),
        ring: producer.clone(),
        exporters,
    };
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let http_task = match &c.metrics.addr {
        Some(addr) => {
            let mut rx = shutdown_rx.clone();
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            Some(
                http::serve(addr, observer.clone(), stop)
                    .await
                    .with_context(|| format!("cannot listen on --metrics-addr {addr}"))?,
            )
        }
        None => None,
    };
    let status_task = tokio::spawn(status_loop(
        observer.clone(),
        c.pipeline.status_interval,
        shutdown_rx.clone(),
    ));

    // READY once the first scan is done.
    while !supervisor.status().initial_scan_done {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    systemd::ready(&status::status_line(&observer));
    let watchdog_task = systemd::watchdog_interval()
        .map(|every| tokio::spawn(watchdog_loop(observer.clone(), every, shutdown_rx.clone())));
    tracing::info!(
        active = supervisor.status().active(),
        "tapio-collector ready"
    );

    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: shutting down"); break; }
            _ = sighup.recv() => {
                systemd::reloading();
                reload(&args, &matches, &started_with, &supervisor, rule_reloader.as_ref());
                systemd::ready(&status::status_line(&observer));
            }
        }
    }

    systemd::stopping();
    // Plugins first (their sinks close), then drain the ring and flush the sinks.
    tokio::task::spawn_blocking(move || {
        supervisor.shutdown();
        pipeline.shutdown();
    })
    .await
    .context("shutdown task failed")?;
    let _ = shutdown_tx.send(true);
    if let Some(task) = http_task {
        let _ = task.await;
    }
    let _ = status_task.await;
    if let Some(task) = watchdog_task {
        let _ = task.await;
    }
    tracing::info!(final_status = %status::status_line(&observer), "tapio-collector stopped");
    Ok(())
}

/// SIGHUP: re-reads the config file; on error keeps the running config.
fn reload(
    args: &RunArgs,
    matches: &ArgMatches,
    running: &LoadedConfig,
    supervisor: &Supervisor,
    rules: Option<&crate::correlate::setup::RuleReloader>,
) {
    let Some(path) = &args.config else {
        tracing::info!("SIGHUP: no --config file; rescanning plugins with the running settings");
        let loaded = LoadedConfig::defaults_with(args, matches);
        if let Some(r) = rules {
            r.reload(&loaded.config.correlation);
        }
        supervisor.reload(Arc::new(loaded));
        return;
    };
    match load_config(args, matches) {
        Ok(loaded) => {
            tracing::info!(config = %path.display(), "SIGHUP: config reloaded");
            let fixed = crate::config::reload::needs_restart(&running.config, &loaded.config);
            if !fixed.is_empty() {
                tracing::warn!(
                    settings = %fixed.join(", "),
                    "SIGHUP: these settings changed but apply only at start: restart to apply them (systemctl restart tapio-collector); plugins and rules were reloaded"
                );
            }
            if let Some(r) = rules {
                r.reload(&loaded.config.correlation);
            }
            supervisor.reload(Arc::new(loaded));
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: config not reloaded; keeping the running one")
        }
    }
}

async fn status_loop(
    observer: Observer,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(every);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => tracing::info!("{}", status::status_line(&observer)),
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Pets the systemd watchdog while the pipeline is live; stops when it is not, so systemd
/// restarts a stalled host.
async fn watchdog_loop(
    observer: Observer,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                match http::liveness_problem(&observer) {
                    None => systemd::watchdog(),
                    Some(problem) => tracing::error!(problem = %problem, "not petting the systemd watchdog"),
                }
            }
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

impl LoadedConfig {
    /// Defaults with the command-line flags applied (no config file).
    pub fn defaults_with(args: &RunArgs, matches: &ArgMatches) -> Self {
        let mut loaded = LoadedConfig::defaults();
        args.apply(matches, &mut loaded.config);
        loaded
    }
}

/// The plugins directory a subcommand should look at.
pub fn plugins_dir_for(explicit: Option<PathBuf>, config: Option<&LoadedConfig>) -> PathBuf {
    explicit.unwrap_or_else(|| {
        config
            .map(|c| c.config.plugins.dir.clone())
            .unwrap_or_else(|| crate::config::Plugins::default().dir)
    })
}
