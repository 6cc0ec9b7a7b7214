//! The harness and the spec check on a small collector defined here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tapio_plugin_api::{
    Attribute, Collector, Config, ConfigField, Event, EventSink, EventTypeInfo, HostHandle, Metric,
    PluginError, PluginInfo, Severity,
};
use tapio_plugin_testkit::{spec, Harness};

#[derive(serde::Deserialize)]
struct Settings {
    count: u64,
}

struct Counter {
    settings: Settings,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl Collector for Counter {
    const INFO: PluginInfo = PluginInfo::new("counter", "Counts to `count`")
        .event_types(&[EventTypeInfo::new("test.count", "One step")])
        .config(&[ConfigField::uint("count", 5, "How far to count.")]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        Ok(Counter {
            settings: config.parse()?,
            stop: Arc::default(),
            worker: None,
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        let (count, stop) = (self.settings.count, Arc::clone(&self.stop));
        self.worker = Some(std::thread::spawn(move || {
            for i in 0..count {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let attrs = [Attribute::uint("test.step", i)];
                sink.emit_one(
                    Event::new("test.count", Severity::Info)
                        .with_pid(1)
                        .with_attributes(&attrs),
                );
            }
        }));
        Ok(())
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![Metric::counter(
            "steps_total",
            "Steps.",
            self.settings.count,
        )]
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        Ok(())
    }
}

#[test]
fn defaults_are_filled_and_events_captured() {
    let mut h = Harness::<Counter>::create("{}").unwrap();
    h.start().unwrap();
    let events = h.wait_for(5, Duration::from_secs(5));
    assert_eq!(events.len(), 5);
    assert_eq!(events[4].int("test.step"), Some(4));
    assert_eq!(events[0].pid, Some(1));
    assert_eq!(h.metric("steps_total"), Some(5.0));
    h.stop().unwrap();
}

#[test]
fn unknown_config_fields_are_refused_like_the_host_does() {
    let err = Harness::<Counter>::create(r#"{"cuont": 3}"#).err().unwrap();
    assert!(err.message.contains("unknown field `cuont`"), "{err}");
}

#[test]
fn a_limited_sink_drops_and_counts() {
    let mut h = Harness::<Counter>::create(r#"{"count": 10}"#).unwrap();
    h.limit_sink(3);
    h.start().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while h.dropped() < 7 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    h.stop().unwrap();
    assert_eq!(h.events().len(), 3);
    assert_eq!(h.dropped(), 7);
}

#[test]
fn the_spec_accepts_a_conforming_collector() {
    let events = spec::check::<Counter>(r#"{"count": 3}"#, Duration::from_millis(50)).unwrap();
    assert_eq!(events.len(), 3);
}
