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
