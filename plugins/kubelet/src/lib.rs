//! Kubelet collector: polls the node's kubelet (`/pods` and `/stats/summary`, HTTPS with a
//! bearer token or a client certificate, or plain HTTP) and reports crash loops, pods not
//! ready, waiting and failed containers, node memory pressure and ephemeral storage above a
//! threshold, each when it appears or changes. See README.md.

#![warn(missing_docs, unreachable_pub)]

pub mod client;
pub mod detect;
mod poll;
mod settings;
pub mod summary;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tapio_k8s_support::{error_chain, AsyncWorker, HealthCell};
use tapio_plugin_api::{
    export_plugin, Collector, Config, EventSink, Health, HostHandle, Metric, PluginError,
    PluginInfo, RStr,
};

pub use settings::Settings;

/// The kubelet collector.
pub struct Kubelet {
    settings: Settings,
    shared: poll::Shared,
    worker: Option<AsyncWorker>,
}

static TAGS: [RStr<'static>; 1] = [RStr::from_str("k8s")];

impl Collector for Kubelet {
    const INFO: PluginInfo = PluginInfo::new(
        "kubelet",
        "Kubelet /pods and /stats/summary: crash loops, not-ready pods, waiting and failed containers, memory pressure, ephemeral storage",
    )
    .tags(&TAGS)
    .event_types(detect::EVENT_TYPES)
    .config(settings::FIELDS);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings.validate()?;
        Ok(Kubelet {
            settings,
            shared: poll::Shared {
                health: HealthCell::starting("not started"),
                stats: Arc::default(),
            },
            worker: None,
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        self.shared.health.degraded("connecting to the kubelet");
        let (settings, shared) = (self.settings.clone(), self.shared.clone());
        let worker = AsyncWorker::start("tapio-kubelet", move |cancel| {
            poll::run(settings, sink, shared, cancel)
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
        let node = *s.node.lock();
        let mut metrics = vec![
            Metric::counter(
                "kubelet_polls_total",
                "Successful polls of /pods and /stats/summary.",
                s.polls.load(Ordering::Relaxed),
            ),
            Metric::counter(
                "kubelet_errors_total",
                "Failed polls.",
                s.errors.load(Ordering::Relaxed),
            ),
            Metric::counter(
                "kubelet_dropped_events_total",
                "Events the host refused (ring full).",
                s.dropped.load(Ordering::Relaxed),
            ),
            Metric::gauge("kubelet_pods", "Pods the kubelet runs.", node.pods as f64),
            Metric::gauge(
                "kubelet_active_findings",
                "Problems currently present (crash loops, waiting containers, ...).",
                node.findings as f64,
            ),
        ];
        if let Some(cores) = node.cpu_cores {
            metrics.push(Metric::gauge(
                "kubelet_node_cpu_usage_cores",
                "Node CPU usage, in cores.",
                cores,
            ));
        }
        if let Some(ws) = node.memory_working_set {
            metrics.push(Metric::gauge(
                "kubelet_node_memory_working_set_bytes",
                "Node memory working set.",
                ws as f64,
            ));
        }
        if let Some(a) = node.memory_available {
            metrics.push(Metric::gauge(
                "kubelet_node_memory_available_bytes",
                "Node memory available.",
                a as f64,
            ));
        }
        metrics
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

export_plugin!(Kubelet);
