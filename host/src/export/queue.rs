//! The hand-off between the pipeline thread and an exporter's thread.
//!
//! [`QueueSink::write`] runs on the pipeline thread: it appends the shared batch (an `Arc`,
//! no copy) to the [`Inbox`] and wakes the exporter, or, when the inbox already holds its
//! bound, drops the batch and counts it. It never blocks on I/O. Dropping the sink closes the
//! inbox and joins the exporter thread, which delivers or spools what it holds first.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::export::stats::ExporterStats;
use crate::sink::{EventBatch, Sink, SinkError};

#[derive(Default)]
struct State {
    batches: VecDeque<EventBatch>,
    events: usize,
    closed: bool,
    last_drop_log: Option<Instant>,
}

/// A bounded queue of pipeline batches for one exporter.
pub struct Inbox {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
    stats: Arc<ExporterStats>,
}

impl Inbox {
    /// An inbox holding at most `capacity` events.
    pub fn new(capacity: usize, stats: Arc<ExporterStats>) -> Arc<Self> {
        Arc::new(Inbox {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
            stats,
        })
    }

    /// Appends `batch`, or drops and counts it when the inbox is full or closed. Returns
    /// whether it was queued.
    pub fn push(&self, batch: &EventBatch) -> bool {
        let n = batch.len();
        ExporterStats::add(&self.stats.received, n as u64);
        let mut s = self.state.lock();
        if s.closed || (s.events > 0 && s.events + n > self.capacity) {
            let log = s
                .last_drop_log
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
            if log {
                s.last_drop_log = Some(Instant::now());
            }
            drop(s);
            ExporterStats::add(&self.stats.dropped, n as u64);
            if log {
                tracing::error!(
                    exporter = self.stats.name,
                    events = n,
                    capacity = self.capacity,
                    "exporter queue full: events dropped (counted in tapio_export_dropped_events_total)"
                );
            }
            return false;
        }
        s.events += n;
        s.batches.push_back(Arc::clone(batch));
        drop(s);
        self.notify.notify_one();
        true
    }

    /// Moves every queued batch to `out`; returns whether the inbox is closed.
    pub fn take(&self, out: &mut Vec<EventBatch>) -> bool {
        let mut s = self.state.lock();
        out.extend(s.batches.drain(..));
        s.events = 0;
        s.closed
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.state.lock().events
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves when a batch arrives or the inbox closes (or spuriously).
    pub async fn notified(&self) {
        self.notify.notified().await
    }

    /// Refuses further batches and wakes the exporter so it finishes.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.notify.notify_one();
    }
}

/// The pipeline side of an exporter.
pub struct QueueSink {
    name: &'static str,
    inbox: Arc<Inbox>,
    thread: Option<JoinHandle<()>>,
}

impl QueueSink {
    /// A sink feeding `inbox`, whose exporter runs on `thread`.
    pub fn new(name: &'static str, inbox: Arc<Inbox>, thread: JoinHandle<()>) -> Self {
        QueueSink {
            name,
            inbox,
            thread: Some(thread),
        }
    }
}

impl Sink for QueueSink {
    fn name(&self) -> &'static str {
        self.name
    }

    fn write(&mut self, batch: &EventBatch) -> Result<(), SinkError> {
        // A refused batch is counted by the inbox and logged; not a sink error.
        self.inbox.push(batch);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

impl Drop for QueueSink {
    fn drop(&mut self) {
        self.inbox.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        tracing::debug!(
            exporter = self.name,
            dropped = self.inbox.stats.dropped.load(Ordering::Relaxed),
            "exporter stopped"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Severity};

    fn batch(n: usize) -> EventBatch {
        Arc::new(
            (0..n)
                .map(|_| Event::new("t", "s", Severity::Info, 1))
                .collect(),
        )
    }

    #[test]
    fn a_full_inbox_drops_and_counts_and_never_blocks() {
        let stats = Arc::new(ExporterStats::new("test"));
        let inbox = Inbox::new(10, Arc::clone(&stats));
        assert!(inbox.push(&batch(6)));
        assert!(!inbox.push(&batch(6)), "6 + 6 > 10");
        assert!(inbox.push(&batch(4)));
        assert_eq!(ExporterStats::get(&stats.dropped), 6);
        assert_eq!(ExporterStats::get(&stats.received), 16);
        let mut out = Vec::new();
        assert!(!inbox.take(&mut out));
        assert_eq!(out.iter().map(|b| b.len()).sum::<usize>(), 10);
        assert!(inbox.is_empty());
        inbox.close();
        assert!(!inbox.push(&batch(1)), "closed");
        assert!(inbox.take(&mut out));
        assert_eq!(ExporterStats::get(&stats.dropped), 7);
    }

    #[test]
    fn one_batch_larger_than_the_bound_still_passes_an_empty_inbox() {
        let stats = Arc::new(ExporterStats::new("test"));
        let inbox = Inbox::new(4, stats);
        assert!(inbox.push(&batch(9)));
    }
}
