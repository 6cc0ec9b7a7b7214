//! Counters of the receiver, exported as plugin metrics.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tapio_plugin_api::Metric;

/// The three OTLP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Spans.
    Traces = 0,
    /// Log records.
    Logs = 1,
    /// Metric data points.
    Metrics = 2,
}

impl Signal {
    /// Every signal.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

    /// `traces`, `logs`, `metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    /// What one item is called in messages (`spans`, ...).
    pub fn items(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Logs => "log records",
            Signal::Metrics => "data points",
        }
    }
}

/// The two transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc = 0,
    /// OTLP/HTTP.
    Http = 1,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
        }
    }
}

/// Why a whole request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not decodable protobuf (or bad gzip).
    Malformed = 0,
    /// Larger than `max_request_bytes`.
    TooLarge = 1,
    /// Not `application/x-protobuf`, or an unknown content encoding.
    UnsupportedMediaType = 2,
    /// Unknown path or method.
    NotFound = 3,
}

impl Refusal {
    const ALL: [Refusal; 4] = [
        Refusal::Malformed,
        Refusal::TooLarge,
        Refusal::UnsupportedMediaType,
        Refusal::NotFound,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::TooLarge => "too_large",
            Refusal::UnsupportedMediaType => "unsupported_media_type",
            Refusal::NotFound => "not_found",
        }
    }
}

/// All counters.
#[derive(Default)]
pub struct Stats {
    requests: [[AtomicU64; 3]; 2],
    refused: [[AtomicU64; 4]; 2],
    accepted: [AtomicU64; 3],
    dropped: [AtomicU64; 3],
    invalid: [AtomicU64; 3],
    /// Wall-clock time of the last ring drop, ns since the epoch (0 = never).
    last_drop_ns: AtomicU64,
}

/// How long a ring drop keeps the receiver's health degraded.
pub const DROP_MEMORY_NS: u64 = 60_000_000_000;

impl Stats {
    /// Counts a request that was decoded.
    pub fn request(&self, transport: Transport, signal: Signal, tally: crate::convert::Tally) {
        let s = signal as usize;
        self.requests[transport as usize][s].fetch_add(1, Relaxed);
        self.accepted[s].fetch_add(tally.accepted, Relaxed);
        self.dropped[s].fetch_add(tally.dropped, Relaxed);
        self.invalid[s].fetch_add(tally.invalid, Relaxed);
        if tally.dropped > 0 {
            self.last_drop_ns
                .store(tapio_plugin_api::now_unix_nanos(), Relaxed);
        }
    }

    /// When items were dropped within [`DROP_MEMORY_NS`] before `now_ns`: why, for a
    /// degraded health.
    pub fn recent_drops(&self, now_ns: u64) -> Option<String> {
        let last = self.last_drop_ns.load(Relaxed);
        if last == 0 || now_ns.saturating_sub(last) > DROP_MEMORY_NS {
            return None;
        }
        let total: u64 = self.dropped.iter().map(|d| d.load(Relaxed)).sum();
        Some(format!(
            "the host's event ring was full within the last minute: {total} received items dropped so far (reported to senders as rejected)"
        ))
    }

    /// Counts a refused request.
    pub fn refused(&self, transport: Transport, why: Refusal) {
        self.refused[transport as usize][why as usize].fetch_add(1, Relaxed);
    }

    /// The counters as plugin metrics.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut out = Vec::new();
        for t in [Transport::Grpc, Transport::Http] {
            for s in Signal::ALL {
                out.push(
                    Metric::counter(
                        "requests_total",
                        "OTLP export requests decoded.",
                        self.requests[t as usize][s as usize].load(Relaxed),
                    )
                    .with_label("transport", t.as_str())
                    .with_label("signal", s.as_str()),
                );
            }
            for r in Refusal::ALL {
                out.push(
                    Metric::counter(
                        "refused_requests_total",
                        "OTLP requests refused whole (malformed, too large, wrong media type, unknown path).",
                        self.refused[t as usize][r as usize].load(Relaxed),
                    )
                    .with_label("transport", t.as_str())
                    .with_label("reason", r.as_str()),
                );
            }
        }
        for s in Signal::ALL {
            let i = s as usize;
            for (name, help, v) in [
                (
                    "items_accepted_total",
                    "Items turned into events and taken by the host.",
                    &self.accepted[i],
                ),
                (
                    "items_dropped_total",
                    "Items refused by the host's full ring (reported as rejected).",
                    &self.dropped[i],
                ),
                (
                    "items_invalid_total",
                    "Items rejected for invalid trace or span ids.",
                    &self.invalid[i],
                ),
            ] {
                out.push(
                    Metric::counter(name, help, v.load(Relaxed)).with_label("signal", s.as_str()),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::Tally;

    #[test]
    fn drops_are_remembered_for_a_minute() {
        let stats = Stats::default();
        let now = tapio_plugin_api::now_unix_nanos();
        assert_eq!(stats.recent_drops(now), None);
        let tally = Tally {
            accepted: 1,
            dropped: 2,
            invalid: 0,
        };
        stats.request(Transport::Http, Signal::Logs, tally);
        let now = tapio_plugin_api::now_unix_nanos();
        assert!(stats
            .recent_drops(now)
            .unwrap()
            .contains("2 received items dropped"));
        assert_eq!(stats.recent_drops(now + DROP_MEMORY_NS + 1), None);
    }
}
