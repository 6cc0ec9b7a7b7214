//! Prometheus metrics, rendered from live counters on each scrape.
//!
//! Naming: `tapio_<area>_<name>[_<unit>]`, counters end in `_total` (the encoder appends it).
//! Per plugin (label `plugin`): events, dropped events, errors, panics, reloads, stop
//! timeouts, `up` and health; plugin-specific metrics as `tapio_plugin_<name>`. Host: ring
//! capacity and fill, retained libraries, abandoned instances, pipeline and sink counters,
//! stage panics and the events lost with them (label `stage`), open correlation groups. Per exporter (label `exporter`): `tapio_export_*` events
//! received, sent, acked, failed, retried, spooled, dropped, protocol errors, queue depth,
//! spool bytes, connected.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeCounterValue, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tapio_plugin_api::{HealthStatus, MetricKind};

use crate::pipeline::guard::StageCounters;
use crate::telemetry::Observer;

#[derive(Debug)]
struct HostCollector(ObserverDebug);

/// `Observer` without a useful `Debug`; prometheus-client requires one.
struct ObserverDebug(Observer);

impl std::fmt::Debug for ObserverDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

pub(crate) type Labels = Vec<(Cow<'static, str>, Cow<'static, str>)>;

/// A plugin-specific metric family: help, kind and samples.
type CustomFamily = (String, MetricKind, Vec<(Labels, f64)>);

fn plugin_label(name: &'static str) -> Labels {
    vec![(Cow::Borrowed("plugin"), Cow::Borrowed(name))]
}

/// A counter family; values are counts (`u64`) or, for time, seconds (`f64`).
pub(crate) fn counter_family<N: EncodeCounterValue + Copy>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: &[(Labels, N)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (labels, value) in samples {
        ConstCounter::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

pub(crate) fn gauge_family(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (labels, value) in samples {
        ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    gauge_family(encoder, name, help, &[(Vec::new(), value)])
}

/// Prometheus-safe metric name fragment.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `tapio_correlation_*`: groups, rule matches, predictions, attachment, the `/proc`
/// resolver, and the entity table sizes.
fn correlation_metrics(
    encoder: &mut DescriptorEncoder<'_>,
    c: &crate::correlate::Stats,
) -> Result<(), std::fmt::Error> {
    use crate::correlate::stats::get;
    let one = |v: u64| vec![(Vec::new(), v)];
    let counters: [(&str, &str, u64); 15] = [
        (
            "tapio_correlation_groups_opened",
            "Candidate groups opened by a first matching event.",
            get(&c.groups_opened),
        ),
        (
            "tapio_correlation_groups_confirmed",
            "Groups confirmed by their rule.",
            get(&c.groups_confirmed),
        ),
        (
            "tapio_correlation_groups_closed",
            "Confirmed groups closed and delivered.",
            get(&c.groups_closed),
        ),
        (
            "tapio_correlation_groups_discarded",
            "Candidate groups that closed unconfirmed.",
            get(&c.groups_discarded),
        ),
        (
            "tapio_correlation_groups_evicted",
            "Groups closed early by correlation.limits.max_open_groups.",
            get(&c.groups_evicted),
        ),
        (
            "tapio_correlation_members_dropped",
            "Member events not listed because a group was full.",
            get(&c.members_dropped),
        ),
        (
            "tapio_correlation_rule_matches",
            "Events that matched a rule step.",
            get(&c.rule_matches),
        ),
        (
            "tapio_correlation_unkeyed_matches",
            "Matching events without the entity key of their rule.",
            get(&c.unkeyed_matches),
        ),
        (
            "tapio_correlation_predictions",
            "Predictions emitted.",
            get(&c.predictions),
        ),
        (
            "tapio_correlation_attached_events",
            "Events attached to an application span's trace.",
            get(&c.attached_events),
        ),
        (
            "tapio_correlation_delayed_events",
            "Events held for their application spans.",
            get(&c.delayed_events),
        ),
        (
            "tapio_correlation_delay_overflow",
            "Events released early: the delay line was full.",
            get(&c.delay_overflow),
        ),
        (
            "tapio_correlation_resolver_requests",
            "/proc fallback requests.",
            get(&c.resolver_requests),
        ),
        (
            "tapio_correlation_resolver_dropped",
            "/proc fallback requests dropped (queue full).",
            get(&c.resolver_dropped),
        ),
        (
            "tapio_correlation_rule_reload_errors",
            "Rule reloads refused (invalid rule files).",
            get(&c.rule_reload_errors),
        ),
    ];
    for (name, help, v) in counters {
        counter_family(encoder, name, help, &one(v))?;
    }
    counter_family(
        encoder,
        "tapio_correlation_rule_reloads",
        "Rule reloads applied.",
        &one(get(&c.rule_reloads)),
    )?;
    counter_family(
        encoder,
        "tapio_correlation_entities_evicted",
        "Entity entries dropped by TTL or size limit.",
        &one(get(&c.entities_evicted)),
    )?;
    let per_rule: Vec<(Labels, u64)> = c
        .matches_per_rule
        .lock()
        .iter()
        .map(|(id, n)| (vec![(Cow::Borrowed("rule"), Cow::Owned(id.clone()))], *n))
        .collect();
    counter_family(
        encoder,
        "tapio_correlation_rule_step_matches",
        "Events that matched a step, per rule.",
        &per_rule,
    )?;
    gauge(
        encoder,
        "tapio_correlation_rules",
        "Active correlation rules.",
        get(&c.rules) as f64,
    )?;
    let tables: Vec<(Labels, f64)> = [
        ("processes", get(&c.entities_processes)),
        ("cgroups", get(&c.entities_cgroups)),
        ("containers", get(&c.entities_containers)),
        ("pods", get(&c.entities_pods)),
        ("objects", get(&c.entities_objects)),
        ("peers", get(&c.entities_peers)),
    ]
    .into_iter()
    .map(|(t, v)| (vec![(Cow::Borrowed("table"), Cow::Borrowed(t))], v as f64))
    .collect();
    gauge_family(
        encoder,
        "tapio_correlation_entities",
        "Entries in the entity tables.",
        &tables,
    )
}

impl Collector for HostCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let o = &self.0 .0;
        let plugins: Vec<_> = o
            .plugins
            .all()
            .into_iter()
            .map(|(n, s)| (n, s.snapshot()))
            .collect();
        let per_plugin =
            |f: &dyn Fn(&crate::plugin::stats::PluginSnapshot) -> u64| -> Vec<(Labels, u64)> {
                plugins
                    .iter()
                    .map(|(n, s)| (plugin_label(n), f(s)))
                    .collect()
            };
        counter_family(
            &mut encoder,
            "tapio_plugin_events",
            "Events a plugin emitted that the ring accepted.",
            &per_plugin(&|s| s.emitted),
        )?;
        counter_family(
            &mut encoder,
            "tapio_plugin_dropped_events",
            "Events a plugin emitted that were dropped (ring full or plugin stopped).",
            &per_plugin(&|s| s.dropped),
        )?;
        counter_family(
            &mut encoder,
            "tapio_plugin_errors",
            "Error log records and failed lifecycle calls of a plugin.",
            &per_plugin(&|s| s.errors),
        )?;
        counter_family(
            &mut encoder,
            "tapio_plugin_panics",
            "Panics caught in a plugin.",
            &per_plugin(&|s| s.panics),
        )?;
        counter_family(
            &mut encoder,
            "tapio_plugin_reloads",
            "Times a new build of a plugin replaced the running one.",
            &per_plugin(&|s| s.reloads),
        )?;
        counter_family(
            &mut encoder,
            "tapio_plugin_stop_timeouts",
            "Stops that missed the deadline (instance abandoned).",
            &per_plugin(&|s| s.stop_timeouts),
        )?;
        let up: Vec<(Labels, f64)> = plugins
            .iter()
            .map(|(n, s)| (plugin_label(n), f64::from(u8::from(s.running))))
            .collect();
        gauge_family(
            &mut encoder,
            "tapio_plugin_up",
            "1 when an instance of the plugin runs.",
            &up,
        )?;
        let health: Vec<(Labels, f64)> = plugins
            .iter()
            .map(|(n, s)| {
                let v = match s.health {
                    HealthStatus::Healthy => 0.0,
                    HealthStatus::Degraded => 1.0,
                    HealthStatus::Failed => 2.0,
                };
                (plugin_label(n), v)
            })
            .collect();
        gauge_family(
            &mut encoder,
            "tapio_plugin_health_status",
            "Plugin health: 0 healthy, 1 degraded, 2 failed.",
            &health,
        )?;

        // Plugin-specific metrics, grouped into families by name.
        let mut custom: BTreeMap<String, CustomFamily> = Default::default();
        for (name, snapshot) in &plugins {
            for m in &snapshot.custom {
                let mut base = sanitize(&m.name);
                if m.kind == MetricKind::Counter {
                    base = base.strip_suffix("_total").unwrap_or(&base).to_owned();
                }
                let entry = custom
                    .entry(format!("tapio_plugin_{base}"))
                    .or_insert_with(|| (m.help.to_string(), m.kind, Vec::new()));
                let mut labels = plugin_label(name);
                for pair in m.labels.iter() {
                    labels.push((
                        Cow::Owned(sanitize(&pair.0)),
                        Cow::Owned(pair.1.to_string()),
                    ));
                }
                entry.2.push((labels, m.value));
            }
        }
        for (name, (help, kind, samples)) in custom {
            match kind {
                MetricKind::Counter => {
                    let samples: Vec<(Labels, u64)> = samples
                        .into_iter()
                        .map(|(l, v)| (l, v.max(0.0) as u64))
                        .collect();
                    counter_family(&mut encoder, &name, &help, &samples)?
                }
                MetricKind::Gauge => gauge_family(&mut encoder, &name, &help, &samples)?,
            }
        }

        let manager = o.manager.lock().clone();
        gauge(
            &mut encoder,
            "tapio_plugins_active",
            "Plugins with a running instance.",
            manager.active() as f64,
        )?;
        gauge(
            &mut encoder,
            "tapio_plugins_retained_libraries",
            "Plugin libraries loaded since start (never unloaded).",
            manager.retained_libraries as f64,
        )?;
        gauge(
            &mut encoder,
            "tapio_plugins_abandoned_instances",
            "Plugin instances abandoned after missing a deadline.",
            manager.abandoned_instances as f64,
        )?;
        let refused = manager
            .slots
            .iter()
            .filter(|s| matches!(s.state, crate::plugin::manager::SlotState::Refused(_)))
            .count();
        gauge(
            &mut encoder,
            "tapio_plugins_refused_files",
            "Plugin files refused (and not running an older build).",
            refused as f64,
        )?;

        gauge(
            &mut encoder,
            "tapio_ring_capacity_events",
            "Capacity of the shared ring.",
            o.ring.capacity() as f64,
        )?;
        gauge(
            &mut encoder,
            "tapio_ring_queued_events",
            "Events waiting in the shared ring.",
            o.ring.len() as f64,
        )?;
        gauge(
            &mut encoder,
            "tapio_ring_fill_ratio",
            "Fill level of the shared ring (0 to 1).",
            o.ring.len() as f64 / o.ring.capacity() as f64,
        )?;

        let p = &o.pipeline;
        counter_family(
            &mut encoder,
            "tapio_pipeline_events",
            "Events delivered through the pipeline to the sinks.",
            &[(Vec::new(), p.events.load(Ordering::Relaxed))],
        )?;
        counter_family(
            &mut encoder,
            "tapio_pipeline_batches",
            "Batches drained from the ring.",
            &[(Vec::new(), p.batches.load(Ordering::Relaxed))],
        )?;
        counter_family(
            &mut encoder,
            "tapio_pipeline_busy_seconds",
            "Time the pipeline thread spent on batches (stages and sinks); its rate is the thread's busy share.",
            &[(Vec::new(), p.busy_ns.load(Ordering::Relaxed) as f64 / 1e9)],
        )?;
        let per_stage = |read: fn(&StageCounters) -> u64| -> Vec<(Labels, u64)> {
            p.stages
                .iter()
                .map(|s| {
                    (
                        vec![(Cow::Borrowed("stage"), Cow::Borrowed(s.name))],
                        read(s),
                    )
                })
                .collect()
        };
        counter_family(
            &mut encoder,
            "tapio_pipeline_stage_panics",
            "Panics of a pipeline stage; a stage that panicked is taken out and events go on without it.",
            &per_stage(|s| s.panics.load(Ordering::Relaxed)),
        )?;
        counter_family(
            &mut encoder,
            "tapio_pipeline_stage_dropped_events",
            "Events lost with a pipeline stage that panicked (held by it, or missing from the batch it panicked on).",
            &per_stage(|s| s.dropped.load(Ordering::Relaxed)),
        )?;
        gauge(
            &mut encoder,
            "tapio_correlation_groups",
            "Open correlation groups (semantic mode: confirmed groups, not candidates).",
            p.open_groups.load(Ordering::Relaxed) as f64,
        )?;
        if let Some(c) = &p.correlation {
            correlation_metrics(&mut encoder, c)?;
        }
        let sink =
            |pairs: &Vec<(&'static str, std::sync::atomic::AtomicU64)>| -> Vec<(Labels, u64)> {
                pairs
                    .iter()
                    .map(|(name, v)| {
                        (
                            vec![(Cow::Borrowed("sink"), Cow::Borrowed(*name))],
                            v.load(Ordering::Relaxed),
                        )
                    })
                    .collect()
            };
        counter_family(
            &mut encoder,
            "tapio_sink_events",
            "Events written by a sink.",
            &sink(&p.sink_events),
        )?;
        counter_family(
            &mut encoder,
            "tapio_sink_errors",
            "Write or flush errors of a sink.",
            &sink(&p.sink_errors),
        )?;
        crate::export::stats::encode_metrics(&mut encoder, &o.exporters)?;
        let info = vec![(
            Cow::Borrowed("version"),
            Cow::Borrowed(env!("CARGO_PKG_VERSION")),
        )];
        gauge_family(
            &mut encoder,
            "tapio_build_info",
            "The host's version.",
            &[(info, 1.0)],
        )?;
        Ok(())
    }
}

/// Renders the Prometheus text exposition of everything `observer` knows.
pub fn render(observer: &Observer) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(HostCollector(ObserverDebug(observer.clone()))));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    out
}
