//! Kubernetes API collector: watches pods, events, deployments, replicasets,
//! statefulsets, daemonsets, services and nodes through the API server and reports each
//! add, change and delete as a `k8s.*` event with owner references, service selectors,
//! node, and the trace context of the `tapio.io/trace-id` annotation (inherited along owner
//! references). Uses `kube` (list + watch, resume by resourceVersion, relist on 410 Gone).
//! See README.md.

#![warn(missing_docs, unreachable_pub)]

pub mod objects;
mod settings;
pub mod trace;
pub mod tracker;
mod watch;

use std::sync::atomic::Ordering;

use tapio_k8s_support::{error_chain, AsyncWorker};
use tapio_plugin_api::{
    export_plugin, Collector, Config, EventSink, EventTypeInfo, Health, HostHandle, Metric,
    PluginError, PluginInfo, RStr,
};

pub use settings::{Settings, RESOURCES};

/// The Kubernetes API collector.
pub struct KubeApi {
    settings: Settings,
    shared: watch::Shared,
    worker: Option<AsyncWorker>,
}

static TAGS: [RStr<'static>; 1] = [RStr::from_str("k8s")];

macro_rules! kind_types {
    ($kind:literal) => {
        [
            EventTypeInfo::new(
                concat!("k8s.", $kind, ".added"),
                concat!(
                    "A ",
                    $kind,
                    " appeared (or existed at start: k8s.watch.initial)"
                ),
            ),
            EventTypeInfo::new(
                concat!("k8s.", $kind, ".modified"),
                concat!("A reported field of a ", $kind, " changed"),
            ),
            EventTypeInfo::new(
                concat!("k8s.", $kind, ".deleted"),
                concat!("A ", $kind, " was deleted"),
            ),
        ]
    };
}

const fn flatten<const N: usize>(
    groups: [[EventTypeInfo; 3]; N],
    event: EventTypeInfo,
) -> [EventTypeInfo; 22] {
    let mut out = [event; 22];
    let mut i = 0;
    while i < N {
        let mut j = 0;
        while j < 3 {
            out[i * 3 + j] = groups[i][j];
            j += 1;
        }
        i += 1;
    }
    out
}

static EVENT_TYPES: [EventTypeInfo; 22] = flatten(
    [
        kind_types!("pod"),
        kind_types!("deployment"),
        kind_types!("replicaset"),
        kind_types!("statefulset"),
        kind_types!("daemonset"),
        kind_types!("service"),
        kind_types!("node"),
    ],
    EventTypeInfo::new(
        "k8s.event",
        "A Kubernetes Event was recorded or repeated (reason, message, involved object)",
    ),
);

impl Collector for KubeApi {
    const INFO: PluginInfo = PluginInfo::new(
        "kubeapi",
        "Kubernetes API watches: pods, events, workloads, services and nodes as k8s.* events",
    )
    .tags(&TAGS)
    .event_types(&EVENT_TYPES)
    .config(settings::FIELDS);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings.validate()?;
        Ok(KubeApi {
            settings,
            shared: watch::Shared::new(),
            worker: None,
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        self.shared.health.degraded("connecting to the API server");
        let (settings, shared) = (self.settings.clone(), self.shared.clone());
        let worker = AsyncWorker::start("tapio-kubeapi", move |cancel| {
            watch::run(settings, sink, shared, cancel)
        })
        .map_err(|e| PluginError::other(error_chain(&e)))?;
        self.worker = Some(worker);
        Ok(())
    }

    fn health(&self) -> Health {
        self.shared.health.get()
    }

    fn metrics(&self) -> Vec<Metric> {
        let s = &self.shared.stats;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        vec![
            Metric::counter(
                "kubeapi_lists_total",
                "Full listings (initial and relists).",
                get(&s.lists),
            ),
            Metric::counter(
                "kubeapi_relists_total",
                "Relists after the first listing (410 Gone, lost watches).",
                get(&s.relists),
            ),
            Metric::counter(
                "kubeapi_errors_total",
                "Failed client builds, lists and watches.",
                get(&s.errors),
            ),
            Metric::counter(
                "kubeapi_events_total",
                "Events accepted by the host.",
                get(&s.emitted),
            ),
            Metric::counter(
                "kubeapi_dropped_events_total",
                "Events the host refused (ring full).",
                get(&s.dropped),
            ),
        ]
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        if let Some(worker) = self.worker.take() {
            worker
                .stop()
                .map_err(|e| PluginError::other(error_chain(&e)))?;
        }
        self.shared.health.degraded("stopped");
        Ok(())
    }
}

export_plugin!(KubeApi);
