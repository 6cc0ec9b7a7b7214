//! Turns the watcher's stream (list, then watch; relist after 410 Gone) into added /
//! modified / deleted changes for one kind.
//!
//! `kube`'s watcher reports both ADDED and MODIFIED as "apply" and replays the whole list
//! after a relist. The tracker remembers the attributes last reported per object uid: an
//! unknown uid is an add, a known one whose reported attributes changed is a modify (so a
//! node heartbeat that changes nothing reported is not an event), and a uid missing from a
//! completed relist was deleted while the watch was broken.

use std::collections::{HashMap, HashSet};

use tapio_k8s_support::OwnedValue;

/// Attributes as stored for comparison.
pub type Attrs = Vec<(&'static str, OwnedValue)>;

/// Keys that change on every write and are not compared.
const VOLATILE: &[&str] = &["k8s.object.resource_version", "k8s.watch.initial"];

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// New; `initial` when it came from the first listing after start.
    Added {
        /// From the first listing after start.
        initial: bool,
    },
    /// A reported attribute changed.
    Modified,
}

/// Per-kind state.
#[derive(Debug, Default)]
pub struct KindTracker {
    seen: HashMap<String, Attrs>,
    listing: Option<HashSet<String>>,
    listed_once: bool,
}

fn stable(attrs: &Attrs) -> Attrs {
    attrs
        .iter()
        .filter(|(k, _)| !VOLATILE.contains(k))
        .cloned()
        .collect()
}

impl KindTracker {
    /// A (re)list began.
    pub fn list_started(&mut self) {
        self.listing = Some(HashSet::new());
    }

    /// An object was listed or watched with these attributes.
    pub fn applied(&mut self, uid: &str, attrs: &Attrs) -> Option<Change> {
        if let Some(listed) = &mut self.listing {
            listed.insert(uid.to_owned());
        }
        let now = stable(attrs);
        let change = match self.seen.get(uid) {
            None => Some(Change::Added {
                initial: !self.listed_once,
            }),
            Some(before) if *before != now => Some(Change::Modified),
            Some(_) => None,
        };
        self.seen.insert(uid.to_owned(), now);
        change
    }

    /// An object was deleted; returns whether it was known.
    pub fn deleted(&mut self, uid: &str) -> bool {
        self.seen.remove(uid).is_some()
    }

    /// The listing completed: returns the uids (and last attributes) of objects that were
    /// known but not listed, now forgotten.
    pub fn list_done(&mut self) -> Vec<(String, Attrs)> {
        self.listed_once = true;
        let Some(listed) = self.listing.take() else {
            return Vec::new();
        };
        let gone: Vec<String> = self
            .seen
            .keys()
            .filter(|uid| !listed.contains(*uid))
            .cloned()
            .collect();
        gone.into_iter()
            .filter_map(|uid| self.seen.remove(&uid).map(|a| (uid, a)))
            .collect()
    }

    /// Whether the first listing completed.
    pub fn listed_once(&self) -> bool {
        self.listed_once
    }

    /// Objects known.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no object is known.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(phase: &str, rv: &str) -> Attrs {
        vec![
            ("k8s.pod.phase", OwnedValue::Str(phase.into())),
            ("k8s.object.resource_version", OwnedValue::Str(rv.into())),
        ]
    }

    #[test]
    fn initial_list_then_watch() {
        let mut t = KindTracker::default();
        t.list_started();
        assert_eq!(
            t.applied("a", &attrs("Pending", "1")),
            Some(Change::Added { initial: true })
        );
        assert!(t.list_done().is_empty());
        assert_eq!(
            t.applied("b", &attrs("Pending", "2")),
            Some(Change::Added { initial: false })
        );
        assert_eq!(
            t.applied("a", &attrs("Running", "3")),
            Some(Change::Modified)
        );
        assert_eq!(
            t.applied("a", &attrs("Running", "4")),
            None,
            "only the resource version changed"
        );
        assert!(t.deleted("b"));
        assert!(!t.deleted("b"));
    }

    #[test]
    fn relist_finds_adds_modifies_and_deletes_missed_while_away() {
        let mut t = KindTracker::default();
        t.list_started();
        t.applied("a", &attrs("Running", "1"));
        t.applied("b", &attrs("Running", "2"));
        t.list_done();
        // 410 Gone: relist.
        t.list_started();
        assert_eq!(t.applied("a", &attrs("Running", "9")), None);
        assert_eq!(
            t.applied("c", &attrs("Pending", "10")),
            Some(Change::Added { initial: false })
        );
        let gone = t.list_done();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, "b");
        assert_eq!(t.len(), 2);
    }
}
