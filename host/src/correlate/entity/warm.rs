//! Cache warming for a batch: the table entries its events will read, loaded in passes of
//! independent lookups so the CPU overlaps their misses (see `CorrelationStage::warm`).

use std::sync::Arc;

use compact_str::CompactString;

use super::{EntityGraph, Name};
use crate::correlate::lru::BucketHint;

impl EntityGraph {
    /// Loads what a batch of events about `pids` will read (process entries, their
    /// container and pod ids, pod entries) into the cache, one table per pass, and calls
    /// `window` with each process's trace-window hint (for the enricher's table). One
    /// event's walk pid -> ids -> pod is a chain of dependent cache misses; a pass of
    /// independent lookups over many events lets the CPU overlap them.
    pub fn warm(&self, pids: &[u32], mut window: impl FnMut(&BucketHint)) {
        for pid in pids {
            std::hint::black_box(self.procs.get(pid));
        }
        let first_byte = |n: &Option<Name>| n.as_ref().and_then(|n| n.as_bytes().first().copied());
        for pid in pids {
            if let Some(p) = self.procs.get(pid) {
                // Every field `observe` and `resolve` read (the entry spans cache lines),
                // and the first bytes of the container id and pod uid.
                std::hint::black_box((
                    first_byte(&p.container),
                    first_byte(&p.pod_uid),
                    p.cgroup_path.is_some(),
                    p.unit.is_some(),
                    p.cgroup_id,
                    p.ppid,
                    p.exe.as_ref().map(CompactString::len),
                ));
            }
        }
        for pid in pids {
            if let Some(p) = self.procs.get(pid) {
                if let Some(pod) = p
                    .pod_uid
                    .as_ref()
                    .and_then(|uid| self.pod(uid, Some(&p.hints.pod)))
                {
                    // The fields `describe` reads span the entry's cache lines.
                    let len = |s: &Option<CompactString>| s.as_ref().map(CompactString::len);
                    std::hint::black_box((
                        len(&pod.name),
                        len(&pod.namespace),
                        len(&pod.node),
                        len(&pod.owner_kind),
                        len(&pod.owner_name),
                        len(&pod.replicaset_key),
                    ));
                    // The reference count of its shared attribute list (enrichment takes
                    // a reference).
                    let shared = pod.shared.0.borrow();
                    std::hint::black_box(shared.as_ref().map(|(_, list)| Arc::strong_count(list)));
                }
                window(&p.hints.window);
            }
        }
    }
}
