//! The part of every eBPF plugin's `Collector` that is the same in all of them: a slot
//! for the [`Runtime`] (empty until `start`), its health, metrics and stop, and the
//! metrics of the two counters every record handler keeps.

use std::sync::atomic::{AtomicU64, Ordering};

use tapio_plugin_api::{Health, Metric, PluginError};

use crate::stats::StatsSnapshot;
use crate::{ObjectSpec, RecordHandler, Runtime};

/// A plugin's runtime: none before `start`.
#[derive(Default)]
pub struct RuntimeSlot {
    runtime: Option<Runtime>,
}

impl RuntimeSlot {
    /// Starts the runtime of `spec` with `handler` (see [`Runtime::start`]); a running one
    /// is stopped first.
    pub fn start<H: RecordHandler>(
        &mut self,
        spec: ObjectSpec,
        handler: H,
    ) -> Result<(), PluginError> {
        self.stop();
        let runtime = Runtime::start(spec, handler).map_err(|e| PluginError::other(e.chain()))?;
        self.runtime = Some(runtime);
        Ok(())
    }

    /// The runtime's health; failed before `start`.
    pub fn health(&self) -> Health {
        match &self.runtime {
            Some(runtime) => runtime.health(),
            None => Health::failed("not started"),
        }
    }

    /// The runtime's kernel and reader counters (empty before `start`).
    pub fn metrics(&self) -> Vec<Metric> {
        self.runtime
            .as_ref()
            .map(Runtime::metrics)
            .unwrap_or_default()
    }

    /// The kernel counters (for tests): produced, dropped, delivered.
    pub fn stats(&self) -> Option<StatsSnapshot> {
        self.runtime.as_ref().map(Runtime::stats)
    }

    /// Stops the runtime (see [`Runtime::stop`]); nothing when not started.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.as_mut() {
            runtime.stop();
        }
    }

    /// The runtime, when started.
    pub fn get(&self) -> Option<&Runtime> {
        self.runtime.as_ref()
    }
}

/// `record_decode_errors_total` and `events_refused_total`, the counters of every record
/// handler.
pub fn handler_metrics(decode_errors: &AtomicU64, events_refused: &AtomicU64) -> [Metric; 2] {
    [
        Metric::counter(
            "record_decode_errors_total",
            "Ring records that could not be decoded.",
            decode_errors.load(Ordering::Relaxed),
        ),
        Metric::counter(
            "events_refused_total",
            "Events the host refused because its ring was full.",
            events_refused.load(Ordering::Relaxed),
        ),
    ]
}
