//! The gRPC exporter: `tapio.v1.CollectorService/StreamEvents` to the Tapio server.
//!
//! One thread with a single-threaded tokio runtime owns everything: it cuts the pipeline's
//! batches into export batches (`export.batch_size`, `export.flush_interval`, or the
//! server's `FlowControl`), keeps each batch until the server acks it (at most
//! `max_in_flight` unacked), resends the unacked ones after a reconnect, and past
//! `memory_events` in memory appends new batches to the disk [`Spool`], replayed in order
//! once memory has room. Reconnects back off exponentially with jitter. Every event is
//! accounted for in [`ExporterStats`]: acked, failed (by the server), dropped (with a log
//! line), or still queued/spooled.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};

mod flow;
mod settings;

pub use settings::GrpcSettings;

use crate::event::Event;
use crate::export::backoff::Backoff;
use crate::export::config::Compression;
use crate::export::encode::{append_event, Outgoing};
use crate::export::proto as pb;
use crate::export::queue::{Inbox, QueueSink};
use crate::export::spool::{Corrupt, Spool};
use crate::export::stats::ExporterStats;
use crate::export::{error_chain, ExportError};
use flow::Bucket;
use settings::endpoint;

const NAME: &str = "grpc";
/// A batch not acked within this time ends the call (the server is stuck); it is resent.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping exporter keeps trying to deliver before it spools the rest.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Starts the exporter thread; returns its sink and counters.
pub fn spawn(settings: GrpcSettings) -> Result<(QueueSink, Arc<ExporterStats>), ExportError> {
    let stats = Arc::new(ExporterStats::new(NAME));
    let inbox = Inbox::new(
        settings
            .memory_events
            .max(settings.batch_size * 8)
            .max(10_000),
        Arc::clone(&stats),
    );
    let endpoint = endpoint(&settings)?;
    let spool = settings.spool.as_ref().and_then(|s| match Spool::open(s.clone()) {
        Ok((spool, corrupt)) => {
            if corrupt.events > 0 {
                ExporterStats::add(&stats.dropped, corrupt.events);
            }
            let unread = spool.unread_events();
            if unread > 0 {
                tracing::info!(exporter = NAME, dir = %s.dir.display(), events = unread, bytes = spool.bytes(), "spooled events found; they are sent first once the server is reachable");
            }
            Some(spool)
        }
        Err(e) => {
            tracing::error!(exporter = NAME, error = %e, "cannot open the spool: past the memory bound events are dropped (counted)");
            None
        }
    });
    let mut exporter = Exporter {
        backoff: Backoff::new(settings.backoff),
        batch_size: settings.batch_size,
        interval: settings.flush_interval,
        compression: match settings.compression {
            Compression::Gzip => Some(CompressionEncoding::Gzip),
            Compression::Zstd => Some(CompressionEncoding::Zstd),
            Compression::None => None,
        },
        s: settings,
        stats: Arc::clone(&stats),
        inbox: Arc::clone(&inbox),
        endpoint,
        spool,
        builder: Vec::new(),
        builder_events: 0,
        scratch: Vec::new(),
        builder_since: None,
        ready: VecDeque::new(),
        ready_events: 0,
        in_flight: VecDeque::new(),
        flight_events: 0,
        next_seq: 0,
        closing: false,
        bucket: None,
        instance_id: format!("{:016x}", fastrand::u64(..)),
        loss_log: None,
        taken: Vec::new(),
    };
    let sink = super::spawn_exporter(
        NAME,
        "export-grpc",
        Arc::clone(&inbox),
        move || async move { exporter.run().await },
    )?;
    Ok((sink, stats))
}

/// A batch on its way: in memory, maybe read back from the spool.
struct Pending {
    msg: Outgoing,
    events: u64,
    /// The spool segment it was read from (acked there once the server acks it).
    spool_segment: Option<u64>,
    /// Sent on an earlier call already.
    resend: bool,
    sent_at: Instant,
}

/// Why a call ended.
enum End {
    /// Everything delivered during shutdown (or the grace ran out).
    Done,
    /// Reconnect after at least this long (None: backoff).
    Retry(Option<Duration>),
}

struct Exporter {
    s: GrpcSettings,
    stats: Arc<ExporterStats>,
    inbox: Arc<Inbox>,
    endpoint: Endpoint,
    spool: Option<Spool>,
    /// Events of the batch being built, and when its first event arrived.
    /// Encoded events of the batch being built (see [`crate::export::encode`]).
    builder: Vec<u8>,
    builder_events: usize,
    scratch: Vec<u8>,
    builder_since: Option<Instant>,
    ready: VecDeque<Pending>,
    ready_events: u64,
    in_flight: VecDeque<(u64, Pending)>,
    flight_events: u64,
    next_seq: u64,
    closing: bool,
    /// Effective batch size and interval (config, or the server's directive).
    batch_size: usize,
    interval: Duration,
    bucket: Option<Bucket>,
    compression: Option<CompressionEncoding>,
    backoff: Backoff,
    instance_id: String,
    loss_log: Option<Instant>,
    taken: Vec<crate::sink::EventBatch>,
}

impl Exporter {
    async fn run(&mut self) {
        loop {
            if self.closing {
                break;
            }
            let end = match self.connect().await {
                Some(channel) => self.call(channel).await,
                None if self.closing => End::Done,
                None => End::Retry(None),
            };
            self.stats.connected.store(false, Ordering::Relaxed);
            self.requeue_in_flight();
            let retry_after = match end {
                End::Done => break,
                End::Retry(after) => after,
            };
            let delay = self
                .backoff
                .next_delay()
                .max(retry_after.unwrap_or_default());
            tracing::info!(exporter = NAME, server = %self.s.uri, retry_in_ms = delay.as_millis() as u64, queued = self.memory_events(), spooled = self.spool.as_ref().map_or(0, |s| s.unread_events()), "retrying the Tapio server");
            self.idle_until(Instant::now() + delay).await;
        }
        self.finish();
    }

    /// Waits until `deadline` while taking in events (so the inbox never fills); returns
    /// early when the inbox closes.
    async fn idle_until(&mut self, deadline: Instant) {
        let inbox = Arc::clone(&self.inbox);
        loop {
            self.intake();
            if self.closing || Instant::now() >= deadline {
                return;
            }
            let wake = self.flush_deadline().map_or(deadline, |f| f.min(deadline));
            tokio::select! {
                _ = inbox.notified() => {}
                _ = tokio::time::sleep_until(wake.into()) => self.seal_if_due(),
            }
        }
    }

    /// One connection attempt, taking in events meanwhile.
    async fn connect(&mut self) -> Option<Channel> {
        let endpoint = self.endpoint.clone();
        let connect = endpoint.connect();
        tokio::pin!(connect);
        let inbox = Arc::clone(&self.inbox);
        loop {
            let wake = self
                .flush_deadline()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                r = &mut connect => match r {
                    Ok(channel) => return Some(channel),
                    Err(e) => {
                        tracing::warn!(exporter = NAME, server = %self.s.uri, error = %error_chain(&e), "cannot connect to the Tapio server");
                        return None;
                    }
                },
                _ = inbox.notified() => {
                    self.intake();
                    if self.closing {
                        return None;
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => self.seal_if_due(),
            }
        }
    }

    /// One `StreamEvents` call on `channel`, until it fails or the exporter is done.
    async fn call(&mut self, channel: Channel) -> End {
        let (tx, rx) = mpsc::channel::<Outgoing>(self.s.max_in_flight + 2);
        let hello = Outgoing::Hello(pb::Hello {
            node: self.s.host.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            instance_id: self.instance_id.clone(),
        });
        let _ = tx.try_send(hello);
        let call = stream_events(channel, self.compression, rx);
        tokio::pin!(call);
        let mut inbound: Option<tonic::Streaming<pb::ServerMessage>> = None;
        let inbox = Arc::clone(&self.inbox);
        let mut grace: Option<Instant> = None;
        loop {
            self.intake();
            if self.closing {
                let deadline = *grace.get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
                if self.nothing_left() || Instant::now() >= deadline {
                    return End::Done;
                }
            }
            let rate_wait = self.send_ready(&tx);
            self.update_depth();
            let now = Instant::now();
            let mut wake = now + Duration::from_secs(1);
            for t in [self.flush_deadline(), rate_wait, grace]
                .into_iter()
                .flatten()
            {
                wake = wake.min(t);
            }
            if let Some((_, oldest)) = self.in_flight.front() {
                if now.duration_since(oldest.sent_at) >= ACK_TIMEOUT {
                    ExporterStats::add(&self.stats.protocol_errors, 1);
                    tracing::warn!(
                        exporter = NAME,
                        unacked = self.in_flight.len(),
                        timeout_s = ACK_TIMEOUT.as_secs(),
                        "no ack from the Tapio server in time; reconnecting"
                    );
                    return End::Retry(None);
                }
                wake = wake.min(oldest.sent_at + ACK_TIMEOUT);
            }
            tokio::select! {
                r = &mut call, if inbound.is_none() => match r {
                    Ok(stream) => {
                        inbound = Some(stream);
                        self.stats.connected.store(true, Ordering::Relaxed);
                        tracing::info!(exporter = NAME, server = %self.s.uri, compression = ?self.compression, "connected to the Tapio server");
                    }
                    Err(status) => return self.call_failed(&status),
                },
                m = next_message(&mut inbound), if inbound.is_some() => match m {
                    Ok(Some(msg)) => {
                        if let Some(end) = self.handle(msg) {
                            return end;
                        }
                    }
                    Ok(None) => {
                        tracing::warn!(exporter = NAME, unacked = self.in_flight.len(), "the Tapio server closed the stream; retrying");
                        return End::Retry(None);
                    }
                    Err(status) => return self.call_failed(&status),
                },
                _ = inbox.notified() => {}
                _ = tokio::time::sleep_until(wake.into()) => self.seal_if_due(),
            }
        }
    }

    fn call_failed(&mut self, status: &tonic::Status) -> End {
        let text = status.message().to_ascii_lowercase();
        if self.compression.is_some()
            && (text.contains("compress") || text.contains("encoding"))
            && matches!(
                status.code(),
                tonic::Code::Unimplemented | tonic::Code::Internal | tonic::Code::InvalidArgument
            )
        {
            tracing::warn!(exporter = NAME, compression = ?self.compression, error = %status.message(), "the Tapio server refuses our compression; sending uncompressed");
            self.compression = None;
            return End::Retry(Some(Duration::ZERO));
        }
        tracing::warn!(exporter = NAME, server = %self.s.uri, code = ?status.code(), error = %status.message(), unacked = self.in_flight.len(), "lost the Tapio server; retrying");
        End::Retry(None)
    }

    /// Handles one server message; `Some` ends the call.
    fn handle(&mut self, msg: pb::ServerMessage) -> Option<End> {
        use pb::server_message::Message as M;
        match msg.message {
            Some(M::Ack(ack)) => {
                let Some(pos) = self.in_flight.iter().position(|(s, _)| *s == ack.sequence) else {
                    ExporterStats::add(&self.stats.protocol_errors, 1);
                    tracing::warn!(exporter = NAME, sequence = ack.sequence, "malformed ack from the Tapio server: unknown sequence (ignored; counted in tapio_export_protocol_errors_total)");
                    return None;
                };
                let (_, p) = self.in_flight.remove(pos).expect("position");
                self.flight_events -= p.events;
                self.backoff.reset();
                let (processed, failed) = (u64::from(ack.processed), u64::from(ack.failed));
                if processed + failed != p.events {
                    ExporterStats::add(&self.stats.protocol_errors, 1);
                    tracing::warn!(exporter = NAME, sequence = ack.sequence, processed, failed, events = p.events, "malformed ack from the Tapio server: counts do not match the batch (settled as acked; counted in tapio_export_protocol_errors_total)");
                }
                let failed = failed.min(p.events);
                ExporterStats::add(&self.stats.acked, p.events - failed);
                if failed > 0 {
                    ExporterStats::add(&self.stats.failed, failed);
                    tracing::warn!(exporter = NAME, sequence = ack.sequence, failed, "the Tapio server failed to process events (counted in tapio_export_failed_events_total)");
                }
                self.settled(&p);
                None
            }
            Some(M::FlowControl(fc)) => {
                self.batch_size = match fc.max_batch_size {
                    0 => self.s.batch_size,
                    n => n as usize,
                };
                self.interval = match fc.batch_interval_ms {
                    0 => self.s.flush_interval,
                    ms => Duration::from_millis(u64::from(ms)),
                };
                self.bucket = (fc.max_events_per_second > 0).then(|| Bucket {
                    rate: f64::from(fc.max_events_per_second),
                    tokens: 0.0,
                    last: Instant::now(),
                });
                tracing::info!(
                    exporter = NAME,
                    max_events_per_second = fc.max_events_per_second,
                    max_batch_size = fc.max_batch_size,
                    batch_interval_ms = fc.batch_interval_ms,
                    "flow control from the Tapio server"
                );
                if self.builder_events >= self.batch_size {
                    self.seal();
                }
                None
            }
            Some(M::Error(err)) => {
                if err.retryable {
                    tracing::warn!(exporter = NAME, sequence = err.sequence, error = %err.message, retry_after_ms = err.retry_after_ms, "retryable error from the Tapio server; reconnecting and resending");
                    return Some(End::Retry(Some(Duration::from_millis(u64::from(
                        err.retry_after_ms,
                    )))));
                }
                let pos = (err.sequence != 0)
                    .then(|| self.in_flight.iter().position(|(s, _)| *s == err.sequence))
                    .flatten();
                match pos {
                    Some(pos) => {
                        let (_, p) = self.in_flight.remove(pos).expect("position");
                        self.flight_events -= p.events;
                        ExporterStats::add(&self.stats.dropped, p.events);
                        tracing::error!(exporter = NAME, sequence = err.sequence, events = p.events, error = %err.message, "the Tapio server rejected a batch for good: dropped (counted in tapio_export_dropped_events_total)");
                        self.settled(&p);
                        None
                    }
                    None => {
                        ExporterStats::add(&self.stats.protocol_errors, 1);
                        tracing::error!(exporter = NAME, sequence = err.sequence, error = %err.message, "error from the Tapio server; reconnecting");
                        Some(End::Retry(None))
                    }
                }
            }
            None => {
                ExporterStats::add(&self.stats.protocol_errors, 1);
                tracing::warn!(exporter = NAME, "malformed message from the Tapio server: empty (ignored; counted in tapio_export_protocol_errors_total)");
                None
            }
        }
    }

    /// A batch is settled (acked, failed or rejected): release its spool record.
    fn settled(&mut self, p: &Pending) {
        if let (Some(seg), Some(spool)) = (p.spool_segment, self.spool.as_mut()) {
            if let Err(e) = spool.ack(seg) {
                tracing::error!(exporter = NAME, error = %e, "spool cleanup failed");
            }
            self.stats
                .spool_bytes
                .store(spool.bytes(), Ordering::Relaxed);
        }
    }

    /// Sends what the window and the rate allow; returns when the rate allows more.
    fn send_ready(&mut self, tx: &mpsc::Sender<Outgoing>) -> Option<Instant> {
        while self.in_flight.len() < self.s.max_in_flight {
            let now = Instant::now();
            if let Some(bucket) = self.bucket.as_mut() {
                if let Some(at) = bucket.ready_at(now) {
                    return Some(at);
                }
            }
            let mut p = self.next_to_send()?;
            self.next_seq += 1;
            let seq = self.next_seq;
            if let Outgoing::Batch { sequence, .. } = &mut p.msg {
                *sequence = seq;
            }
            if tx.try_send(p.msg.clone()).is_err() {
                // The channel holds the window plus the hello: cannot be full. Closed: the
                // call ended; the batch stays first in line.
                self.ready_events += p.events;
                self.ready.push_front(p);
                return None;
            }
            if let Some(bucket) = self.bucket.as_mut() {
                bucket.tokens -= p.events as f64;
            }
            ExporterStats::add(&self.stats.sent, p.events);
            if p.resend {
                ExporterStats::add(&self.stats.retried, p.events);
            }
            p.sent_at = now;
            self.flight_events += p.events;
            self.in_flight.push_back((seq, p));
        }
        None
    }

    /// The oldest batch waiting: memory first (older), then the spool, then a due partial
    /// batch.
    fn next_to_send(&mut self) -> Option<Pending> {
        loop {
            if let Some(p) = self.ready.pop_front() {
                self.ready_events -= p.events;
                return Some(p);
            }
            if let Some(spool) = self.spool.as_mut() {
                let mut corrupt = Corrupt::default();
                let next = spool.next(&mut corrupt);
                if corrupt.events > 0 {
                    ExporterStats::add(&self.stats.dropped, corrupt.events);
                }
                match next {
                    Ok(Some(record)) => {
                        return Some(Pending {
                            msg: Outgoing::Batch {
                                sequence: 0,
                                events: prost::bytes::Bytes::from(record.payload),
                            },
                            events: record.events,
                            spool_segment: Some(record.segment),
                            resend: false,
                            sent_at: Instant::now(),
                        })
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(exporter = NAME, error = %e, "cannot read the spool; retrying later");
                    }
                }
            }
            if self.builder_events > 0 && (self.closing || self.flush_due()) {
                self.seal();
                continue;
            }
            return None;
        }
    }

    /// Moves the pipeline's batches from the inbox into export batches.
    fn intake(&mut self) {
        let mut taken = std::mem::take(&mut self.taken);
        if self.inbox.take(&mut taken) {
            self.closing = true;
        }
        for batch in taken.drain(..) {
            for event in batch.iter() {
                self.push_event(event);
            }
        }
        self.taken = taken;
        self.update_depth();
    }

    fn push_event(&mut self, event: &Event) {
        if self.builder_events == 0 {
            self.builder_since = Some(Instant::now());
        }
        append_event(event, &self.s.host, &mut self.builder, &mut self.scratch);
        self.builder_events += 1;
        if self.builder_events >= self.batch_size {
            self.seal();
        }
    }

    fn flush_deadline(&self) -> Option<Instant> {
        self.builder_since.map(|t| t + self.interval)
    }

    fn flush_due(&self) -> bool {
        self.flush_deadline().is_some_and(|t| Instant::now() >= t)
    }

    fn seal_if_due(&mut self) {
        if self.flush_due() {
            self.seal();
        }
    }

    /// Closes the batch being built: to memory, or to the spool when memory is at its
    /// bound or the spool already holds older batches (order is kept).
    fn seal(&mut self) {
        self.builder_since = None;
        if self.builder_events == 0 {
            return;
        }
        let capacity = self.builder.len() + self.builder.len() / 8;
        let events = std::mem::replace(&mut self.builder, Vec::with_capacity(capacity));
        let n = std::mem::take(&mut self.builder_events) as u64;
        let p = Pending {
            msg: Outgoing::Batch {
                sequence: 0,
                events: prost::bytes::Bytes::from(events),
            },
            events: n,
            spool_segment: None,
            resend: false,
            sent_at: Instant::now(),
        };
        let spool_has_older = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        let over = self.ready_events + self.flight_events + n > self.s.memory_events as u64;
        if spool_has_older || over {
            self.spill(p, "memory queue full");
        } else {
            self.ready_events += n;
            self.ready.push_back(p);
        }
    }

    /// Writes a batch to the spool, or counts it lost.
    fn spill(&mut self, p: Pending, why: &'static str) {
        let Some(spool) = self.spool.as_mut() else {
            ExporterStats::add(&self.stats.dropped, p.events);
            self.log_loss(p.events, why, "no spool configured (export.grpc.spool.dir)");
            return;
        };
        let Outgoing::Batch {
            events: payload, ..
        } = &p.msg
        else {
            return;
        };
        match spool.append(payload, p.events) {
            Ok(evicted) => {
                ExporterStats::add(&self.stats.spooled, p.events);
                if evicted.events > 0 {
                    ExporterStats::add(&self.stats.dropped, evicted.events);
                    self.log_loss(
                        evicted.events,
                        "spool full",
                        "the oldest spooled events were deleted (export.grpc.spool.max_bytes)",
                    );
                }
            }
            Err(e) => {
                ExporterStats::add(&self.stats.dropped, p.events);
                let text = e.to_string();
                self.log_loss(p.events, why, &text);
            }
        }
        if let Some(spool) = self.spool.as_ref() {
            self.stats
                .spool_bytes
                .store(spool.bytes(), Ordering::Relaxed);
        }
    }

    /// Logs a loss, at most every 10 s (every loss is counted).
    fn log_loss(&mut self, events: u64, why: &str, detail: &str) {
        if self
            .loss_log
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        self.loss_log = Some(Instant::now());
        tracing::error!(
            exporter = NAME,
            events,
            reason = why,
            detail,
            dropped_total = ExporterStats::get(&self.stats.dropped),
            "events dropped (counted in tapio_export_dropped_events_total)"
        );
    }

    /// After a call ends: unacked batches go back to the head of the line.
    fn requeue_in_flight(&mut self) {
        while let Some((_, mut p)) = self.in_flight.pop_back() {
            p.resend = true;
            self.flight_events -= p.events;
            self.ready_events += p.events;
            self.ready.push_front(p);
        }
    }

    fn memory_events(&self) -> u64 {
        self.builder_events as u64 + self.ready_events + self.flight_events
    }

    fn nothing_left(&self) -> bool {
        self.builder_events == 0
            && self.ready.is_empty()
            && self.in_flight.is_empty()
            && self.spool.as_ref().is_none_or(|s| s.is_empty())
            && self.inbox.is_empty()
    }

    fn update_depth(&self) {
        self.stats.queue_depth.store(
            self.memory_events() + self.inbox.len() as u64,
            Ordering::Relaxed,
        );
    }

    /// Shutdown: whatever is still in memory goes to the spool (or is counted lost).
    fn finish(&mut self) {
        self.intake();
        self.seal();
        self.requeue_in_flight();
        let mut spooled = 0;
        let mut lost_before = ExporterStats::get(&self.stats.dropped);
        while let Some(p) = self.ready.pop_front() {
            self.ready_events -= p.events;
            if p.spool_segment.is_some() {
                continue; // still on disk, replayed next start
            }
            spooled += p.events;
            self.spill(p, "shutdown");
        }
        lost_before = ExporterStats::get(&self.stats.dropped) - lost_before;
        self.update_depth();
        tracing::info!(
            exporter = NAME,
            sent = ExporterStats::get(&self.stats.sent),
            acked = ExporterStats::get(&self.stats.acked),
            spooled_at_shutdown = spooled - lost_before,
            dropped_at_shutdown = lost_before,
            dropped_total = ExporterStats::get(&self.stats.dropped),
            "gRPC exporter stopped"
        );
    }
}

async fn next_message(
    inbound: &mut Option<tonic::Streaming<pb::ServerMessage>>,
) -> Result<Option<pb::ServerMessage>, tonic::Status> {
    match inbound {
        Some(s) => s.message().await,
        None => std::future::pending().await,
    }
}

/// `StreamEvents` with messages shared with the resend queue (what the generated client
/// does, with [`Outgoing`] as the request type).
async fn stream_events(
    channel: Channel,
    compression: Option<CompressionEncoding>,
    rx: mpsc::Receiver<Outgoing>,
) -> Result<tonic::Streaming<pb::ServerMessage>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(64 << 20);
    if let Some(c) = compression {
        grpc = grpc.send_compressed(c);
    }
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("service not ready: {e}")))?;
    let codec = tonic_prost::ProstCodec::<Outgoing, pb::ServerMessage>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/tapio.v1.CollectorService/StreamEvents",
    );
    let request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    grpc.streaming(request, path, codec)
        .await
        .map(tonic::Response::into_inner)
}
