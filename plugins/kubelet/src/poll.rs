//! The collector's main loop: poll `/pods` and `/stats/summary`, report findings, retry
//! with backoff while the kubelet is unreachable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use parking_lot::Mutex;
use serde::Deserialize;
use tapio_k8s_support::{
    emit_all, error_chain, Backoff, CancellationToken, FailureLog, HealthCell,
};
use tapio_plugin_api::EventSink;

use crate::client::{KubeletClient, KubeletError};
use crate::detect::{pod_findings, summary_findings, Reporter, Thresholds};
use crate::settings::Settings;
use crate::summary::Summary;

/// The `/pods` answer (a `v1.PodList`).
#[derive(Debug, Deserialize)]
struct PodList {
    #[serde(default)]
    items: Vec<Pod>,
}

/// Latest node figures, for `Collector::metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NodeFigures {
    pub(crate) cpu_cores: Option<f64>,
    pub(crate) memory_working_set: Option<u64>,
    pub(crate) memory_available: Option<u64>,
    pub(crate) pods: usize,
    pub(crate) findings: usize,
}

/// Counters shared with `Collector::metrics`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) polls: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) node: Mutex<NodeFigures>,
}

/// What the worker shares with the collector.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) health: HealthCell,
    pub(crate) stats: Arc<Stats>,
}

/// Runs until `cancel` fires.
pub(crate) async fn run(
    settings: Settings,
    sink: EventSink,
    shared: Shared,
    cancel: CancellationToken,
) {
    let thresholds = Thresholds {
        crash_loop_restarts: settings.crash_loop_restarts,
        not_ready_grace_ns: settings.not_ready_grace.as_nanos() as u64,
        memory_available_bytes: settings.memory_available_bytes,
        ephemeral_storage_ratio: settings.ephemeral_storage_percent / 100.0,
    };
    let mut backoff = Backoff::new(
        Duration::from_secs(1).min(settings.interval),
        settings.retry_max,
    );
    let mut reporter = Reporter::default();
    let mut client: Option<KubeletClient> = None;
    let mut failures = FailureLog::new("kubelet");
    loop {
        // The client is built in the loop so that a missing CA or certificate is reported
        // as health and retried like an unreachable kubelet.
        let result = match client
            .clone()
            .map_or_else(|| KubeletClient::new(&settings), Ok)
        {
            Ok(c) => {
                let polled = poll(&c, &thresholds, &mut reporter, &sink, &shared).await;
                client = Some(c);
                polled
            }
            Err(e) => Err(e),
        };
        let delay = match result {
            Ok(()) => {
                shared.health.healthy();
                failures.recovered();
                backoff.reset();
                settings.interval
            }
            Err(e) => {
                shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                let reason = error_chain(&e);
                let delay = backoff.next_delay();
                failures.failed(&reason, Some(delay));
                shared.health.failed(reason);
                delay
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn poll(
    client: &KubeletClient,
    thresholds: &Thresholds,
    reporter: &mut Reporter,
    sink: &EventSink,
    shared: &Shared,
) -> Result<(), KubeletError> {
    let pods: PodList = client.get_json("/pods").await?;
    let summary: Summary = client.get_json("/stats/summary").await?;
    let now = tapio_plugin_api::now_unix_nanos();
    let mut findings = Vec::new();
    pod_findings(&pods.items, thresholds, now, &mut findings);
    summary_findings(&summary, &pods.items, thresholds, now, &mut findings);
    let events = reporter.report(findings);
    let outcome = emit_all(sink, &events);
    let stats = &shared.stats;
    stats
        .dropped
        .fetch_add(u64::from(outcome.dropped), Ordering::Relaxed);
    stats.polls.fetch_add(1, Ordering::Relaxed);
    let memory = summary.node.memory.as_ref();
    *stats.node.lock() = NodeFigures {
        cpu_cores: summary
            .node
            .cpu
            .as_ref()
            .and_then(|c| c.usage_nano_cores)
            .map(|n| n as f64 / 1e9),
        memory_working_set: memory.and_then(|m| m.working_set_bytes),
        memory_available: memory.and_then(|m| m.available_bytes),
        pods: pods.items.len(),
        findings: reporter.active(),
    };
    Ok(())
}
