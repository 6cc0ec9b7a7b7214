//! Cache warming of the correlation stage: before a chunk of events is processed, the
//! memory it will touch is loaded or prefetched (entity tables through `EntityGraph::warm`,
//! trace windows, the events' attribute lists), so the misses overlap instead of stalling
//! each event.

/// Events whose table entries are brought into the cache together (`CorrelationStage::warm`)
/// before they are processed: enough lookups to overlap, few enough that their entries are
/// still cached when the events are processed.
pub(super) const WARM_CHUNK: usize = 32;

/// Bytes of attributes enrichment typically appends to an event (executable and parent
/// pid: the pod's attributes are one shared list, not appended).
pub(super) const ENRICHMENT_BYTES: usize = 2 * std::mem::size_of::<crate::event::Attribute>();

/// Asks the CPU to fetch the cache lines of `len` bytes from `at`. A hint only: the address
/// need not be valid memory (it is never dereferenced).
pub(crate) fn prefetch<T>(at: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = at as usize;
        let mut line = start & !63;
        while line < start + len {
            // SAFETY: prefetch is a hint; it does not access memory or fault.
            unsafe {
                std::arch::x86_64::_mm_prefetch(line as *const i8, std::arch::x86_64::_MM_HINT_T0);
            }
            line += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, len);
}
