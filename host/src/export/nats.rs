//! The NATS JetStream exporter (`orchestrator.nats`): every event as a JSON message (the
//! keys of the host's JSON Lines sink) on `<subject>.<collector>`, with `Nats-Msg-Id` set to
//! the event id so the stream de-duplicates resends within its duplicate window.
//!
//! Its own thread and single-threaded runtime connect (user/password, token, TLS and
//! mutual TLS when configured), create the stream if missing (covering `<subject>.>`; an
//! existing stream that does not cover it gets the subject added), publish with at most
//! `max_in_flight` publish acks awaited, and requeue every publish whose ack fails (timeout,
//! server restart) with backoff. Memory holds at most `queue_events` events: past it new
//! events are dropped and counted.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use bytes::Bytes;

use crate::config::HostConfig;
use crate::export::backoff::Backoff;
use crate::export::config::NatsConfig;
use crate::export::queue::{Inbox, QueueSink};
use crate::export::stats::ExporterStats;
use crate::export::ExportError;
use crate::sink::json::JsonEvent;
use crate::sink::EventBatch;

const NAME: &str = "nats";
/// How long a stopping exporter keeps publishing before it counts the rest as dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Everything the NATS exporter needs.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// The `orchestrator.nats` section.
    pub config: NatsConfig,
    /// The node's host name (in each message).
    pub host: String,
}

impl NatsSettings {
    /// Checks `orchestrator.nats`.
    pub fn from_config(c: &HostConfig, host: &str) -> Result<Self, ExportError> {
        let n = &c.orchestrator.nats;
        let bad = |message: String| ExportError::Config {
            exporter: NAME,
            message,
        };
        if n.url.trim().is_empty() {
            return Err(bad("orchestrator.nats.url is empty".into()));
        }
        if n.subject.is_empty()
            || n.subject
                .split('.')
                .any(|t| t.is_empty() || t.contains(['*', '>', ' ']))
        {
            return Err(bad(format!(
                "orchestrator.nats.subject {:?} must be dotted tokens without wildcards",
                n.subject
            )));
        }
        if n.stream.is_empty() || n.stream.contains(['.', ' ', '*', '>']) {
            return Err(bad(format!(
                "orchestrator.nats.stream {:?}: no spaces, dots or wildcards",
                n.stream
            )));
        }
        retention(&n.retention).map_err(bad)?;
        if n.tls_cert.is_some() != n.tls_key.is_some() {
            return Err(bad(
                "mutual TLS needs both orchestrator.nats.tls_cert and tls_key".into(),
            ));
        }
        if n.user.is_some() != n.password.is_some() {
            return Err(bad("orchestrator.nats.user and password go together".into()));
        }
        Ok(NatsSettings {
            config: n.clone(),
            host: host.to_owned(),
        })
    }
}

fn retention(name: &str) -> Result<stream::RetentionPolicy, String> {
    match name {
        "limits" => Ok(stream::RetentionPolicy::Limits),
        "interest" => Ok(stream::RetentionPolicy::Interest),
        "work_queue" | "workqueue" => Ok(stream::RetentionPolicy::WorkQueue),
        other => Err(format!(
            "orchestrator.nats.retention {other:?}: one of limits, interest, work_queue"
        )),
    }
}

/// The subject token of a collector name (NATS tokens have no dots, spaces or wildcards).
pub fn subject_token(source: &str) -> String {
    source
        .chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Whether NATS subject `pattern` (with `*` and `>` wildcards) matches `subject`.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Starts the exporter thread; returns its sink and counters.
pub fn spawn(settings: NatsSettings) -> Result<(QueueSink, Arc<ExporterStats>), ExportError> {
    let stats = Arc::new(ExporterStats::new(NAME));
    let inbox = Inbox::new(settings.config.queue_events.max(1), Arc::clone(&stats));
    let mut exporter = Exporter {
        backoff: Backoff::new(settings.config.backoff),
        s: settings,
        stats: Arc::clone(&stats),
        inbox: Arc::clone(&inbox),
        pending: VecDeque::new(),
        closing: false,
        covered: HashSet::new(),
        loss_log: None,
    };
    let thread = std::thread::Builder::new()
        .name("export-nats".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(exporter.run()),
                Err(e) => {
                    tracing::error!(exporter = NAME, error = %e, "cannot start the exporter runtime")
                }
            }
        })
        .map_err(|source| ExportError::Thread {
            exporter: NAME,
            source,
        })?;
    Ok((QueueSink::new(NAME, inbox, thread), stats))
}

/// One message to publish.
#[derive(Clone)]
struct Msg {
    subject: String,
    id: String,
    payload: Bytes,
    resend: bool,
}

type AckResult = (Msg, Result<jetstream::publish::PublishAck, String>);

struct Exporter {
    s: NatsSettings,
    stats: Arc<ExporterStats>,
    inbox: Arc<Inbox>,
    pending: VecDeque<Msg>,
    closing: bool,
    /// Subjects known to be covered by the stream.
    covered: HashSet<String>,
    backoff: Backoff,
    loss_log: Option<Instant>,
}

impl Exporter {
    async fn run(&mut self) {
        let inbox = Arc::clone(&self.inbox);
        let mut grace: Option<Instant> = None;
        'outer: loop {
            self.intake();
            if self.closing && self.pending.is_empty() {
                break;
            }
            let js = match self.connect().await {
                Ok(js) => js,
                Err(e) => {
                    let delay = self.backoff.next_delay();
                    tracing::warn!(exporter = NAME, url = %self.s.config.url, error = %e, retry_in_ms = delay.as_millis() as u64, queued = self.pending.len(), "cannot reach NATS JetStream; retrying");
                    if self.closing {
                        break;
                    }
                    self.idle(delay).await;
                    continue;
                }
            };
            self.stats.connected.store(true, Ordering::Relaxed);
            tracing::info!(exporter = NAME, url = %self.s.config.url, stream = %self.s.config.stream, "connected to NATS JetStream");
            let mut in_flight = tokio::task::JoinSet::<AckResult>::new();
            let mut retry_at: Option<Instant> = None;
            loop {
                self.intake();
                if self.closing {
                    let deadline = *grace.get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
                    if (self.pending.is_empty() && in_flight.is_empty())
                        || Instant::now() >= deadline
                    {
                        while let Some(Ok((msg, _))) = in_flight.try_join_next() {
                            self.pending.push_front(msg);
                        }
                        in_flight.abort_all();
                        // Aborted publishes may have been stored: counted lost anyway.
                        break 'outer;
                    }
                }
                if retry_at.is_none_or(|t| Instant::now() >= t) {
                    retry_at = None;
                    while in_flight.len() < self.s.config.max_in_flight.max(1) {
                        let Some(msg) = self.pending.pop_front() else {
                            break;
                        };
                        if let Err(e) = self.ensure_covered(&js, &msg.subject).await {
                            self.pending.push_front(msg);
                            tracing::warn!(exporter = NAME, error = %e, "cannot set up the JetStream stream; retrying");
                            retry_at = Some(Instant::now() + self.backoff.next_delay());
                            break;
                        }
                        match self.publish(&js, &msg).await {
                            Ok(ack) => {
                                ExporterStats::add(&self.stats.sent, 1);
                                if msg.resend {
                                    ExporterStats::add(&self.stats.retried, 1);
                                }
                                in_flight.spawn(async move {
                                    let r = ack.await.map_err(|e| e.to_string());
                                    (msg, r)
                                });
                            }
                            Err(e) => {
                                self.pending.push_front(Msg {
                                    resend: true,
                                    ..msg
                                });
                                let delay = self.backoff.next_delay();
                                tracing::warn!(exporter = NAME, error = %e, retry_in_ms = delay.as_millis() as u64, "NATS publish failed; retrying");
                                retry_at = Some(Instant::now() + delay);
                                break;
                            }
                        }
                    }
                }
                self.update_depth(in_flight.len());
                let wake = retry_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
                tokio::select! {
                    Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                        // Settle every finished publish at once (one loop turn per wake-up,
                        // not per message).
                        let mut next = Some(done);
                        while let Some(done) = next.take() {
                            if let Ok((msg, result)) = done {
                                self.settle(msg, result, &mut retry_at);
                            }
                            next = in_flight.try_join_next();
                        }
                    }
                    _ = inbox.notified() => {}
                    _ = tokio::time::sleep_until(wake.into()) => {}
                }
            }
        }
        self.intake();
        let left = self.pending.len() as u64;
        if left > 0 {
            ExporterStats::add(&self.stats.dropped, left);
            tracing::error!(
                exporter = NAME,
                events = left,
                "NATS exporter stopped with unpublished events: dropped (counted)"
            );
        }
        self.update_depth(0);
        tracing::info!(
            exporter = NAME,
            sent = ExporterStats::get(&self.stats.sent),
            acked = ExporterStats::get(&self.stats.acked),
            dropped = ExporterStats::get(&self.stats.dropped),
            "NATS exporter stopped"
        );
    }

    /// Books one publish ack (or its failure: the message goes back to the head of the line).
    fn settle(
        &mut self,
        msg: Msg,
        result: Result<jetstream::publish::PublishAck, String>,
        retry_at: &mut Option<Instant>,
    ) {
        match result {
            Ok(ack) => {
                ExporterStats::add(&self.stats.acked, 1);
                if ack.duplicate {
                    tracing::debug!(exporter = NAME, id = %msg.id, "JetStream recognised a resend by Nats-Msg-Id");
                }
                self.backoff.reset();
            }
            Err(e) => {
                if retry_at.is_none() {
                    let delay = self.backoff.next_delay();
                    tracing::warn!(exporter = NAME, error = %e, retry_in_ms = delay.as_millis() as u64, "no JetStream publish ack; republishing (Nats-Msg-Id de-duplicates)");
                    *retry_at = Some(Instant::now() + delay);
                }
                self.stats.connected.store(false, Ordering::Relaxed);
                self.pending.push_front(Msg {
                    resend: true,
                    ..msg
                });
            }
        }
    }

    async fn idle(&mut self, delay: Duration) {
        let inbox = Arc::clone(&self.inbox);
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline && !self.closing {
            tokio::select! {
                _ = inbox.notified() => self.intake(),
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    async fn connect(&mut self) -> Result<jetstream::Context, String> {
        let c = &self.s.config;
        let mut opts = async_nats::ConnectOptions::new()
            .name(format!("tapio-collector@{}", self.s.host))
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!(exporter = NAME, "disconnected from NATS; reconnecting")
                    }
                    async_nats::Event::Connected => {
                        tracing::info!(exporter = NAME, "reconnected to NATS")
                    }
                    other => tracing::debug!(exporter = NAME, event = %other, "NATS event"),
                }
            });
        if let (Some(u), Some(p)) = (&c.user, &c.password) {
            opts = opts.user_and_password(u.clone(), p.clone());
        }
        if let Some(t) = &c.token {
            opts = opts.token(t.clone());
        }
        if let Some(ca) = &c.tls_ca {
            opts = opts.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&c.tls_cert, &c.tls_key) {
            opts = opts.add_client_certificate(cert.clone(), key.clone());
        }
        let connect = opts.connect(c.url.as_str());
        let client = tokio::select! {
            r = connect => r.map_err(|e| crate::export::grpc::error_chain(&e))?,
            _ = tokio::time::sleep(Duration::from_secs(10)) => return Err("connect timed out".into()),
        };
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .max_ack_inflight(c.max_in_flight.max(1))
            .build(client);
        self.covered.clear();
        Ok(js)
    }

    /// Creates the stream if missing; adds `<subject>.>` to a stream that does not cover
    /// `subject`.
    async fn ensure_covered(
        &mut self,
        js: &jetstream::Context,
        subject: &str,
    ) -> Result<(), String> {
        if self.covered.contains(subject) {
            return Ok(());
        }
        let c = &self.s.config;
        let wildcard = format!("{}.>", c.subject);
        let config = stream::Config {
            name: c.stream.clone(),
            subjects: vec![wildcard.clone()],
            retention: retention(&c.retention)?,
            max_age: c.max_age,
            duplicate_window: c.duplicate_window,
            ..Default::default()
        };
        let mut s = js
            .get_or_create_stream(config)
            .await
            .map_err(|e| format!("stream {}: {e}", c.stream))?;
        let info = s
            .info()
            .await
            .map_err(|e| format!("stream {}: {e}", c.stream))?;
        if !info
            .config
            .subjects
            .iter()
            .any(|p| subject_matches(p, subject))
        {
            let mut updated = info.config.clone();
            updated.subjects.push(wildcard.clone());
            js.update_stream(updated).await.map_err(|e| {
                format!(
                    "stream {} does not cover {subject} and cannot be updated: {e}",
                    c.stream
                )
            })?;
            tracing::warn!(exporter = NAME, stream = %c.stream, subject = %wildcard, "the existing stream did not cover our subjects; added");
        }
        self.covered.insert(subject.to_owned());
        Ok(())
    }

    async fn publish(
        &self,
        js: &jetstream::Context,
        msg: &Msg,
    ) -> Result<PublishAckFuture, String> {
        js.send_publish(
            msg.subject.clone(),
            jetstream::message::PublishMessage::build()
                .payload(msg.payload.clone())
                .message_id(&msg.id),
        )
        .await
        .map_err(|e| e.to_string())
    }

    fn intake(&mut self) {
        let mut taken: Vec<EventBatch> = Vec::new();
        if self.inbox.take(&mut taken) {
            self.closing = true;
        }
        let cap = self.s.config.queue_events.max(1);
        for batch in taken {
            for e in batch.iter() {
                if self.pending.len() >= cap {
                    ExporterStats::add(&self.stats.dropped, 1);
                    if self
                        .loss_log
                        .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
                    {
                        self.loss_log = Some(Instant::now());
                        tracing::error!(exporter = NAME, queue_events = cap, dropped_total = ExporterStats::get(&self.stats.dropped), "NATS queue full: events dropped (counted in tapio_export_dropped_events_total)");
                    }
                    continue;
                }
                let payload = serde_json::to_vec(&JsonEvent {
                    event: e,
                    host: &self.s.host,
                })
                .unwrap_or_default();
                self.pending.push_back(Msg {
                    subject: format!("{}.{}", self.s.config.subject, subject_token(e.source)),
                    id: e.id.to_string(),
                    payload: Bytes::from(payload),
                    resend: false,
                });
            }
        }
        self.update_depth(0);
    }

    fn update_depth(&self, in_flight: usize) {
        self.stats.queue_depth.store(
            (self.pending.len() + in_flight + self.inbox.len()) as u64,
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_wildcards() {
        assert!(subject_matches("tapio.events.>", "tapio.events.loadgen"));
        assert!(subject_matches("tapio.*.loadgen", "tapio.events.loadgen"));
        assert!(!subject_matches("tapio.events.>", "tapio.events"));
        assert!(!subject_matches("tapio.other.>", "tapio.events.x"));
        assert!(subject_matches(">", "a.b"));
        assert_eq!(subject_token("storage io.v2"), "storage_io_v2");
    }

    #[test]
    fn bad_settings_are_refused_with_the_field() {
        let mut c = HostConfig::default();
        c.orchestrator.nats.subject = "tapio.*".into();
        let e = NatsSettings::from_config(&c, "h").unwrap_err().to_string();
        assert!(e.contains("orchestrator.nats.subject"), "{e}");
        let mut c = HostConfig::default();
        c.orchestrator.nats.retention = "forever".into();
        let e = NatsSettings::from_config(&c, "h").unwrap_err().to_string();
        assert!(e.contains("retention"), "{e}");
        assert!(NatsSettings::from_config(&HostConfig::default(), "h").is_ok());
    }
}
