//! memory (memory-leak-hunter): memory-cgroup reclaim pressure (vmscan tracepoints), RSS
//! growth (`mm:rss_stat`, sampled in the kernel), and large allocations of configured
//! processes still outstanding after a minimum age, with their caller (uprobes on the C
//! library's malloc family and mmap/munmap). See README.md.

#![warn(missing_docs, unreachable_pub)]

pub mod allocs;
pub mod events;
mod handler;
pub mod maps;
pub mod reclaim;
pub mod record;
pub mod rss;
pub mod uprobes;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tapio_ebpf_support::config::{RingSettings, POLL_INTERVAL, RING_BUFFER_BYTES, WAKEUP_BYTES};
use tapio_ebpf_support::{handler_metrics, Attach, ObjectSpec, ProgramSpec, RuntimeSlot};
use tapio_plugin_api::{
    config::duration, export_plugin, Collector, Config, ConfigField, EventSink, Health,
    HealthStatus, HostHandle, Metric, PluginError, PluginInfo, RStr,
};

use handler::{Handler, HandlerSettings, Shared};

/// The compiled BPF object (`bpf-objects/src/memory.bpf.c`).
pub static OBJECT: &[u8] =
    tapio_ebpf_support::include_bpf_object!("../../../bpf-objects/obj/memory.bpf.o");

/// The collector's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// At most one RSS reading per process per interval (kernel-side sampling).
    #[serde(with = "duration")]
    pub rss_sample_interval: Duration,
    /// RSS growth that is reported, in bytes.
    pub rss_growth_threshold: u64,
    /// Window within which the growth must happen.
    #[serde(with = "duration")]
    pub rss_growth_window: Duration,
    /// Window of the `container.memory_pressure` reports.
    #[serde(with = "duration")]
    pub reclaim_interval: Duration,
    /// Processes whose allocations are tracked (pids as text).
    pub pids: Vec<String>,
    /// Allocations smaller than this are not tracked, in bytes.
    pub min_alloc_size: u64,
    /// An allocation still outstanding after this long is reported.
    #[serde(with = "duration")]
    pub min_alloc_age: Duration,
    /// How often the outstanding allocations are read.
    #[serde(with = "duration")]
    pub scan_interval: Duration,
    /// Only this process for reclaim and RSS (0 = every process).
    pub pid: u64,
    /// Ring buffer settings.
    #[serde(flatten)]
    pub ring: RingSettings,
}

impl Settings {
    /// The tracked pids, or every problem with them.
    fn parse_pids(&self) -> Result<Vec<u32>, Vec<String>> {
        let mut pids = Vec::new();
        let mut problems = Vec::new();
        for text in &self.pids {
            match text.trim().parse::<u32>() {
                Ok(0) | Err(_) => problems.push(format!("pids: {text:?} is not a pid")),
                Ok(pid) => pids.push(pid),
            }
        }
        if problems.is_empty() {
            Ok(pids)
        } else {
            Err(problems)
        }
    }

    fn validate(&self) -> Result<Vec<u32>, PluginError> {
        let mut problems = Vec::new();
        if let Err(e) = self.ring.validate() {
            problems.push(e.message.to_string());
        }
        let pids = self.parse_pids().unwrap_or_else(|p| {
            problems.extend(p);
            Vec::new()
        });
        for (name, value) in [
            ("rss_sample_interval", self.rss_sample_interval),
            ("reclaim_interval", self.reclaim_interval),
            ("scan_interval", self.scan_interval),
        ] {
            if value < Duration::from_millis(10) {
                problems.push(format!("{name} must be at least 10ms, got {value:?}"));
            }
        }
        if self.rss_growth_window < self.rss_sample_interval {
            problems.push("rss_growth_window must be at least rss_sample_interval".to_owned());
        }
        if self.rss_growth_threshold == 0 {
            problems.push("rss_growth_threshold must be greater than 0".to_owned());
        }
        if self.pid > u64::from(u32::MAX) {
            problems.push(format!("pid {} is not a pid", self.pid));
        }
        if problems.is_empty() {
            Ok(pids)
        } else {
            Err(PluginError::config(problems.join("; ")))
        }
    }
}

/// The BPF object, its programs and globals for `settings`. The allocation uprobes are
/// attached per process once the object is loaded.
pub fn object_spec(settings: &Settings) -> ObjectSpec {
    ObjectSpec::new("memory", OBJECT)
        .ring(&settings.ring)
        .global(
            "rss_sample_ns",
            settings.rss_sample_interval.as_nanos() as u64,
        )
        .global("min_alloc_size", settings.min_alloc_size)
        .global("filter_tgid", settings.pid as u32)
        .program(ProgramSpec::new(
            "memcg_reclaim_begin",
            Attach::BtfTracepoint("mm_vmscan_memcg_reclaim_begin"),
        ))
        .program(ProgramSpec::new(
            "memcg_reclaim_end",
            Attach::BtfTracepoint("mm_vmscan_memcg_reclaim_end"),
        ))
        .program(ProgramSpec::new(
            "direct_reclaim_begin",
            Attach::BtfTracepoint("mm_vmscan_direct_reclaim_begin"),
        ))
        .program(ProgramSpec::new(
            "direct_reclaim_end",
            Attach::BtfTracepoint("mm_vmscan_direct_reclaim_end"),
        ))
        // The percpu_counter RSS layout needs kernel >= 6.2.
        .program(ProgramSpec::new("rss_stat", Attach::BtfTracepoint("rss_stat")).optional())
        .extra_stat(
            0,
            "allocations_tracked_total",
            "Large allocations recorded by the uprobes.",
        )
        .extra_stat(
            1,
            "allocations_untracked_total",
            "Large allocations not recorded because the allocation map was full.",
        )
}

/// The memory collector.
pub struct Memory {
    settings: Settings,
    pids: Vec<u32>,
    runtime: RuntimeSlot,
    shared: Arc<Shared>,
    stopping: Arc<AtomicBool>,
}

impl Memory {
    /// The runtime's kernel counters (for tests): produced, dropped, delivered.
    pub fn kernel_stats(&self) -> Option<tapio_ebpf_support::stats::StatsSnapshot> {
        self.runtime.stats()
    }

    /// Pids whose allocations are tracked now.
    pub fn tracked_pids(&self) -> Vec<u32> {
        self.shared.tracked_pids.lock().clone()
    }
}

const TAGS: &[RStr<'static>] = &[RStr::from_str("ebpf")];

impl Collector for Memory {
    const INFO: PluginInfo = PluginInfo::new(
        "memory",
        "Memory-cgroup reclaim pressure, RSS growth and outstanding large allocations (eBPF)",
    )
    .tags(TAGS)
    .event_types(events::EVENT_TYPES)
    .config(&[
        ConfigField::duration(
            "rss_sample_interval",
            "1s",
            "Kernel-side sampling: at most one RSS reading per process per interval.",
        ),
        ConfigField::uint(
            "rss_growth_threshold",
            100 << 20,
            "RSS growth in bytes (within rss_growth_window) that produces memory.rss_growth.",
        ),
        ConfigField::duration(
            "rss_growth_window",
            "60s",
            "Window within which the RSS growth must happen.",
        ),
        ConfigField::duration(
            "reclaim_interval",
            "10s",
            "Window of the container.memory_pressure reports.",
        ),
        ConfigField::string_list(
            "pids",
            &[],
            "Processes (pids) whose malloc / calloc / realloc / mmap allocations are tracked with uprobes.",
        ),
        ConfigField::uint(
            "min_alloc_size",
            1 << 20,
            "Allocations smaller than this many bytes are not tracked.",
        ),
        ConfigField::duration(
            "min_alloc_age",
            "30s",
            "A tracked allocation still not freed after this long is reported once.",
        ),
        ConfigField::duration(
            "scan_interval",
            "5s",
            "How often the outstanding allocations are read from the kernel.",
        ),
        ConfigField::uint("pid", 0, "Reclaim and RSS of this process only (0 = every process)."),
        RING_BUFFER_BYTES,
        WAKEUP_BYTES,
        POLL_INTERVAL,
    ]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        let pids = settings.validate()?;
        Ok(Memory {
            settings,
            pids,
            runtime: RuntimeSlot::default(),
            shared: Arc::new(Shared::default()),
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        self.stopping.store(false, Ordering::SeqCst);
        let s = &self.settings;
        let handler = Handler::new(
            sink,
            HandlerSettings {
                reclaim_interval_ns: s.reclaim_interval.as_nanos() as u64,
                rss_threshold: s.rss_growth_threshold,
                rss_window_ns: s.rss_growth_window.as_nanos() as u64,
                pids: self.pids.clone(),
                min_alloc_age_ns: s.min_alloc_age.as_nanos() as u64,
                scan_interval_ns: s.scan_interval.as_nanos() as u64,
            },
            Arc::clone(&self.shared),
            Arc::clone(&self.stopping),
        );
        self.runtime.start(object_spec(s), handler)
    }

    fn health(&self) -> Health {
        let health = self.runtime.health();
        let problems = self.shared.uprobe_problems.lock();
        if health.status == HealthStatus::Healthy && !problems.is_empty() {
            return Health::degraded(format!(
                "allocation tracking unavailable for {}",
                problems.join("; ")
            ));
        }
        health
    }

    fn metrics(&self) -> Vec<Metric> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut metrics = self.runtime.metrics();
        metrics.extend(handler_metrics(
            &self.shared.decode_errors,
            &self.shared.events_refused,
        ));
        metrics.push(Metric::gauge(
            "allocations_outstanding",
            "Tracked large allocations not freed yet.",
            self.shared.outstanding.load(Relaxed) as f64,
        ));
        metrics.push(Metric::gauge(
            "tracked_processes",
            "Processes whose allocations are tracked.",
            self.shared.tracked_pids.lock().len() as f64,
        ));
        metrics
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.stopping.store(true, Ordering::SeqCst);
        self.runtime.stop();
        Ok(())
    }
}

export_plugin!(Memory);
