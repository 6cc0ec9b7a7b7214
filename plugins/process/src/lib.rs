//! process (runtime-signals): process exec, exit with its death reason (normal_exit,
//! signal, oom_kill, segmentation_fault, abort, crash) and killer, fatal signals with sender
//! and target, and OOM kills, from BTF tracepoints. See README.md.

#![warn(missing_docs, unreachable_pub)]

pub mod death;
pub mod events;
mod handler;
pub mod record;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tapio_ebpf_support::config::{RingSettings, POLL_INTERVAL, RING_BUFFER_BYTES, WAKEUP_BYTES};
use tapio_ebpf_support::{handler_metrics, Attach, ObjectSpec, ProgramSpec, RuntimeSlot};
use tapio_plugin_api::{
    config::duration, export_plugin, Collector, Config, ConfigField, EventSink, Health, HostHandle,
    Metric, PluginError, PluginInfo, RStr,
};

use handler::{Counters, Handler};

/// The compiled BPF object (`bpf-objects/src/process.bpf.c`).
pub static OBJECT: &[u8] =
    tapio_ebpf_support::include_bpf_object!("../../../bpf-objects/obj/process.bpf.o");

/// The BPF programs (function names, distinct in their first 15 characters, the kernel's
/// program name) and their `tp_btf` tracepoints, in attach order.
pub const PROGRAMS: &[(&str, &str)] = &[
    ("process_exec", "sched_process_exec"),
    ("process_signal", "signal_generate"),
    ("process_oom", "mark_victim"),
    ("process_exit", "sched_process_exit"),
];

/// The collector's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// How long a fatal signal (or OOM mark) explains the exit of its target.
    #[serde(with = "duration")]
    pub fatal_signal_window: Duration,
    /// Ring buffer settings.
    #[serde(flatten)]
    pub ring: RingSettings,
}

impl Settings {
    /// Checks the values; every problem is listed in one error.
    pub fn validate(&self) -> Result<(), PluginError> {
        let mut problems = Vec::new();
        if let Err(e) = self.ring.validate() {
            problems.push(e.message.to_string());
        }
        if self.fatal_signal_window.is_zero()
            || self.fatal_signal_window > Duration::from_secs(3600)
        {
            problems.push(format!(
                "fatal_signal_window must be between 1ns and 1h, got {:?}",
                self.fatal_signal_window
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PluginError::config(problems.join("; ")))
        }
    }
}

/// The BPF object and its programs for `settings`.
pub fn object_spec(settings: &Settings) -> ObjectSpec {
    let mut spec = ObjectSpec::new("process", OBJECT)
        .ring(&settings.ring)
        .global(
            "fatal_window_ns",
            settings.fatal_signal_window.as_nanos() as u64,
        );
    for (name, tracepoint) in PROGRAMS {
        spec = spec.program(ProgramSpec::new(name, Attach::BtfTracepoint(tracepoint)));
    }
    spec
}

/// The process collector.
pub struct ProcessCollector {
    settings: Settings,
    runtime: RuntimeSlot,
    counters: Arc<Counters>,
}

impl ProcessCollector {
    /// The runtime's kernel counters (for tests): produced, dropped, delivered.
    pub fn kernel_stats(&self) -> Option<tapio_ebpf_support::stats::StatsSnapshot> {
        self.runtime.stats()
    }
}

const TAGS: &[RStr<'static>] = &[RStr::from_str("ebpf")];

impl Collector for ProcessCollector {
    const INFO: PluginInfo = PluginInfo::new(
        "process",
        "Process exec, exit with death reason, fatal signals and OOM kills (eBPF)",
    )
    .tags(TAGS)
    .event_types(events::EVENT_TYPES)
    .config(&[
        ConfigField::duration(
            "fatal_signal_window",
            "30s",
            "How long a fatal signal or OOM kill seen for a process explains its exit \
             (death reason and killer).",
        ),
        RING_BUFFER_BYTES,
        WAKEUP_BYTES,
        POLL_INTERVAL,
    ]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings.validate()?;
        Ok(ProcessCollector {
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
        for (name, help, value) in [
            (
                "exec_events_total",
                "kernel.process.exec events built.",
                &c.execs,
            ),
            (
                "exit_events_total",
                "kernel.process.exit events built.",
                &c.exits,
            ),
            (
                "signal_events_total",
                "kernel.process.signal events built.",
                &c.signals,
            ),
            (
                "oom_kill_events_total",
                "kernel.memory.oom_kill events built.",
                &c.ooms,
            ),
        ] {
            metrics.push(Metric::counter(name, help, value.load(Relaxed)));
        }
        metrics
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.runtime.stop();
        Ok(())
    }
}

export_plugin!(ProcessCollector);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_lists_every_problem() {
        let bad = Settings {
            fatal_signal_window: Duration::ZERO,
            ring: RingSettings {
                ring_buffer_bytes: 1000,
                ..RingSettings::default()
            },
        };
        let err = bad.validate().unwrap_err();
        assert!(err.message.contains("fatal_signal_window"), "{err}");
        assert!(err.message.contains("ring_buffer_bytes"), "{err}");
        let good = Settings {
            fatal_signal_window: Duration::from_secs(30),
            ring: RingSettings::default(),
        };
        assert!(good.validate().is_ok());
        assert_eq!(object_spec(&good).programs.len(), PROGRAMS.len());
    }
}
