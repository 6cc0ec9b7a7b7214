//! network: the TCP connection lifecycle from eBPF (`sock:inet_sock_set_state`, accept(2)
//! exits, `tcp:tcp_receive_reset` / `tcp_send_reset`, `tcp:tcp_retransmit_skb`): connects
//! with their latency, accepts, closes with duration and bytes, refused and failed connects,
//! resets and retransmits, IPv4 and IPv6, per process and cgroup. See README.md.

#![warn(missing_docs, unreachable_pub)]

pub mod events;
mod handler;
pub mod record;

use std::sync::Arc;

use serde::Deserialize;
use tapio_ebpf_support::config::{RingSettings, POLL_INTERVAL, RING_BUFFER_BYTES, WAKEUP_BYTES};
use tapio_ebpf_support::{handler_metrics, Attach, ObjectSpec, ProgramSpec, RuntimeSlot};
use tapio_plugin_api::{
    export_plugin, Collector, Config, ConfigField, EventSink, Health, HostHandle, Metric,
    PluginError, PluginInfo, RStr,
};

use handler::{Counters, Handler};

/// The compiled BPF object (`bpf-objects/src/network.bpf.c`).
pub static OBJECT: &[u8] =
    tapio_ebpf_support::include_bpf_object!("../../../bpf-objects/obj/network.bpf.o");

/// The collector's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Report accepted connections (needs the accept(2) syscall tracepoints, tracefs).
    pub accept: bool,
    /// Report resets.
    pub resets: bool,
    /// Report retransmitted segments.
    pub retransmits: bool,
    /// Sockets tracked at once (connect start, owner); least recently used are evicted.
    pub max_sockets: u64,
    /// Only sockets owned by this process id (0 = every process). For tests and debugging.
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
        if !(1024..=1 << 22).contains(&self.max_sockets) {
            problems.push(format!(
                "max_sockets must be between 1024 and 4194304, got {}",
                self.max_sockets
            ));
        }
        if self.pid > u64::from(u32::MAX) {
            problems.push(format!("pid must fit 32 bits, got {}", self.pid));
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
    let mut spec = ObjectSpec::new("network", OBJECT)
        .ring(&settings.ring)
        .global("filter_tgid", settings.pid as u32)
        .map_size("net_socks", settings.max_sockets as u32)
        .extra_stat(
            0,
            "untracked_sockets_total",
            "Sockets first seen after their connect/accept (started before attach or evicted from the socket map): no latency for them.",
        )
        .program(ProgramSpec::new(
            "inet_sock_set_state",
            Attach::BtfTracepoint("inet_sock_set_state"),
        ));
    if settings.accept {
        for name in ["sys_exit_accept4", "sys_exit_accept"] {
            spec = spec.program(
                ProgramSpec::new(
                    name,
                    Attach::Tracepoint {
                        category: "syscalls",
                        name,
                    },
                )
                .optional(),
            );
        }
    }
    if settings.resets {
        spec = spec
            .program(
                ProgramSpec::new(
                    "tcp_receive_reset",
                    Attach::BtfTracepoint("tcp_receive_reset"),
                )
                .optional(),
            )
            .program(
                ProgramSpec::new("tcp_send_reset", Attach::BtfTracepoint("tcp_send_reset"))
                    .optional(),
            );
    }
    if settings.retransmits {
        spec = spec.program(
            ProgramSpec::new(
                "tcp_retransmit_skb",
                Attach::BtfTracepoint("tcp_retransmit_skb"),
            )
            .optional(),
        );
    }
    spec
}

/// The network collector.
pub struct Network {
    settings: Settings,
    runtime: RuntimeSlot,
    counters: Arc<Counters>,
}

impl Network {
    /// The runtime's kernel counters (for tests): produced, dropped, delivered.
    pub fn kernel_stats(&self) -> Option<tapio_ebpf_support::stats::StatsSnapshot> {
        self.runtime.stats()
    }
}

const TAGS: &[RStr<'static>] = &[RStr::from_str("ebpf"), RStr::from_str("network")];

impl Collector for Network {
    const INFO: PluginInfo = PluginInfo::new(
        "network",
        "TCP connection lifecycle: connects with latency, accepts, closes with duration and bytes, refused connects, resets, retransmits (eBPF)",
    )
    .tags(TAGS)
    .event_types(events::EVENT_TYPES)
    .config(&[
        ConfigField::bool(
            "accept",
            true,
            "Report accepted connections with the accepting process (accept(2) tracepoints; needs tracefs, mounted on demand).",
        ),
        ConfigField::bool("resets", true, "Report TCP resets sent and received."),
        ConfigField::bool("retransmits", true, "Report retransmitted TCP segments."),
        ConfigField::uint(
            "max_sockets",
            65536,
            "Sockets tracked at once in the kernel (owner and start time), 1024..4194304; the least recently used are evicted.",
        ),
        ConfigField::uint(
            "pid",
            0,
            "Only report sockets owned by this process id (0 = every process; sent resets that match no socket are then skipped).",
        ),
        RING_BUFFER_BYTES,
        WAKEUP_BYTES,
        POLL_INTERVAL,
    ]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings.validate()?;
        Ok(Network {
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
        let mut metrics = self.runtime.metrics();
        metrics.extend(handler_metrics(
            &self.counters.decode_errors,
            &self.counters.events_refused,
        ));
        metrics
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.runtime.stop();
        Ok(())
    }
}

export_plugin!(Network);
