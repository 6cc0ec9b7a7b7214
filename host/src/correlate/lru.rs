//! A bounded map with a time to live and approximate least-recently-seen eviction: the
//! building block of every entity table, so memory stays bounded under a stream of unique
//! entities.
//!
//! Each entry remembers when it was last touched. When the map is full, an insert drops the
//! least recently touched half in one pass (amortised O(1) per insert, no linked list to
//! update on every hit); [`BoundedMap::expire`] drops entries idle longer than the TTL.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use foldhash::fast::RandomState;

struct Slot<V> {
    value: V,
    seen_ns: u64,
}

/// A map of at most `capacity` entries, each expiring `ttl_ns` after it was last touched.
pub struct BoundedMap<K, V> {
    map: HashMap<K, Slot<V>, RandomState>,
    capacity: usize,
    ttl_ns: u64,
    evicted: u64,
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    /// An empty map (`capacity` at least 2).
    pub fn new(capacity: usize, ttl_ns: u64) -> Self {
        BoundedMap {
            map: HashMap::default(),
            capacity: capacity.max(2),
            ttl_ns,
            evicted: 0,
        }
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries dropped by the capacity limit or the TTL since creation.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The value of `key`, without touching it.
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(key).map(|s| &s.value)
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
        if self.map.contains_key(key) {
            let slot = self.map.get_mut(key).expect("present");
            slot.seen_ns = slot.seen_ns.max(now_ns);
            return &mut slot.value;
        }
        self.entry(own(key), now_ns, make)
    }

    /// The value of `key`, marking it seen at `now_ns`.
    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q, now_ns: u64) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.map.get_mut(key).map(|s| {
            s.seen_ns = s.seen_ns.max(now_ns);
            &mut s.value
        })
    }

    /// The value of `key`, inserted with `make` when absent; marks it seen at `now_ns`.
    pub fn entry(&mut self, key: K, now_ns: u64, make: impl FnOnce() -> V) -> &mut V {
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity {
            self.evict_older_half();
        }
        let slot = self.map.entry(key).or_insert_with(|| Slot {
            value: make(),
            seen_ns: now_ns,
        });
        slot.seen_ns = slot.seen_ns.max(now_ns);
        &mut slot.value
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key).map(|s| s.value)
    }

    /// Iterates over the entries.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, s)| (k, &s.value))
    }

    /// Drops entries not touched within the TTL before `now_ns`.
    pub fn expire(&mut self, now_ns: u64) {
        let ttl = self.ttl_ns;
        let before = self.map.len();
        self.map
            .retain(|_, s| now_ns.saturating_sub(s.seen_ns) < ttl);
        self.evicted += (before - self.map.len()) as u64;
    }

    fn evict_older_half(&mut self) {
        let mut seen: Vec<u64> = self.map.values().map(|s| s.seen_ns).collect();
        let mid = seen.len() / 2;
        let (_, cutoff, _) = seen.select_nth_unstable(mid);
        let cutoff = *cutoff;
        let before = self.map.len();
        self.map.retain(|_, s| s.seen_ns > cutoff);
        if self.map.len() == before {
            // Every entry was seen at the same instant: drop an arbitrary half.
            let mut n = 0usize;
            self.map.retain(|_, _| {
                n += 1;
                n.is_multiple_of(2)
            });
        }
        self.evicted += (before - self.map.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn ttl_expires_idle_entries() {
        let mut m = BoundedMap::new(10, 5);
        m.entry(1u8, 0, || ());
        m.entry(2u8, 4, || ());
        m.expire(6);
        assert!(m.get(&1).is_none());
        assert!(m.get(&2).is_some());
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
