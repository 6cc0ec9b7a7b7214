//! `tapio-collector receive --listen ADDR [--jsonl PATH]`: the reference receiver of the
//! `tapio.v1` protocol. It acks every batch (all events processed), writes each event as one
//! JSON object per line (the host's `--jsonl` keys) when asked, and logs a count every
//! 10 s, so a user can check the path from a collector end to end. It accepts gzip and zstd.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use parking_lot::Mutex;
use tokio_stream::Stream;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status, Streaming};

use crate::export::proto as pb;
use crate::export::proto::collector_service_server::{CollectorService, CollectorServiceServer};
use crate::export::wire;

/// Counters of a receiver.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    /// Events received.
    pub events: AtomicU64,
    /// Batches received (and acked).
    pub batches: AtomicU64,
    /// Streams opened.
    pub streams: AtomicU64,
}

type Out = Arc<Mutex<Option<std::io::BufWriter<Box<dyn Write + Send>>>>>;

/// The receiver service.
#[derive(Clone)]
pub struct Receiver {
    stats: Arc<ReceiverStats>,
    out: Out,
}

impl Receiver {
    /// A receiver writing JSON Lines to `jsonl` (`-`: stdout) when given.
    pub fn new(jsonl: Option<&str>) -> std::io::Result<Self> {
        let out: Option<Box<dyn Write + Send>> = match jsonl {
            None => None,
            Some("-") => Some(Box::new(std::io::stdout())),
            Some(path) => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
        };
        Ok(Receiver {
            stats: Arc::default(),
            out: Arc::new(Mutex::new(
                out.map(|o| std::io::BufWriter::with_capacity(256 * 1024, o)),
            )),
        })
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<ReceiverStats> {
        Arc::clone(&self.stats)
    }

    /// The tonic service (gzip and zstd accepted and offered).
    pub fn service(self) -> CollectorServiceServer<Self> {
        CollectorServiceServer::new(self)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(256 << 20)
    }

    fn write(&self, batch: &pb::EventBatch) {
        let mut out = self.out.lock();
        let Some(w) = out.as_mut() else { return };
        let mut result = Ok(());
        for e in &batch.events {
            result = serde_json::to_writer(&mut *w, &wire::to_json(e))
                .map_err(std::io::Error::from)
                .and_then(|()| w.write_all(b"\n"));
            if result.is_err() {
                break;
            }
        }
        if let Err(e) = result.and_then(|()| w.flush()) {
            tracing::error!(error = %e, "cannot write --jsonl");
        }
    }
}

#[tonic::async_trait]
impl CollectorService for Receiver {
    type StreamEventsStream = Pin<Box<dyn Stream<Item = Result<pb::ServerMessage, Status>> + Send>>;

    async fn stream_events(
        &self,
        request: Request<Streaming<pb::CollectorMessage>>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let peer = request.remote_addr();
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let this = self.clone();
        this.stats.streams.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(pb::CollectorMessage {
                        message: Some(pb::collector_message::Message::Hello(h)),
                    })) => {
                        tracing::info!(peer = ?peer, node = %h.node, version = %h.version, instance = %h.instance_id, "collector connected");
                    }
                    Ok(Some(pb::CollectorMessage {
                        message: Some(pb::collector_message::Message::Batch(batch)),
                    })) => {
                        let n = batch.events.len() as u64;
                        this.write(&batch);
                        this.stats.events.fetch_add(n, Ordering::Relaxed);
                        this.stats.batches.fetch_add(1, Ordering::Relaxed);
                        let ack = pb::ServerMessage {
                            message: Some(pb::server_message::Message::Ack(pb::Ack {
                                sequence: batch.sequence,
                                processed: n as u32,
                                failed: 0,
                            })),
                        };
                        if tx.send(Ok(ack)).await.is_err() {
                            return;
                        }
                    }
                    Ok(Some(_)) => tracing::warn!(peer = ?peer, "empty message ignored"),
                    Ok(None) => return,
                    Err(status) => {
                        tracing::warn!(peer = ?peer, error = %status, "stream failed");
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// Arguments of `tapio-collector receive`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReceiveArgs {
    /// Address to listen on (HOST:PORT).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: String,
    /// Write every received event as JSON Lines to PATH (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    pub jsonl: Option<PathBuf>,
}

/// Runs the receiver until SIGTERM or SIGINT.
pub fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tapio-receive")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let addr: SocketAddr = tokio::net::lookup_host(&args.listen)
            .await
            .with_context(|| format!("--listen {}", args.listen))?
            .next()
            .with_context(|| format!("--listen {}: no address", args.listen))?;
        let jsonl = args.jsonl.as_ref().map(|p| p.display().to_string());
        let receiver = Receiver::new(jsonl.as_deref())
            .with_context(|| format!("cannot open --jsonl {}", jsonl.as_deref().unwrap_or("")))?;
        let stats = receiver.stats();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(listen = %listener.local_addr()?, "receiver listening");
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let stop = async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        };
        let report = {
            let stats = Arc::clone(&stats);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    tracing::info!(
                        events = stats.events.load(Ordering::Relaxed),
                        batches = stats.batches.load(Ordering::Relaxed),
                        "received"
                    );
                }
            })
        };
        tonic::transport::Server::builder()
            .add_service(receiver.service())
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                stop,
            )
            .await
            .context("receiver failed")?;
        report.abort();
        tracing::info!(
            events = stats.events.load(Ordering::Relaxed),
            batches = stats.batches.load(Ordering::Relaxed),
            "receiver stopped"
        );
        Ok(())
    })
}
