//! Enrichment: a unique id for every event and basic W3C trace context, where events of the
//! same entity within a time window share a trace id.
//!
//! The entity of an event is, by priority: its container, its pod (`k8s.pod.uid`), its
//! process, its cgroup, and last the plugin that emitted it. A window opens with the first
//! event of an entity and lasts `window`; the next event after that opens a new trace. Events
//! that carry a trace context from their plugin keep it.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::{Equivalent, HashTable};

use crate::correlate::lru::{BucketHint, Evictor};
use crate::event::{Event, EventId, TraceContext};
use crate::pipeline::stage::Stage;

/// What events are grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityKey {
    /// A container id.
    Container(Arc<str>),
    /// A pod uid.
    Pod(Arc<str>),
    /// A process id.
    Process(u32),
    /// A kernel cgroup id.
    Cgroup(u64),
    /// The emitting plugin, for events about nothing more specific.
    Source(&'static str),
}

/// An id looked up: its text, or an allocation shared with the entity graph. Windows keep
/// the allocation they were opened with, so a lookup with the graph's own allocation
/// compares pointers instead of reading the stored id (a cache miss per event on a large
/// table).
#[derive(Debug, Clone, Copy)]
enum Id<'a> {
    /// Shared with the entity graph.
    Shared(&'a Arc<str>),
    /// Text only.
    Text(&'a str),
}

impl Id<'_> {
    fn as_str(&self) -> &str {
        match self {
            Id::Shared(s) => s,
            Id::Text(s) => s,
        }
    }

    fn is(&self, stored: &Arc<str>) -> bool {
        match self {
            Id::Shared(s) => Arc::ptr_eq(s, stored) || ***s == **stored,
            Id::Text(s) => *s == &**stored,
        }
    }

    fn to_owned_id(self) -> Arc<str> {
        match self {
            Id::Shared(s) => Arc::clone(s),
            Id::Text(s) => Arc::from(s),
        }
    }
}

/// The borrowed form of an [`EntityKey`]: looks a window up without copying the id.
#[derive(Debug, Clone, Copy)]
enum KeyRef<'a> {
    /// A container id.
    Container(Id<'a>),
    /// A pod uid.
    Pod(Id<'a>),
    /// A process id.
    Process(u32),
    /// A kernel cgroup id.
    Cgroup(u64),
    /// The emitting plugin.
    Source(&'static str),
}

impl<'a> KeyRef<'a> {
    fn to_owned_key(self) -> EntityKey {
        match self {
            KeyRef::Container(c) => EntityKey::Container(c.to_owned_id()),
            KeyRef::Pod(p) => EntityKey::Pod(p.to_owned_id()),
            KeyRef::Process(p) => EntityKey::Process(p),
            KeyRef::Cgroup(c) => EntityKey::Cgroup(c),
            KeyRef::Source(s) => EntityKey::Source(s),
        }
    }

    /// This key with its container id or pod uid replaced by `container` / `pod` (the
    /// entity graph's allocations) when they hold the same text.
    fn sharing(self, container: Option<&'a Arc<str>>, pod: Option<&'a Arc<str>>) -> Self {
        match self {
            // An event enriched with the graph's container id holds that very allocation.
            KeyRef::Container(Id::Text(t)) => match container {
                Some(c) if std::ptr::eq(c.as_ptr(), t.as_ptr()) || **c == *t => {
                    KeyRef::Container(Id::Shared(c))
                }
                _ => self,
            },
            KeyRef::Pod(Id::Text(t)) => match pod {
                Some(p) if **p == *t => KeyRef::Pod(Id::Shared(p)),
                _ => self,
            },
            other => other,
        }
    }
}

// One hash for the owned and the borrowed form (required by `Equivalent`).
impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            KeyRef::Container(c) => {
                state.write_u8(0);
                c.as_str().hash(state);
            }
            KeyRef::Pod(p) => {
                state.write_u8(1);
                p.as_str().hash(state);
            }
            KeyRef::Process(p) => {
                state.write_u8(2);
                p.hash(state);
            }
            KeyRef::Cgroup(c) => {
                state.write_u8(3);
                c.hash(state);
            }
            KeyRef::Source(s) => {
                state.write_u8(4);
                s.hash(state);
            }
        }
    }
}

impl EntityKey {
    /// Takes the graph's allocation of the id from an equal `key` that has one, so later
    /// lookups with it compare pointers (the window may have been opened with another
    /// allocation of the same text).
    fn adopt(&mut self, key: KeyRef<'_>) {
        match (self, key) {
            (EntityKey::Container(k), KeyRef::Container(Id::Shared(s)))
            | (EntityKey::Pod(k), KeyRef::Pod(Id::Shared(s)))
                if !Arc::ptr_eq(k, s) =>
            {
                *k = Arc::clone(s);
            }
            _ => {}
        }
    }
}

impl Hash for EntityKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let borrowed = match self {
            EntityKey::Container(c) => KeyRef::Container(Id::Shared(c)),
            EntityKey::Pod(p) => KeyRef::Pod(Id::Shared(p)),
            EntityKey::Process(p) => KeyRef::Process(*p),
            EntityKey::Cgroup(c) => KeyRef::Cgroup(*c),
            EntityKey::Source(s) => KeyRef::Source(s),
        };
        borrowed.hash(state);
    }
}

impl Equivalent<EntityKey> for KeyRef<'_> {
    fn equivalent(&self, key: &EntityKey) -> bool {
        match (self, key) {
            (KeyRef::Container(a), EntityKey::Container(b)) => a.is(b),
            (KeyRef::Pod(a), EntityKey::Pod(b)) => a.is(b),
            (KeyRef::Process(a), EntityKey::Process(b)) => a == b,
            (KeyRef::Cgroup(a), EntityKey::Cgroup(b)) => a == b,
            (KeyRef::Source(a), EntityKey::Source(b)) => a == b,
            _ => false,
        }
    }
}

impl EntityKey {
    /// The entity an event is about.
    pub fn of(event: &Event) -> Self {
        KeyRef::of(event).to_owned_key()
    }
}

impl<'a> KeyRef<'a> {
    /// The entity an event is about, borrowed.
    fn of(event: &'a Event) -> Self {
        if let Some(id) = &event.container_id {
            return KeyRef::Container(Id::Text(id));
        }
        if let Some(uid) = event.attribute("k8s.pod.uid").and_then(|v| v.as_str()) {
            return KeyRef::Pod(Id::Text(uid));
        }
        if let Some(pid) = event.pid {
            return KeyRef::Process(pid);
        }
        if let Some(cgroup) = event.cgroup_id {
            return KeyRef::Cgroup(cgroup);
        }
        KeyRef::Source(event.source)
    }
}

struct Window {
    trace_id: [u8; 16],
    opened_ns: u64,
}

/// The enrichment stage.
pub struct Enricher {
    nonce: u64,
    seq: u64,
    window_ns: u64,
    max_entities: usize,
    windows: HashTable<(EntityKey, Window)>,
    hasher: RandomState,
    /// Bucket where the incremental expiry ([`Enricher::expire_some`]) continues.
    cursor: usize,
    /// Picks the windows that go at `max_entities`.
    evictor: Evictor,
    rng: fastrand::Rng,
}

impl Enricher {
    /// An enricher with a random id nonce; traces rotate every `window`; at most
    /// `max_entities` windows are kept (beyond that, a new one makes a few old ones go).
    pub fn new(window: std::time::Duration, max_entities: usize) -> Self {
        Self::with_rng(window, max_entities, fastrand::Rng::new())
    }

    /// The same with a seeded generator (deterministic tests).
    pub fn with_rng(
        window: std::time::Duration,
        max_entities: usize,
        mut rng: fastrand::Rng,
    ) -> Self {
        let nonce = rng.u64(..);
        Enricher {
            nonce,
            seq: 0,
            window_ns: window.as_nanos() as u64,
            max_entities: max_entities.max(1),
            windows: HashTable::new(),
            hasher: RandomState::default(),
            cursor: 0,
            evictor: Evictor::default(),
            rng,
        }
    }

    /// The next event id (for events a later stage creates).
    pub fn next_id(&mut self) -> EventId {
        self.seq += 1;
        EventId {
            nonce: self.nonce,
            seq: self.seq,
        }
    }

    /// Entities with an open window.
    pub fn entities(&self) -> usize {
        self.windows.len()
    }

    /// Gives `event` its id, and its basic trace context when it brought none. `container`
    /// and `pod`: the entity graph's allocations of the event's container id and pod uid,
    /// when known (the window lookup then compares pointers instead of reading the stored id).
    /// `hint`: where the window of the event's process was found last; read first, and set
    /// to where the window is now.
    pub fn stamp(
        &mut self,
        event: &mut Event,
        container: Option<&Arc<str>>,
        pod: Option<&Arc<str>>,
        hint: Option<&BucketHint>,
    ) {
        self.seq += 1;
        event.id = EventId {
            nonce: self.nonce,
            seq: self.seq,
        };
        if event.trace.is_none() {
            let key = KeyRef::of(event).sharing(container, pod);
            let trace_id = self.trace_id_for(key, event.timestamp_ns, hint);
            let mut span_id = self.rng.u64(..);
            if span_id == 0 {
                span_id = 1;
            }
            event.trace = Some(TraceContext {
                trace_id,
                span_id: span_id.to_be_bytes(),
                parent_span_id: [0; 8],
                flags: 1,
            });
        }
    }

    /// Asks the CPU to fetch the window in the bucket `hint` names, without waiting for it
    /// (see `EntityGraph::warm`).
    pub fn warm_window(&self, hint: &BucketHint) {
        if let Some(entry) = hint
            .get()
            .and_then(|bucket| self.windows.get_bucket(bucket))
        {
            crate::prefetch::prefetch(entry, std::mem::size_of_val(entry));
        }
    }

    fn trace_id_for(&mut self, key: KeyRef<'_>, at_ns: u64, hint: Option<&BucketHint>) -> [u8; 16] {
        let hinted = hint.and_then(BucketHint::get).filter(|b| {
            self.windows
                .get_bucket(*b)
                .is_some_and(|(k, _)| key.equivalent(k))
        });
        // Hashed only when the hint missed; a new window is inserted under the same hash.
        let mut hash = None;
        let found = hinted.or_else(|| {
            let h = *hash.insert(self.hasher.hash_one(key));
            self.windows
                .find_bucket_index(h, |(k, _)| key.equivalent(k))
        });
        if let Some(bucket) = found {
            if let Some(h) = hint {
                h.set(bucket);
            }
            let (k, w) = self
                .windows
                .get_bucket_mut(bucket)
                .expect("bucket index from a lookup");
            k.adopt(key);
            if at_ns.saturating_sub(w.opened_ns) < self.window_ns {
                return w.trace_id;
            }
            w.trace_id = random_trace_id(&mut self.rng);
            w.opened_ns = at_ns;
            return w.trace_id;
        }
        // At the limit, the least recently opened of the windows sampled go (see
        // `lru::Evictor`): no pass over every window.
        self.evictor
            .make_room(&mut self.windows, self.max_entities, |(_, w)| w.opened_ns);
        let trace_id = random_trace_id(&mut self.rng);
        let hasher = &self.hasher;
        let entry = self.windows.insert_unique(
            hash.unwrap_or_else(|| hasher.hash_one(key)),
            (
                key.to_owned_key(),
                Window {
                    trace_id,
                    opened_ns: at_ns,
                },
            ),
            |(k, _)| hasher.hash_one(k),
        );
        if let Some(h) = hint {
            h.set(entry.bucket_index());
        }
        trace_id
    }

    /// Drops closed windows among at most `budget` buckets, continuing where the last call
    /// stopped and wrapping around (at most one lap per call): the correlation stage
    /// spreads this over its batches instead of one pass over every window per tick.
    pub fn expire_some(&mut self, now_ns: u64, budget: usize) {
        let buckets = self.windows.num_buckets();
        let start = self.cursor.min(buckets);
        let budget = budget.min(buckets);
        let window = self.window_ns;
        let mut sweep = |from: usize, to: usize| {
            for index in from..to {
                if let Ok(entry) = self.windows.get_bucket_entry(index) {
                    if now_ns.saturating_sub(entry.get().1.opened_ns) >= window {
                        entry.remove();
                    }
                }
            }
        };
        let end = start.saturating_add(budget).min(buckets);
        sweep(start, end);
        let wrapped = budget - (end - start);
        sweep(0, wrapped.min(start));
        self.cursor = if end < buckets {
            end
        } else {
            wrapped.min(start)
        };
    }
}

fn random_trace_id(rng: &mut fastrand::Rng) -> [u8; 16] {
    loop {
        let id = rng.u128(..);
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

impl Stage for Enricher {
    fn name(&self) -> &'static str {
        "enrich"
    }

    fn process(&mut self, batch: &mut Vec<Event>, _now_ns: u64) {
        for event in batch.iter_mut() {
            self.stamp(event, None, None, None);
        }
    }

    fn tick(&mut self, now_ns: u64) {
        let window = self.window_ns;
        self.windows
            .retain(|(_, w)| now_ns.saturating_sub(w.opened_ns) < window);
    }

    fn open_groups(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Severity;
    use std::time::Duration;

    const SEC: u64 = 1_000_000_000;

    fn event(pid: Option<u32>, at: u64) -> Event {
        let mut e = Event::new("t", "test", Severity::Info, at);
        e.pid = pid;
        e
    }

    fn enrich(e: &mut Enricher, events: Vec<Event>) -> Vec<Event> {
        let mut batch = events;
        e.process(&mut batch, 0);
        batch
    }

    #[test]
    fn ids_are_unique_and_increasing() {
        let mut e = Enricher::with_rng(Duration::from_secs(30), 100, fastrand::Rng::with_seed(1));
        let out = enrich(&mut e, vec![event(None, 1), event(None, 2), event(None, 3)]);
        let seqs: Vec<u64> = out.iter().map(|ev| ev.id.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert!(out.iter().all(|ev| ev.id.nonce == out[0].id.nonce));
    }

    #[test]
    fn same_entity_within_the_window_shares_a_trace() {
        let mut e = Enricher::with_rng(Duration::from_secs(30), 100, fastrand::Rng::with_seed(2));
        let out = enrich(
            &mut e,
            vec![
                event(Some(7), SEC),
                event(Some(7), 20 * SEC),
                event(Some(8), 2 * SEC),
            ],
        );
        let t = |i: usize| out[i].trace.unwrap();
        assert_eq!(t(0).trace_id, t(1).trace_id);
        assert_ne!(
            t(0).trace_id,
            t(2).trace_id,
            "another process is another entity"
        );
        assert_ne!(t(0).span_id, t(1).span_id, "each event is its own span");
        let later = enrich(&mut e, vec![event(Some(7), 32 * SEC)]);
        assert_ne!(
            later[0].trace.unwrap().trace_id,
            t(0).trace_id,
            "the window closed after 30 s"
        );
    }

    #[test]
    fn container_outranks_process() {
        let mut a = event(Some(1), SEC);
        a.container_id = Some("c1".into());
        let mut b = event(Some(2), SEC);
        b.container_id = Some("c1".into());
        assert_eq!(EntityKey::of(&a), EntityKey::of(&b));
        assert_eq!(EntityKey::of(&event(None, 0)), EntityKey::Source("test"));
    }

    #[test]
    fn plugin_trace_context_is_kept() {
        let mut e = Enricher::with_rng(Duration::from_secs(30), 100, fastrand::Rng::with_seed(3));
        let mut given = event(Some(1), SEC);
        let ctx = TraceContext {
            trace_id: [9; 16],
            span_id: [8; 8],
            parent_span_id: [7; 8],
            flags: 1,
        };
        given.trace = Some(ctx);
        let out = enrich(&mut e, vec![given]);
        assert_eq!(out[0].trace, Some(ctx));
    }

    #[test]
    fn memory_stays_bounded_under_unique_entities() {
        let mut e = Enricher::with_rng(Duration::from_secs(30), 1000, fastrand::Rng::with_seed(4));
        for pid in 0..10_000u32 {
            enrich(&mut e, vec![event(Some(pid), SEC + u64::from(pid))]);
            assert!(e.entities() <= 1000);
        }
        e.tick(100 * SEC);
        assert_eq!(e.entities(), 0, "expired windows are swept");
    }

    #[test]
    fn incremental_expiry_sweeps_closed_windows_in_small_steps() {
        let mut e =
            Enricher::with_rng(Duration::from_secs(30), 10_000, fastrand::Rng::with_seed(5));
        for pid in 0..1000u32 {
            // Even pids open at 1 s, odd ones at 90 s.
            let at = if pid % 2 == 0 { SEC } else { 90 * SEC };
            enrich(&mut e, vec![event(Some(pid), at)]);
        }
        let mut calls = 0;
        while e.entities() > 500 {
            e.expire_some(100 * SEC, 64);
            calls += 1;
            assert!(calls < 1000, "one lap is enough");
        }
        assert!(calls > 1, "spread over several calls");
        for _ in 0..100 {
            e.expire_some(100 * SEC, 64);
        }
        assert_eq!(e.entities(), 500, "windows still open stay");
    }

    #[test]
    fn a_window_is_found_by_text_and_then_keeps_the_graphs_allocation() {
        let mut e = Enricher::with_rng(Duration::from_secs(30), 100, fastrand::Rng::with_seed(7));
        let in_container = |pid: u32, at: u64| {
            let mut ev = event(Some(pid), at);
            ev.container_id = Some("c1".into());
            ev
        };
        // Opened by an event whose container id the graph did not know yet.
        let mut first = in_container(1, SEC);
        e.stamp(&mut first, None, None, None);
        let graphs: Arc<str> = Arc::from("c1");
        let mut second = in_container(2, 2 * SEC);
        e.stamp(&mut second, Some(&graphs), None, None);
        assert_eq!(
            first.trace.unwrap().trace_id,
            second.trace.unwrap().trace_id,
            "same container, same window"
        );
        let stored = |e: &Enricher| {
            e.windows
                .iter()
                .any(|(k, _)| matches!(k, EntityKey::Container(c) if Arc::ptr_eq(c, &graphs)))
        };
        assert!(stored(&e), "the window now holds the graph's allocation");
        // Another container's allocation with other text is another entity.
        let other: Arc<str> = Arc::from("c2");
        let mut third = event(Some(3), 3 * SEC);
        third.container_id = Some("c2".into());
        e.stamp(&mut third, Some(&other), None, None);
        assert_ne!(third.trace.unwrap().trace_id, first.trace.unwrap().trace_id);
        // An allocation whose text differs from the event's is not used as its key.
        let mut fourth = in_container(4, 4 * SEC);
        e.stamp(&mut fourth, Some(&other), None, None);
        assert_eq!(
            fourth.trace.unwrap().trace_id,
            first.trace.unwrap().trace_id
        );
    }

    #[test]
    fn a_window_hint_finds_the_window_and_follows_it_when_it_moves() {
        let mut e =
            Enricher::with_rng(Duration::from_secs(30), 10_000, fastrand::Rng::with_seed(8));
        let hint = BucketHint::default();
        let mut first = event(Some(1), SEC);
        e.stamp(&mut first, None, None, Some(&hint));
        let bucket = hint.get().expect("set where the window was opened");
        let mut second = event(Some(1), 2 * SEC);
        e.stamp(&mut second, None, None, Some(&hint));
        assert_eq!(hint.get(), Some(bucket));
        assert_eq!(
            first.trace.unwrap().trace_id,
            second.trace.unwrap().trace_id
        );
        // A hint naming another entity's window is not taken for this one.
        let mut other = event(Some(2), 2 * SEC);
        e.stamp(&mut other, None, None, Some(&hint));
        assert_ne!(other.trace.unwrap().trace_id, first.trace.unwrap().trace_id);
        assert_ne!(hint.get(), Some(bucket), "now names pid 2's window");
        // Growth moves windows; the hint is refreshed on the next lookup.
        for pid in 100..5000u32 {
            enrich(&mut e, vec![event(Some(pid), 3 * SEC)]);
        }
        let mut third = event(Some(1), 4 * SEC);
        e.stamp(&mut third, None, None, Some(&hint));
        assert_eq!(
            third.trace.unwrap().trace_id,
            first.trace.unwrap().trace_id,
            "same process, same window, wherever the hint pointed"
        );
        let b = hint.get().expect("set");
        let key = KeyRef::Process(1);
        assert!(e
            .windows
            .get_bucket(b)
            .is_some_and(|(k, _)| key.equivalent(k)));
    }

    #[test]
    fn one_call_with_budget_for_every_bucket_sweeps_them_all_from_any_cursor() {
        let mut e =
            Enricher::with_rng(Duration::from_secs(30), 10_000, fastrand::Rng::with_seed(6));
        for pid in 0..100u32 {
            enrich(&mut e, vec![event(Some(pid), SEC)]);
        }
        // Leave the cursor in the middle of the table, expiring nothing yet.
        e.expire_some(2 * SEC, 7);
        assert!(e.cursor > 0);
        assert_eq!(e.entities(), 100);
        e.expire_some(100 * SEC, usize::MAX);
        assert_eq!(
            e.entities(),
            0,
            "the sweep wrapped around to the buckets before the cursor"
        );
    }
}
