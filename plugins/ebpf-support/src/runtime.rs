//! The runtime of one eBPF plugin: brings the object up (first attempt inside `start`, so a
//! healthy start means attached), runs the reader thread, retries with backoff while the
//! object cannot be loaded (reporting failed health with the reason), and on stop detaches,
//! drains what is left and joins.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use tapio_plugin_api::{Health, Metric};

use crate::{
    load::{self, Loaded},
    ring::{self, StopSignal},
    stats::{KernelStats, StatsSnapshot},
    EbpfError, ObjectSpec, RecordHandler,
};

/// First and longest wait between two load attempts.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The state of a runtime, as reported to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeHealth {
    /// Attached and reading.
    Running,
    /// Reading, but some optional programs are not attached (why).
    Degraded(String),
    /// Not attached (why); retrying with backoff.
    Failed(String),
    /// Stopped.
    Stopped,
}

struct Shared {
    health: Mutex<RuntimeHealth>,
    stats: KernelStats,
}

/// A running eBPF object with its reader thread. See the module docs.
pub struct Runtime {
    name: &'static str,
    shared: Arc<Shared>,
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
}

impl Runtime {
    /// Loads and attaches `spec` (first attempt on the calling thread), then reads its ring
    /// on a new thread, passing records to `handler`. A failed load does NOT fail this call:
    /// the runtime reports [`RuntimeHealth::Failed`] with the reason and retries with
    /// backoff. Errors only when the thread or its stop signal cannot be created.
    pub fn start<H: RecordHandler>(spec: ObjectSpec, handler: H) -> Result<Runtime, EbpfError> {
        let shared = Arc::new(Shared {
            health: Mutex::new(RuntimeHealth::Failed("starting".into())),
            stats: KernelStats::default(),
        });
        let stop = Arc::new(StopSignal::new()?);
        let first = bring_up(&spec, &shared);
        let name = spec.name;
        let thread = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::Builder::new()
                .name(format!("ebpf-{name}"))
                .spawn(move || supervise(spec, handler, first, &shared, &stop))
                .map_err(|source| EbpfError::Io {
                    what: "spawning the reader thread",
                    source,
                })?
        };
        Ok(Runtime {
            name,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// The current state.
    pub fn state(&self) -> RuntimeHealth {
        self.shared.health.lock().clone()
    }

    /// The state as plugin health.
    pub fn health(&self) -> Health {
        match self.state() {
            RuntimeHealth::Running => Health::healthy(),
            RuntimeHealth::Degraded(why) => Health::degraded(why),
            RuntimeHealth::Failed(why) => Health::failed(why),
            RuntimeHealth::Stopped => Health::degraded("stopped"),
        }
    }

    /// The kernel and reader counters (kept after stop).
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// The counters as plugin metrics.
    pub fn metrics(&self) -> Vec<Metric> {
        self.shared.stats.metrics()
    }

    /// Detaches the programs, drains the ring one last time, calls the handler's final
    /// `flush` and `tick`, and joins the reader thread.
    pub fn stop(&mut self) {
        self.stop.signal();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("{}: reader thread panicked", self.name);
            }
        }
        *self.shared.health.lock() = RuntimeHealth::Stopped;
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One load attempt; records the outcome in the health.
fn bring_up(spec: &ObjectSpec, shared: &Shared) -> Option<Loaded> {
    match load::load(spec) {
        Ok(loaded) => Some(loaded),
        Err(e) => {
            let reason = e.chain();
            let mut health = shared.health.lock();
            if *health != RuntimeHealth::Failed(reason.clone()) {
                log::error!("{}: eBPF unavailable: {reason}", spec.name);
            }
            *health = RuntimeHealth::Failed(reason);
            None
        }
    }
}

/// The thread body: retry until loaded, then read until stopped.
fn supervise<H: RecordHandler>(
    spec: ObjectSpec,
    mut handler: H,
    mut loaded: Option<Loaded>,
    shared: &Shared,
    stop: &StopSignal,
) {
    let mut backoff = BACKOFF_START;
    loop {
        if stop.is_set() {
            return;
        }
        let Some(mut object) = loaded.take().or_else(|| bring_up(&spec, shared)) else {
            if stop.wait(backoff) {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            continue;
        };
        if let Err(e) = handler.attached(&mut object.ebpf) {
            *shared.health.lock() = RuntimeHealth::Failed(e.chain());
            drop(object);
            if stop.wait(backoff) {
                return;
            }
            continue;
        }
        run(&spec, &mut handler, object, shared, stop);
        return;
    }
}

/// Reads an attached object until stop, then shuts it down cleanly.
fn run<H: RecordHandler>(
    spec: &ObjectSpec,
    handler: &mut H,
    object: Loaded,
    shared: &Shared,
    stop: &StopSignal,
) {
    let Loaded {
        ebpf,
        mut ring,
        stats,
        degraded,
    } = object;
    shared.stats.attach(stats, spec.extra_stats);
    *shared.health.lock() = if degraded.is_empty() {
        RuntimeHealth::Running
    } else {
        RuntimeHealth::Degraded(format!(
            "some programs not attached: {}",
            degraded.join("; ")
        ))
    };
    log::info!(
        "{}: attached {} programs",
        spec.name,
        spec.programs.len() - degraded.len()
    );
    ring::read_until_stopped(&mut ring, handler, stop, spec.poll_interval, &shared.stats);
    // Detach (dropping the object closes its programs and links), let programs already
    // running finish, then take what they left in the ring.
    drop(ebpf);
    std::thread::sleep(Duration::from_millis(5));
    ring::drain(&mut ring, handler, &shared.stats);
    handler.tick();
    handler.flush();
}
