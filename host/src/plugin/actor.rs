//! One thread per plugin instance. Every call into the plugin (create, start, health,
//! metrics, stop) runs on that thread, and the host waits for each with a deadline: a plugin
//! that hangs blocks only its own thread, which the host then abandons.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abi_stable::std_types::{RResult, RStr};
use parking_lot::Mutex;
use tapio_plugin_api::{module::PluginInstanceBox, EventSink, HostHandle, PluginError};

use crate::plugin::library::LoadedLibrary;
use crate::plugin::stats::PluginStats;

/// Why a lifecycle call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error (or panicked: the error's kind says so).
    #[error("{call} failed: {error}")]
    Plugin {
        /// Which call.
        call: &'static str,
        /// What the plugin said.
        error: PluginError,
    },
    /// The plugin did not return within the deadline; its thread was abandoned.
    #[error("{call} did not return within {after:?}; the plugin's thread was abandoned")]
    Timeout {
        /// Which call.
        call: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// The instance thread could not be started.
    #[error("cannot start the instance thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// The instance thread is gone (it was abandoned earlier).
    #[error("{call}: the instance thread is gone")]
    Gone {
        /// Which call.
        call: &'static str,
    },
}

enum Command {
    Start(EventSink, SyncSender<Result<(), PluginError>>),
    Poll,
    Stop(SyncSender<Result<(), PluginError>>),
}

/// Handle to a created plugin instance running on its own thread.
pub struct Instance {
    commands: Sender<Command>,
    poll_pending: Arc<AtomicBool>,
    poll_sent_at: Mutex<Option<Instant>>,
}

impl Instance {
    /// Creates an instance of `library` with `config_json` on a new thread, waiting up to
    /// `timeout` for `create` to return.
    pub fn create(
        library: &LoadedLibrary,
        config_json: String,
        host: HostHandle,
        stats: Arc<PluginStats>,
        timeout: Duration,
    ) -> Result<Instance, CallError> {
        let (commands, inbox) = mpsc::channel();
        let (created_tx, created_rx) = mpsc::sync_channel(1);
        let create = library.module.create();
        let poll_pending = Arc::new(AtomicBool::new(false));
        let pending = Arc::clone(&poll_pending);
        let name = library.descriptor.name;
        std::thread::Builder::new()
            .name(format!("plugin-{name}"))
            .spawn(move || {
                let created = match create(host, RStr::from_str(&config_json)) {
                    RResult::ROk(instance) => {
                        let _ = created_tx.send(Ok(()));
                        instance
                    }
                    RResult::RErr(e) => {
                        let _ = created_tx.send(Err(e));
                        return;
                    }
                };
                serve(created, inbox, &stats, &pending);
            })?;
        match created_rx.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(Instance {
                commands,
                poll_pending,
                poll_sent_at: Mutex::new(None),
            }),
            Ok(Err(error)) => Err(CallError::Plugin {
                call: "create",
                error,
            }),
            Err(RecvTimeoutError::Timeout) => Err(CallError::Timeout {
                call: "create",
                after: timeout,
            }),
            Err(RecvTimeoutError::Disconnected) => Err(CallError::Gone { call: "create" }),
        }
    }

    /// Starts collecting into `sink`, waiting up to `timeout`.
    pub fn start(&self, sink: EventSink, timeout: Duration) -> Result<(), CallError> {
        self.call("start", timeout, |reply| Command::Start(sink, reply))
    }

    /// Stops the instance, waiting up to `timeout`. The instance is dropped on its thread
    /// after `stop` returns; on timeout the thread is abandoned with it.
    pub fn stop(self, timeout: Duration) -> Result<(), CallError> {
        self.call("stop", timeout, Command::Stop)
    }

    /// Asks for a health and metrics poll unless one is still outstanding. Returns how long
    /// an outstanding poll has been waiting, if any.
    pub fn request_poll(&self) -> Option<Duration> {
        if self.poll_pending.swap(true, Ordering::AcqRel) {
            return self.poll_sent_at.lock().map(|t| t.elapsed());
        }
        *self.poll_sent_at.lock() = Some(Instant::now());
        if self.commands.send(Command::Poll).is_err() {
            self.poll_pending.store(false, Ordering::Release);
        }
        None
    }

    fn call(
        &self,
        call: &'static str,
        timeout: Duration,
        command: impl FnOnce(SyncSender<Result<(), PluginError>>) -> Command,
    ) -> Result<(), CallError> {
        let (reply, result) = mpsc::sync_channel(1);
        self.commands
            .send(command(reply))
            .map_err(|_| CallError::Gone { call })?;
        match result.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(CallError::Plugin { call, error }),
            Err(RecvTimeoutError::Timeout) => Err(CallError::Timeout {
                call,
                after: timeout,
            }),
            Err(RecvTimeoutError::Disconnected) => Err(CallError::Gone { call }),
        }
    }
}

/// The instance thread's loop: runs commands until `Stop` (or until the host drops the
/// handle, which also stops the plugin).
fn serve(
    mut instance: PluginInstanceBox,
    inbox: Receiver<Command>,
    stats: &PluginStats,
    poll_pending: &AtomicBool,
) {
    while let Ok(command) = inbox.recv() {
        match command {
            Command::Start(sink, reply) => {
                let _ = reply.send(instance.start(sink).into_result());
            }
            Command::Poll => {
                let health = instance.health();
                let metrics = instance.metrics().into_vec();
                stats.set_polled(health, metrics);
                poll_pending.store(false, Ordering::Release);
            }
            Command::Stop(reply) => {
                let result = instance.stop().into_result();
                drop(instance);
                let _ = reply.send(result);
                return;
            }
        }
    }
    // The handle was dropped without a stop: stop anyway so the plugin joins its threads.
    let _ = instance.stop();
}
