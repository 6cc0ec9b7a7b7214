//! The status line, every `pipeline.status_interval` (10 s by default):
//! `Status: Events=15234, Active Collectors=4, Correlation Groups=127, Dropped=0, Ring=0/65536`.

use std::sync::atomic::Ordering;

use crate::telemetry::Observer;

/// The status line's text.
pub fn status_line(o: &Observer) -> String {
    let manager = o.manager.lock().clone();
    format!(
        "Status: Events={}, Active Collectors={}, Correlation Groups={}, Dropped={}, Ring={}/{}",
        o.pipeline.events.load(Ordering::Relaxed),
        manager.active(),
        o.pipeline.open_groups.load(Ordering::Relaxed),
        o.dropped_total(),
        o.ring.len(),
        o.ring.capacity(),
    )
}
