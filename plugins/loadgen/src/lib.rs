//! SYNTHETIC load generator. Emits `loadgen.synthetic` events at a configured rate, batch
//! size, shape and thread count, for benchmarks and tests of the host. Its events describe
//! nothing real; it is disabled unless `collectors.loadgen.enabled: true`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tapio_plugin_api::{
    export_plugin, now_unix_nanos, Attribute, Collector, Config, ConfigField, Event, EventSink,
    EventTypeInfo, HostHandle, Metric, PluginError, PluginInfo, RStr, Severity,
};

#[derive(serde::Deserialize, Clone)]
struct Settings {
    rate: u64,
    batch_size: u64,
    threads: u64,
    attributes: u64,
    string_len: u64,
    max_events: u64,
}

#[derive(Default)]
struct Counters {
    generated: AtomicU64,
    accepted: AtomicU64,
    dropped: AtomicU64,
}

struct Loadgen {
    settings: Settings,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    workers: Vec<JoinHandle<()>>,
}

impl Collector for Loadgen {
    const INFO: PluginInfo = PluginInfo::new(
        "loadgen",
        "SYNTHETIC load generator for benchmarks and tests",
    )
    .tags(&[RStr::from_str("synthetic")])
    .disabled_by_default()
    .event_types(&[EventTypeInfo::new(
        "loadgen.synthetic",
        "A synthetic event; describes nothing real",
    )])
    .config(&[
        ConfigField::uint(
            "rate",
            1000,
            "Events per second per thread; 0 = as fast as the ring takes them.",
        ),
        ConfigField::uint("batch_size", 64, "Events per emit call."),
        ConfigField::uint("threads", 1, "Emitting threads."),
        ConfigField::uint(
            "attributes",
            4,
            "Attributes per event (two counters plus text ones).",
        ),
        ConfigField::uint("string_len", 16, "Length of each text attribute value."),
        ConfigField::uint(
            "max_events",
            0,
            "Events per thread before it stops; 0 = unlimited.",
        ),
    ]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        if settings.batch_size == 0 || settings.threads == 0 {
            return Err(PluginError::config(
                "batch_size and threads must be at least 1",
            ));
        }
        Ok(Loadgen {
            settings,
            stop: Arc::new(AtomicBool::new(false)),
            counters: Arc::default(),
            workers: Vec::new(),
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        for thread in 0..self.settings.threads {
            let (s, sink) = (self.settings.clone(), sink.clone());
            let (stop, counters) = (Arc::clone(&self.stop), Arc::clone(&self.counters));
            let handle = std::thread::Builder::new()
                .name(format!("loadgen-{thread}"))
                .spawn(move || generate(thread, &s, &sink, &stop, &counters))
                .map_err(|e| PluginError::other(format!("cannot spawn thread: {e}")))?;
            self.workers.push(handle);
        }
        Ok(())
    }

    fn metrics(&self) -> Vec<Metric> {
        let c = &self.counters;
        vec![
            Metric::counter(
                "generated_events_total",
                "Synthetic events generated.",
                c.generated.load(Ordering::Relaxed),
            ),
            Metric::counter(
                "accepted_events_total",
                "Synthetic events the host accepted.",
                c.accepted.load(Ordering::Relaxed),
            ),
            Metric::counter(
                "refused_events_total",
                "Synthetic events the host refused.",
                c.dropped.load(Ordering::Relaxed),
            ),
        ]
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        Ok(())
    }
}

fn generate(thread: u64, s: &Settings, sink: &EventSink, stop: &AtomicBool, counters: &Counters) {
    let text = "x".repeat(s.string_len as usize);
    let extra_keys: Vec<String> = (2..s.attributes.max(2))
        .map(|i| format!("loadgen.text.{i}"))
        .collect();
    let batch = s.batch_size as usize;
    let pid = std::process::id();
    let started = Instant::now();
    let mut seq = 0u64;
    let mut attrs: Vec<Attribute<'_>> = Vec::with_capacity(batch * s.attributes.max(2) as usize);
    while !stop.load(Ordering::Relaxed) && (s.max_events == 0 || seq < s.max_events) {
        let n = if s.max_events == 0 {
            batch
        } else {
            batch.min((s.max_events - seq) as usize)
        };
        let now = now_unix_nanos();
        attrs.clear();
        for i in 0..n as u64 {
            attrs.push(Attribute::uint("loadgen.thread", thread));
            attrs.push(Attribute::uint("loadgen.seq", seq + i));
            for key in &extra_keys {
                attrs.push(Attribute::str(key, &text));
            }
        }
        let per = attrs.len() / n;
        let events: Vec<Event<'_>> = (0..n)
            .map(|i| {
                Event::at(now, "loadgen.synthetic", Severity::Info)
                    .with_pid(pid)
                    .with_attributes(&attrs[i * per..(i + 1) * per])
            })
            .collect();
        // The host counts refused events as dropped; with `pipeline.on_full: wait` it waits
        // for room first, which is how a zero-loss run applies backpressure.
        let outcome = sink.emit(&events);
        counters
            .accepted
            .fetch_add(u64::from(outcome.accepted), Ordering::Relaxed);
        counters
            .dropped
            .fetch_add(u64::from(outcome.dropped), Ordering::Relaxed);
        counters.generated.fetch_add(n as u64, Ordering::Relaxed);
        seq += n as u64;
        if s.rate > 0 {
            let due = started + Duration::from_secs_f64(seq as f64 / s.rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    }
}

export_plugin!(Loadgen);
