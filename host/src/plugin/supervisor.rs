//! The thread that owns the [`PluginManager`], and the directory watcher that feeds it.
//!
//! Everything that changes the set of plugins (the first scan, file events, SIGHUP, the
//! periodic health poll and rescan, shutdown) is a command processed in order on this one
//! thread, so the manager needs no locks and a slow plugin delays only plugin management,
//! never the event pipeline.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify_debouncer_full::{new_debouncer, notify::RecursiveMode, DebounceEventResult};
use parking_lot::Mutex;
use tapio_ring::Producer;

use crate::config::LoadedConfig;
use crate::event::Event;
use crate::plugin::manager::{ManagerSettings, ManagerStatus, PluginManager};
use crate::plugin::stats::StatsRegistry;

/// How often running plugins are asked for health and metrics.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How often the directory is rescanned in case a file event was missed.
const RESCAN_INTERVAL: Duration = Duration::from_secs(30);

enum Command {
    Changed(Vec<PathBuf>),
    Reload(Arc<LoadedConfig>),
    Shutdown(SyncSender<()>),
}

/// Handle to the plugin supervisor thread.
pub struct Supervisor {
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
    status: Arc<Mutex<ManagerStatus>>,
    _watcher: Option<Box<dyn std::any::Any + Send>>,
}

/// Starting the directory watcher failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {dir}: {source}")]
pub struct WatchError {
    dir: PathBuf,
    #[source]
    source: notify_debouncer_full::notify::Error,
}

impl Supervisor {
    /// Starts the thread, which scans the plugins directory at once.
    pub fn spawn(
        settings: ManagerSettings,
        config: Arc<LoadedConfig>,
        ring: Producer<Event>,
        stats: Arc<StatsRegistry>,
    ) -> std::io::Result<Self> {
        let status = Arc::new(Mutex::new(ManagerStatus::default()));
        let (commands, inbox) = mpsc::channel();
        let manager = PluginManager::new(settings, config, ring, stats, Arc::clone(&status));
        let thread = std::thread::Builder::new()
            .name("plugin-supervisor".into())
            .spawn(move || run(manager, inbox))?;
        Ok(Supervisor {
            commands,
            thread: Some(thread),
            status,
            _watcher: None,
        })
    }

    /// Watches `dir` for changes, acting on them after `debounce` of quiet.
    pub fn watch(&mut self, dir: &Path, debounce: Duration) -> Result<(), WatchError> {
        let commands = self.commands.clone();
        let err = |source| WatchError {
            dir: dir.to_owned(),
            source,
        };
        let mut debouncer =
            new_debouncer(
                debounce,
                None,
                move |result: DebounceEventResult| match result {
                    Ok(events) => {
                        let mut paths: Vec<PathBuf> =
                            events.into_iter().flat_map(|e| e.event.paths).collect();
                        paths.sort();
                        paths.dedup();
                        if !paths.is_empty() {
                            let _ = commands.send(Command::Changed(paths));
                        }
                    }
                    Err(errors) => {
                        for e in errors {
                            tracing::warn!(error = %e, "plugins directory watch error");
                        }
                    }
                },
            )
            .map_err(err)?;
        debouncer
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(err)?;
        self._watcher = Some(Box::new(debouncer));
        Ok(())
    }

    /// Applies a reloaded config.
    pub fn reload(&self, config: Arc<LoadedConfig>) {
        let _ = self.commands.send(Command::Reload(config));
    }

    /// The latest published status.
    pub fn status(&self) -> ManagerStatus {
        self.status.lock().clone()
    }

    /// A shared handle to the status, for the metrics endpoint.
    pub fn status_handle(&self) -> Arc<Mutex<ManagerStatus>> {
        Arc::clone(&self.status)
    }

    /// Stops watching, stops every plugin (each with its deadline) and ends the thread.
    pub fn shutdown(mut self) {
        self._watcher = None;
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        if self.commands.send(Command::Shutdown(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut manager: PluginManager, inbox: mpsc::Receiver<Command>) {
    manager.scan();
    let mut next_poll = Instant::now();
    let mut next_rescan = Instant::now() + RESCAN_INTERVAL;
    loop {
        let now = Instant::now();
        if now >= next_poll {
            manager.poll();
            next_poll = now + POLL_INTERVAL;
        }
        if now >= next_rescan {
            manager.scan();
            next_rescan = now + RESCAN_INTERVAL;
        }
        let wait = next_poll
            .min(next_rescan)
            .saturating_duration_since(Instant::now());
        match inbox.recv_timeout(wait) {
            Ok(Command::Changed(paths)) => manager.files_changed(&paths),
            Ok(Command::Reload(config)) => manager.reload_config(config),
            Ok(Command::Shutdown(done)) => {
                manager.shutdown();
                let _ = done.send(());
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                manager.shutdown();
                return;
            }
        }
    }
}
