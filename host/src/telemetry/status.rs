//! The status line, every `pipeline.status_interval` (10 s by default):
//! `Status: Events=15234, Active Collectors=4, Correlation Groups=127, Dropped=0, Ring=0/65536`,
//! and with exporters enabled
//! `, Export=[grpc up acked=15000 queued=234 spooled=0 dropped=0; nats down ...]`.

use std::sync::atomic::Ordering;

use crate::export::ExporterStats;
use crate::telemetry::Observer;

/// The status line's text.
pub fn status_line(o: &Observer) -> String {
    let manager = o.manager.lock().clone();
    let mut line = format!(
        "Status: Events={}, Active Collectors={}, Correlation Groups={}, Dropped={}, Ring={}/{}",
        o.pipeline.events.load(Ordering::Relaxed),
        manager.active(),
        o.pipeline.open_groups.load(Ordering::Relaxed),
        o.dropped_total(),
        o.ring.len(),
        o.ring.capacity(),
    );
    if !o.exporters.is_empty() {
        let exporters: Vec<String> = o.exporters.iter().map(|e| exporter_status(e)).collect();
        line.push_str(&format!(", Export=[{}]", exporters.join("; ")));
    }
    line
}

/// `grpc up acked=15000 queued=234 spooled=0 dropped=0`: connection, delivered, waiting in
/// memory, in the disk spool, lost.
fn exporter_status(e: &ExporterStats) -> String {
    format!(
        "{} {} acked={} queued={} spooled={} dropped={}",
        e.name,
        if e.connected.load(Ordering::Relaxed) {
            "up"
        } else {
            "down"
        },
        ExporterStats::get(&e.acked),
        ExporterStats::get(&e.queue_depth),
        // Events still in the spool: its bytes are what a reader can check on disk.
        format_bytes(ExporterStats::get(&e.spool_bytes)),
        ExporterStats::get(&e.dropped),
    )
}

fn format_bytes(b: u64) -> String {
    match b {
        0 => "0".into(),
        b if b < 1 << 20 => format!("{}KiB", b.div_ceil(1024)),
        b => format!("{}MiB", b >> 20),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exporter_reads_as_one_short_clause() {
        let e = ExporterStats::new("grpc");
        ExporterStats::add(&e.acked, 1500);
        ExporterStats::add(&e.queue_depth, 12);
        ExporterStats::add(&e.spool_bytes, 3 << 20);
        assert_eq!(
            exporter_status(&e),
            "grpc down acked=1500 queued=12 spooled=3MiB dropped=0"
        );
        e.connected.store(true, Ordering::Relaxed);
        assert!(exporter_status(&e).starts_with("grpc up "));
        assert_eq!(format_bytes(1), "1KiB");
    }
}
