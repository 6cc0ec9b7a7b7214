//! container (cri-ebpf): container lifecycle from cgroup creation and removal, cgroup id ->
//! container id from the cgroup path (containerd, CRI-O, docker, podman; cgroupfs and
//! systemd-slice layouts), and OOM kills and process exits attributed to their container.
//! See README.md.

#![warn(missing_docs, unreachable_pub)]

pub use tapio_ebpf_support::death;
pub mod events;
mod handler;
pub mod lifecycle;
pub mod record;

use std::sync::Arc;

use serde::Deserialize;
use tapio_ebpf_support::config::{RingSettings, POLL_INTERVAL, RING_BUFFER_BYTES, WAKEUP_BYTES};
use tapio_ebpf_support::{handler_metrics, Attach, ObjectSpec, ProgramSpec, RuntimeSlot};
use tapio_plugin_api::{
    export_plugin, Collector, Config, EventSink, Health, HostHandle, Metric, PluginError,
    PluginInfo, RStr,
};

use handler::{Counters, Handler};

/// The compiled BPF object (`bpf-objects/src/container.bpf.c`).
pub static OBJECT: &[u8] =
    tapio_ebpf_support::include_bpf_object!("../../../bpf-objects/obj/container.bpf.o");

/// The collector's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Ring buffer settings.
    #[serde(flatten)]
    pub ring: RingSettings,
}

/// The BPF object and its programs for `settings`.
pub fn object_spec(settings: &Settings) -> ObjectSpec {
    ObjectSpec::new("container", OBJECT)
        .ring(&settings.ring)
        .program(ProgramSpec::new(
            "cgroup_mkdir",
            Attach::BtfTracepoint("cgroup_mkdir"),
        ))
        .program(ProgramSpec::new(
            "cgroup_rmdir",
            Attach::BtfTracepoint("cgroup_rmdir"),
        ))
        .program(ProgramSpec::new(
            "cgroup_attach_task",
            Attach::BtfTracepoint("cgroup_attach_task"),
        ))
        .program(ProgramSpec::new(
            "mark_victim",
            Attach::BtfTracepoint("mark_victim"),
        ))
        .program(ProgramSpec::new(
            "sched_process_exit",
            Attach::BtfTracepoint("sched_process_exit"),
        ))
}

/// The container collector.
pub struct ContainerCollector {
    settings: Settings,
    runtime: RuntimeSlot,
    counters: Arc<Counters>,
}

impl ContainerCollector {
    /// The runtime's kernel counters (for tests): produced, dropped, delivered.
    pub fn kernel_stats(&self) -> Option<tapio_ebpf_support::stats::StatsSnapshot> {
        self.runtime.stats()
    }
}

const TAGS: &[RStr<'static>] = &[RStr::from_str("ebpf")];

impl Collector for ContainerCollector {
    const INFO: PluginInfo = PluginInfo::new(
        "container",
        "Container lifecycle, OOM kills and exits from cgroup tracepoints (eBPF)",
    )
    .tags(TAGS)
    .event_types(events::EVENT_TYPES)
    .config(&[RING_BUFFER_BYTES, WAKEUP_BYTES, POLL_INTERVAL]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings.ring.validate()?;
        Ok(ContainerCollector {
            settings,
            runtime: RuntimeSlot::default(),
            counters: Arc::new(Counters::default()),
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        let handler = Handler::new(sink, Arc::clone(&self.counters));
        self.runtime.start(object_spec(&self.settings), handler)
    }

    fn health(&self) -> Health {
        self.runtime.health()
    }

    fn metrics(&self) -> Vec<Metric> {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.counters;
        let mut metrics = self.runtime.metrics();
        metrics.extend(handler_metrics(&c.decode_errors, &c.events_refused));
        metrics.push(Metric::counter(
            "watch_errors_total",
            "Container cgroups that could not be added to the kernel's watch list (map full).",
            c.watch_errors.load(Relaxed),
        ));
        metrics.push(Metric::gauge(
            "containers",
            "Containers known now.",
            c.containers.load(Relaxed) as f64,
        ));
        metrics
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.runtime.stop();
        Ok(())
    }
}

export_plugin!(ContainerCollector);
