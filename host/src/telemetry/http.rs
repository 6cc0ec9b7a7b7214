//! `--metrics-addr`: `/healthz` (the pipeline loop is alive), `/readyz` (the first plugin
//! scan is done and the pipeline runs) and `/metrics` (Prometheus text format).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::telemetry::{metrics, Observer};

/// Seconds without a pipeline loop iteration after which `/healthz` fails.
const STALL_SECONDS: u64 = 10;

/// Why the host is not live, if it is not.
pub fn liveness_problem(o: &Observer) -> Option<String> {
    if !o.pipeline.alive.load(Ordering::Acquire) {
        return Some("the pipeline thread is not running".to_owned());
    }
    let last = o.pipeline.last_loop_unix_s.load(Ordering::Relaxed);
    let now = tapio_plugin_api::now_unix_nanos() / 1_000_000_000;
    if last != 0 && now.saturating_sub(last) > STALL_SECONDS {
        return Some(format!("the pipeline loop has not run for {}s", now - last));
    }
    None
}

async fn healthz(State(o): State<Observer>) -> impl IntoResponse {
    match liveness_problem(&o) {
        None => (StatusCode::OK, "ok\n".to_owned()),
        Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n")),
    }
}

async fn readyz(State(o): State<Observer>) -> impl IntoResponse {
    if let Some(problem) = liveness_problem(&o) {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n"));
    }
    if !o.manager.lock().initial_scan_done {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "plugins are still loading\n".to_owned(),
        );
    }
    (StatusCode::OK, "ready\n".to_owned())
}

async fn metrics_text(State(o): State<Observer>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || metrics::render(&o))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// Binds `addr` and serves until `shutdown` resolves.
pub async fn serve(
    addr: &str,
    observer: Observer,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(observer);
    tracing::info!(addr = %local, "serving /healthz, /readyz and /metrics");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "metrics endpoint failed");
        }
    }))
}
