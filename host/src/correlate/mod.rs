//! Correlation, as one pipeline stage ([`CorrelationStage`]) between the ring and the sinks.
//!
//! Basic mode: every event is resolved against the [`entity`] graph (pid -> cgroup ->
//! container -> pod -> workload, with the off-thread `/proc` fallback of [`resolver`]) and
//! enriched with the entity attributes it resolves to, then gets its id and W3C trace
//! context per entity and window (the `enrich` stage's [`Enricher`], owned here).
//!
//! Semantic mode adds: the OTel attachment of node events to application spans
//! ([`attach`]), the rule [`engine`] over YAML [`rules`], and for every confirmed group a
//! `tapio.correlation.group` event ([`group`]) with root cause, chain, confidence, impact
//! ([`impact`]), prediction ([`predict`]) and the group's trace as spans; predictions are
//! also emitted as they happen (`tapio.correlation.prediction`).
//!
//! Nothing here does I/O on the pipeline thread or reads a clock: time comes from event
//! timestamps and the `now_ns` the pipeline passes in.

pub mod attach;
pub mod cgroup_path;
pub mod engine;
pub mod entity;
pub mod group;
pub mod impact;
pub mod lru;
mod matcher;
pub mod predict;
pub mod replay;
pub mod resolver;
pub mod rules;
pub mod setup;
mod splice;
pub mod stats;
pub mod view;
pub mod vocab;
mod warm;

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use crate::config::CorrelationMode;
use crate::correlate::attach::{DelayLine, Held, SpanIndex};
use crate::correlate::engine::{Engine, EngineLimits};
use crate::correlate::entity::{EntityGraph, EntityLimits, Id};
use crate::correlate::impact::BusinessWeights;
use crate::correlate::matcher::{Context, Found, Matcher};
use crate::correlate::resolver::{Answer, Resolver};
use crate::correlate::rules::RuleSet;
use crate::correlate::stats::{set, CorrelationStats};
use crate::correlate::view::View;
use crate::correlate::warm::{ENRICHMENT_BYTES, WARM_CHUNK};
use crate::event::Event;
use crate::pipeline::enrich::Enricher;
use crate::pipeline::stage::Stage;
use crate::prefetch::prefetch;

pub use stats::CorrelationStats as Stats;

/// Table buckets (entity tables, then trace windows) examined for expiry per event
/// processed: at 1 M events/s a lap over full tables (about 0.8 M buckets) takes about a
/// second, and the capacity limits bound memory in between.
const SWEEP_PER_EVENT: usize = 1;
/// Buckets examined per tick (once a second), so idle tables expire too: small enough that
/// a tick costs ~0.1 ms (a whole-table pass over 100 k entities took ~1 ms), large enough
/// that a lap over full tables takes a few minutes when no event flows (TTL 15 min).
const SWEEP_PER_TICK: usize = 8192;

/// Settings of the stage (from the `correlation:` config section).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Basic or semantic.
    pub mode: CorrelationMode,
    /// Basic trace window per entity.
    pub trace_window: Duration,
    /// Most trace windows kept by basic enrichment.
    pub max_trace_entities: usize,
    /// Entity table limits.
    pub entities: EntityLimits,
    /// Group limits.
    pub engine: EngineLimits,
    /// Business weights.
    pub weights: BusinessWeights,
    /// How long events of instrumented processes wait for their spans (0: no wait).
    pub attach_delay: Duration,
    /// Most events waiting.
    pub max_delayed: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: CorrelationMode::Semantic,
            trace_window: Duration::from_secs(30),
            max_trace_entities: 100_000,
            entities: EntityLimits::default(),
            engine: EngineLimits::default(),
            weights: BusinessWeights::default(),
            attach_delay: Duration::from_secs(2),
            max_delayed: 100_000,
        }
    }
}

/// The correlation stage.
pub struct CorrelationStage {
    settings: Settings,
    graph: EntityGraph,
    resolver: Resolver,
    /// Everything that acts on a resolved event: it only reads the graph, so a resolution
    /// borrows its ids from the graph while the event goes through.
    matcher: Matcher,
    stats: Arc<CorrelationStats>,
    rules_rx: Option<Receiver<RuleSet>>,
    /// Scratch: the rule steps the type of the event being processed names.
    candidates: Vec<(usize, usize)>,
    pending: Vec<Event>,
    spare: Vec<Event>,
    answers: Vec<Answer>,
    /// Scratch: the pids of a batch (`warm`).
    pids: Vec<u32>,
    released: Vec<Held>,
}

impl CorrelationStage {
    /// A stage with `rules`, asking `resolver` about unknown processes; `rng` seeds ids.
    pub fn new(
        settings: Settings,
        rules: RuleSet,
        resolver: Resolver,
        mut rng: fastrand::Rng,
    ) -> Self {
        let enricher = Enricher::with_rng(
            settings.trace_window,
            settings.max_trace_entities,
            fastrand::Rng::with_seed(rng.u64(..)),
        );
        let stats = Arc::new(CorrelationStats::default());
        set(&stats.rules, rules.len() as u64);
        let ttl = settings.entities.ttl_ns;
        let engine = Engine::new(
            rules,
            settings.engine,
            fastrand::Rng::with_seed(rng.u64(..)),
        );
        CorrelationStage {
            graph: EntityGraph::new(settings.entities),
            matcher: Matcher::new(
                enricher,
                SpanIndex::new(settings.entities.max_processes, ttl),
                DelayLine::new(settings.max_delayed),
                engine,
                rng,
            ),
            candidates: Vec::new(),
            settings,
            resolver,
            stats,
            rules_rx: None,
            pending: Vec::new(),
            spare: Vec::new(),
            answers: Vec::new(),
            pids: Vec::new(),
            released: Vec::new(),
        }
    }

    /// New rule sets arrive on `rx` (SIGHUP reloads, validated off the pipeline thread).
    pub fn with_rule_updates(mut self, rx: Receiver<RuleSet>) -> Self {
        self.rules_rx = Some(rx);
        self
    }

    /// The counters.
    pub fn stats(&self) -> Arc<CorrelationStats> {
        Arc::clone(&self.stats)
    }

    /// The entity graph.
    pub fn graph(&self) -> &EntityGraph {
        &self.graph
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.matcher.engine
    }

    fn apply_rule_updates(&mut self) {
        let Some(rx) = &self.rules_rx else { return };
        let mut newest = None;
        while let Ok(r) = rx.try_recv() {
            newest = Some(r);
        }
        if let Some(rules) = newest {
            set(&self.stats.rules, rules.len() as u64);
            self.stats
                .rule_reloads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut pending = std::mem::take(&mut self.pending);
            let (m, cx) = self.matcher_in_context();
            m.engine.replace_rules(rules, &mut m.outputs);
            m.emit(cx, &mut pending);
            self.pending = pending;
        }
    }

    fn apply_answers(&mut self, now_ns: u64) {
        self.resolver.poll(&mut self.answers);
        for a in self.answers.drain(..) {
            match a {
                Answer::Pid {
                    pid,
                    path,
                    cgroup_id,
                } => {
                    self.graph.learn_proc_cgroup(pid, &path, cgroup_id, now_ns);
                }
                Answer::Limit { path, max } => {
                    if self.matcher.engine.cgroup_limits.len()
                        >= self.settings.entities.max_workloads
                    {
                        self.matcher.engine.cgroup_limits.clear();
                    }
                    self.matcher.engine.cgroup_limits.insert(path, max);
                }
            }
        }
    }

    /// Brings the table entries `batch` will read into the cache ahead of the per-event
    /// loop, so their misses overlap instead of stalling each event in turn.
    fn warm(&mut self, batch: &[Event]) {
        let mut pids = std::mem::take(&mut self.pids);
        pids.clear();
        for e in batch {
            // The attribute list lives apart from the event (and was written on the
            // plugin's thread): its first line, and the spare room enrichment writes to.
            std::hint::black_box(e.attributes.first().map(|a| a.key.len()));
            prefetch(e.attributes.as_ptr_range().end, ENRICHMENT_BYTES);
            pids.extend(e.pid);
        }
        let enricher = &self.matcher.enricher;
        self.graph.warm(&pids, |hint| enricher.warm_window(hint));
        self.pids = pids;
    }

    /// Correlates the held events whose wait is over by `now_ns`, pushed to `out`.
    fn release_held(&mut self, now_ns: u64, out: &mut Vec<Event>) {
        let mut released = std::mem::take(&mut self.released);
        let (m, cx) = self.matcher_in_context();
        m.release(cx, now_ns, &mut released, out);
        self.released = released;
    }

    /// The matcher, with what it reads of the rest of the stage.
    fn matcher_in_context(&mut self) -> (&mut Matcher, Context<'_>) {
        let cx = Context {
            graph: &self.graph,
            settings: &self.settings,
        };
        (&mut self.matcher, cx)
    }

    fn semantic(&self) -> bool {
        self.settings.mode == CorrelationMode::Semantic
    }

    fn publish(&self) {
        let s = &self.stats;
        let c = &self.matcher.engine.counts;
        set(&s.groups_opened, c.opened);
        set(&s.groups_confirmed, c.confirmed);
        set(&s.groups_closed, c.closed);
        set(&s.groups_discarded, c.discarded);
        set(&s.groups_evicted, c.evicted);
        set(&s.members_dropped, c.dropped_members);
        set(&s.rule_matches, c.rule_matches);
        set(&s.unkeyed_matches, c.unkeyed);
        let m = &self.matcher;
        set(&s.predictions, m.predictions);
        set(&s.attached_events, m.attached);
        set(&s.delayed_events, m.delay.delayed);
        set(&s.delay_overflow, m.delay.overflow);
        let rc = self.resolver.counts;
        set(&s.resolver_requests, rc.requests);
        set(&s.resolver_dropped, rc.dropped);
        set(&s.resolver_answers, rc.answers);
        set(&s.open_groups, self.open_groups() as u64);
        let t = self.graph.sizes();
        set(&s.entities_processes, t.processes as u64);
        set(&s.entities_cgroups, t.cgroups as u64);
        set(&s.entities_containers, t.containers as u64);
        set(&s.entities_pods, t.pods as u64);
        set(&s.entities_objects, t.objects as u64);
        set(&s.entities_peers, t.peers as u64);
        set(&s.entities_evicted, t.evicted);
    }

    fn publish_rule_matches(&self) {
        let rules = &self.matcher.engine.rules().rules;
        let mut m = self.stats.matches_per_rule.lock();
        m.clear();
        m.extend(
            rules
                .iter()
                .zip(&self.matcher.engine.matches_per_rule)
                .map(|(r, n)| (r.id.clone(), *n)),
        );
    }

    /// Takes the event at `at` of the batch through every step: learns from it, resolves
    /// and enriches it (entity attributes; ids and traces are the enricher's) and, in
    /// semantic mode, matches it. Its resolution borrows the graph's ids throughout.
    fn process_event(&mut self, batch: &mut [Event], at: usize, semantic: bool, now_ns: u64) {
        let e = &mut batch[at];
        // One pass over the attributes; the cgroup path parsed once.
        let v = View::of(e);
        let owner = entity::owner_of(&v);
        self.graph.observe_view(e, &v, &owner);
        // The rule steps of the event's type, looked up once: they say whether its cgroup
        // limit is needed, and the engine matches them.
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        if semantic {
            self.matcher
                .engine
                .rules()
                .candidates(&e.event_type, &mut candidates);
        }
        let limit_type = semantic && self.matcher.engine.rules().reads_cgroup_limit(&candidates);
        if v.peer().is_some() {
            // Who connects to whom: learned before the event is matched, so a group it
            // closes sees the edge. (The graph changes here, so the resolution that
            // borrows it comes after.)
            if let Some(client) = self
                .graph
                .resolve_view(&v, &owner, limit_type)
                .workload_key()
            {
                self.graph.observe_client(e.timestamp_ns, &v, client);
            }
        }
        let graph = &self.graph;
        let r = graph.resolve_view(&v, &owner, limit_type);
        if let Some(pid) = r.pid {
            if r.cgroup_path.is_none() && r.container.is_none() && !graph.knows_process(pid) {
                self.resolver.ask_pid(pid, e.timestamp_ns);
            }
        }
        if limit_type {
            if let Some(p) = v.cgroup_path.or(r.cgroup_path.as_deref()) {
                self.resolver.ask_limit(p, e.timestamp_ns);
            }
        }
        let present = v.present;
        entity::enrich_missing(e, graph, &r, present);
        let own_trace = e.trace.is_some();
        // Windows are looked up under the graph's allocation of the id (`pipeline::enrich`).
        let hint = r.pid.and_then(|pid| graph.window_hint(pid));
        self.matcher.enricher.stamp(
            e,
            r.container.as_ref().map(Id::name),
            r.pod_uid.as_ref().map(Id::name),
            hint,
        );
        if semantic {
            let cx = Context {
                graph,
                settings: &self.settings,
            };
            let found = Found {
                resolved: r,
                candidates: &candidates,
                own_trace,
            };
            self.matcher.correlate_at(cx, batch, at, found, now_ns);
        }
        self.candidates = candidates;
    }
}

impl Stage for CorrelationStage {
    fn name(&self) -> &'static str {
        "correlate"
    }

    fn process(&mut self, batch: &mut Vec<Event>, now_ns: u64) {
        self.apply_rule_updates();
        self.apply_answers(now_ns);
        let semantic = self.semantic();
        self.matcher.splice.clear();
        // Events held for their spans whose wait is over go out first.
        let mut out = std::mem::take(&mut self.spare);
        if semantic {
            self.release_held(now_ns, &mut out);
        }
        // Each chunk's entries are brought into the cache, then its events go through
        // every step one by one, in place: an event moves only if the batch's order
        // changes (see `Splice`).
        for start in (0..batch.len()).step_by(WARM_CHUNK) {
            let end = (start + WARM_CHUNK).min(batch.len());
            self.warm(&batch[start..end]);
            for at in start..end {
                self.process_event(batch, at, semantic, now_ns);
            }
        }
        // TTL expiry a little per batch (a whole-table pass would stall one batch).
        let sweep = batch.len().saturating_mul(SWEEP_PER_EVENT);
        self.graph.expire_some(now_ns, sweep);
        self.matcher.enricher.expire_some(now_ns, sweep);
        if out.is_empty() && self.matcher.splice.is_empty() {
            // The batch is its own output.
            self.spare = out;
        } else {
            self.matcher.splice.apply(batch, &mut out);
            std::mem::swap(batch, &mut out);
            self.spare = out;
        }
        batch.append(&mut self.pending);
        self.publish();
    }

    fn tick(&mut self, now_ns: u64) {
        self.apply_rule_updates();
        self.apply_answers(now_ns);
        if self.semantic() {
            let mut pending = std::mem::take(&mut self.pending);
            self.release_held(now_ns, &mut pending);
            let (m, cx) = self.matcher_in_context();
            m.engine.tick(now_ns, &mut m.outputs);
            m.emit(cx, &mut pending);
            self.pending = pending;
        }
        // Expire after groups closed, so a closing group still sees its entities.
        self.matcher.enricher.expire_some(now_ns, SWEEP_PER_TICK);
        self.graph.expire_some(now_ns, SWEEP_PER_TICK);
        self.matcher.spans.expire(now_ns);
        self.resolver.expire(now_ns);
        self.publish();
        self.publish_rule_matches();
    }

    fn drain(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.pending);
    }

    fn shutdown(&mut self, _now_ns: u64) {
        if !self.semantic() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        self.release_held(u64::MAX, &mut pending);
        let (m, cx) = self.matcher_in_context();
        m.engine.close_all(&mut m.outputs);
        m.emit(cx, &mut pending);
        self.pending = pending;
        self.publish();
        self.publish_rule_matches();
    }

    /// Semantic mode: confirmed groups still open (candidates that never confirm are not
    /// groups; `Engine::open_groups` counts them too).
    fn open_groups(&self) -> usize {
        if self.semantic() {
            let c = &self.matcher.engine.counts;
            c.confirmed.saturating_sub(c.closed) as usize
        } else {
            self.matcher.enricher.open_groups()
        }
    }

    fn correlation_stats(&self) -> Option<Arc<CorrelationStats>> {
        Some(self.stats())
    }

    fn held(&self) -> usize {
        self.matcher.delay.len()
    }
}
