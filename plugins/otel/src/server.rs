//! The receiver's own tokio runtime and its two listeners: started in `start`, shut down
//! and joined in `stop` (the host has no runtime a plugin could use).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Validated;
use crate::convert::Sink;
use crate::ingest::Ingest;
use crate::stats::Stats;

/// How long `stop` lets open connections finish before the runtime drops them.
const GRACE: Duration = Duration::from_secs(2);

/// Errors starting the receiver.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The runtime could not be built.
    #[error("cannot start the receiver's async runtime")]
    Runtime(#[source] std::io::Error),
    /// A listen address is taken or not allowed.
    #[error("cannot listen on {addr} ({field})")]
    Bind {
        /// Config field of the address.
        field: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The running receiver.
pub struct Running {
    runtime: Option<Runtime>,
    shutdown: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
    /// Set when a listener stopped by itself, with why.
    failure: Arc<Mutex<Option<String>>>,
    /// Bound gRPC address.
    pub grpc_addr: Option<SocketAddr>,
    /// Bound HTTP address.
    pub http_addr: Option<SocketAddr>,
}

fn bind(
    field: &'static str,
    addr: SocketAddr,
) -> Result<(std::net::TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind {
        field,
        addr,
        source,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

impl Running {
    /// Binds the listeners (so that a taken port fails `start`) and serves on them.
    pub fn start<S: Sink + Send + Sync + 'static>(
        settings: &Validated,
        sink: S,
        stats: Arc<Stats>,
    ) -> Result<Running, StartError> {
        let grpc = settings.grpc.map(|a| bind("grpc_address", a)).transpose()?;
        let http = settings.http.map(|a| bind("http_address", a)).transpose()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.worker_threads)
            .thread_name("otel-receiver")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let ingest = Arc::new(Ingest::new(sink, Arc::clone(&stats)));
        let mut running = Running {
            runtime: None,
            shutdown: Vec::new(),
            tasks: Vec::new(),
            failure: Arc::default(),
            grpc_addr: grpc.as_ref().map(|g| g.1),
            http_addr: http.as_ref().map(|h| h.1),
        };
        let _entered = runtime.enter();
        if let Some((listener, local)) = grpc {
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(|source| StartError::Bind {
                    field: "grpc_address",
                    addr: local,
                    source,
                })?;
            let (tx, rx) = oneshot::channel::<()>();
            let serve = crate::grpc::serve(
                listener,
                Arc::clone(&ingest),
                Arc::clone(&stats),
                settings.max_request_bytes,
                async move {
                    let _ = rx.await;
                },
            );
            let failure = Arc::clone(&running.failure);
            running.shutdown.push(tx);
            running.tasks.push(runtime.spawn(async move {
                let why = match serve.await {
                    Ok(()) => "the OTLP/gRPC listener stopped".to_owned(),
                    Err(e) => format!("the OTLP/gRPC listener failed: {e}"),
                };
                record(&failure, why);
            }));
            tapio_plugin_api::log::info!("OTLP/gRPC receiver listening on {local}");
        }
        if let Some((listener, local)) = http {
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(|source| StartError::Bind {
                    field: "http_address",
                    addr: local,
                    source,
                })?;
            let (tx, rx) = oneshot::channel::<()>();
            let router = crate::http::router(Arc::clone(&ingest), settings.max_request_bytes);
            let failure = Arc::clone(&running.failure);
            running.shutdown.push(tx);
            running.tasks.push(runtime.spawn(async move {
                let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                    let _ = rx.await;
                });
                let why = match serve.await {
                    Ok(()) => "the OTLP/HTTP listener stopped".to_owned(),
                    Err(e) => format!("the OTLP/HTTP listener failed: {e}"),
                };
                record(&failure, why);
            }));
            tapio_plugin_api::log::info!("OTLP/HTTP receiver listening on {local}");
        }
        drop(_entered);
        running.runtime = Some(runtime);
        Ok(running)
    }

    /// Why a listener stopped by itself, if one did.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops accepting, lets open requests finish for a moment, then shuts the runtime
    /// down and joins its threads.
    pub fn stop(mut self) {
        // From here on a listener ending is expected, not a failure.
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(String::new());
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            let tasks = std::mem::take(&mut self.tasks);
            runtime.block_on(async {
                let _ = tokio::time::timeout(GRACE, async {
                    for t in tasks {
                        let _ = t.await;
                    }
                })
                .await;
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

fn record(failure: &Mutex<Option<String>>, why: String) {
    let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        tapio_plugin_api::log::error!("{why}");
        *slot = Some(why);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
