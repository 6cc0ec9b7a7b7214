//! Sinks: where delivered events go. Each receives every batch after the stages ran.
//!
//! A sink's `write` runs on the pipeline thread and must not block for long; sinks that talk
//! to the network queue internally and count what they cannot deliver.

pub mod console;
pub mod json;
pub mod jsonl;

use std::sync::Arc;

use crate::event::Event;

/// A batch of delivered events, shared by every sink (a sink may keep it).
pub type EventBatch = Arc<Vec<Event>>;

/// A sink failure. Counted per sink; the pipeline goes on.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing failed.
    #[error("{sink}: {source}")]
    Io {
        /// The sink.
        sink: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A destination for delivered events.
pub trait Sink: Send {
    /// Short name for logs and metrics (`jsonl`, `console`).
    fn name(&self) -> &'static str;

    /// Takes one batch.
    fn write(&mut self, batch: &EventBatch) -> Result<(), SinkError>;

    /// Pushes out anything buffered. Called when the ring runs empty and at shutdown.
    fn flush(&mut self) -> Result<(), SinkError>;
}

/// A sink that drops everything (benchmarks measure the pipeline without output cost).
#[derive(Debug, Default)]
pub struct NullSink;

impl Sink for NullSink {
    fn name(&self) -> &'static str {
        "null"
    }
    fn write(&mut self, _batch: &EventBatch) -> Result<(), SinkError> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
