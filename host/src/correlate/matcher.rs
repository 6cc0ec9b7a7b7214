//! What happens to an event once it is resolved, in semantic mode: span attachment (held
//! back a while for its spans when its process is instrumented), rule matching, and the
//! group and prediction events that produces. The entity graph is only read here, so a
//! resolution can keep borrowing its ids from the graph while the event is matched.

use crate::correlate::attach::{self, DelayLine, Held, SpanIndex};
use crate::correlate::engine::{Engine, Output};
use crate::correlate::entity::{EntityGraph, Resolved};
use crate::correlate::group::Builder;
use crate::correlate::splice::Splice;
use crate::correlate::vocab::types;
use crate::correlate::Settings;
use crate::event::{Event, Severity};
use crate::pipeline::enrich::Enricher;

/// What matching reads of the rest of the stage: the entity graph (impact of a closing
/// group) and the settings.
#[derive(Clone, Copy)]
pub(super) struct Context<'a> {
    pub graph: &'a EntityGraph,
    pub settings: &'a Settings,
}

/// What the stage found out about an event before matching it.
pub(super) struct Found<'a, 'g> {
    /// Its entities.
    pub resolved: Resolved<'g>,
    /// The rule steps its type names, from the engine's current rules.
    pub candidates: &'a [(usize, usize)],
    /// Whether it carries a trace context of its own.
    pub own_trace: bool,
}

/// The stage's parts that act on resolved events (everything but the entity graph and the
/// `/proc` resolver).
pub(super) struct Matcher {
    /// Event ids and per-entity trace windows.
    pub enricher: Enricher,
    pub spans: SpanIndex,
    pub delay: DelayLine,
    pub engine: Engine,
    /// What the engine put out for the event being matched.
    pub outputs: Vec<Output>,
    /// How a batch's output differs from the batch (processed in place).
    pub splice: Splice,
    /// Scratch: the events one event put out (itself when it was not in the batch, and the
    /// group or prediction events it produced).
    emitted: Vec<Event>,
    rng: fastrand::Rng,
    /// Events attached to an application span.
    pub attached: u64,
    /// Prediction events emitted.
    pub predictions: u64,
}

impl Matcher {
    /// A matcher with the given parts.
    pub fn new(
        enricher: Enricher,
        spans: SpanIndex,
        delay: DelayLine,
        engine: Engine,
        rng: fastrand::Rng,
    ) -> Self {
        Matcher {
            enricher,
            spans,
            delay,
            engine,
            outputs: Vec::new(),
            splice: Splice::default(),
            emitted: Vec::new(),
            rng,
            attached: 0,
            predictions: 0,
        }
    }

    /// Attachment, matching and output of one event, pushed to `out`.
    fn correlate(
        &mut self,
        cx: Context<'_>,
        mut e: Event,
        r: &Resolved<'_>,
        own_trace: bool,
        out: &mut Vec<Event>,
    ) {
        self.correlate_in_place(&mut e, r, own_trace, None);
        out.push(e);
        self.emit(cx, out);
    }

    /// Attachment and matching of one event where it lies; what it produced waits in
    /// `self.outputs`. `candidates`: the rule steps its type names, when the caller looked
    /// them up with the current rules (else the engine does).
    fn correlate_in_place(
        &mut self,
        e: &mut Event,
        r: &Resolved<'_>,
        own_trace: bool,
        candidates: Option<&[(usize, usize)]>,
    ) {
        let mut keep = own_trace;
        if !own_trace && e.event_type != types::OTEL_SPAN {
            if let Some(s) = self.spans.find(r, e.timestamp_ns) {
                attach::attach(e, &s);
                self.attached += 1;
                keep = true;
            }
        }
        match candidates {
            Some(c) => self
                .engine
                .on_event_matching(e, r, keep, c, &mut self.outputs),
            None => self.engine.on_event(e, r, keep, &mut self.outputs),
        }
    }

    /// Correlates the event at `at` of the batch (`found`: what the stage found out about
    /// it): held back for its spans (it leaves the batch, its resolution owned, and is
    /// matched against the rules of its release), or matched where it lies. What it puts
    /// out besides itself follows it.
    pub fn correlate_at(
        &mut self,
        cx: Context<'_>,
        batch: &mut [Event],
        at: usize,
        found: Found<'_, '_>,
        now_ns: u64,
    ) {
        let Found {
            resolved: r,
            candidates,
            own_trace,
        } = found;
        let e = &mut batch[at];
        self.spans.record(e, &r);
        let mut emitted = std::mem::take(&mut self.emitted);
        let delay_ns = cx.settings.attach_delay.as_nanos() as u64;
        if delay_ns > 0
            && !own_trace
            && e.event_type != types::OTEL_SPAN
            && self.spans.instrumented(&r)
        {
            let placeholder = Event::new("", e.source, Severity::Info, e.timestamp_ns);
            let held = Held {
                release_ns: now_ns.saturating_add(delay_ns),
                event: std::mem::replace(e, placeholder),
                resolved: r.into_owned(),
                own_trace,
            };
            self.splice.remove(at);
            if let Some(h) = self.delay.hold(held) {
                self.correlate(cx, h.event, &h.resolved, h.own_trace, &mut emitted);
            }
        } else {
            self.correlate_in_place(e, &r, own_trace, Some(candidates));
            self.emit(cx, &mut emitted);
        }
        for e in emitted.drain(..) {
            self.splice.insert_after(at, e);
        }
        self.emitted = emitted;
    }

    /// Correlates the held events whose wait is over by `now_ns`, pushed to `out`.
    pub fn release(
        &mut self,
        cx: Context<'_>,
        now_ns: u64,
        released: &mut Vec<Held>,
        out: &mut Vec<Event>,
    ) {
        self.delay.release(now_ns, released);
        for h in released.drain(..) {
            self.correlate(cx, h.event, &h.resolved, h.own_trace, out);
        }
    }

    /// Turns what the engine put out (`self.outputs`) into events, pushed to `out`.
    pub fn emit(&mut self, cx: Context<'_>, out: &mut Vec<Event>) {
        if self.outputs.is_empty() {
            return;
        }
        let mut outputs = std::mem::take(&mut self.outputs);
        for o in outputs.drain(..) {
            match o {
                Output::Prediction(g) => {
                    let rule = &self.engine.rules().rules[g.rule];
                    let b = Builder {
                        rule,
                        graph: cx.graph,
                        weights: &cx.settings.weights,
                    };
                    if let Some(mut e) = b.prediction_event(&g) {
                        e.id = self.enricher.next_id();
                        if let Some(t) = &mut e.trace {
                            t.span_id = (self.rng.u64(1..)).to_be_bytes();
                        }
                        self.engine.note_prediction_event(g.rule, &g.key, e.id);
                        self.predictions += 1;
                        out.push(e);
                    }
                }
                Output::Closed(g, why) => {
                    let rule = &self.engine.rules().rules[g.rule];
                    let b = Builder {
                        rule,
                        graph: cx.graph,
                        weights: &cx.settings.weights,
                    };
                    if let Some(mut e) = b.group_event(&g, why) {
                        e.id = self.enricher.next_id();
                        out.push(e);
                    }
                }
            }
        }
        // Keep the allocation for the next event.
        self.outputs = outputs;
    }
}
