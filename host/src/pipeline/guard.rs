//! Stage isolation: a stage that panics is taken out of the pipeline, and events keep
//! flowing through the other stages to the sinks.
//!
//! A panic is a bug in the stage (input from a plugin it did not expect, say). Its state may
//! be broken half-way, so the stage is never called again: the batch it panicked on goes on
//! as the stage left it, and later batches skip it. Without this, the panic would end the
//! pipeline thread, and every plugin's events would pile up in the ring until the watchdog
//! restarted the collector (and a panic on a recurring event would loop that).
//!
//! Each panic is logged at error with the stage's name and message, and counted
//! (`tapio_pipeline_stage_panics_total{stage}`). Events the stage had taken out of batches
//! and not handed on ([`Stage::held`]: correlation's events waiting for their spans), and
//! the events missing from the batch it panicked on, are lost with it and counted as
//! dropped (`tapio_pipeline_stage_dropped_events_total{stage}`, and in the status line's
//! `Dropped`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::event::Event;
use crate::pipeline::stage::Stage;

/// Per stage: panics, and the events lost with a stage taken out.
#[derive(Debug, Default)]
pub struct StageCounters {
    /// The stage's name.
    pub name: &'static str,
    /// Panics (at most one: the stage is not called after it).
    pub panics: AtomicU64,
    /// Events lost with the stage.
    pub dropped: AtomicU64,
}

/// The pipeline's stages, in order, each called only until it panics.
pub struct Stages {
    stages: Vec<Box<dyn Stage>>,
    failed: Vec<bool>,
}

/// A stage's panic: its payload, and the events the stage held when the call began.
struct Panicked {
    payload: Box<dyn std::any::Any + Send>,
    held: usize,
}

/// The text of a panic's payload.
fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not text)")
}

impl Stages {
    /// `stages`, all in.
    pub fn new(stages: Vec<Box<dyn Stage>>) -> Self {
        let failed = vec![false; stages.len()];
        Stages { stages, failed }
    }

    /// Counters for each stage, in order (zero).
    pub fn counters(&self) -> Vec<StageCounters> {
        self.stages
            .iter()
            .map(|s| StageCounters {
                name: s.name(),
                ..StageCounters::default()
            })
            .collect()
    }

    /// The correlation counters of the first stage that has them.
    pub fn correlation_stats(&self) -> Option<std::sync::Arc<crate::correlate::Stats>> {
        self.stages.iter().find_map(|s| s.correlation_stats())
    }

    /// Runs `call` on stage `i` unless it was taken out before. When it panics: the
    /// panic's payload and the events the stage held before the call.
    fn call(&mut self, i: usize, call: impl FnOnce(&mut dyn Stage)) -> Option<Panicked> {
        if self.failed[i] {
            return None;
        }
        let stage = &mut self.stages[i];
        let held = stage.held();
        let payload = catch_unwind(AssertUnwindSafe(|| call(stage.as_mut()))).err()?;
        Some(Panicked { payload, held })
    }

    /// Takes stage `i` out after `panic` during `what`, with `dropped` events lost:
    /// logged, and counted in `counters[i]`.
    fn take_out(
        &mut self,
        i: usize,
        counters: &[StageCounters],
        what: &'static str,
        panic: Panicked,
        dropped: usize,
    ) {
        self.failed[i] = true;
        if let Some(c) = counters.get(i) {
            c.panics.fetch_add(1, Ordering::Relaxed);
            c.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        }
        tracing::error!(
            stage = self.stages[i].name(),
            during = what,
            panic = message(panic.payload.as_ref()),
            dropped,
            "pipeline stage panicked: taken out of the pipeline, events go on without it \
             (counted in tapio_pipeline_stage_panics_total)"
        );
    }

    /// [`Stages::call`], taking the stage out if it panics (losing what it held).
    fn guarded(
        &mut self,
        i: usize,
        counters: &[StageCounters],
        what: &'static str,
        call: impl FnOnce(&mut dyn Stage),
    ) {
        if let Some(panic) = self.call(i, call) {
            let held = panic.held;
            self.take_out(i, counters, what, panic, held);
        }
    }

    /// Runs `batch` through every stage still in.
    pub fn process(&mut self, batch: &mut Vec<Event>, now_ns: u64, counters: &[StageCounters]) {
        for i in 0..self.stages.len() {
            self.process_one(i, batch, now_ns, counters);
        }
    }

    /// Runs `batch` through stage `i`, if it is still in. After a panic the batch goes on
    /// as the stage left it; the events missing from it count as dropped too.
    fn process_one(
        &mut self,
        i: usize,
        batch: &mut Vec<Event>,
        now_ns: u64,
        counters: &[StageCounters],
    ) {
        let before = batch.len();
        if let Some(panic) = self.call(i, |s| s.process(batch, now_ns)) {
            let lost = panic.held + before.saturating_sub(batch.len());
            self.take_out(i, counters, "process", panic, lost);
        }
    }

    /// Periodic maintenance of every stage still in.
    pub fn tick(&mut self, now_ns: u64, counters: &[StageCounters]) {
        for i in 0..self.stages.len() {
            self.guarded(i, counters, "tick", |s| s.tick(now_ns));
        }
    }

    /// Events the stages created outside `process`, each run through the stages after the
    /// one that made it; appended to `out`.
    pub fn drain(&mut self, now_ns: u64, counters: &[StageCounters], out: &mut Vec<Event>) {
        for i in 0..self.stages.len() {
            let mut created = Vec::new();
            self.guarded(i, counters, "drain", |s| s.drain(&mut created));
            if created.is_empty() {
                continue;
            }
            for later in i + 1..self.stages.len() {
                self.process_one(later, &mut created, now_ns, counters);
            }
            out.append(&mut created);
        }
    }

    /// Lets every stage still in finish what is open (deliver it with [`Stages::drain`]).
    pub fn shutdown(&mut self, now_ns: u64, counters: &[StageCounters]) {
        for i in 0..self.stages.len() {
            self.guarded(i, counters, "shutdown", |s| s.shutdown(now_ns));
        }
    }

    /// Open correlation groups of the stages still in.
    pub fn open_groups(&self) -> usize {
        self.stages
            .iter()
            .zip(&self.failed)
            .filter(|(_, failed)| !**failed)
            .map(|(s, _)| s.open_groups())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use parking_lot::Mutex;

    use super::*;
    use crate::event::Severity;
    use crate::pipeline::{spawn, PipelineSettings};
    use crate::sink::{EventBatch, Sink, SinkError};

    fn ev(ty: &str) -> Event {
        Event::new(ty, "test", Severity::Info, 1)
    }

    fn types(batch: &[Event]) -> Vec<&str> {
        batch.iter().map(|e| e.event_type.as_str()).collect()
    }

    /// Counts its calls; panics in `process` on an event of type `boom` (after marking the
    /// events before it), in `tick` when `panic_on_tick`. Holds (takes out) events of type
    /// `hold`.
    struct Probe {
        name: &'static str,
        calls: Arc<AtomicUsize>,
        held: Vec<Event>,
        panic_on_tick: bool,
    }

    impl Probe {
        fn new(name: &'static str) -> (Self, Arc<AtomicUsize>) {
            let calls = Arc::new(AtomicUsize::new(0));
            let probe = Probe {
                name,
                calls: Arc::clone(&calls),
                held: Vec::new(),
                panic_on_tick: false,
            };
            (probe, calls)
        }
    }

    impl Stage for Probe {
        fn name(&self) -> &'static str {
            self.name
        }

        fn process(&mut self, batch: &mut Vec<Event>, _now_ns: u64) {
            self.calls.fetch_add(1, Ordering::Relaxed);
            for e in batch.iter_mut() {
                if e.event_type == "boom" {
                    panic!("{} cannot take a boom", self.name);
                }
                e.pid = Some(e.pid.unwrap_or(0) + 1);
            }
            let (hold, keep) = std::mem::take(batch)
                .into_iter()
                .partition(|e| e.event_type == "hold");
            self.held.extend::<Vec<Event>>(hold);
            *batch = keep;
        }

        fn tick(&mut self, _now_ns: u64) {
            self.calls.fetch_add(1, Ordering::Relaxed);
            assert!(!self.panic_on_tick, "{} cannot tick", self.name);
        }

        fn open_groups(&self) -> usize {
            1
        }

        fn held(&self) -> usize {
            self.held.len()
        }
    }

    #[test]
    fn a_stage_that_panics_is_taken_out_and_its_batch_goes_on_as_it_was_left() {
        let (a, a_calls) = Probe::new("a");
        let (b, b_calls) = Probe::new("b");
        let (c, c_calls) = Probe::new("c");
        let mut stages = Stages::new(vec![Box::new(a), Box::new(b), Box::new(c)]);
        let counters = stages.counters();
        // Each stage panics on the boom: taken out, the batch goes on to the next.
        let mut batch = vec![ev("ok"), ev("boom"), ev("ok")];
        stages.process(&mut batch, 1, &counters);
        assert_eq!(types(&batch), ["ok", "boom", "ok"], "nothing lost");
        for c in &counters {
            assert_eq!(c.panics.load(Ordering::Relaxed), 1, "{}", c.name);
            assert_eq!(c.dropped.load(Ordering::Relaxed), 0, "{}", c.name);
        }
        // As each left it: all three marked the first event before the boom, none the last.
        assert_eq!(batch[0].pid, Some(3));
        assert_eq!(batch[2].pid, None);
        // Later batches skip every stage taken out; none of them is called again.
        let mut next = vec![ev("ok")];
        stages.process(&mut next, 2, &counters);
        stages.tick(3, &counters);
        assert_eq!(types(&next), ["ok"]);
        assert_eq!(next[0].pid, None, "no stage touched it");
        for calls in [&a_calls, &b_calls, &c_calls] {
            assert_eq!(calls.load(Ordering::Relaxed), 1);
        }
        assert_eq!(stages.open_groups(), 0, "stages taken out count no groups");
    }

    #[test]
    fn only_the_stage_that_panics_is_taken_out() {
        let (a, a_calls) = Probe::new("a");
        let (mut b, b_calls) = Probe::new("b");
        b.panic_on_tick = true;
        let mut stages = Stages::new(vec![Box::new(a), Box::new(b)]);
        let counters = stages.counters();
        stages.tick(1, &counters);
        assert_eq!(counters[0].panics.load(Ordering::Relaxed), 0);
        assert_eq!(counters[1].panics.load(Ordering::Relaxed), 1);
        let mut batch = vec![ev("ok")];
        stages.process(&mut batch, 2, &counters);
        assert_eq!(batch[0].pid, Some(1), "a still runs, b no more");
        assert_eq!(a_calls.load(Ordering::Relaxed), 2);
        assert_eq!(b_calls.load(Ordering::Relaxed), 1);
        assert_eq!(stages.open_groups(), 1);
    }

    #[test]
    fn events_a_stage_held_are_counted_as_dropped_when_it_panics() {
        let (a, _) = Probe::new("a");
        let mut stages = Stages::new(vec![Box::new(a)]);
        let counters = stages.counters();
        let mut batch = vec![ev("hold"), ev("ok"), ev("hold")];
        stages.process(&mut batch, 1, &counters);
        assert_eq!(types(&batch), ["ok"], "two held");
        let mut batch = vec![ev("ok"), ev("boom")];
        stages.process(&mut batch, 2, &counters);
        assert_eq!(types(&batch), ["ok", "boom"]);
        assert_eq!(counters[0].panics.load(Ordering::Relaxed), 1);
        assert_eq!(
            counters[0].dropped.load(Ordering::Relaxed),
            2,
            "the two held events are lost with the stage"
        );
    }

    /// Keeps every event it is given.
    #[derive(Clone, Default)]
    struct Keep(Arc<Mutex<Vec<Event>>>);

    impl Sink for Keep {
        fn name(&self) -> &'static str {
            "keep"
        }
        fn write(&mut self, batch: &EventBatch) -> Result<(), SinkError> {
            self.0.lock().extend(batch.iter().cloned());
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    #[test]
    fn the_pipeline_thread_outlives_a_panicking_stage() {
        let (producer, consumer) = tapio_ring::ring::<Event>(64);
        let (a, _) = Probe::new("a");
        let sink = Keep::default();
        let handle = spawn(
            consumer,
            vec![Box::new(a)],
            vec![Box::new(sink.clone())],
            PipelineSettings { batch_size: 8 },
        )
        .expect("pipeline thread");
        let stats = handle.stats();
        let wait_for = |n: usize| {
            let until = Instant::now() + Duration::from_secs(10);
            while sink.0.lock().len() < n {
                assert!(
                    Instant::now() < until,
                    "{} of {n} delivered",
                    sink.0.lock().len()
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        };
        for ty in ["ok", "boom"] {
            producer.push(ev(ty)).expect("room in the ring");
        }
        wait_for(2);
        producer.push(ev("after")).expect("room in the ring");
        wait_for(3);
        assert!(stats.alive.load(Ordering::Acquire), "the loop still runs");
        assert_eq!(stats.stages[0].name, "a");
        assert_eq!(stats.stages[0].panics.load(Ordering::Relaxed), 1);
        drop(producer);
        handle.shutdown();
        let delivered = sink.0.lock();
        assert_eq!(types(&delivered), ["ok", "boom", "after"]);
        assert_eq!(
            delivered[2].pid, None,
            "the stage was out for the later event"
        );
    }
}
