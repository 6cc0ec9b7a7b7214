//! storage-io: block I/O latency per device and per process (`block:block_rq_issue` /
//! `block_rq_complete`, submitter from `block_io_start`), slow-I/O events above a threshold,
//! periodic latency summaries, and fsync / fdatasync latency. See README.md.

#![warn(missing_docs, unreachable_pub)]

pub mod aggregate;
pub mod devices;
pub mod events;
mod handler;
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

use handler::{Counters, Handler, HandlerSettings};

/// The compiled BPF object (`bpf-objects/src/storage_io.bpf.c`).
pub static OBJECT: &[u8] =
    tapio_ebpf_support::include_bpf_object!("../../../bpf-objects/obj/storage_io.bpf.o");

/// The collector's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// I/Os (and fsyncs) at least this slow produce a `storage.io.slow` event each.
    #[serde(with = "duration")]
    pub slow_threshold: Duration,
    /// Length of the summary window.
    #[serde(with = "duration")]
    pub summary_interval: Duration,
    /// Kernel-side filter: faster I/Os are not even sent (and not in the summaries).
    #[serde(with = "duration")]
    pub min_latency: Duration,
    /// Whether fsync / fdatasync calls are traced.
    pub fsync: bool,
    /// Per-process summaries per window, for the busiest processes.
    pub max_processes: u64,
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
        if self.summary_interval < Duration::from_millis(100) {
            problems.push(format!(
                "summary_interval must be at least 100ms, got {:?}",
                self.summary_interval
            ));
        }
        if self.min_latency > self.slow_threshold {
            problems.push(format!(
                "min_latency ({:?}) must not exceed slow_threshold ({:?})",
                self.min_latency, self.slow_threshold
            ));
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
    let mut spec = ObjectSpec::new("storage-io", OBJECT)
        .ring(&settings.ring)
        .global("min_latency_ns", settings.min_latency.as_nanos() as u64)
        // Kernels before 6.5 have no block_io_start: requests are then attributed to the
        // context that issues them.
        .program(
            ProgramSpec::new("block_io_start", Attach::BtfTracepoint("block_io_start")).optional(),
        )
        .program(ProgramSpec::new(
            "block_rq_issue",
            Attach::BtfTracepoint("block_rq_issue"),
        ))
        .program(ProgramSpec::new(
            "block_rq_complete",
            Attach::BtfTracepoint("block_rq_complete"),
        ));
    if settings.fsync {
        for (program, name) in [
            ("sys_enter_fsync", "sys_enter_fsync"),
            ("sys_exit_fsync", "sys_exit_fsync"),
            ("sys_enter_fdatasync", "sys_enter_fdatasync"),
            ("sys_exit_fdatasync", "sys_exit_fdatasync"),
        ] {
            spec = spec.program(
                ProgramSpec::new(
                    program,
                    Attach::Tracepoint {
                        category: "syscalls",
                        name,
                    },
                )
                .optional(),
            );
        }
    }
    spec
}

/// The storage-io collector.
pub struct StorageIo {
    settings: Settings,
    runtime: RuntimeSlot,
    counters: Arc<Counters>,
    stopping: Arc<AtomicBool>,
}

impl StorageIo {
    /// The runtime's kernel counters (for tests): produced, dropped, delivered.
    pub fn kernel_stats(&self) -> Option<tapio_ebpf_support::stats::StatsSnapshot> {
        self.runtime.stats()
    }
}

const TAGS: &[RStr<'static>] = &[RStr::from_str("ebpf")];

impl Collector for StorageIo {
    const INFO: PluginInfo = PluginInfo::new(
        "storage-io",
        "Block I/O latency per device and process, slow I/O and fsync latency (eBPF)",
    )
    .tags(TAGS)
    .event_types(events::EVENT_TYPES)
    .config(&[
        ConfigField::duration(
            "slow_threshold",
            "10ms",
            "Block requests and fsync calls at least this slow produce one storage.io.slow event each.",
        ),
        ConfigField::duration(
            "summary_interval",
            "10s",
            "Window of the storage.io.read / write / fsync latency summaries.",
        ),
        ConfigField::duration(
            "min_latency",
            "0s",
            "Kernel-side filter: faster I/Os are not sent to user space at all (cheaper, but \
             then missing from the summaries). Must not exceed slow_threshold.",
        ),
        ConfigField::bool("fsync", true, "Trace fsync(2) and fdatasync(2) latency."),
        ConfigField::uint(
            "max_processes",
            20,
            "Per-process summaries per window, for the processes with the most I/O.",
        ),
        RING_BUFFER_BYTES,
        WAKEUP_BYTES,
        POLL_INTERVAL,
    ]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings.validate()?;
        Ok(StorageIo {
            settings,
            runtime: RuntimeSlot::default(),
            counters: Arc::new(Counters::default()),
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        self.stopping.store(false, Ordering::SeqCst);
        let handler = Handler::new(
            sink,
            HandlerSettings {
                slow_threshold_ns: self.settings.slow_threshold.as_nanos() as u64,
                interval_ns: self.settings.summary_interval.as_nanos() as u64,
                max_processes: self.settings.max_processes as usize,
            },
            Arc::clone(&self.counters),
            Arc::clone(&self.stopping),
        );
        self.runtime.start(object_spec(&self.settings), handler)
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

export_plugin!(StorageIo);
