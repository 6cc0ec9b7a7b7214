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

use std::fmt::Write as _;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};

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
/// A publish not acked within this time is sent again (JetStream de-duplicates by
/// `Nats-Msg-Id`).
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

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
        subjects: Vec::new(),
        loss_log: None,
    };
    let sink = super::spawn_exporter(
        NAME,
        "export-nats",
        Arc::clone(&inbox),
        move || async move { exporter.run().await },
    )?;
    Ok((sink, stats))
}

/// One message to publish.
#[derive(Clone)]
struct Msg {
    subject: async_nats::Subject,
    id: String,
    payload: Bytes,
    resend: bool,
}

/// Publishes awaiting their ack, by token (the last token of the reply subject). Tokens
/// grow by one per publish and acks come back mostly in order, so this is a deque with the
/// token of its front; settled slots in the middle stay `None` until the front passes them.
#[derive(Default)]
struct AckWindow {
    slots: VecDeque<Option<(Msg, Instant)>>,
    /// Token of `slots[0]`.
    base: u64,
    /// Slots still `Some`.
    live: usize,
}

impl AckWindow {
    fn next_token(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    fn push(&mut self, msg: Msg, sent: Instant) {
        self.slots.push_back(Some((msg, sent)));
        self.live += 1;
    }

    fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn take(&mut self, token: u64) -> Option<Msg> {
        let i = usize::try_from(token.checked_sub(self.base)?).ok()?;
        let (msg, _) = self.slots.get_mut(i)?.take()?;
        self.live -= 1;
        self.trim();
        Some(msg)
    }

    /// When the oldest unacked publish was sent.
    fn oldest(&self) -> Option<Instant> {
        self.slots.iter().flatten().map(|(_, t)| *t).next()
    }

    /// Removes the publishes sent before `cutoff`, oldest first.
    fn expire(&mut self, cutoff: Instant) -> Vec<Msg> {
        let mut out = Vec::new();
        for slot in self.slots.iter_mut() {
            match slot {
                Some((_, sent)) if *sent < cutoff => {
                    out.extend(slot.take().map(|(m, _)| m));
                }
                Some(_) => break,
                None => {}
            }
        }
        self.live -= out.len();
        self.trim();
        out
    }

    /// Removes every unacked publish, oldest first.
    fn drain(&mut self) -> Vec<Msg> {
        self.base += self.slots.len() as u64;
        let out: Vec<Msg> = self.slots.drain(..).flatten().map(|(m, _)| m).collect();
        self.live = 0;
        out
    }

    fn trim(&mut self) {
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
    }
}

/// Why JetStream did not store a publish.
struct AckFailure {
    message: String,
    /// No stream listens on the subject.
    no_stream: bool,
}

/// Reads a reply on the ack subject: `Ok(duplicate)` for a stored message.
fn ack_outcome(reply: &async_nats::Message) -> Result<bool, AckFailure> {
    if reply.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
        return Err(AckFailure {
            message: "no JetStream stream answers on the subject (no responders)".into(),
            no_stream: true,
        });
    }
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        seq: u64,
        #[serde(default)]
        duplicate: bool,
        error: Option<ErrorBody>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        code: u16,
        #[serde(default)]
        description: String,
    }
    match serde_json::from_slice::<Body>(&reply.payload) {
        Ok(Body {
            error: Some(err), ..
        }) => Err(AckFailure {
            message: format!("JetStream error {}: {}", err.code, err.description),
            no_stream: false,
        }),
        Ok(Body { seq, duplicate, .. }) if seq > 0 => Ok(duplicate),
        Ok(_) | Err(_) => Err(AckFailure {
            message: format!(
                "malformed publish ack: {}",
                String::from_utf8_lossy(&reply.payload[..reply.payload.len().min(200)])
            ),
            no_stream: false,
        }),
    }
}

struct Exporter {
    s: NatsSettings,
    stats: Arc<ExporterStats>,
    inbox: Arc<Inbox>,
    pending: VecDeque<Msg>,
    closing: bool,
    /// Subjects known to be covered by the stream.
    covered: HashSet<String>,
    /// `<subject>.<collector>` by collector.
    subjects: Vec<(&'static str, async_nats::Subject)>,
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
            let (client, js, mut acks, prefix) = match self.connect().await {
                Ok(c) => c,
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
            let mut window = AckWindow::default();
            let mut retry_at: Option<Instant> = None;
            let mut reply = String::with_capacity(prefix.len() + 24);
            loop {
                self.intake();
                if self.closing {
                    let deadline = *grace.get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
                    if (self.pending.is_empty() && window.is_empty()) || Instant::now() >= deadline
                    {
                        // Unacked publishes may have been stored: counted lost anyway.
                        self.requeue(window.drain());
                        break 'outer;
                    }
                }
                let expired = window.expire(Instant::now() - ACK_TIMEOUT);
                if !expired.is_empty() {
                    if retry_at.is_none() {
                        let delay = self.backoff.next_delay();
                        tracing::warn!(exporter = NAME, unacked = expired.len(), timeout_ms = ACK_TIMEOUT.as_millis() as u64, retry_in_ms = delay.as_millis() as u64, "no JetStream publish ack in time; republishing (Nats-Msg-Id de-duplicates)");
                        retry_at = Some(Instant::now() + delay);
                    }
                    self.stats.connected.store(false, Ordering::Relaxed);
                    self.requeue(expired);
                }
                if retry_at.is_none_or(|t| Instant::now() >= t) {
                    retry_at = None;
                    while window.live < self.s.config.max_in_flight.max(1) {
                        let Some(msg) = self.pending.pop_front() else {
                            break;
                        };
                        if let Err(e) = self.ensure_covered(&js, &msg.subject).await {
                            self.pending.push_front(msg);
                            tracing::warn!(exporter = NAME, error = %e, "cannot set up the JetStream stream; retrying");
                            retry_at = Some(Instant::now() + self.backoff.next_delay());
                            break;
                        }
                        let token = window.next_token();
                        reply.clear();
                        let _ = write!(reply, "{prefix}.{token}");
                        let mut headers = async_nats::HeaderMap::new();
                        headers.insert(async_nats::header::NATS_MESSAGE_ID, msg.id.as_str());
                        match client
                            .publish_with_reply_and_headers(
                                msg.subject.clone(),
                                reply.clone(),
                                headers,
                                msg.payload.clone(),
                            )
                            .await
                        {
                            Ok(()) => {
                                ExporterStats::add(&self.stats.sent, 1);
                                if msg.resend {
                                    ExporterStats::add(&self.stats.retried, 1);
                                }
                                window.push(msg, Instant::now());
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
                self.update_depth(window.live);
                let wake = [retry_at, window.oldest().map(|t| t + ACK_TIMEOUT)]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
                tokio::select! {
                    Some(ack) = acks.next() => {
                        // Settle every ack already received at once (one loop turn per
                        // wake-up, not per message).
                        let mut next = Some(ack);
                        while let Some(ack) = next.take() {
                            self.settle(&mut window, &prefix, &ack, &mut retry_at);
                            next = acks.next().now_or_never().flatten();
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

    /// Puts unacked messages back at the head of the line, in their order, marked as
    /// resends.
    fn requeue(&mut self, msgs: Vec<Msg>) {
        for msg in msgs.into_iter().rev() {
            self.pending.push_front(Msg {
                resend: true,
                ..msg
            });
        }
    }

    /// Books one reply on our ack subject: a JetStream publish ack, a JetStream error, or
    /// the server's "no responders" status (no stream listens on the subject). A failed
    /// message goes back to the head of the line.
    fn settle(
        &mut self,
        window: &mut AckWindow,
        prefix: &str,
        reply: &async_nats::Message,
        retry_at: &mut Option<Instant>,
    ) {
        let Some(token) = reply
            .subject
            .strip_prefix(prefix)
            .and_then(|t| t.strip_prefix('.'))
            .and_then(|t| t.parse::<u64>().ok())
        else {
            return;
        };
        // A reply for a publish already given up on (timed out and requeued): the resend
        // is acked by its own reply.
        let Some(msg) = window.take(token) else {
            return;
        };
        match ack_outcome(reply) {
            Ok(duplicate) => {
                ExporterStats::add(&self.stats.acked, 1);
                if duplicate {
                    tracing::debug!(exporter = NAME, id = %msg.id, "JetStream recognised a resend by Nats-Msg-Id");
                }
                self.stats.connected.store(true, Ordering::Relaxed);
                self.backoff.reset();
            }
            Err(e) => {
                if e.no_stream {
                    // The stream is gone (deleted by an operator?): set it up again.
                    self.covered.clear();
                }
                if retry_at.is_none() {
                    let delay = self.backoff.next_delay();
                    tracing::warn!(exporter = NAME, error = %e.message, retry_in_ms = delay.as_millis() as u64, "JetStream refused a publish; republishing (Nats-Msg-Id de-duplicates)");
                    *retry_at = Some(Instant::now() + delay);
                }
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

    /// Connects; returns the client, a JetStream context for managing the stream, our
    /// subscription to `<prefix>.*` where every publish ack arrives, and that prefix.
    async fn connect(
        &mut self,
    ) -> Result<
        (
            async_nats::Client,
            jetstream::Context,
            async_nats::Subscriber,
            String,
        ),
        String,
    > {
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
        let connect = opts
            .subscription_capacity(c.max_in_flight.max(1) * 2 + 1024)
            .connect(c.url.as_str());
        let client = tokio::select! {
            r = connect => r.map_err(|e| crate::export::error_chain(&e))?,
            _ = tokio::time::sleep(Duration::from_secs(10)) => return Err("connect timed out".into()),
        };
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .build(client.clone());
        // One subscription for every publish ack (the reply subject's last token is the
        // publish's place in the ack window), instead of a request and a timer per message.
        let prefix = client.new_inbox();
        let acks = client
            .subscribe(format!("{prefix}.*"))
            .await
            .map_err(|e| format!("cannot subscribe to the ack subject: {e}"))?;
        self.covered.clear();
        Ok((client, js, acks, prefix))
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
                let subject = self.subject_of(e.source);
                self.pending.push_back(Msg {
                    subject,
                    id: e.id.to_string(),
                    payload: Bytes::from(payload),
                    resend: false,
                });
            }
        }
        self.update_depth(0);
    }

    /// `<subject>.<collector>`, made once per collector.
    fn subject_of(&mut self, source: &'static str) -> async_nats::Subject {
        if let Some((_, subject)) = self.subjects.iter().find(|(s, _)| *s == source) {
            return subject.clone();
        }
        let subject = async_nats::Subject::from(format!(
            "{}.{}",
            self.s.config.subject,
            subject_token(source)
        ));
        self.subjects.push((source, subject.clone()));
        subject
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

    fn msg(id: &str) -> Msg {
        Msg {
            subject: async_nats::Subject::from_static("tapio.events.x"),
            id: id.into(),
            payload: Bytes::new(),
            resend: false,
        }
    }

    #[test]
    fn the_ack_window_settles_out_of_order_and_expires_oldest_first() {
        let mut w = AckWindow::default();
        let t0 = Instant::now();
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            assert_eq!(w.next_token(), i as u64);
            w.push(msg(id), t0 + Duration::from_secs(i as u64));
        }
        assert_eq!(w.take(1).map(|m| m.id), Some("b".into()));
        assert!(w.take(1).is_none(), "a token settles once");
        assert!(w.take(99).is_none());
        assert_eq!(w.live, 3);
        assert_eq!(w.take(0).map(|m| m.id), Some("a".into()));
        // The front moved past the settled slots.
        assert_eq!((w.base, w.slots.len()), (2, 2));
        assert_eq!(w.oldest(), Some(t0 + Duration::from_secs(2)));
        let expired: Vec<String> = w
            .expire(t0 + Duration::from_millis(3500))
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(expired, ["c", "d"]);
        assert!(w.is_empty());
        assert!(
            w.take(2).is_none(),
            "a late ack of an expired publish is ignored"
        );
        assert_eq!(w.next_token(), 4, "tokens never repeat");
    }

    fn reply(payload: &'static str, status: Option<async_nats::StatusCode>) -> async_nats::Message {
        async_nats::Message {
            subject: async_nats::Subject::from_static("_INBOX.x.1"),
            reply: None,
            payload: Bytes::from_static(payload.as_bytes()),
            headers: None,
            status,
            description: None,
            length: payload.len(),
        }
    }

    #[test]
    fn acks_errors_and_no_responders_are_told_apart() {
        assert!(matches!(
            ack_outcome(&reply(r#"{"stream":"S","seq":7}"#, None)),
            Ok(false)
        ));
        assert!(matches!(
            ack_outcome(&reply(r#"{"stream":"S","seq":7,"duplicate":true}"#, None)),
            Ok(true)
        ));
        let e = ack_outcome(&reply(
            r#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#,
            None,
        ))
        .unwrap_err();
        assert!(e.message.contains("maximum messages exceeded") && !e.no_stream);
        let e = ack_outcome(&reply("", Some(async_nats::StatusCode::NO_RESPONDERS))).unwrap_err();
        assert!(e.no_stream, "{}", e.message);
        let e = ack_outcome(&reply("not json", None)).unwrap_err();
        assert!(e.message.contains("malformed"), "{}", e.message);
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
