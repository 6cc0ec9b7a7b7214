//! A bounded map with a time to live and approximate least-recently-seen eviction: the
//! building block of every entity table, so memory stays bounded under a stream of unique
//! entities.
//!
//! Each entry remembers when it was last touched. When the map is full, an insert drops the
//! least recently touched few of the entries sampled where the last eviction stopped
//! ([`Evictor`]): O(1) per insert with no pass over the table, and no linked list to update
//! on every hit.
//! [`BoundedMap::expire`] drops entries idle longer than the TTL.
//!
//! Sampling replaced dropping the least recently touched half in one pass: amortised O(1)
//! too, but each pass over a 200 000-entry table stalled its batch by about 10 ms (the
//! correlation bench's part 3, a stream of unique entities: batches of 1000 events at p99
//! 11-15 ms, against 3-5 ms now).

use std::borrow::Borrow;
use std::cell::Cell;
use std::hash::{BuildHasher, Hash};

use foldhash::fast::RandomState;
use hashbrown::HashTable;

/// A remembered bucket index of a hash table: where a lookup found its entry last time, so
/// the next lookup of the same key reads that bucket (and checks its key) instead of hashing
/// and probing. Empty until set; a stale hint costs one bucket read.
#[derive(Debug)]
pub struct BucketHint(Cell<u32>);

impl BucketHint {
    const EMPTY: u32 = u32::MAX;

    /// The bucket, when one was remembered.
    pub fn get(&self) -> Option<usize> {
        let b = self.0.get();
        (b != Self::EMPTY).then_some(b as usize)
    }

    /// Remembers `bucket` (indexes beyond `u32` are not remembered).
    pub fn set(&self, bucket: usize) {
        self.0.set(u32::try_from(bucket).unwrap_or(Self::EMPTY));
    }
}

impl Default for BucketHint {
    fn default() -> Self {
        BucketHint(Cell::new(Self::EMPTY))
    }
}

impl Clone for BucketHint {
    fn clone(&self) -> Self {
        BucketHint(Cell::new(self.0.get()))
    }
}

/// Entries an [`Evictor`] compares per entry it removes.
pub const EVICTION_SAMPLES: usize = 8;
/// Tables of at most this many buckets are examined whole by an [`Evictor`].
pub const EVICTION_SCAN_ALL: usize = 64;
/// Most entries an [`Evictor`] removes at once.
const EVICTION_BATCH: usize = 32;

/// How many entries to evict at once from a full table of `capacity`: a small batch (at
/// most [`EVICTION_BATCH`], at most a 64th of the table), so the drops overlap their cache
/// misses while no insert pays for more than a few dozen.
fn eviction_batch(capacity: usize) -> usize {
    (capacity / 64).clamp(1, EVICTION_BATCH)
}

/// Evicts from a full hash table by sampling: the least recently touched `count` of
/// `count x EVICTION_SAMPLES` entries found from where the last eviction stopped.
///
/// Neighbouring buckets hold unrelated keys (their hashes placed them), so a run of them is
/// a random sample, and the hand walking on through the table reads memory in order from
/// one eviction to the next. The evicted entries are, in expectation, among the oldest
/// eighth of the table: an approximate least-recently-touched order, as Redis evicts by
/// sampling. A table of at most [`EVICTION_SCAN_ALL`] buckets is examined whole, so the
/// choice is exact there. No call looks at more than `count x EVICTION_SAMPLES` entries:
/// dropping the older half of a table in one pass (what this replaced) stalled a batch by
/// about 10 ms at 200 000 entries.
#[derive(Debug, Default)]
pub struct Evictor {
    /// Bucket where the next sample starts.
    hand: usize,
    /// Scratch: (last touch, bucket) of the entries sampled.
    sampled: Vec<(u64, usize)>,
}

impl Evictor {
    /// Makes room in a table kept to at most `capacity` entries: when it is full, evicts a
    /// small batch (the least recently touched of those sampled, as the type says) and
    /// returns how many went; otherwise 0.
    pub fn make_room<T>(
        &mut self,
        table: &mut HashTable<T>,
        capacity: usize,
        touched: impl Fn(&T) -> u64,
    ) -> usize {
        if table.len() < capacity {
            return 0;
        }
        self.evict(table, eviction_batch(capacity), touched)
    }

    /// Removes up to `count` entries (at least one from a non-empty table) and returns how
    /// many it removed.
    fn evict<T>(
        &mut self,
        table: &mut HashTable<T>,
        count: usize,
        touched: impl Fn(&T) -> u64,
    ) -> usize {
        let buckets = table.num_buckets();
        if table.is_empty() || buckets == 0 || count == 0 {
            return 0;
        }
        let wanted = if buckets <= EVICTION_SCAN_ALL {
            usize::MAX
        } else {
            count.saturating_mul(EVICTION_SAMPLES)
        };
        self.sampled.clear();
        let mut index = self.hand % buckets;
        for _ in 0..buckets {
            if let Some(entry) = table.get_bucket(index) {
                self.sampled.push((touched(entry), index));
            }
            index = if index + 1 == buckets { 0 } else { index + 1 };
            if self.sampled.len() == wanted {
                break;
            }
        }
        self.hand = index;
        let count = count.min(self.sampled.len());
        if count < self.sampled.len() {
            self.sampled.select_nth_unstable(count - 1);
        }
        // Removing an entry leaves every other bucket where it is.
        for &(_, bucket) in &self.sampled[..count] {
            if let Ok(entry) = table.get_bucket_entry(bucket) {
                drop(entry.remove());
            }
        }
        count
    }
}

struct Slot<K, V> {
    key: K,
    value: V,
    seen_ns: u64,
}

/// A map of at most `capacity` entries, each expiring `ttl_ns` after it was last touched.
pub struct BoundedMap<K, V> {
    table: HashTable<Slot<K, V>>,
    hasher: RandomState,
    capacity: usize,
    ttl_ns: u64,
    evicted: u64,
    /// Bucket where the incremental TTL sweep ([`BoundedMap::expire_some`]) continues.
    cursor: usize,
    /// Picks what goes when the map is full.
    evictor: Evictor,
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    /// An empty map (`capacity` at least 2).
    pub fn new(capacity: usize, ttl_ns: u64) -> Self {
        BoundedMap {
            table: HashTable::new(),
            hasher: RandomState::default(),
            capacity: capacity.max(2),
            ttl_ns,
            evicted: 0,
            cursor: 0,
            evictor: Evictor::default(),
        }
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Entries dropped by the capacity limit or the TTL since creation.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn find<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&Slot<K, V>>
    where
        K: Borrow<Q>,
    {
        if self.table.is_empty() {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |s| s.key.borrow() == key)
    }

    /// The bucket holding `key` (hashed and probed).
    fn bucket_of<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
    {
        if self.table.is_empty() {
            return None;
        }
        self.find_index(self.hasher.hash_one(key), key)
    }

    fn find_index<Q: Hash + Eq + ?Sized>(&self, hash: u64, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
    {
        self.table
            .find_bucket_index(hash, |s| s.key.borrow() == key)
    }

    /// The value of `key`, without touching it.
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).map(|s| &s.value)
    }

    /// The value of `key` and the bucket it is in, without touching it. The bucket is a
    /// hint for [`BoundedMap::get_in_bucket`]: later lookups of the same key skip hashing
    /// and probing while the entry stays in place.
    pub fn get_with_bucket<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<(usize, &V)>
    where
        K: Borrow<Q>,
    {
        let index = self.bucket_of(key)?;
        self.table.get_bucket(index).map(|s| (index, &s.value))
    }

    /// The value in bucket `bucket` (a hint from [`BoundedMap::get_with_bucket`]) when that
    /// bucket holds an entry whose key `is_key` accepts, without touching it. `None` when the
    /// entry moved (a resize), was evicted or the bucket holds another key: the caller then
    /// looks the key up.
    pub fn get_in_bucket(&self, bucket: usize, is_key: impl FnOnce(&K) -> bool) -> Option<&V> {
        self.table
            .get_bucket(bucket)
            .filter(|s| is_key(&s.key))
            .map(|s| &s.value)
    }

    /// The value of `key`, read from the bucket `hint` names when that bucket holds an
    /// entry `is_key` accepts (it must accept `key` only; it may compare faster than `==`,
    /// by pointer); otherwise looked up, and `hint` set to where it was found. Not touched.
    pub fn get_hinted<Q: Hash + Eq + ?Sized>(
        &self,
        key: &Q,
        hint: &BucketHint,
        is_key: impl FnOnce(&K) -> bool,
    ) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        if let Some(bucket) = hint.get() {
            if let Some(v) = self.get_in_bucket(bucket, is_key) {
                return Some(v);
            }
        }
        let (bucket, v) = self.get_with_bucket(key)?;
        hint.set(bucket);
        Some(v)
    }

    /// Asks the CPU to fetch the first `len` bytes of the entry in bucket `bucket` (a hint
    /// from [`BoundedMap::get_with_bucket`]) without waiting for them: the entry's key is
    /// not checked, so a stale hint only fetches another entry.
    pub fn prefetch_bucket(&self, bucket: usize, len: usize) {
        if let Some(slot) = self.table.get_bucket(bucket) {
            crate::prefetch::prefetch(slot, len.min(std::mem::size_of::<Slot<K, V>>()));
        }
    }

    /// The stored key and value of `key`, without touching it (shares the stored key).
    pub fn get_key_value<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        self.find(key).map(|s| (&s.key, &s.value))
    }

    /// The value of `key` (borrowed form), marking it seen at `now_ns`; inserts the owned
    /// key made by `own` with `make` when absent (no key allocation on a hit).
    pub fn entry_by<Q: Hash + Eq + ?Sized>(
        &mut self,
        key: &Q,
        own: impl FnOnce(&Q) -> K,
        now_ns: u64,
        make: impl FnOnce() -> V,
    ) -> &mut V
    where
        K: Borrow<Q>,
    {
        let hash = self.hasher.hash_one(key);
        let index = match self.find_index(hash, key) {
            Some(i) => i,
            None => self.insert_new(hash, own(key), now_ns, make()),
        };
        self.touch(index, now_ns)
    }

    /// The value of `key`, marking it seen at `now_ns`.
    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q, now_ns: u64) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let index = self.bucket_of(key)?;
        Some(self.touch(index, now_ns))
    }

    /// The value of `key`, inserted with `make` when absent; marks it seen at `now_ns`.
    pub fn entry(&mut self, key: K, now_ns: u64, make: impl FnOnce() -> V) -> &mut V {
        self.entry_with_bucket(key, now_ns, make).1
    }

    /// [`BoundedMap::entry`], with the bucket the entry is in (a hint for
    /// [`BoundedMap::get_in_bucket`] and [`BoundedMap::get_hinted`]).
    pub fn entry_with_bucket(
        &mut self,
        key: K,
        now_ns: u64,
        make: impl FnOnce() -> V,
    ) -> (usize, &mut V) {
        let hash = self.hasher.hash_one(&key);
        let index = match self.find_index(hash, &key) {
            Some(i) => i,
            None => self.insert_new(hash, key, now_ns, make()),
        };
        (index, self.touch(index, now_ns))
    }

    fn touch(&mut self, index: usize, now_ns: u64) -> &mut V {
        let slot = self
            .table
            .get_bucket_mut(index)
            .expect("bucket index from a lookup");
        slot.seen_ns = slot.seen_ns.max(now_ns);
        &mut slot.value
    }

    fn insert_new(&mut self, hash: u64, key: K, now_ns: u64, value: V) -> usize {
        let gone = self
            .evictor
            .make_room(&mut self.table, self.capacity, |s| s.seen_ns);
        self.evicted += gone as u64;
        let hasher = &self.hasher;
        let slot = Slot {
            key,
            value,
            seen_ns: now_ns,
        };
        let entry = self
            .table
            .insert_unique(hash, slot, |s| hasher.hash_one(&s.key));
        entry.bucket_index()
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let hash = self.hasher.hash_one(key);
        match self.table.find_entry(hash, |s| s.key == *key) {
            Ok(e) => Some(e.remove().0.value),
            Err(_) => None,
        }
    }

    /// Iterates over the entries.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.table.iter().map(|s| (&s.key, &s.value))
    }

    /// Drops entries not touched within the TTL before `now_ns` (one pass over the table).
    pub fn expire(&mut self, now_ns: u64) {
        let ttl = self.ttl_ns;
        let before = self.table.len();
        self.table
            .retain(|s| now_ns.saturating_sub(s.seen_ns) < ttl);
        self.evicted += (before - self.table.len()) as u64;
    }

    /// Examines at most `budget` buckets for entries idle past the TTL, continuing where the
    /// previous call stopped. Returns the budget left when this call reached the end of the
    /// table (the lap is over and the next call starts over), else `None`. Many small calls
    /// replace one long [`BoundedMap::expire`] pass, so no single batch pays for a whole
    /// table.
    pub fn expire_some(&mut self, now_ns: u64, budget: usize) -> Option<usize> {
        let buckets = self.table.num_buckets();
        let start = self.cursor.min(buckets);
        let end = start.saturating_add(budget).min(buckets);
        let ttl = self.ttl_ns;
        for index in start..end {
            if let Ok(entry) = self.table.get_bucket_entry(index) {
                if now_ns.saturating_sub(entry.get().seen_ns) >= ttl {
                    entry.remove();
                    self.evicted += 1;
                }
            }
        }
        if end >= buckets {
            self.cursor = 0;
            Some(budget - (end - start))
        } else {
            self.cursor = end;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hinted_lookup_checks_the_key_and_looks_up_when_the_hint_is_stale() {
        let mut m = BoundedMap::new(1000, u64::MAX);
        for i in 0..100u64 {
            let (bucket, v) = m.entry_with_bucket(i, i, || i * 10);
            assert_eq!(*v, i * 10);
            assert_eq!(m.get_in_bucket(bucket, |k| *k == i), Some(&(i * 10)));
        }
        let hint = BucketHint::default();
        assert_eq!(m.get_hinted(&7, &hint, |k| *k == 7), Some(&70));
        let bucket_of_7 = hint.get().expect("the lookup remembered where 7 is");
        // A hint naming 7's bucket does not give 7's value for 8: the key is checked.
        assert_eq!(m.get_hinted(&8, &hint, |k| *k == 8), Some(&80));
        assert_ne!(hint.get(), Some(bucket_of_7), "the hint follows the lookup");
        // 7 leaves: its old bucket no longer answers for it.
        hint.set(bucket_of_7);
        assert_eq!(m.remove(&7), Some(70));
        assert_eq!(m.get_hinted(&7, &hint, |k| *k == 7), None);
        // Growth and eviction move and drop entries; a hint from before answers only
        // what a plain lookup answers.
        for i in 100..5000u64 {
            m.entry(i, i, || i * 10);
        }
        let mut found = 0;
        for i in 0..5000u64 {
            hint.set(bucket_of_7);
            let hinted = m.get_hinted(&i, &hint, |k| *k == i);
            assert_eq!(hinted, m.get(&i), "key {i}");
            found += usize::from(hinted.is_some());
        }
        assert_eq!(found, m.len());
    }

    #[test]
    fn stays_within_capacity_and_keeps_the_recent() {
        let mut m = BoundedMap::new(100, u64::MAX);
        for i in 0..10_000u64 {
            *m.entry(i, i, || 0) += 1;
            assert!(m.len() <= 100);
        }
        assert!(m.get(&9_999).is_some(), "the newest entry survives");
        assert!(m.get(&0).is_none(), "the oldest entry was evicted");
        assert!(m.evicted() >= 9_900);
    }

    #[test]
    fn a_full_map_evicts_a_few_entries_at_a_time_and_keeps_mostly_recent_ones() {
        const CAP: usize = 10_000;
        let batch = eviction_batch(CAP);
        assert_eq!(batch, EVICTION_BATCH);
        let mut m = BoundedMap::new(CAP, u64::MAX);
        for i in 0..CAP as u64 {
            m.entry(i, i, || ());
        }
        // A small batch out, one in: no pass that halves the table (and stalls the caller).
        m.entry(CAP as u64, CAP as u64, || ());
        assert_eq!(m.len(), CAP + 1 - batch);
        assert_eq!(m.evicted(), batch as u64);
        for i in CAP as u64 + 1..10 * CAP as u64 {
            m.entry(i, i, || ());
            assert!((CAP + 1 - batch..=CAP).contains(&m.len()), "{}", m.len());
        }
        // Touched in insertion order: the recent ones are the high keys. Sampling keeps
        // recent entries, not exactly the newest 10 000.
        let newest = 10 * CAP as u64 - 2 * CAP as u64;
        let recent = m.iter().filter(|(k, _)| **k >= newest).count();
        assert!(
            recent * 10 >= m.len() * 9,
            "{recent} of {} kept entries are among the newest 20 000",
            m.len()
        );
    }

    #[test]
    fn a_small_table_is_examined_whole_so_the_least_recent_go_first() {
        let hasher = RandomState::default();
        let mut t: HashTable<(u32, u64)> = HashTable::new();
        for (k, at) in [(1u32, 50u64), (2, 10), (3, 70), (4, 30)] {
            t.insert_unique(hasher.hash_one(k), (k, at), |e| hasher.hash_one(e.0));
        }
        for hand in 0..t.num_buckets() {
            let mut copy = t.clone();
            let mut evictor = Evictor {
                hand,
                ..Evictor::default()
            };
            assert_eq!(evictor.evict(&mut copy, 2, |e| e.1), 2);
            let mut left: Vec<u32> = copy.iter().map(|e| e.0).collect();
            left.sort_unstable();
            assert_eq!(
                left,
                [1, 3],
                "from bucket {hand}: 10 and 30 were the oldest"
            );
        }
        let mut empty: HashTable<(u32, u64)> = HashTable::new();
        assert_eq!(Evictor::default().evict(&mut empty, 1, |e| e.1), 0);
    }

    #[test]
    fn touched_entries_survive_eviction() {
        let mut m = BoundedMap::new(10, u64::MAX);
        for i in 0..10u64 {
            m.entry(i, i, || ());
        }
        m.get_mut(&0, 100);
        m.entry(10, 101, || ());
        assert!(m.get(&0).is_some(), "recently seen key 0 kept");
        assert!(m.get(&1).is_none(), "idle key 1 dropped");
    }

    #[test]
    fn a_bucket_hint_finds_its_key_until_the_entry_moves_or_goes() {
        let mut m = BoundedMap::new(1000, 10);
        m.entry(7u64, 0, || "seven");
        let (bucket, v) = m.get_with_bucket(&7).expect("present");
        assert_eq!(*v, "seven");
        assert_eq!(m.get_in_bucket(bucket, |k| *k == 7), Some(&"seven"));
        assert_eq!(
            m.get_in_bucket(bucket, |k| *k == 8),
            None,
            "the bucket holds another key"
        );
        // Growth rehashes: the old hint either misses or still names key 7, never another.
        for i in 100..600u64 {
            m.entry(i, 0, || "other");
        }
        match m.get_in_bucket(bucket, |k| *k == 7) {
            Some(v) => assert_eq!(*v, "seven"),
            None => assert_eq!(m.get(&7), Some(&"seven"), "moved, still there"),
        }
        let (bucket, _) = m.get_with_bucket(&7).expect("present");
        m.expire(20);
        assert_eq!(m.get_in_bucket(bucket, |k| *k == 7), None, "expired");
        assert_eq!(m.get_in_bucket(usize::MAX, |_| true), None, "out of range");
    }

    #[test]
    fn ttl_expires_idle_entries() {
        let mut m = BoundedMap::new(10, 5);
        m.entry(1u8, 0, || ());
        m.entry(2u8, 4, || ());
        m.expire(6);
        assert!(m.get(&1).is_none());
        assert!(m.get(&2).is_some());
    }

    #[test]
    fn incremental_sweep_expires_everything_within_one_lap() {
        let mut m = BoundedMap::new(10_000, 100);
        for i in 0..1000u32 {
            m.entry(i, if i % 2 == 0 { 0 } else { 1000 }, || i);
        }
        // Small steps: each call looks at 64 buckets at most.
        let mut calls = 0;
        while m.expire_some(1050, 64).is_none() {
            calls += 1;
            assert!(calls < 10_000, "the lap ends");
        }
        assert!(calls > 1, "spread over several calls");
        assert_eq!(m.len(), 500, "the idle half is gone, the fresh half stays");
        assert_eq!(m.evicted(), 500);
        assert!((0..1000u32).all(|i| (m.get(&i).is_some()) == (i % 2 == 1)));
    }

    #[test]
    fn same_instant_still_evicts() {
        let mut m = BoundedMap::new(4, u64::MAX);
        for i in 0..20u32 {
            m.entry(i, 0, || ());
            assert!(m.len() <= 4);
        }
    }
}
