//! The collector's main loop: connect, list, follow events or poll, reconnect with backoff.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tapio_k8s_support::{
    emit_all, error_chain, Backoff, CancellationToken, FailureLog, HealthCell,
};
use tapio_plugin_api::{log, EventSink};
use tonic::transport::Channel;
use tonic::Code;

use crate::client::{connect, detect_socket, CriError};
use crate::events::{to_event, RuntimeInfo};
use crate::model::{ContainerView, PodView, StatusDetails};
use crate::proto::runtime_service_client::RuntimeServiceClient;
use crate::proto::{
    ContainerEventResponse, ContainerStatusRequest, GetEventsRequest, ListContainersRequest,
    ListPodSandboxRequest, VersionRequest,
};
use crate::settings::{EventsMode, Settings};
use crate::tracker::Tracker;

/// Counters and gauges shared with `Collector::metrics`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Full listings done.
    pub(crate) syncs: AtomicU64,
    /// Connections established after the first.
    pub(crate) reconnects: AtomicU64,
    /// Failed connections or calls.
    pub(crate) errors: AtomicU64,
    /// Container events received from the runtime's stream.
    pub(crate) runtime_events: AtomicU64,
    /// Events the host's sink refused.
    pub(crate) dropped: AtomicU64,
    /// Sandboxes known.
    pub(crate) pods: AtomicU64,
    /// Containers known.
    pub(crate) containers: AtomicU64,
    /// Whether the runtime streams container events (else polling).
    pub(crate) streaming: AtomicBool,
}

/// What the worker shares with the collector.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    /// Health reported to the host.
    pub(crate) health: HealthCell,
    /// Counters.
    pub(crate) stats: Arc<Stats>,
}

type Client = RuntimeServiceClient<Channel>;

/// The state of the connection across sessions.
struct Link {
    /// A session got as far as the runtime's version once (later ones are reconnects).
    connected_once: bool,
    /// The failures since the last connection, for the log.
    failures: FailureLog,
}

/// Runs until `cancel` fires.
pub(crate) async fn run(
    settings: Settings,
    sink: EventSink,
    shared: Shared,
    cancel: CancellationToken,
) {
    let mut tracker = Tracker::new();
    let mut backoff = Backoff::new(Duration::from_millis(250), settings.retry_max);
    let mut link = Link {
        connected_once: false,
        failures: FailureLog::new("cri"),
    };
    loop {
        let result = session(
            &settings,
            &sink,
            &shared,
            &mut tracker,
            &mut backoff,
            &cancel,
            &mut link,
        )
        .await;
        if cancel.is_cancelled() {
            return;
        }
        let Err(e) = result else { return };
        shared.stats.errors.fetch_add(1, Ordering::Relaxed);
        shared.stats.streaming.store(false, Ordering::Relaxed);
        let reason = error_chain(&e);
        let delay = backoff.next_delay();
        link.failures.failed(&reason, Some(delay));
        shared.health.failed(reason);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection: returns `Ok` only when cancelled.
async fn session(
    settings: &Settings,
    sink: &EventSink,
    shared: &Shared,
    tracker: &mut Tracker,
    backoff: &mut Backoff,
    cancel: &CancellationToken,
    link: &mut Link,
) -> Result<(), CriError> {
    let path = detect_socket(&settings.socket)?;
    let mut client = connect(&path, settings.timeout).await?;
    let version = client
        .version(VersionRequest::default())
        .await
        .map_err(CriError::call("Version"))?
        .into_inner();
    let runtime = RuntimeInfo {
        name: version.runtime_name,
        version: version.runtime_version,
    };
    if link.connected_once {
        shared.stats.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    link.connected_once = true;
    link.failures.recovered();
    log::info!(
        "cri: connected to {} {} (CRI {}) on {}",
        runtime.name,
        runtime.version,
        version.runtime_api_version,
        path.display()
    );

    let mut stream = match settings.events {
        EventsMode::Poll => None,
        EventsMode::Auto | EventsMode::Stream => {
            match client
                .get_container_events(GetEventsRequest::default())
                .await
            {
                Ok(r) => Some(r.into_inner()),
                Err(s) if s.code() == Code::Unimplemented => {
                    log::info!(
                        "cri: {} does not implement GetContainerEvents; polling every {:?}",
                        runtime.name,
                        settings.poll_interval
                    );
                    None
                }
                Err(s) => {
                    return Err(CriError::Call {
                        call: "GetContainerEvents",
                        source: s,
                    })
                }
            }
        }
    };
    shared
        .stats
        .streaming
        .store(stream.is_some(), Ordering::Relaxed);
    let partial = (stream.is_none() && settings.events == EventsMode::Stream).then(|| {
        format!(
            "{} does not implement GetContainerEvents; polling instead",
            runtime.name
        )
    });

    let mut ticker = tokio::time::interval(settings.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
            message = next_event(&mut stream) => match message {
                Ok(Some(_)) => { shared.stats.runtime_events.fetch_add(1, Ordering::Relaxed); }
                Ok(None) => return Err(CriError::StreamEnded),
                Err(s) => return Err(CriError::Call { call: "GetContainerEvents", source: s }),
            },
        }
        sync(&mut client, tracker, &runtime, sink, &shared.stats).await?;
        match &partial {
            Some(reason) => shared.health.degraded(reason.clone()),
            None => shared.health.healthy(),
        }
        backoff.reset();
    }
}

/// The next message of the event stream; pending forever when polling.
async fn next_event(
    stream: &mut Option<tonic::Streaming<ContainerEventResponse>>,
) -> Result<Option<ContainerEventResponse>, tonic::Status> {
    match stream {
        Some(s) => s.message().await,
        None => std::future::pending().await,
    }
}

/// Lists sandboxes and containers, fetches the status of changed containers, emits changes.
async fn sync(
    client: &mut Client,
    tracker: &mut Tracker,
    runtime: &RuntimeInfo,
    sink: &EventSink,
    stats: &Stats,
) -> Result<(), CriError> {
    let pods: Vec<PodView> = client
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .map_err(CriError::call("ListPodSandbox"))?
        .into_inner()
        .items
        .iter()
        .map(PodView::from_proto)
        .collect();
    let listed = client
        .list_containers(ListContainersRequest::default())
        .await
        .map_err(CriError::call("ListContainers"))?
        .into_inner()
        .containers;
    let mut containers = Vec::with_capacity(listed.len());
    for c in &listed {
        let mut view = ContainerView::from_proto(c);
        if tracker.needs_status(&view.id, view.phase) {
            let request = ContainerStatusRequest {
                container_id: view.id.clone(),
                verbose: false,
            };
            match client.container_status(request).await {
                Ok(r) => {
                    view.status = r
                        .into_inner()
                        .status
                        .as_ref()
                        .map(StatusDetails::from_proto)
                }
                // Removed since the listing: the next listing reports it.
                Err(s) if s.code() == Code::NotFound => continue,
                Err(s) => {
                    return Err(CriError::Call {
                        call: "ContainerStatus",
                        source: s,
                    })
                }
            }
        }
        containers.push(view);
    }
    // Sandboxes known before this listing too: a removed container's pod may be gone.
    let mut pod_index: HashMap<String, PodView> =
        tracker.pods().map(|p| (p.id.clone(), p.clone())).collect();
    pod_index.extend(pods.iter().map(|p| (p.id.clone(), p.clone())));
    let now = tapio_plugin_api::now_unix_nanos() as i64;
    let changes = tracker.reconcile(pods, containers, now);
    stats.syncs.fetch_add(1, Ordering::Relaxed);
    let (npods, ncontainers) = tracker.counts();
    stats.pods.store(npods as u64, Ordering::Relaxed);
    stats
        .containers
        .store(ncontainers as u64, Ordering::Relaxed);
    if changes.is_empty() {
        return Ok(());
    }
    let events: Vec<_> = changes
        .iter()
        .map(|c| {
            let sandbox = match c {
                crate::tracker::Change::ContainerCreated(v)
                | crate::tracker::Change::ContainerStarted(v)
                | crate::tracker::Change::ContainerExited(v)
                | crate::tracker::Change::ContainerRemoved(v) => pod_index.get(&v.sandbox_id),
                _ => None,
            };
            to_event(c, sandbox, runtime, now)
        })
        .collect();
    let outcome = emit_all(sink, &events);
    stats
        .dropped
        .fetch_add(u64::from(outcome.dropped), Ordering::Relaxed);
    Ok(())
}
