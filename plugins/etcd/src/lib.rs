//! etcd collector: polls each configured etcd member's `/health` and `/metrics` and emits
//! what they say about the cluster: unreachable or unhealthy members, slow health checks,
//! leader changes and loss of leader, a large backend database, slow WAL fsyncs.
//!
//! Each endpoint has its own thread; a member that does not answer is retried with
//! exponential backoff and reported in the plugin's health until it answers again.

mod client;
mod config;
mod endpoint;
mod histogram;
mod metrics;
mod monitor;
mod worker;

use tapio_plugin_api::{
    export_plugin, Collector, Config, EventSink, EventTypeInfo, Health, HostHandle, Metric,
    PluginError, PluginInfo, RStr,
};

use crate::config::Settings;
use crate::worker::Workers;

/// The etcd collector.
pub struct EtcdCollector {
    settings: Settings,
    tls: ureq::tls::TlsConfig,
    workers: Option<Workers>,
}

static TAGS: [RStr<'static>; 1] = [RStr::from_str("k8s")];

const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(
        "etcd.endpoint.status",
        "One poll of a member: health, latency, leader, DB size, WAL fsync latency.",
    ),
    EventTypeInfo::new(
        "etcd.endpoint.unreachable",
        "A member stopped answering (connection, TLS or timeout error).",
    ),
    EventTypeInfo::new(
        "etcd.endpoint.unhealthy",
        "A member answered /health with health=false.",
    ),
    EventTypeInfo::new(
        "etcd.endpoint.recovered",
        "A member that was unreachable or unhealthy is healthy again.",
    ),
    EventTypeInfo::new(
        "etcd.health.slow",
        "A /health answer took longer than health_latency_warning.",
    ),
    EventTypeInfo::new(
        "etcd.leader.changed",
        "The member saw the cluster leader change since the previous poll.",
    ),
    EventTypeInfo::new("etcd.leader.missing", "The member sees no leader."),
    EventTypeInfo::new(
        "etcd.db.size_exceeded",
        "The backend database grew past db_size_warning_bytes.",
    ),
    EventTypeInfo::new(
        "etcd.wal.fsync_slow",
        "The WAL fsync p99 latency over the last interval exceeded wal_fsync_warning.",
    ),
    EventTypeInfo::new(
        "etcd.member.restarted",
        "The member's process start time changed between two polls.",
    ),
];

impl Collector for EtcdCollector {
    const INFO: PluginInfo = PluginInfo::new(
        "etcd",
        "Health and metrics of etcd members: reachability, leader, DB size, WAL fsync latency",
    )
    .tags(&TAGS)
    .event_types(EVENT_TYPES)
    .config(config::SCHEMA);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let mut settings: Settings = config.parse()?;
        for file in [
            &mut settings.ca_file,
            &mut settings.cert_file,
            &mut settings.key_file,
        ] {
            if file.as_deref().is_some_and(|f| f.trim().is_empty()) {
                *file = None;
            }
        }
        let mut problems = settings.problems();
        let tls = match client::tls_config(&settings) {
            Ok(tls) => Some(tls),
            Err(e) => {
                problems.push(error_chain(&e));
                None
            }
        };
        match tls {
            Some(tls) if problems.is_empty() => Ok(EtcdCollector {
                settings,
                tls,
                workers: None,
            }),
            _ => Err(PluginError::config(problems.join("; "))),
        }
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        if self.workers.is_some() {
            return Err(PluginError::other("already started"));
        }
        self.workers = Some(Workers::start(&self.settings, &self.tls, sink)?);
        Ok(())
    }

    fn health(&self) -> Health {
        match &self.workers {
            Some(w) => w.health(),
            None => Health::healthy(),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        self.workers
            .as_ref()
            .map(Workers::metrics)
            .unwrap_or_default()
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        match self.workers.take() {
            Some(w) => w.stop(),
            None => Ok(()),
        }
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

export_plugin!(EtcdCollector);
