//! CRI collector: containers and pod sandboxes from the Kubernetes Container Runtime
//! Interface (`runtime.v1`) of containerd or CRI-O, over the runtime's unix socket.
//!
//! It lists sandboxes and containers, follows `GetContainerEvents` where the runtime
//! implements it (containerd >= 1.7, CRI-O) and polls otherwise, and emits created /
//! started / exited / removed events with pod name, namespace and uid from the CRI labels.
//! See README.md.

#![warn(missing_docs, unreachable_pub)]

pub mod client;
pub mod events;
pub mod model;
mod settings;
mod source;
pub mod tracker;

/// The CRI `runtime.v1` API generated from the upstream `api.proto` (client, and the server
/// side used by tests).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("runtime.v1");
}

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tapio_k8s_support::{AsyncWorker, HealthCell};
use tapio_plugin_api::{
    export_plugin, Collector, Config, EventSink, Health, HostHandle, Metric, PluginError,
    PluginInfo, RStr,
};

pub use settings::{EventsMode, Settings};

/// The CRI collector.
pub struct Cri {
    settings: Settings,
    shared: source::Shared,
    worker: Option<AsyncWorker>,
}

static TAGS: [RStr<'static>; 1] = [RStr::from_str("k8s")];

impl Collector for Cri {
    const INFO: PluginInfo = PluginInfo::new(
        "cri",
        "Containers and pod sandboxes from the CRI API of containerd or CRI-O: created, started, exited, removed",
    )
    .tags(&TAGS)
    .event_types(events::EVENT_TYPES)
    .config(settings::FIELDS);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings.validate()?;
        Ok(Cri {
            settings,
            shared: source::Shared {
                health: HealthCell::starting("not started"),
                stats: Arc::default(),
            },
            worker: None,
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        self.shared.health.degraded("connecting to the CRI runtime");
        let (settings, shared) = (self.settings.clone(), self.shared.clone());
        let worker = AsyncWorker::start("tapio-cri", move |cancel| {
            source::run(settings, sink, shared, cancel)
        })
        .map_err(|e| PluginError::other(tapio_k8s_support::error_chain(&e)))?;
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
                "cri_syncs_total",
                "Full listings of the runtime.",
                get(&s.syncs),
            ),
            Metric::counter(
                "cri_reconnects_total",
                "Connections to the runtime after the first.",
                get(&s.reconnects),
            ),
            Metric::counter(
                "cri_errors_total",
                "Failed connections or CRI calls.",
                get(&s.errors),
            ),
            Metric::counter(
                "cri_runtime_events_total",
                "Container events received from GetContainerEvents.",
                get(&s.runtime_events),
            ),
            Metric::counter(
                "cri_dropped_events_total",
                "Events the host refused (ring full).",
                get(&s.dropped),
            ),
            Metric::gauge(
                "cri_pod_sandboxes",
                "Pod sandboxes the runtime reports.",
                get(&s.pods) as f64,
            ),
            Metric::gauge(
                "cri_containers",
                "Containers the runtime reports.",
                get(&s.containers) as f64,
            ),
            Metric::gauge(
                "cri_event_stream",
                "1 when the runtime streams container events, 0 when polling.",
                f64::from(u8::from(s.streaming.load(Ordering::Relaxed))),
            ),
        ]
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        if let Some(worker) = self.worker.take() {
            worker
                .stop()
                .map_err(|e| PluginError::other(tapio_k8s_support::error_chain(&e)))?;
        }
        self.shared.health.degraded("stopped");
        Ok(())
    }
}

export_plugin!(Cri);
