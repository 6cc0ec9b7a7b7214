//! The interface of a pipeline stage (enrichment now; correlation later).

use crate::event::Event;

/// A stage transforms each batch in place, in order, on the pipeline thread. It must not
/// block: no I/O, no locks held across batches.
pub trait Stage: Send {
    /// Short name for logs and metrics.
    fn name(&self) -> &'static str;

    /// Processes one batch. `now_ns` is wall-clock nanoseconds (injected for tests).
    fn process(&mut self, batch: &mut Vec<Event>, now_ns: u64);

    /// Periodic maintenance (evicting expired state), about once a second.
    fn tick(&mut self, _now_ns: u64) {}

    /// Correlation groups currently open (for the status line).
    fn open_groups(&self) -> usize {
        0
    }

    /// Moves events the stage created outside `process` (in `tick` or `shutdown`: closed
    /// correlation groups) into `out`; the pipeline delivers them to the sinks.
    fn drain(&mut self, _out: &mut Vec<Event>) {}

    /// Called once before the pipeline exits: finish what is open (deliver via `drain`).
    fn shutdown(&mut self, _now_ns: u64) {}

    /// Events the stage took out of batches and has not handed on yet (correlation: events
    /// waiting for their spans). They are lost if the stage panics (`pipeline::guard`).
    fn held(&self) -> usize {
        0
    }

    /// The correlation counters, for metrics (the correlation stage only).
    fn correlation_stats(&self) -> Option<std::sync::Arc<crate::correlate::Stats>> {
        None
    }
}
