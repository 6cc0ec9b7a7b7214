//! The collector's main loop: build a client, then one watcher per resource (and per
//! namespace when namespaces are listed), each turning list + watch into tapio events.
//!
//! `kube`'s watcher lists, then watches from the list's resourceVersion, resumes a watch
//! that ended from the last resourceVersion seen (BOOKMARK events move it forward), and
//! relists when the server answers 410 Gone. Errors are retried with backoff; health
//! says which resources are failing and why.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Node, Pod, Service};
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, ResourceExt};
use parking_lot::Mutex;
use tapio_k8s_support::{
    emit_all, error_chain, owned_event, Backoff, CancellationToken, FailureLog, HealthCell,
    OwnedEvent,
};
use tapio_plugin_api::{log, EventSink, Severity};

use crate::objects::{common_attributes, owner, Watched};
use crate::settings::Settings;
use crate::trace::{self, TraceIndex};
use crate::tracker::{Change, KindTracker};

/// Errors building the client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// No kubeconfig and no in-cluster config.
    #[error("no Kubernetes config found")]
    Infer(#[source] kube::config::InferConfigError),
    /// The kubeconfig could not be read or used.
    #[error("invalid kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// The client could not be built from the config.
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
}

/// Counters shared with `Collector::metrics`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) lists: AtomicU64,
    pub(crate) relists: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) emitted: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

/// State of one watcher, for health.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WatchState {
    Listing,
    Watching,
    Failing(String),
}

/// What the worker shares with the collector.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) health: HealthCell,
    pub(crate) stats: Arc<Stats>,
    watches: Arc<Mutex<BTreeMap<String, WatchState>>>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            health: HealthCell::starting("not started"),
            stats: Arc::default(),
            watches: Arc::default(),
        }
    }

    fn set(&self, watch: &str, state: WatchState) {
        let mut watches = self.watches.lock();
        if watches.get(watch) == Some(&state) {
            return;
        }
        watches.insert(watch.to_owned(), state);
        let failing: Vec<String> = watches
            .iter()
            .filter_map(|(w, s)| match s {
                WatchState::Failing(r) => Some(format!("{w}: {r}")),
                _ => None,
            })
            .collect();
        let listing: Vec<&str> = watches
            .iter()
            .filter(|(_, s)| **s == WatchState::Listing)
            .map(|(w, _)| w.as_str())
            .collect();
        if !failing.is_empty() && failing.len() == watches.len() {
            self.health.failed(failing.join("; "));
        } else if !failing.is_empty() {
            self.health.degraded(failing.join("; "));
        } else if !listing.is_empty() {
            self.health
                .degraded(format!("listing {}", listing.join(", ")));
        } else {
            self.health.healthy();
        }
    }
}

struct Ctx {
    client: Client,
    settings: Settings,
    sink: EventSink,
    shared: Shared,
    index: Mutex<TraceIndex>,
}

/// Runs until `cancel` fires.
pub(crate) async fn run(
    settings: Settings,
    sink: EventSink,
    shared: Shared,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(500), settings.retry_max);
    let mut failures = FailureLog::new("kubeapi");
    let client = loop {
        match make_client(&settings).await {
            Ok(c) => {
                failures.recovered();
                break c;
            }
            Err(e) => {
                shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                let reason = error_chain(&e);
                let delay = backoff.next_delay();
                failures.failed(&reason, Some(delay));
                shared.health.failed(reason);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    let ctx = Arc::new(Ctx {
        client,
        settings,
        sink,
        shared,
        index: Mutex::default(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for resource in &ctx.settings.resources {
        match resource.as_str() {
            "pods" => spawn_kind::<Pod>(&ctx, &mut tasks),
            "events" => spawn_kind::<KubeEvent>(&ctx, &mut tasks),
            "deployments" => spawn_kind::<Deployment>(&ctx, &mut tasks),
            "replicasets" => spawn_kind::<ReplicaSet>(&ctx, &mut tasks),
            "statefulsets" => spawn_kind::<StatefulSet>(&ctx, &mut tasks),
            "daemonsets" => spawn_kind::<DaemonSet>(&ctx, &mut tasks),
            "services" => spawn_kind::<Service>(&ctx, &mut tasks),
            "nodes" => spawn_kind::<Node>(&ctx, &mut tasks),
            other => log::warn!("kubeapi: unknown resource {other}"),
        }
    }
    cancel.cancelled().await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

async fn make_client(s: &Settings) -> Result<Client, ClientError> {
    let options = KubeConfigOptions {
        context: (!s.context.is_empty()).then(|| s.context.clone()),
        ..Default::default()
    };
    let config = if !s.kubeconfig.is_empty() {
        let kubeconfig = Kubeconfig::read_from(&s.kubeconfig).map_err(ClientError::Kubeconfig)?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(ClientError::Kubeconfig)?
    } else if options.context.is_some() {
        kube::Config::from_kubeconfig(&options)
            .await
            .map_err(ClientError::Kubeconfig)?
    } else {
        kube::Config::infer().await.map_err(ClientError::Infer)?
    };
    Client::try_from(config).map_err(ClientError::Client)
}

fn spawn_kind<K: Watched>(ctx: &Arc<Ctx>, tasks: &mut tokio::task::JoinSet<()>) {
    let apis: Vec<(String, Api<K>)> = if K::NAMESPACED && !ctx.settings.namespaces.is_empty() {
        ctx.settings
            .namespaces
            .iter()
            .map(|ns| {
                (
                    format!("{} in {ns}", K::RESOURCE),
                    K::namespaced_api(ctx.client.clone(), ns),
                )
            })
            .collect()
    } else {
        vec![(K::RESOURCE.to_owned(), Api::all(ctx.client.clone()))]
    };
    for (label, api) in apis {
        ctx.shared.set(&label, WatchState::Listing);
        tasks.spawn(watch_one::<K>(Arc::clone(ctx), label, api));
    }
}

/// The kube watcher's retry policy, on our backoff.
struct WatchBackoff(Backoff);

impl Iterator for WatchBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(self.0.next_delay())
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.0.reset();
    }
}

/// 410 Gone inside a watch stream (the API server's way): `kube` relists by itself.
fn is_gone(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchError(s) if s.code == 410)
}

/// 410 Gone as the HTTP status of the watch request (some servers and proxies): `kube`
/// would retry the same resourceVersion forever, so the watcher is started afresh.
fn is_gone_at_start(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 410)
}

async fn watch_one<K: Watched>(ctx: Arc<Ctx>, label: String, api: Api<K>) {
    let config = watcher::Config {
        field_selector: ctx.settings.field_selector(K::RESOURCE, K::NAMESPACED),
        timeout: Some(ctx.settings.watch_timeout.as_secs().clamp(1, 3600) as u32),
        ..Default::default()
    };
    let probe_params = ListParams {
        field_selector: config.field_selector.clone(),
        limit: Some(1),
        ..Default::default()
    };
    let probe_every = ctx
        .settings
        .retry_max
        .clamp(Duration::from_millis(500), Duration::from_secs(10));
    let retry_max = ctx.settings.retry_max;
    let new_stream = || {
        let backoff = WatchBackoff(Backoff::new(Duration::from_millis(500), retry_max));
        watcher(api.clone(), config.clone())
            .backoff(backoff)
            .boxed()
    };
    let mut stream = new_stream();
    let mut tracker = KindTracker::default();
    let mut batch: Vec<OwnedEvent> = Vec::new();
    let stats = &ctx.shared.stats;
    let mut failing = false;
    let mut failures = FailureLog::new(format!("kubeapi: {label}"));
    loop {
        // A watch that restarts successfully yields nothing until the next change, so while
        // failing, a one-item list (same resource, selector and credentials) tells whether
        // the server is back; the watcher itself reports the next failure if not.
        let item = if failing {
            tokio::select! {
                item = stream.next() => item,
                _ = tokio::time::sleep(probe_every) => {
                    if api.list(&probe_params).await.is_ok() {
                        failing = false;
                        failures.recovered();
                        ctx.shared.set(&label, WatchState::Watching);
                    }
                    continue;
                }
            }
        } else {
            stream.next().await
        };
        let Some(item) = item else { break };
        let event = match item {
            Ok(event) => event,
            Err(e) if is_gone(&e) => {
                log::info!("kubeapi: {label}: watch expired (410 Gone), relisting");
                continue;
            }
            Err(e) if is_gone_at_start(&e) => {
                log::info!("kubeapi: {label}: watch refused with 410 Gone, relisting");
                stream = new_stream();
                continue;
            }
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                let reason = error_chain(&e);
                failures.failed(&reason, None);
                ctx.shared.set(&label, WatchState::Failing(reason));
                failing = true;
                continue;
            }
        };
        if failing {
            failures.recovered();
        }
        failing = false;
        let flush = match event {
            Event::Init => {
                if tracker.listed_once() {
                    stats.relists.fetch_add(1, Ordering::Relaxed);
                }
                stats.lists.fetch_add(1, Ordering::Relaxed);
                tracker.list_started();
                false
            }
            Event::InitApply(obj) => {
                applied(&ctx, &mut tracker, &obj, &mut batch);
                batch.len() >= 256
            }
            Event::InitDone => {
                for (uid, attrs) in tracker.list_done() {
                    let mut index = ctx.index.lock();
                    let trace = index.resolve(&uid);
                    index.forget(&uid);
                    if K::RESOURCE != "events" {
                        // Deleted while the watch was down: its last reported attributes.
                        let mut e = owned_event(K::TYPES.deleted, Severity::Info, 0);
                        e.attributes = attrs;
                        e.trace = trace;
                        batch.push(e);
                    }
                }
                ctx.shared.set(&label, WatchState::Watching);
                true
            }
            Event::Apply(obj) => {
                ctx.shared.set(&label, WatchState::Watching);
                applied(&ctx, &mut tracker, &obj, &mut batch);
                true
            }
            Event::Delete(obj) => {
                ctx.shared.set(&label, WatchState::Watching);
                deleted(&ctx, &mut tracker, &obj, &mut batch);
                true
            }
        };
        if flush && !batch.is_empty() {
            let outcome = emit_all(&ctx.sink, &batch);
            stats
                .emitted
                .fetch_add(u64::from(outcome.accepted), Ordering::Relaxed);
            stats
                .dropped
                .fetch_add(u64::from(outcome.dropped), Ordering::Relaxed);
            batch.clear();
        }
    }
}

/// Builds the event describing `obj` (type and trace filled by the caller).
fn describe<K: Watched>(obj: &K, event_type: &'static str) -> OwnedEvent {
    let mut e = owned_event(event_type, Severity::Info, obj.timestamp_ns());
    common_attributes(&mut e, &K::kind(&()), obj.meta());
    e.severity = obj.describe(&mut e);
    e
}

/// The uid whose trace an event of `obj` carries (an Event's involved object).
fn trace_subject<K: Watched>(obj: &K, e: &OwnedEvent) -> String {
    if K::RESOURCE == "events" {
        e.get_str("k8s.involved_object.uid")
            .unwrap_or_default()
            .to_owned()
    } else {
        obj.uid().unwrap_or_default()
    }
}

fn applied<K: Watched>(ctx: &Ctx, tracker: &mut KindTracker, obj: &K, batch: &mut Vec<OwnedEvent>) {
    let meta = obj.meta();
    if !ctx.settings.namespace_wanted(meta.namespace.as_deref()) {
        return;
    }
    let uid = obj.uid().unwrap_or_default();
    let own_trace = obj
        .annotations()
        .get(trace::ANNOTATION)
        .and_then(|v| trace::parse(v, &uid));
    ctx.index
        .lock()
        .record(&uid, own_trace, owner(meta).map(|o| o.uid.as_str()));

    let mut e = describe(obj, K::TYPES.added);
    let Some(change) = tracker.applied(&uid, &e.attributes) else {
        return;
    };
    match change {
        Change::Added { initial: true } => {
            if !ctx.settings.initial_state || K::RESOURCE == "events" {
                return;
            }
            e.push_bool("k8s.watch.initial", true);
        }
        Change::Added { initial: false } => {}
        Change::Modified => e.event_type = K::TYPES.modified,
    }
    e.push_str(
        "k8s.object.resource_version",
        obj.resource_version().unwrap_or_default(),
    );
    e.trace = ctx.index.lock().resolve(&trace_subject(obj, &e));
    batch.push(e);
}

fn deleted<K: Watched>(ctx: &Ctx, tracker: &mut KindTracker, obj: &K, batch: &mut Vec<OwnedEvent>) {
    let uid = obj.uid().unwrap_or_default();
    let known = tracker.deleted(&uid);
    if !known || K::RESOURCE == "events" {
        ctx.index.lock().forget(&uid);
        return;
    }
    let mut e = describe(obj, K::TYPES.deleted);
    e.severity = Severity::Info;
    e.timestamp_ns = tapio_plugin_api::now_unix_nanos();
    e.push_str(
        "k8s.object.resource_version",
        obj.resource_version().unwrap_or_default(),
    );
    let mut index = ctx.index.lock();
    e.trace = index.resolve(&trace_subject(obj, &e));
    index.forget(&uid);
    batch.push(e);
}
