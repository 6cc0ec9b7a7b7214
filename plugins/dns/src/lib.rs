//! dns: DNS queries and responses over UDP and TCP, seen by `cgroup_skb` programs on the
//! cgroup v2 root: question name and type, response code, answer count, latency, timeouts,
//! per process and cgroup. See README.md (and why this hook).

#![warn(missing_docs, unreachable_pub)]

pub mod events;
mod handler;
pub mod message;
pub mod record;
pub mod tracker;

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

/// The compiled BPF object (`bpf-objects/src/dns.bpf.c`).
pub static OBJECT: &[u8] =
    tapio_ebpf_support::include_bpf_object!("../../../bpf-objects/obj/dns.bpf.o");

fn default_ports() -> Vec<u16> {
    vec![53]
}

/// The collector's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Server ports whose traffic is DNS (at most 8).
    #[serde(default = "default_ports")]
    pub ports: Vec<u16>,
    /// A query with no response after this long gives a `kernel.dns.timeout` event.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Queries tracked at once for pairing and timeouts.
    pub max_pending: u64,
    /// Emit one `kernel.dns.query` event per query (responses and timeouts are always
    /// emitted and carry the question).
    pub queries: bool,
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
        if self.ports.is_empty() || self.ports.len() > record::MAX_PORTS {
            problems.push(format!(
                "ports must list 1 to {} ports, got {}",
                record::MAX_PORTS,
                self.ports.len()
            ));
        }
        if self.ports.contains(&0) {
            problems.push("ports must not contain 0".to_string());
        }
        if self.timeout < Duration::from_millis(10) || self.timeout > Duration::from_secs(300) {
            problems.push(format!(
                "timeout must be between 10ms and 300s, got {:?}",
                self.timeout
            ));
        }
        if !(16..=1 << 22).contains(&self.max_pending) {
            problems.push(format!(
                "max_pending must be between 16 and 4194304, got {}",
                self.max_pending
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PluginError::config(problems.join("; ")))
        }
    }

    /// The ports as the kernel side's fixed array (0 = unused slot).
    fn port_array(&self) -> [u16; record::MAX_PORTS] {
        let mut ports = [0u16; record::MAX_PORTS];
        for (slot, port) in ports.iter_mut().zip(&self.ports) {
            *slot = *port;
        }
        ports
    }
}

/// The BPF object, its programs and globals for `settings`.
pub fn object_spec(settings: &Settings) -> ObjectSpec {
    ObjectSpec::new("dns", OBJECT)
        .ring(&settings.ring)
        .global("dns_ports", settings.port_array())
        .extra_stat(
            0,
            "unreadable_packets_total",
            "DNS packets whose payload could not be copied from the packet (counted in produced, never delivered).",
        )
        .program(ProgramSpec::new(
            "dns_egress",
            Attach::CgroupSkb { egress: true },
        ))
        .program(ProgramSpec::new(
            "dns_ingress",
            Attach::CgroupSkb { egress: false },
        ))
}

/// The dns collector.
pub struct Dns {
    settings: Settings,
    runtime: RuntimeSlot,
    counters: Arc<Counters>,
}

impl Dns {
    /// The runtime's kernel counters (for tests): produced, dropped, delivered.
    pub fn kernel_stats(&self) -> Option<tapio_ebpf_support::stats::StatsSnapshot> {
        self.runtime.stats()
    }
}

const TAGS: &[RStr<'static>] = &[RStr::from_str("ebpf"), RStr::from_str("network")];

impl Collector for Dns {
    const INFO: PluginInfo = PluginInfo::new(
        "dns",
        "DNS queries and responses over UDP and TCP: names, types, response codes, answer counts, latency, timeouts (eBPF)",
    )
    .tags(TAGS)
    .event_types(events::EVENT_TYPES)
    .config(&[
        ConfigField::any(
            "ports",
            "Server ports whose UDP and TCP traffic is DNS, 1 to 8 ports (default [53]).",
        ),
        ConfigField::duration(
            "timeout",
            "5s",
            "A query with no response after this long gives a kernel.dns.timeout event (10ms..300s).",
        ),
        ConfigField::uint(
            "max_pending",
            65536,
            "Queries tracked at once for pairing and timeouts (16..4194304); more are reported but not tracked (counted).",
        ),
        ConfigField::bool(
            "queries",
            true,
            "Emit one kernel.dns.query event per query (responses and timeouts carry the question anyway).",
        ),
        RING_BUFFER_BYTES,
        WAKEUP_BYTES,
        POLL_INTERVAL,
    ]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        settings.validate()?;
        Ok(Dns {
            settings,
            runtime: RuntimeSlot::default(),
            counters: Arc::new(Counters::default()),
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        let handler = Handler::new(
            sink,
            HandlerSettings {
                timeout_ns: self.settings.timeout.as_nanos() as u64,
                max_pending: self.settings.max_pending as usize,
                queries: self.settings.queries,
            },
            Arc::clone(&self.counters),
        );
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
                "malformed_messages_total",
                "DNS messages whose header or question could not be parsed.",
                &c.malformed,
            ),
            (
                "unexpected_messages_total",
                "Queries received or responses sent on a watched port (a local DNS server's side): not reported.",
                &c.unexpected,
            ),
            (
                "unmatched_responses_total",
                "Responses with no outstanding query (after a timeout, or to a query sent before start).",
                &c.unmatched,
            ),
            (
                "untracked_queries_total",
                "Queries not tracked for pairing and timeouts because max_pending were outstanding.",
                &c.untracked,
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

export_plugin!(Dns);
