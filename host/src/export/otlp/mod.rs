//! The OTLP exporter: every event as an OTLP log record, every correlation group as spans
//! ([`otlp_map`]), to `export.otel_endpoint` over OTLP/gRPC or
//! OTLP/HTTP (protobuf bodies to `/v1/logs` and `/v1/traces`).
//!
//! Its own thread and single-threaded runtime batch (`export.batch_size`,
//! `export.flush_interval`), send up to `export.otlp.max_in_flight` requests at once, and retry retryable failures
//! (gRPC UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED; HTTP 429, 502, 503,
//! 504, connection errors) with backoff; a request keeps its events until it succeeds.
//! Memory holds at most `export.otlp.queue_events` events: past it new batches are dropped
//! and counted (no spool: OTLP is best-effort telemetry, the gRPC stream is the reliable
//! path). Partial successes count their rejected records as failed.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tonic::transport::Endpoint;

use crate::config::HostConfig;
use crate::export::backoff::Backoff;
use crate::export::config::{BackoffConfig, OtlpProtocol, TlsConfig};
use crate::export::otlp_map::{self, GROUP_TYPE};
use crate::export::queue::{Inbox, QueueSink};
use crate::export::shared::Shared;
use crate::export::stats::ExporterStats;
use crate::export::ExportError;
use crate::sink::EventBatch;

mod transport;

use transport::{Request, Sent, Transport};

const NAME: &str = "otlp";
/// Where the TLS settings live in the config (for error messages).
const TLS_FIELD: &str = "export.otlp.tls";

/// Everything the OTLP exporter needs, resolved from the config.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// `http://host:port` (gRPC) or the base URL of the HTTP endpoint.
    pub endpoint: String,
    /// gRPC or HTTP/protobuf.
    pub protocol: OtlpProtocol,
    /// Records (log records plus spans) per request.
    pub batch_size: usize,
    /// Longest wait of a partial request.
    pub flush_interval: Duration,
    /// Most events in memory.
    pub queue_events: usize,
    /// gzip the requests.
    pub gzip: bool,
    /// Most requests in flight.
    pub max_in_flight: usize,
    /// Retry backoff.
    pub backoff: BackoffConfig,
    /// Deadline of one request.
    pub timeout: Duration,
    /// TLS (an `https://` endpoint): CA (else the system's trust store), client identity.
    pub tls: Option<TlsConfig>,
    /// `host.name`.
    pub host: String,
    /// `k8s.node.name` (`$NODE_NAME` or the host name).
    pub node: String,
}

impl OtlpSettings {
    /// Resolves `export.otel_endpoint` and `export.otlp.*`; refuses an endpoint that is our
    /// own OTLP receiver (the otel plugin), which would loop our events back to us.
    pub fn from_config(c: &HostConfig, host: &str) -> Result<Self, ExportError> {
        let e = &c.export;
        let bad = |message: String| ExportError::Config {
            exporter: NAME,
            message,
        };
        let raw = e.otel_endpoint.trim();
        if raw.is_empty() {
            return Err(bad("export.otel_endpoint is empty".into()));
        }
        let tls_configured = e.otlp.tls.ca.is_some() || e.otlp.tls.cert.is_some();
        let endpoint = if raw.contains("://") {
            raw.trim_end_matches('/').to_owned()
        } else if tls_configured {
            format!("https://{raw}")
        } else {
            format!("http://{raw}")
        };
        if endpoint.starts_with("http://") && tls_configured {
            return Err(bad(format!(
                "export.otel_endpoint {raw} is plain http:// but export.otlp.tls is set: use https://"
            )));
        }
        let tls = endpoint.starts_with("https://").then(|| e.otlp.tls.clone());
        if let Some(own) = own_receiver(c, e.otlp.protocol) {
            if same_local_address(&endpoint, &own) {
                return Err(bad(format!(
                    "export.otel_endpoint {raw} is this collector's own OTLP receiver (the otel plugin listens on {own}): exporting there would feed our events back to us; point it at another OTLP collector, or set collectors.otel.enabled: false"
                )));
            }
        }
        let node = std::env::var("NODE_NAME")
            .or_else(|_| std::env::var("K8S_NODE_NAME"))
            .unwrap_or_else(|_| host.to_owned());
        Ok(OtlpSettings {
            endpoint,
            protocol: e.otlp.protocol,
            batch_size: e.batch_size.max(1),
            flush_interval: e.flush_interval,
            queue_events: e.otlp.queue_events.max(1),
            gzip: e.otlp.gzip,
            max_in_flight: e.otlp.max_in_flight.max(1),
            backoff: e.otlp.backoff,
            timeout: e.otlp.timeout,
            tls,
            host: host.to_owned(),
            node,
        })
    }
}

/// The address the otel receiver plugin listens on for `protocol`, unless it is disabled.
fn own_receiver(c: &HostConfig, protocol: OtlpProtocol) -> Option<String> {
    let section = c.collectors.get("otel");
    if section.and_then(|s| s.enabled) == Some(false) {
        return None;
    }
    let (key, default) = match protocol {
        OtlpProtocol::Grpc => ("grpc_address", "127.0.0.1:4317"),
        OtlpProtocol::Http => ("http_address", "127.0.0.1:4318"),
    };
    let configured = section
        .and_then(|s| s.config.as_ref())
        .and_then(|v| v.get(key))
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let addr = configured.unwrap_or_else(|| default.to_owned());
    (!addr.is_empty()).then_some(addr)
}

/// Whether `endpoint` (a URL) and `listen` (`host:port`) name the same local socket:
/// same port, and both hosts local (loopback, `localhost`, unspecified, or equal).
pub fn same_local_address(endpoint: &str, listen: &str) -> bool {
    fn split(s: &str) -> Option<(String, u16)> {
        let s = s.split("://").last()?;
        let s = s.split('/').next()?;
        let (host, port) = s.rsplit_once(':')?;
        Some((
            host.trim_matches(|c| c == '[' || c == ']')
                .to_ascii_lowercase(),
            port.parse().ok()?,
        ))
    }
    fn local(h: &str) -> bool {
        h == "localhost"
            || h.starts_with("127.")
            || h == "::1"
            || h == "0.0.0.0"
            || h == "::"
            || h.is_empty()
    }
    match (split(endpoint), split(listen)) {
        (Some((eh, ep)), Some((lh, lp))) => {
            ep == lp && (eh == lh || (local(&eh) && local(&lh)) || lh == "0.0.0.0" || lh == "::")
        }
        _ => false,
    }
}

/// Starts the exporter thread; returns its sink and counters.
pub fn spawn(settings: OtlpSettings) -> Result<(QueueSink, Arc<ExporterStats>), ExportError> {
    let stats = Arc::new(ExporterStats::new(NAME));
    let inbox = Inbox::new(settings.queue_events, Arc::clone(&stats));
    // Checked here so a bad endpoint fails the start; built again inside the exporter's own
    // runtime, which drives the channel's connection.
    let _ = Endpoint::from_shared(settings.endpoint.clone()).map_err(|e| ExportError::Config {
        exporter: NAME,
        message: format!("export.otel_endpoint {:?}: {e}", settings.endpoint),
    })?;
    let (stats2, inbox2) = (Arc::clone(&stats), Arc::clone(&inbox));
    let sink = super::spawn_exporter(NAME, "export-otlp", inbox, move || async move {
        let transport = match Transport::new(&settings) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(exporter = NAME, error = %e, "cannot set up the OTLP transport");
                return;
            }
        };
        let mut exporter = Exporter {
            backoff: Backoff::new(settings.backoff),
            resource: otlp_map::resource(&settings.host, &settings.node),
            s: settings,
            stats: stats2,
            inbox: inbox2,
            transport,
            logs: Vec::new(),
            spans: Vec::new(),
            builder_events: 0,
            since: None,
            pending: VecDeque::new(),
            pending_events: 0,
            closing: false,
            failing: false,
            loss_log: None,
        };
        exporter.run().await
    })?;
    Ok((sink, stats))
}

struct Exporter {
    s: OtlpSettings,
    stats: Arc<ExporterStats>,
    inbox: Arc<Inbox>,
    transport: Transport,
    resource: opentelemetry_proto::tonic::resource::v1::Resource,
    logs: Vec<LogRecord>,
    spans: Vec<Span>,
    /// Events behind `logs` and `spans` (a group is one event, many spans).
    builder_events: u64,
    since: Option<Instant>,
    pending: VecDeque<Request>,
    pending_events: u64,
    closing: bool,
    failing: bool,
    backoff: Backoff,
    loss_log: Option<Instant>,
}

impl Exporter {
    async fn run(&mut self) {
        let inbox = Arc::clone(&self.inbox);
        let mut taken: Vec<EventBatch> = Vec::new();
        let mut retry_at: Option<Instant> = None;
        let mut in_flight = tokio::task::JoinSet::<(Request, Sent)>::new();
        loop {
            if inbox.take(&mut taken) {
                self.closing = true;
            }
            for batch in taken.drain(..) {
                self.push(&batch);
            }
            if self.closing
                || self
                    .since
                    .is_some_and(|t| t.elapsed() >= self.s.flush_interval)
            {
                self.seal();
            }
            self.stats.queue_depth.store(
                self.pending_events + self.builder_events + inbox.len() as u64,
                Ordering::Relaxed,
            );
            let now = Instant::now();
            if retry_at.is_none_or(|t| now >= t) {
                retry_at = None;
                while in_flight.len() < self.s.max_in_flight.max(1) {
                    let Some(request) = self.pending.pop_front() else {
                        break;
                    };
                    ExporterStats::add(&self.stats.sent, request.events());
                    let transport = self.transport.clone();
                    let (gzip, timeout) = (self.s.gzip, self.s.timeout);
                    in_flight.spawn(async move {
                        let sent = transport.send(&request, gzip, timeout).await;
                        (request, sent)
                    });
                }
            }
            if self.closing && self.pending.is_empty() && in_flight.is_empty() {
                break;
            }
            if self.closing && retry_at.is_some() && in_flight.is_empty() {
                break; // the endpoint fails while we stop: the rest is counted below
            }
            let mut wake = now + Duration::from_secs(1);
            if let Some(t) = self.since {
                wake = wake.min(t + self.s.flush_interval);
            }
            if let Some(t) = retry_at {
                wake = wake.min(t);
            }
            tokio::select! {
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    let Ok((request, sent)) = done else { continue };
                    if let Some(at) = self.settle(request, sent) {
                        retry_at = Some(retry_at.map_or(at, |t: Instant| t.max(at)));
                    }
                }
                _ = inbox.notified() => {}
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        in_flight.abort_all();
        let left = self.pending_events + self.builder_events;
        if left > 0 {
            ExporterStats::add(&self.stats.dropped, left);
            tracing::error!(
                exporter = NAME,
                events = left,
                "OTLP exporter stopped with undelivered events: dropped (counted)"
            );
        }
        self.stats.queue_depth.store(0, Ordering::Relaxed);
        tracing::info!(
            exporter = NAME,
            sent = ExporterStats::get(&self.stats.sent),
            acked = ExporterStats::get(&self.stats.acked),
            dropped = ExporterStats::get(&self.stats.dropped),
            "OTLP exporter stopped"
        );
    }

    /// Books the outcome of one request; returns when to retry after a retryable failure
    /// (the request goes back to the head of the line).
    fn settle(&mut self, request: Request, sent: Sent) -> Option<Instant> {
        let n = request.events();
        match sent {
            Sent::Ok(rejected) => {
                self.pending_events -= n;
                let rejected = rejected.min(n);
                ExporterStats::add(&self.stats.acked, n - rejected);
                if rejected > 0 {
                    ExporterStats::add(&self.stats.failed, rejected);
                    tracing::warn!(exporter = NAME, rejected, "the OTLP endpoint rejected records (partial success; counted in tapio_export_failed_events_total)");
                }
                if self.failing || !self.stats.connected.load(Ordering::Relaxed) {
                    tracing::info!(exporter = NAME, endpoint = %self.s.endpoint, "exporting to the OTLP endpoint");
                }
                self.failing = false;
                self.stats.connected.store(true, Ordering::Relaxed);
                self.backoff.reset();
                None
            }
            Sent::Retry(why) => {
                ExporterStats::add(&self.stats.retried, n);
                self.stats.connected.store(false, Ordering::Relaxed);
                let delay = self.backoff.next_delay();
                if !self.failing || self.backoff.ceiling() >= self.s.backoff.max {
                    tracing::warn!(exporter = NAME, endpoint = %self.s.endpoint, error = %why, retry_in_ms = delay.as_millis() as u64, queued = self.pending_events, "OTLP export failed; retrying");
                }
                self.failing = true;
                self.pending.push_front(request);
                Some(Instant::now() + delay)
            }
            Sent::Refused(why) => {
                self.pending_events -= n;
                ExporterStats::add(&self.stats.dropped, n);
                tracing::error!(exporter = NAME, endpoint = %self.s.endpoint, error = %why, events = n, "the OTLP endpoint refused a request for good: dropped (counted in tapio_export_dropped_events_total)");
                None
            }
        }
    }

    fn push(&mut self, batch: &EventBatch) {
        let observed = tapio_plugin_api::now_unix_nanos();
        for e in batch.iter() {
            if self.since.is_none() {
                self.since = Some(Instant::now());
            }
            if e.event_type == GROUP_TYPE {
                match otlp_map::group_spans(e) {
                    Ok(spans) => self.spans.extend(spans),
                    Err(err) => {
                        ExporterStats::add(&self.stats.protocol_errors, 1);
                        tracing::warn!(exporter = NAME, event = %e.id, error = %err, "correlation group cannot become spans; exported as a log record");
                        self.logs.push(otlp_map::log_record(e, observed));
                    }
                }
            } else {
                self.logs.push(otlp_map::log_record(e, observed));
            }
            self.builder_events += 1;
            if self.logs.len() + self.spans.len() >= self.s.batch_size {
                self.seal();
            }
        }
    }

    /// Turns the records being built into requests, unless memory is full (then they are
    /// dropped and counted).
    fn seal(&mut self) {
        self.since = None;
        let events = std::mem::take(&mut self.builder_events);
        if events == 0 {
            return;
        }
        let logs = std::mem::take(&mut self.logs);
        let spans = std::mem::take(&mut self.spans);
        if self.pending_events + events > self.s.queue_events as u64 {
            ExporterStats::add(&self.stats.dropped, events);
            if self
                .loss_log
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
            {
                self.loss_log = Some(Instant::now());
                tracing::error!(exporter = NAME, events, queue_events = self.s.queue_events, dropped_total = ExporterStats::get(&self.stats.dropped), "OTLP queue full: events dropped (counted in tapio_export_dropped_events_total)");
            }
            return;
        }
        // Events split between the two requests by what they became.
        let span_events = events - logs.len() as u64;
        if !logs.is_empty() {
            let n = logs.len() as u64;
            self.pending.push_back(Request::Logs(
                Shared(Arc::new(ExportLogsServiceRequest {
                    resource_logs: vec![ResourceLogs {
                        resource: Some(self.resource.clone()),
                        scope_logs: vec![ScopeLogs {
                            scope: Some(otlp_map::scope()),
                            log_records: logs,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                })),
                n,
            ));
        }
        if !spans.is_empty() {
            self.pending.push_back(Request::Traces(
                Shared(Arc::new(ExportTraceServiceRequest {
                    resource_spans: vec![ResourceSpans {
                        resource: Some(self.resource.clone()),
                        scope_spans: vec![ScopeSpans {
                            scope: Some(otlp_map::scope()),
                            spans,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                })),
                span_events,
            ));
        }
        self.pending_events += events;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_receiver_is_recognised_in_every_spelling() {
        for endpoint in [
            "http://localhost:4317",
            "http://127.0.0.1:4317",
            "http://[::1]:4317",
            "localhost:4317",
        ] {
            assert!(same_local_address(endpoint, "127.0.0.1:4317"), "{endpoint}");
            assert!(same_local_address(endpoint, "0.0.0.0:4317"), "{endpoint}");
        }
        assert!(!same_local_address(
            "http://localhost:14317",
            "127.0.0.1:4317"
        ));
        assert!(!same_local_address(
            "http://otel.example:4317",
            "127.0.0.1:4317"
        ));
    }

    #[test]
    fn tls_follows_the_scheme_and_a_plain_endpoint_with_tls_settings_is_refused() {
        let mut c = HostConfig::default();
        c.export.otel_endpoint = "https://otel.example:4317".into();
        let s = OtlpSettings::from_config(&c, "n").unwrap();
        assert!(s.tls.is_some() && s.endpoint.starts_with("https://"));
        c.export.otel_endpoint = "otel.example:4317".into();
        let s = OtlpSettings::from_config(&c, "n").unwrap();
        assert!(s.tls.is_none() && s.endpoint == "http://otel.example:4317");
        c.export.otlp.tls.ca = Some("/etc/tapio/ca.pem".into());
        let s = OtlpSettings::from_config(&c, "n").unwrap();
        assert_eq!(s.endpoint, "https://otel.example:4317", "a CA means TLS");
        c.export.otel_endpoint = "http://otel.example:4317".into();
        let err = OtlpSettings::from_config(&c, "n").unwrap_err().to_string();
        assert!(
            err.contains("export.otlp.tls") && err.contains("https://"),
            "{err}"
        );
    }

    #[test]
    fn the_default_endpoint_is_refused_while_the_otel_plugin_may_listen_there() {
        let mut c = HostConfig::default();
        c.export.otlp.enabled = true;
        let err = OtlpSettings::from_config(&c, "n").unwrap_err().to_string();
        assert!(err.contains("own OTLP receiver"), "{err}");
        c.export.otel_endpoint = "localhost:14317".into();
        assert!(OtlpSettings::from_config(&c, "n").is_ok());
        c.export.otel_endpoint = "localhost:4317".into();
        c.collectors.insert(
            "otel".into(),
            crate::config::CollectorSection {
                enabled: Some(false),
                config: None,
            },
        );
        assert!(OtlpSettings::from_config(&c, "n").is_ok());
    }
}
