//! syscall-errors: failed system calls from the raw `sys_exit` tracepoint (`tp_btf`), for an errno allow-list,
//! aggregated in the kernel per (process, syscall, errno) with a per-severity rate limit on
//! new aggregates; syscall names resolved (x86-64, i386) and the path of file syscalls.
//! See README.md.

#![warn(missing_docs, unreachable_pub)]

pub mod errno;
mod errno_table;
pub mod events;
mod handler;
pub mod record;
mod syscall_table;
pub mod syscalls;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tapio_ebpf_support::{Attach, ObjectSpec, ProgramSpec, RuntimeSlot};
use tapio_plugin_api::{
    config::duration, export_plugin, Collector, Config, ConfigField, EventSink, Health, HostHandle,
    Metric, PluginError, PluginInfo, RStr,
};

use errno::Class;
use handler::{Counters, Handler};

/// The compiled BPF object (`bpf-objects/src/syscall_errors.bpf.c`).
pub static OBJECT: &[u8] =
    tapio_ebpf_support::include_bpf_object!("../../../bpf-objects/obj/syscall_errors.bpf.o");

/// The BPF program (on `tp_btf/sys_exit`, the raw sys_exit tracepoint).
pub const PROGRAM: &str = "syscall_errors";

/// The collector's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The errnos reported (names such as `ENOSPC`, or numbers).
    pub errnos: Vec<String>,
    /// How often the aggregates are read out of the kernel and reported.
    #[serde(with = "duration")]
    pub report_interval: Duration,
    /// New aggregates per second of class critical (ENOMEM, ENOSPC, EDQUOT); 0 = no limit.
    pub rate_limit_critical: u32,
    /// New aggregates per second of class error (EIO, EMFILE, ENFILE); 0 = no limit.
    pub rate_limit_error: u32,
    /// New aggregates per second of class warning (every other errno); 0 = no limit.
    pub rate_limit_warning: u32,
    /// Capacity of the kernel's aggregate map.
    pub max_aggregates: u32,
}

impl Settings {
    /// Checks the values and resolves the allow-list; every problem is listed in one error.
    pub fn validate(&self) -> Result<Vec<u32>, PluginError> {
        let mut problems = Vec::new();
        let allowed = errno::parse_allow_list(&self.errnos).unwrap_or_else(|e| {
            problems.push(e);
            Vec::new()
        });
        if self.errnos.is_empty() {
            problems.push("errnos must list at least one errno".to_owned());
        }
        if self.report_interval < Duration::from_millis(100)
            || self.report_interval > Duration::from_secs(3600)
        {
            problems.push(format!(
                "report_interval must be between 100ms and 1h, got {:?}",
                self.report_interval
            ));
        }
        if !(16..=1 << 22).contains(&self.max_aggregates) {
            problems.push(format!(
                "max_aggregates must be between 16 and 4194304, got {}",
                self.max_aggregates
            ));
        }
        if problems.is_empty() {
            Ok(allowed)
        } else {
            Err(PluginError::config(problems.join("; ")))
        }
    }

    /// The `rate_limit` global: index = class.
    fn rate_limits(&self) -> [u32; 4] {
        [
            0,
            self.rate_limit_critical,
            self.rate_limit_error,
            self.rate_limit_warning,
        ]
    }
}

/// The reader's timer: the longest a retired generation waits before it is drained.
const TICK: Duration = Duration::from_millis(20);

/// The BPF object for `settings` and its resolved allow-list.
pub fn object_spec(settings: &Settings, allowed: &[u32]) -> ObjectSpec {
    let mut spec = ObjectSpec::new("syscall-errors", OBJECT)
        .program(ProgramSpec::new(PROGRAM, Attach::BtfTracepoint("sys_exit")))
        .global("errno_class", errno::class_table(allowed))
        .global("path_arg", syscalls::path_arg_table())
        .global("rate_limit", settings.rate_limits())
        .map_size("agg", settings.max_aggregates)
        .extra_stat(
            0,
            "aggregate_map_full_total",
            "Failed syscalls lost because the kernel's aggregate map was full.",
        )
        .extra_stat(
            1,
            "rate_limited_total",
            "Failed syscalls not aggregated because their class's rate limit was reached.",
        );
    // The ring carries nothing: one page, and the timer drives the drains.
    spec.ring_bytes = 4096;
    spec.wakeup_bytes = 0;
    spec.poll_interval = TICK;
    spec
}

/// The syscall-errors collector.
pub struct SyscallErrors {
    settings: Settings,
    allowed: Vec<u32>,
    runtime: RuntimeSlot,
    counters: Arc<Counters>,
}

impl SyscallErrors {
    /// The runtime's kernel counters (for tests).
    pub fn kernel_stats(&self) -> Option<tapio_ebpf_support::stats::StatsSnapshot> {
        self.runtime.stats()
    }
}

const TAGS: &[RStr<'static>] = &[RStr::from_str("ebpf")];
const DEFAULT_ERRNOS: &[RStr<'static>] = &[
    RStr::from_str("ENOSPC"),
    RStr::from_str("ENOMEM"),
    RStr::from_str("ECONNREFUSED"),
    RStr::from_str("EIO"),
    RStr::from_str("EACCES"),
    RStr::from_str("EPERM"),
    RStr::from_str("ETIMEDOUT"),
    RStr::from_str("EMFILE"),
    RStr::from_str("EDQUOT"),
];

impl Collector for SyscallErrors {
    const INFO: PluginInfo = PluginInfo::new(
        "syscall-errors",
        "Failed system calls aggregated in the kernel per process, syscall and errno (eBPF)",
    )
    .tags(TAGS)
    .event_types(events::EVENT_TYPES)
    .config(&[
        ConfigField::string_list(
            "errnos",
            DEFAULT_ERRNOS,
            "The errnos reported, by name (ENOSPC) or number; failures with other errnos \
             are ignored in the kernel.",
        ),
        ConfigField::duration(
            "report_interval",
            "1s",
            "How often the kernel's aggregates are read out and reported (100ms..1h).",
        ),
        ConfigField::uint(
            "rate_limit_critical",
            1000,
            "New aggregates per second of severity critical (ENOMEM, ENOSPC, EDQUOT); 0 = \
             unlimited. Failures over the limit are counted in rate_limited_total.",
        ),
        ConfigField::uint(
            "rate_limit_error",
            500,
            "New aggregates per second of severity error (EIO, EMFILE, ENFILE); 0 = unlimited.",
        ),
        ConfigField::uint(
            "rate_limit_warning",
            200,
            "New aggregates per second of severity warning (other errnos); 0 = unlimited.",
        ),
        ConfigField::uint(
            "max_aggregates",
            16384,
            "Capacity of the kernel's aggregate map; failures that find it full are counted \
             in aggregate_map_full_total.",
        ),
    ]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        let allowed = settings.validate()?;
        Ok(SyscallErrors {
            settings,
            allowed,
            runtime: RuntimeSlot::default(),
            counters: Arc::new(Counters::default()),
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        self.counters.stopping.store(false, Ordering::SeqCst);
        let handler = Handler::new(
            sink,
            Arc::clone(&self.counters),
            self.settings.report_interval,
        );
        self.runtime
            .start(object_spec(&self.settings, &self.allowed), handler)
    }

    fn health(&self) -> Health {
        self.runtime.health()
    }

    fn metrics(&self) -> Vec<Metric> {
        let c = &self.counters;
        let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
        let mut metrics = self.runtime.metrics();
        metrics.push(Metric::counter(
            "failures_seen_total",
            "Allow-listed failed syscalls the kernel saw (updated at each drain): equals \
             failures_reported_total + rate_limited_total + aggregate_map_full_total once \
             drained.",
            load(&c.kernel_counts[0]),
        ));
        metrics.push(Metric::counter(
            "aggregates_reported_total",
            "kernel.syscall.error events built (one per aggregate and interval).",
            load(&c.aggregates),
        ));
        metrics.push(Metric::counter(
            "failures_reported_total",
            "Failed syscalls counted in reported aggregates.",
            load(&c.failures),
        ));
        metrics.push(Metric::counter(
            "events_refused_total",
            "Events the host refused because its ring was full.",
            load(&c.events_refused),
        ));
        metrics.push(Metric::counter(
            "map_errors_total",
            "Aggregates that could not be read or deleted from the kernel map.",
            load(&c.map_errors),
        ));
        for (class, name, help) in [
            (
                Class::Critical,
                "rate_limited_critical_total",
                "Critical failures over the rate limit (not aggregated).",
            ),
            (
                Class::Error,
                "rate_limited_error_total",
                "Error failures over the rate limit (not aggregated).",
            ),
            (
                Class::Warning,
                "rate_limited_warning_total",
                "Warning failures over the rate limit (not aggregated).",
            ),
        ] {
            metrics.push(Metric::counter(
                name,
                help,
                load(&c.kernel_counts[class as usize]),
            ));
        }
        metrics
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.counters.stopping.store(true, Ordering::SeqCst);
        self.runtime.stop();
        Ok(())
    }
}

export_plugin!(SyscallErrors);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(errnos: &[&str], interval_ms: u64, max_aggregates: u32) -> Settings {
        Settings {
            errnos: errnos.iter().map(|e| (*e).to_owned()).collect(),
            report_interval: Duration::from_millis(interval_ms),
            rate_limit_critical: 0,
            rate_limit_error: 0,
            rate_limit_warning: 0,
            max_aggregates,
        }
    }

    #[test]
    fn validate_lists_every_problem() {
        let err = settings(&["ENOSPC", "EBOGUS"], 10, 1)
            .validate()
            .unwrap_err();
        for part in ["`EBOGUS`", "report_interval", "max_aggregates"] {
            assert!(err.message.contains(part), "{part}: {err}");
        }
        let allowed = settings(&["ENOSPC", "2", "enoent"], 1000, 16384)
            .validate()
            .unwrap();
        assert_eq!(allowed, [28, 2], "duplicates folded");
    }
}
