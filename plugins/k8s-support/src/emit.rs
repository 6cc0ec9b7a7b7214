//! Events that own their data, lent to the host's sink in batches: the owned events of
//! `tapio-event-buffer`, which every plugin shares.
//!
//! `tapio_plugin_api::Event` borrows everything; collectors that build events from decoded
//! API objects keep them as [`OwnedEvent`]s (made with [`owned_event`], filled with the
//! `push_*` builders) and call [`emit_all`], which builds the borrowed views for the
//! duration of one `emit`.

use tapio_plugin_api::Severity;

pub use tapio_event_buffer::{emit_all, OwnedEvent, Value as OwnedValue};

/// An event of `event_type` at `timestamp_ns` (0: the API object carried no time; now).
pub fn owned_event(event_type: &'static str, severity: Severity, timestamp_ns: u64) -> OwnedEvent {
    OwnedEvent::at_or_now(event_type, severity, timestamp_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_strings_are_left_out() {
        let mut e = owned_event("a.b", Severity::Info, 7);
        e.push_str("k8s.pod.name", "")
            .push_str("k8s.namespace.name", "ns")
            .push_int("x.y", -1);
        assert_eq!(e.attributes.len(), 2);
        assert_eq!(e.get_str("k8s.namespace.name"), Some("ns"));
        assert_eq!(e.timestamp_ns, 7);
        assert!(owned_event("a.b", Severity::Info, 0).timestamp_ns > 0);
    }
}
