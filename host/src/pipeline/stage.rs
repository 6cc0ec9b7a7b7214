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
}
