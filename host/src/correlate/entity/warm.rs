//! Cache warming for a batch: the table entries its events will read, loaded in passes of
//! independent lookups so the CPU overlaps their misses (see `CorrelationStage::warm`).

use std::sync::Arc;

use super::{EntityGraph, PodInfo, ProcInfo};
use crate::correlate::lru::BucketHint;
use crate::correlate::warm::WARM_CHUNK;
use crate::prefetch::prefetch;

/// Bytes of a pod's table entry an event of a known pod reads: the key and the shared
/// list's cell at the head of [`PodInfo`] (`repr(C)`).
const POD_ENTRY_HEAD: usize = 64;

/// Asks the CPU to fetch the reference count and first bytes of a shared allocation.
fn prefetch_arc<T: ?Sized>(a: &Arc<T>) {
    // The counts sit just before the data (`ArcInner`); the address is never dereferenced.
    let data = Arc::as_ptr(a).cast::<u8>();
    prefetch(data.wrapping_sub(2 * std::mem::size_of::<usize>()), 64);
}

impl EntityGraph {
    /// Brings what a batch of events about `pids` will read into the cache: process
    /// entries, their container ids, pod entries and their shared attribute lists,
    /// and (through `window`, with each process's trace-window hint) the enricher's
    /// windows. One event's walk pid -> ids -> pod is a chain of dependent cache misses. In
    /// each pass, one per level of that chain, the misses of all the events overlap: the
    /// process lookups load (a lookup must read the key), everything whose address is then
    /// known is prefetched, which does not hold up the CPU while the memory arrives.
    pub fn warm(&self, pids: &[u32], mut window: impl FnMut(&BucketHint)) {
        for pids in pids.chunks(WARM_CHUNK) {
            // Each process is looked up once; the later passes read the entries found.
            let mut found: [Option<&ProcInfo>; WARM_CHUNK] = [None; WARM_CHUNK];
            for (slot, pid) in found.iter_mut().zip(pids) {
                *slot = self.procs.get(pid);
                if let Some(p) = slot {
                    // The entry spans cache lines; the lookup loaded the key's.
                    prefetch(*p, std::mem::size_of::<ProcInfo>());
                }
            }
            let found = &found[..pids.len()];
            for p in found.iter().flatten() {
                // The container id's count (enrichment gives the id to an event that
                // lacks it; a resolution only borrows ids, and the pod's key is matched
                // by pointer, so the pod uid's memory is not read), the pod entry (through
                // the process's hint) and the trace window.
                if let Some(c) = &p.container {
                    prefetch_arc(c);
                }
                if let Some(bucket) = p.hints.pod.get() {
                    self.pods.prefetch_bucket(bucket, POD_ENTRY_HEAD);
                }
                window(&p.hints.window);
            }
            for p in found.iter().flatten() {
                let Some(pod) = p
                    .pod_uid
                    .as_ref()
                    .and_then(|uid| self.pod(uid, Some(&p.hints.pod)))
                else {
                    continue;
                };
                match self.current_pod_attributes(pod) {
                    // Enrichment takes a reference to the pod's list.
                    Some(list) => prefetch_arc(&list),
                    // The list will be built from the names `describe_pod` reads, which
                    // span the entry's cache lines.
                    None => prefetch(pod, std::mem::size_of::<PodInfo>()),
                }
            }
        }
    }
}
