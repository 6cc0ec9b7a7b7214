//! The matcher: tests each event against the rule steps that name its type, keeps one open
//! group per (rule, entity key) with per-step counts inside the rule's window, confirms a
//! group once enough steps matched, collects prediction samples, and closes groups when they
//! are complete, idle for a window, or evicted by the open-group limit (counted).
//!
//! No clock is read here: every decision uses event timestamps or the `now_ns` given to
//! [`Engine::tick`], so recorded streams replay deterministically.

use std::collections::HashMap;

use compact_str::CompactString;
use foldhash::fast::RandomState;
use hashlink::LinkedHashMap;

use crate::correlate::entity::Resolved;
use crate::correlate::predict::{self, CrashPrediction, LimitPrediction};
use crate::correlate::rules::compiled::{number, CompiledRule, GroupBy, RuleSet};
use crate::correlate::rules::model::PredictionKind;
use crate::correlate::vocab::attr;
use crate::event::{Event, EventId, Value};

/// One member event of a group, as remembered for the group's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Event id.
    pub event_id: EventId,
    /// Step index.
    pub step: usize,
    /// The trace id the event was delivered with: the group's for members tagged by it,
    /// the event's own (or another group's) otherwise.
    pub trace_id: [u8; 16],
    /// Joined before the group was confirmed: delivered untagged, in its own trace.
    pub early: bool,
    /// Event time.
    pub ts: u64,
    /// End time (spans: start + duration; others: `ts`).
    pub end_ns: u64,
    /// The event's own span id.
    pub span_id: [u8; 8],
    /// Event type.
    pub event_type: CompactString,
    /// Workload key of the event.
    pub entity: Option<CompactString>,
    /// Namespace.
    pub namespace: Option<CompactString>,
    /// Names that may mark the entity system-critical (unit, pod, executable).
    pub names: Vec<CompactString>,
    /// Peer port, when the event is about a connection.
    pub peer_port: Option<i64>,
    /// Peer address or DNS name.
    pub peer: Option<CompactString>,
}

/// A prediction a group made.
#[derive(Debug, Clone, PartialEq)]
pub enum PredictionOut {
    /// Usage reaches its limit.
    Limit(LimitPrediction),
    /// The next crash of a crash loop.
    Crash(CrashPrediction),
}

impl PredictionOut {
    /// Seconds from the prediction until the predicted event.
    pub fn eta_s(&self) -> f64 {
        match self {
            PredictionOut::Limit(p) => p.eta_s,
            PredictionOut::Crash(p) => p.next_interval_s,
        }
    }

    /// When it was computed (ns).
    pub fn at_ns(&self) -> u64 {
        match self {
            PredictionOut::Limit(p) => p.at_ns,
            PredictionOut::Crash(p) => p.at_ns,
        }
    }

    /// The computation with its numbers.
    pub fn formula(&self) -> String {
        match self {
            PredictionOut::Limit(p) => p.formula(),
            PredictionOut::Crash(p) => p.formula(),
        }
    }

    /// `time_to_limit` or `crash_loop`.
    pub fn kind(&self) -> &'static str {
        match self {
            PredictionOut::Limit(_) => "time_to_limit",
            PredictionOut::Crash(_) => "crash_loop",
        }
    }

    /// The rule's text with `{entity}`, `{eta}`, `{value}`, `{limit}`, `{rate}` filled in.
    pub fn render(&self, template: &str, entity: &str) -> String {
        let (value, limit, rate) = match self {
            PredictionOut::Limit(p) => (
                predict::human_bytes(p.value),
                predict::human_bytes(p.limit),
                predict::human_bytes(p.fit.slope_per_s),
            ),
            PredictionOut::Crash(p) => (
                p.crashes.to_string(),
                String::new(),
                predict::human_secs(p.mean_interval_s),
            ),
        };
        template
            .replace("{entity}", entity)
            .replace("{eta}", &predict::human_secs(self.eta_s()))
            .replace("{value}", &value)
            .replace("{limit}", &limit)
            .replace("{rate}", &rate)
    }
}

/// A group being collected.
#[derive(Debug, Clone)]
pub struct OpenGroup {
    /// Rule index in the rule set.
    pub rule: usize,
    /// Entity key the members share.
    pub key: CompactString,
    /// Trace id of the group's trace (its hex is the group id, [`OpenGroup::id`]).
    pub trace_id: [u8; 16],
    /// First member's time.
    pub first_ns: u64,
    /// Last member's time.
    pub last_ns: u64,
    /// Matching events per step.
    pub counts: Vec<u32>,
    /// Members (at most the configured limit; the rest counted in `dropped_members`).
    pub members: Vec<Member>,
    /// Members not kept because of the limit.
    pub dropped_members: u64,
    /// When the group was confirmed, if it was.
    pub confirmed_ns: Option<u64>,
    /// When every step had matched, if they have.
    pub complete_ns: Option<u64>,
    /// Prediction samples `(time, value)`, of one process (`samples_of`).
    pub samples: Vec<(u64, f64)>,
    /// The process the samples are of (usage of different processes is not one series).
    pub samples_of: Option<u32>,
    /// The limit for `time_to_limit`.
    pub limit: Option<f64>,
    /// The latest prediction within the horizon.
    pub prediction: Option<PredictionOut>,
    /// Id of the prediction event emitted for it.
    pub prediction_event: Option<EventId>,
}

impl OpenGroup {
    /// Group id: the hex of its trace id (written out only for the groups that need it,
    /// not for every group opened).
    pub fn id(&self) -> CompactString {
        group_id(&self.trace_id)
    }

    /// Whether step `s` reached its count.
    pub fn step_done(&self, rule: &CompiledRule, s: usize) -> bool {
        self.counts[s] >= rule.steps[s].min_count
    }

    fn satisfied(&self, rule: &CompiledRule) -> bool {
        let done = (0..rule.steps.len())
            .filter(|&s| self.step_done(rule, s))
            .count();
        done >= rule.min_steps
            && (rule.confirm.is_empty() || rule.confirm.iter().any(|&s| self.step_done(rule, s)))
    }

    fn complete(&self, rule: &CompiledRule) -> bool {
        (0..rule.steps.len()).all(|s| self.step_done(rule, s))
    }

    /// The member of a matched causal predecessor step of `step` closest before `ts`.
    pub fn causal_parent(&self, rule: &CompiledRule, step: usize, ts: u64) -> Option<&Member> {
        rule.causes
            .iter()
            .filter(|(_, b)| *b == step)
            .filter_map(|(a, _)| {
                let of_a = self.members.iter().filter(|m| m.step == *a);
                of_a.clone()
                    .filter(|m| m.ts <= ts)
                    .max_by_key(|m| m.ts)
                    .or_else(|| of_a.min_by_key(|m| m.ts))
            })
            .max_by_key(|m| m.ts)
    }
}

/// Why a group closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Every step matched.
    Complete,
    /// No member for a window.
    Idle,
    /// Evicted by the open-group limit.
    Evicted,
    /// The rules were reloaded.
    Reload,
}

/// What the engine hands back to the stage.
#[derive(Debug, Clone)]
pub enum Output {
    /// A new prediction of an open group (its index in the open table is not stable: the
    /// group is cloned).
    Prediction(Box<OpenGroup>),
    /// A closed group (confirmed ones only).
    Closed(Box<OpenGroup>, CloseReason),
}

/// Counters of the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineCounts {
    /// Events that matched a step.
    pub rule_matches: u64,
    /// Groups opened (candidates).
    pub opened: u64,
    /// Groups confirmed.
    pub confirmed: u64,
    /// Confirmed groups closed (delivered).
    pub closed: u64,
    /// Candidates that closed without confirmation.
    pub discarded: u64,
    /// Groups evicted by the open-group limit.
    pub evicted: u64,
    /// Members not kept because a group was full.
    pub dropped_members: u64,
    /// Matching events without the entity key their rule groups by.
    pub unkeyed: u64,
}

/// Limits of the engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineLimits {
    /// Most open groups (candidates included).
    pub max_open_groups: usize,
    /// Most members kept per group.
    pub max_members: usize,
    /// Most prediction samples kept per group (the newest).
    pub max_samples: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            max_open_groups: 10_000,
            max_members: 64,
            max_samples: 64,
        }
    }
}

/// An open group's key: rule index and entity key.
type GroupKey = (u32, CompactString);

/// The matcher and its open groups.
pub struct Engine {
    rules: RuleSet,
    /// Open groups, least recently active first: a member event moves its group to the
    /// back, so eviction at the open-group limit takes the front. Every step is O(1), with
    /// no pass over the groups and no side queue to compact. Sized for twice the limit up
    /// front (see `table_capacity`): never rehashed.
    groups: LinkedHashMap<GroupKey, OpenGroup, RandomState>,
    /// Groups that completed (they close after their linger wherever they are in
    /// `groups`); entries of groups closed since are dropped at the next tick.
    completed: Vec<GroupKey>,
    /// The shortest window of the rules: a group active within it is not idle under any.
    min_window_ns: u64,
    limits: EngineLimits,
    rng: fastrand::Rng,
    scratch: Vec<(usize, usize)>,
    /// Scratch: the trace ids of the confirmed groups one event joined.
    group_ids: Vec<[u8; 16]>,
    /// Counters.
    pub counts: EngineCounts,
    /// Per-rule matches (same order as the rules).
    pub matches_per_rule: Vec<u64>,
    /// Limits read from cgroups by the resolver (`cgroup path` -> `memory.max`).
    pub cgroup_limits: HashMap<CompactString, u64, RandomState>,
}

/// A non-empty text attribute of `e`, copied.
fn text_attr(e: &Event, key: &str) -> Option<CompactString> {
    e.attribute(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(CompactString::new)
}

/// The id of the group with trace id `trace_id`: its hex.
fn group_id(trace_id: &[u8; 16]) -> CompactString {
    CompactString::new(crate::event::hex(trace_id))
}

/// The key an event has under `group_by`.
pub fn group_key(by: &GroupBy, e: &Event, r: &Resolved<'_>) -> Option<CompactString> {
    let text = |k: &str| text_attr(e, k);
    match by {
        GroupBy::Workload => r.workload_key(),
        GroupBy::Unit => r.unit.as_deref().map(CompactString::new),
        GroupBy::Peer => text(attr::PEER_ADDR)
            .or_else(|| text(attr::DNS_NAME))
            .or_else(|| text(attr::SERVER_ADDR)),
        // One agent watches one node: every event is on it.
        GroupBy::Node => Some(CompactString::const_new("node")),
        GroupBy::Attr(k) => match e.attribute(k)? {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(compact_str::format_compact!("{i}")),
            Value::UInt(u) => Some(compact_str::format_compact!("{u}")),
            Value::Bool(b) => Some(compact_str::format_compact!("{b}")),
            _ => None,
        },
    }
}

impl Engine {
    /// An engine over `rules`.
    pub fn new(rules: RuleSet, limits: EngineLimits, rng: fastrand::Rng) -> Self {
        let shortest_window = min_window_ns(&rules);
        let n = rules.len();
        Engine {
            rules,
            groups: LinkedHashMap::with_capacity_and_hasher(
                table_capacity(limits.max_open_groups),
                RandomState::default(),
            ),
            completed: Vec::new(),
            min_window_ns: shortest_window,
            limits,
            rng,
            scratch: Vec::new(),
            group_ids: Vec::new(),
            counts: EngineCounts::default(),
            matches_per_rule: vec![0; n],
            cgroup_limits: HashMap::default(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Open groups (candidates included).
    pub fn open_groups(&self) -> usize {
        self.groups.len()
    }

    /// Replaces the rules; every open group closes (confirmed ones are delivered).
    pub fn replace_rules(&mut self, rules: RuleSet, out: &mut Vec<Output>) {
        let keys: Vec<_> = self.groups.keys().cloned().collect();
        for k in keys {
            self.close(&k, CloseReason::Reload, out);
        }
        self.matches_per_rule = vec![0; rules.len()];
        self.min_window_ns = min_window_ns(&rules);
        self.rules = rules;
    }

    /// Matches one event (ids and span ids already assigned). When the event joins a
    /// confirmed group it is tagged: `tapio.group.id`, and unless `keep_trace`, its trace is
    /// moved into the group's trace with its causal predecessor's span as parent.
    pub fn on_event(
        &mut self,
        e: &mut Event,
        r: &Resolved<'_>,
        keep_trace: bool,
        out: &mut Vec<Output>,
    ) {
        let mut candidates = std::mem::take(&mut self.scratch);
        self.rules.candidates(&e.event_type, &mut candidates);
        self.on_event_matching(e, r, keep_trace, &candidates, out);
        self.scratch = candidates;
    }

    /// [`Engine::on_event`] with the event's `candidates`, found by the caller with this
    /// engine's [`RuleSet::candidates`] (the stage looks the event type up once per event).
    pub fn on_event_matching(
        &mut self,
        e: &mut Event,
        r: &Resolved<'_>,
        keep_trace: bool,
        candidates: &[(usize, usize)],
        out: &mut Vec<Output>,
    ) {
        let mut tagged = false;
        let mut group_ids = std::mem::take(&mut self.group_ids);
        group_ids.clear();
        for &(ri, si) in candidates {
            let rule = &self.rules.rules[ri];
            if !rule.steps[si].accepts(e) {
                continue;
            }
            let Some(key) = group_key(&rule.group_by, e, r) else {
                self.counts.unkeyed += 1;
                continue;
            };
            self.counts.rule_matches += 1;
            self.matches_per_rule[ri] += 1;
            let gk = (ri as u32, key);
            // A group idle for a window, or complete and past its linger, is over: close it
            // before this event opens a new one.
            if let Some(g) = self.groups.get(&gk) {
                if let Some(why) = due(g, rule, e.timestamp_ns) {
                    self.close(&gk, why, out);
                }
            }
            if self.groups.len() >= self.limits.max_open_groups && !self.groups.contains_key(&gk) {
                self.evict_least_recent(out);
            }
            let rule = &self.rules.rules[ri];
            let limits = self.limits;
            // One hash of the key: found (and made the most recently active), or inserted
            // in place at the back.
            let g = match self.groups.entry(gk) {
                hashlink::linked_hash_map::Entry::Occupied(mut o) => {
                    o.to_back();
                    o.into_mut()
                }
                hashlink::linked_hash_map::Entry::Vacant(v) => {
                    let trace_id = loop {
                        let t = self.rng.u128(..);
                        if t != 0 {
                            break t.to_be_bytes();
                        }
                    };
                    self.counts.opened += 1;
                    let key = v.key().1.clone();
                    v.insert(OpenGroup {
                        rule: ri,
                        key,
                        trace_id,
                        first_ns: e.timestamp_ns,
                        last_ns: e.timestamp_ns,
                        counts: vec![0; rule.steps.len()],
                        members: Vec::new(),
                        dropped_members: 0,
                        confirmed_ns: None,
                        complete_ns: None,
                        samples: Vec::new(),
                        samples_of: None,
                        limit: None,
                        prediction: None,
                        prediction_event: None,
                    })
                }
            };
            g.counts[si] += 1;
            g.first_ns = g.first_ns.min(e.timestamp_ns);
            g.last_ns = g.last_ns.max(e.timestamp_ns);
            if g.confirmed_ns.is_none() && g.satisfied(rule) {
                g.confirmed_ns = Some(e.timestamp_ns);
                self.counts.confirmed += 1;
            }
            let joins_confirmed = g.confirmed_ns.is_some();
            let span_id = e.trace.map(|t| t.span_id).unwrap_or_default();
            // The trace the event is delivered with: this group's when it moves the event
            // (the first confirmed group, no application trace), else the one it has.
            let delivered_trace = if joins_confirmed && !tagged && !keep_trace {
                g.trace_id
            } else {
                e.trace.map(|t| t.trace_id).unwrap_or_default()
            };
            if g.members.len() < limits.max_members {
                g.members.push(Member {
                    event_id: e.id,
                    step: si,
                    trace_id: delivered_trace,
                    early: !joins_confirmed,
                    ts: e.timestamp_ns,
                    end_ns: e.timestamp_ns.saturating_add(
                        e.attribute(attr::SPAN_DURATION)
                            .and_then(Value::as_i64)
                            .map_or(0, |d| d.max(0) as u64),
                    ),
                    span_id,
                    event_type: e.event_type.clone(),
                    entity: r.workload_key(),
                    // Names as the event carries them (its own, else the enrichment's).
                    namespace: text_attr(e, attr::NAMESPACE),
                    names: r
                        .unit
                        .as_deref()
                        .map(CompactString::new)
                        .into_iter()
                        .chain(
                            [
                                attr::POD_NAME,
                                attr::PROCESS_EXE,
                                attr::DEPLOYMENT,
                                attr::STATEFULSET,
                                attr::DAEMONSET,
                                attr::REPLICASET,
                            ]
                            .into_iter()
                            .filter_map(|k| text_attr(e, k)),
                        )
                        .collect(),
                    peer_port: e.attribute(attr::PEER_PORT).and_then(Value::as_i64),
                    peer: e
                        .attribute(attr::PEER_ADDR)
                        .or_else(|| e.attribute(attr::DNS_NAME))
                        .and_then(Value::as_str)
                        .map(CompactString::new),
                });
            } else {
                g.dropped_members += 1;
                self.counts.dropped_members += 1;
            }
            // Prediction samples.
            if let Some((spec, sample_steps)) = &rule.prediction {
                if sample_steps.contains(&si) {
                    let fresh =
                        collect_sample(g, spec, e, &self.cgroup_limits, r, limits.max_samples);
                    if fresh {
                        let p = match spec.kind {
                            PredictionKind::TimeToLimit => g
                                .limit
                                .and_then(|l| predict::time_to_limit(&g.samples, l))
                                .filter(|_| g.samples.len() >= spec.min_samples)
                                .map(PredictionOut::Limit),
                            PredictionKind::CrashLoop => {
                                let times: Vec<u64> = g.samples.iter().map(|s| s.0).collect();
                                predict::crash_loop(&times, spec.min_samples)
                                    .map(PredictionOut::Crash)
                            }
                        };
                        if let Some(p) = p {
                            if p.eta_s() <= spec.horizon.as_secs_f64() {
                                let first = g.prediction.is_none();
                                g.prediction = Some(p);
                                if first {
                                    out.push(Output::Prediction(Box::new(g.clone())));
                                }
                            }
                        }
                    }
                }
            }
            if joins_confirmed {
                if !group_ids.contains(&g.trace_id) {
                    group_ids.push(g.trace_id);
                }
                if !tagged {
                    tagged = true;
                    tag(e, g, rule, si, keep_trace);
                }
            }
            if g.complete_ns.is_none() && joins_confirmed && g.complete(rule) {
                g.complete_ns = Some(e.timestamp_ns);
                self.completed.push((ri as u32, g.key.clone()));
            }
        }
        if !group_ids.is_empty() && e.attribute(attr::GROUPS).is_none() {
            // Every group the event belongs to (the first one also gave it its trace).
            let mut list = CompactString::with_capacity(group_ids.len() * 35 + 2);
            list.push('[');
            for (i, id) in group_ids.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                list.push('"');
                list.push_str(&group_id(id));
                list.push('"');
            }
            list.push(']');
            e.attributes.push(crate::event::Attribute {
                key: CompactString::const_new(attr::GROUPS),
                value: Value::Str(list),
            });
        }
        self.group_ids = group_ids;
    }

    /// Records the id of the prediction event emitted for the open group `(rule, key)`.
    pub fn note_prediction_event(&mut self, rule: usize, key: &CompactString, id: EventId) {
        if let Some(g) = self.groups.get_mut(&(rule as u32, key.clone())) {
            g.prediction_event = Some(id);
        }
    }

    /// Closes groups idle for their window, and complete groups past their linger, at
    /// `now_ns`. Groups are in order of activity, so the idle ones are found from the front
    /// up to the first group active within the shortest window: a tick costs the groups it
    /// may close, not a pass over every open group (10 k groups took 0.5-1.4 ms). A group
    /// whose events arrived out of time order can sit behind a more recent one and close a
    /// tick or a few later than its window.
    pub fn tick(&mut self, now_ns: u64, out: &mut Vec<Output>) {
        let rules = &self.rules.rules;
        let mut closing: Vec<(GroupKey, CloseReason)> = Vec::new();
        for (k, g) in self.groups.iter() {
            if now_ns.saturating_sub(g.last_ns) <= self.min_window_ns {
                break;
            }
            if let Some(why) = due(g, &rules[g.rule], now_ns) {
                closing.push((k.clone(), why));
            }
        }
        let groups = &self.groups;
        self.completed.retain(|k| {
            let Some(g) = groups.get(k).filter(|g| g.complete_ns.is_some()) else {
                return false;
            };
            match due(g, &rules[g.rule], now_ns) {
                Some(why) => {
                    closing.push((k.clone(), why));
                    false
                }
                None => true,
            }
        });
        for (k, why) in closing {
            self.close(&k, why, out);
        }
    }

    /// Closes every open group (shutdown).
    pub fn close_all(&mut self, out: &mut Vec<Output>) {
        let keys: Vec<_> = self.groups.keys().cloned().collect();
        for k in keys {
            self.close(&k, CloseReason::Idle, out);
        }
    }

    /// Closes the least recently active open group (its members are counted as evicted).
    fn evict_least_recent(&mut self, out: &mut Vec<Output>) {
        if let Some((_, g)) = self.groups.pop_front() {
            self.counts.evicted += 1;
            self.deliver_closed(g, CloseReason::Evicted, out);
        }
    }

    fn close(&mut self, key: &GroupKey, why: CloseReason, out: &mut Vec<Output>) {
        if let Some(g) = self.groups.remove(key) {
            self.deliver_closed(g, why, out);
        }
    }

    /// A closed group: delivered when it was confirmed, else discarded (a candidate).
    fn deliver_closed(&mut self, g: OpenGroup, why: CloseReason, out: &mut Vec<Output>) {
        if g.confirmed_ns.is_some() {
            self.counts.closed += 1;
            out.push(Output::Closed(Box::new(g), why));
        } else {
            self.counts.discarded += 1;
        }
    }
}

/// The capacity the open-group table is made with: twice the limit.
///
/// At the limit every new group evicts one, and a hash table that churns near its load
/// factor fills with deleted markers until it rehashes every key in one go: with 10 000
/// groups keyed by workload text, a 1-2 ms stall of the pipeline every few seconds at 1 M
/// events/s (seen in `perf` as `reserve_rehash` under `Engine::on_event`). Below half load
/// a removal leaves an empty slot instead, so the table neither grows nor rehashes. The
/// cost is the table's own memory: 9 bytes per bucket, about 0.3 MB at the default limit.
fn table_capacity(max_open_groups: usize) -> usize {
    max_open_groups.saturating_add(1).saturating_mul(2)
}

/// The shortest window of `rules` (0 without rules: every group is examined).
fn min_window_ns(rules: &RuleSet) -> u64 {
    rules.rules.iter().map(|r| r.window_ns).min().unwrap_or(0)
}

/// Whether a group is over at `now_ns`, and why.
fn due(g: &OpenGroup, rule: &CompiledRule, now_ns: u64) -> Option<CloseReason> {
    if g.complete_ns
        .is_some_and(|c| now_ns.saturating_sub(c) > rule.linger_ns)
    {
        return Some(CloseReason::Complete);
    }
    (now_ns.saturating_sub(g.last_ns) > rule.window_ns).then_some(CloseReason::Idle)
}

fn collect_sample(
    g: &mut OpenGroup,
    spec: &crate::correlate::rules::model::PredictionSpec,
    e: &Event,
    cgroup_limits: &HashMap<CompactString, u64, RandomState>,
    r: &Resolved<'_>,
    max_samples: usize,
) -> bool {
    let mut before = g.samples.len();
    match spec.kind {
        PredictionKind::CrashLoop => g.samples.push((e.timestamp_ns, 1.0)),
        PredictionKind::TimeToLimit => {
            let num =
                |k: &Option<String>| k.as_deref().and_then(|k| e.attribute(k)).and_then(number);
            if r.pid != g.samples_of {
                // Another process grows now: its own series.
                g.samples.clear();
                g.samples_of = r.pid;
                before = 0;
            }
            if let (Some(from), Some(age)) = (num(&spec.from_value_attr), num(&spec.from_age_attr))
            {
                let at = e.timestamp_ns.saturating_sub(age.max(0.0) as u64);
                if !g.samples.iter().any(|s| s.0 == at) {
                    g.samples.push((at, from));
                }
            }
            if let Some(v) = num(&spec.value_attr) {
                g.samples.push((e.timestamp_ns, v));
            }
            if let Some(l) = num(&spec.limit_attr) {
                g.limit = Some(l);
            } else if spec.limit_from_cgroup && g.limit.is_none() {
                let path = e
                    .attribute(attr::CGROUP_PATH)
                    .and_then(Value::as_str)
                    .map(CompactString::new)
                    .or_else(|| r.cgroup_path.as_deref().map(CompactString::new));
                if let Some(l) = path.and_then(|p| cgroup_limits.get(&p)) {
                    g.limit = Some(*l as f64);
                }
            }
        }
    }
    if g.samples.len() > max_samples {
        g.samples.sort_unstable_by_key(|s| s.0);
        let extra = g.samples.len() - max_samples;
        g.samples.drain(..extra);
    }
    g.samples.len() > before
}

fn tag(e: &mut Event, g: &OpenGroup, rule: &CompiledRule, step: usize, keep_trace: bool) {
    if e.attribute(attr::GROUP_ID).is_none() {
        e.attributes.push(crate::event::Attribute {
            key: CompactString::const_new(attr::GROUP_ID),
            value: Value::Str(g.id()),
        });
    }
    if keep_trace {
        return;
    }
    let parent = g
        .causal_parent(rule, step, e.timestamp_ns)
        .filter(|m| m.event_id != e.id)
        .or_else(|| {
            g.members
                .iter()
                .min_by_key(|m| m.ts)
                .filter(|m| m.event_id != e.id)
        })
        .map(|m| m.span_id)
        .unwrap_or_default();
    if let Some(t) = &mut e.trace {
        t.trace_id = g.trace_id;
        t.parent_span_id = parent;
    }
}

#[cfg(test)]
mod tests;
