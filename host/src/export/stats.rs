//! Counters of one exporter, read by `/metrics` (`tapio_export_*{exporter="grpc"}`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters of one exporter. Events are counted, not batches.
#[derive(Debug)]
pub struct ExporterStats {
    /// `grpc`, `otlp` or `nats`.
    pub name: &'static str,
    /// Events handed to the exporter by the pipeline.
    pub received: AtomicU64,
    /// Events written to the network (resends included).
    pub sent: AtomicU64,
    /// Events the peer acknowledged as processed.
    pub acked: AtomicU64,
    /// Events the peer acknowledged as failed (it will not process them; not resent).
    pub failed: AtomicU64,
    /// Events sent again after a reconnect or a retryable error.
    pub retried: AtomicU64,
    /// Events written to the disk spool.
    pub spooled: AtomicU64,
    /// Events lost: queue full, spool cap reached, spool write failed, rejected for good.
    pub dropped: AtomicU64,
    /// Malformed or unexpected answers of the peer.
    pub protocol_errors: AtomicU64,
    /// Events waiting in memory (queued, batched, unacked).
    pub queue_depth: AtomicU64,
    /// Bytes in the disk spool.
    pub spool_bytes: AtomicU64,
    /// Whether the exporter is connected.
    pub connected: AtomicBool,
}

impl ExporterStats {
    /// Zeroed counters for `name`.
    pub fn new(name: &'static str) -> Self {
        ExporterStats {
            name,
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            queue_depth: AtomicU64::new(0),
            spool_bytes: AtomicU64::new(0),
            connected: AtomicBool::new(false),
        }
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A counter family: name, help, field.
type CounterDef = (&'static str, &'static str, fn(&ExporterStats) -> &AtomicU64);
/// A gauge family: name, help, value.
type GaugeDef = (&'static str, &'static str, fn(&ExporterStats) -> f64);

/// Writes the `tapio_export_*` families (label `exporter`).
pub(crate) fn encode_metrics(
    encoder: &mut prometheus_client::encoding::DescriptorEncoder<'_>,
    exporters: &[std::sync::Arc<ExporterStats>],
) -> Result<(), std::fmt::Error> {
    use crate::telemetry::metrics::{counter_family, gauge_family, Labels};
    use std::borrow::Cow;
    let label =
        |s: &ExporterStats| -> Labels { vec![(Cow::Borrowed("exporter"), Cow::Borrowed(s.name))] };
    let counters: [CounterDef; 8] = [
        (
            "tapio_export_received_events",
            "Events handed to an exporter.",
            |s| &s.received,
        ),
        (
            "tapio_export_sent_events",
            "Events an exporter wrote to the network (resends included).",
            |s| &s.sent,
        ),
        (
            "tapio_export_acked_events",
            "Events the peer acknowledged as processed.",
            |s| &s.acked,
        ),
        (
            "tapio_export_failed_events",
            "Events the peer acknowledged as failed.",
            |s| &s.failed,
        ),
        (
            "tapio_export_retried_events",
            "Events sent again after a reconnect or a retryable error.",
            |s| &s.retried,
        ),
        (
            "tapio_export_spooled_events",
            "Events written to the disk spool.",
            |s| &s.spooled,
        ),
        (
            "tapio_export_dropped_events",
            "Events an exporter lost (queue full, spool cap, write error, rejected).",
            |s| &s.dropped,
        ),
        (
            "tapio_export_protocol_errors",
            "Malformed or unexpected answers of the peer.",
            |s| &s.protocol_errors,
        ),
    ];
    for (name, help, field) in counters {
        let samples: Vec<(Labels, u64)> = exporters
            .iter()
            .map(|s| (label(s), ExporterStats::get(field(s))))
            .collect();
        counter_family(encoder, name, help, &samples)?;
    }
    let gauges: [GaugeDef; 3] = [
        (
            "tapio_export_queue_depth_events",
            "Events an exporter holds in memory.",
            |s| ExporterStats::get(&s.queue_depth) as f64,
        ),
        (
            "tapio_export_spool_bytes",
            "Bytes in an exporter's disk spool.",
            |s| ExporterStats::get(&s.spool_bytes) as f64,
        ),
        (
            "tapio_export_connected",
            "1 while an exporter is connected.",
            |s| f64::from(u8::from(s.connected.load(Ordering::Relaxed))),
        ),
    ];
    for (name, help, value) in gauges {
        let samples: Vec<(Labels, f64)> = exporters.iter().map(|s| (label(s), value(s))).collect();
        gauge_family(encoder, name, help, &samples)?;
    }
    Ok(())
}
