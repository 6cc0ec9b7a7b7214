//! cpu-starvation (resource-starvation): run-queue latency per task and cgroup from
//! `sched_wakeup` / `sched_wakeup_new` / `sched_switch`, starvation levels, and the noisy
//! neighbour (who ran while a task waited). See README.md.

#![warn(missing_docs, unreachable_pub)]

pub mod aggregate;
pub mod events;
mod handler;
pub mod level;
pub mod record;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tapio_ebpf_support::config::{RingSettings, POLL_INTERVAL, RING_BUFFER_BYTES, WAKEUP_BYTES};
use tapio_ebpf_support::{handler_metrics, Attach, ObjectSpec, ProgramSpec, RuntimeSlot};
use tapio_plugin_api::{
    config::duration, export_plugin, Collector, Config, ConfigField, EventSink, Health, HostHandle,
    Metric, PluginError, PluginInfo, RStr,
};

use events::EventSettings;
use handler::{Counters, Handler, HandlerSettings};

/// The compiled BPF object (`bpf-objects/src/cpu_starvation.bpf.c`).
pub static OBJECT: &[u8] =
    tapio_ebpf_support::include_bpf_object!("../../../bpf-objects/obj/cpu_starvation.bpf.o");

/// The collector's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Kernel-side filter: shorter run-queue waits are not reported.
    #[serde(with = "duration")]
    pub min_delay: Duration,
    /// Window of the scheduling-delay and noisy-neighbour reports.
    #[serde(with = "duration")]
    pub report_interval: Duration,
    /// A single wait this long is reported at once as `resource.starvation`.
    #[serde(with = "duration")]
    pub starvation_threshold: Duration,
    /// Smallest share of a task's waiting time a neighbour must have run to be reported.
    pub noisy_neighbor_share: f64,
    /// Smallest total wait of a task in a window for a noisy-neighbour report.
    #[serde(with = "duration")]
    pub noisy_neighbor_min_wait: Duration,
    /// Tasks reported per window (those that waited longest).
    pub max_tasks: u64,
    /// Only this process (0 = every process); for tests and benchmarks.
    pub pid: u64,
    /// Ring buffer settings.
    #[serde(flatten)]
    pub ring: RingSettings,
}

impl Settings {
    fn validate(&self) -> Result<(), PluginError> {
        let mut problems = Vec::new();
        if let Err(e) = self.ring.validate() {
            problems.push(e.message.to_string());
        }
        if self.report_interval < Duration::from_millis(100) {
            problems.push(format!(
                "report_interval must be at least 100ms, got {:?}",
                self.report_interval
            ));
        }
        if !(0.0..=1.0).contains(&self.noisy_neighbor_share) {
            problems.push(format!(
                "noisy_neighbor_share must be between 0 and 1, got {}",
                self.noisy_neighbor_share
            ));
        }
        if self.pid > u64::from(u32::MAX) {
            problems.push(format!("pid {} is not a pid", self.pid));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PluginError::config(problems.join("; ")))
        }
    }
}

/// The BPF object, its programs and globals for `settings`.
pub fn object_spec(settings: &Settings) -> ObjectSpec {
    ObjectSpec::new("cpu-starvation", OBJECT)
        .ring(&settings.ring)
        .global("min_delay_ns", settings.min_delay.as_nanos() as u64)
        .global("filter_tgid", settings.pid as u32)
        .program(ProgramSpec::new(
            "sched_wakeup",
            Attach::BtfTracepoint("sched_wakeup"),
        ))
        .program(ProgramSpec::new(
            "sched_wakeup_new",
            Attach::BtfTracepoint("sched_wakeup_new"),
        ))
        .program(ProgramSpec::new(
            "sched_switch",
            Attach::BtfTracepoint("sched_switch"),
        ))
}

/// The cpu-starvation collector.
pub struct CpuStarvation {
    settings: Settings,
    runtime: RuntimeSlot,
    counters: Arc<Counters>,
    stopping: Arc<AtomicBool>,
}

impl CpuStarvation {
    /// The runtime's kernel counters (for tests): produced, dropped, delivered.
    pub fn kernel_stats(&self) -> Option<tapio_ebpf_support::stats::StatsSnapshot> {
        self.runtime.stats()
    }
}

const TAGS: &[RStr<'static>] = &[RStr::from_str("ebpf")];

impl Collector for CpuStarvation {
    const INFO: PluginInfo = PluginInfo::new(
        "cpu-starvation",
        "Run-queue latency per task and cgroup, starvation and noisy neighbours (eBPF)",
    )
    .tags(TAGS)
    .event_types(events::EVENT_TYPES)
    .config(&[
        ConfigField::duration(
            "min_delay",
            "10ms",
            "Kernel-side filter: run-queue waits shorter than this are not reported.",
        ),
        ConfigField::duration(
            "report_interval",
            "10s",
            "Window of the resource.scheduling_delay and resource.noisy_neighbor events.",
        ),
        ConfigField::duration(
            "starvation_threshold",
            "500ms",
            "One wait this long is reported at once as resource.starvation (once per task and window).",
        ),
        ConfigField::float(
            "noisy_neighbor_share",
            0.5,
            "Share (0-1) of a task's waiting time one other task must have run on its CPU to be reported as its noisy neighbour.",
        ),
        ConfigField::duration(
            "noisy_neighbor_min_wait",
            "50ms",
            "Smallest total wait of a task within a window for a noisy-neighbour report.",
        ),
        ConfigField::uint(
            "max_tasks",
            50,
            "Tasks reported per window: those that waited longest.",
        ),
        ConfigField::uint("pid", 0, "Trace only this process (0 = every process)."),
        RING_BUFFER_BYTES,
        WAKEUP_BYTES,
        POLL_INTERVAL,
    ]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings.validate()?;
        Ok(CpuStarvation {
            settings,
            runtime: RuntimeSlot::default(),
            counters: Arc::new(Counters::default()),
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        self.stopping.store(false, Ordering::SeqCst);
        let s = &self.settings;
        let handler = Handler::new(
            sink,
            HandlerSettings {
                interval_ns: s.report_interval.as_nanos() as u64,
                max_tasks: s.max_tasks as usize,
                starvation_ns: s.starvation_threshold.as_nanos() as u64,
                events: EventSettings {
                    noisy_neighbor_share: s.noisy_neighbor_share,
                    noisy_neighbor_min_wait_ns: s.noisy_neighbor_min_wait.as_nanos() as u64,
                },
            },
            Arc::clone(&self.counters),
            Arc::clone(&self.stopping),
        );
        self.runtime.start(object_spec(s), handler)
    }

    fn health(&self) -> Health {
        self.runtime.health()
    }

    fn metrics(&self) -> Vec<Metric> {
        let mut metrics = self.runtime.metrics();
        metrics.extend(handler_metrics(
            &self.counters.decode_errors,
            &self.counters.events_refused,
        ));
        metrics
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.stopping.store(true, Ordering::SeqCst);
        self.runtime.stop();
        Ok(())
    }
}

export_plugin!(CpuStarvation);
