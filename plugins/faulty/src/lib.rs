//! TEST FIXTURE. Misbehaves on purpose, in the way `mode` says, so the host's isolation can
//! be tested: a panic in `start`, on its emitting thread mid-emit, on a helper thread, in
//! `health`; a hang in `start` or `stop`; a config it rejects. In mode `none` it emits
//! `faulty.tick` every `interval`. Never enabled by default; never installed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tapio_plugin_api::{
    config::duration, export_plugin, Attribute, Collector, Config, ConfigField, Event, EventSink,
    EventTypeInfo, Health, HostHandle, PluginError, PluginInfo, RStr, Severity,
};

const MODES: [RStr<'static>; 9] = [
    RStr::from_str("none"),
    RStr::from_str("panic_in_start"),
    RStr::from_str("panic_in_emit"),
    RStr::from_str("panic_in_thread"),
    RStr::from_str("panic_in_health"),
    RStr::from_str("hang_in_start"),
    RStr::from_str("hang_in_stop"),
    RStr::from_str("reject_config"),
    RStr::from_str("panic_in_create"),
];

#[derive(serde::Deserialize)]
struct Settings {
    mode: String,
    #[serde(with = "duration")]
    interval: Duration,
}

struct Faulty {
    settings: Settings,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Collector for Faulty {
    const INFO: PluginInfo = PluginInfo::new("faulty", "TEST FIXTURE that misbehaves on purpose")
        .disabled_by_default()
        .tags(&[RStr::from_str("test-fixture")])
        .event_types(&[EventTypeInfo::new(
            "faulty.tick",
            "Emitted every interval while the fixture behaves",
        )])
        .config(&[
            ConfigField::string("mode", "none", "How to misbehave.").choices(&MODES),
            ConfigField::duration("interval", "100ms", "Time between ticks."),
        ]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        match settings.mode.as_str() {
            "reject_config" => {
                return Err(PluginError::config(
                    "mode reject_config: this config is refused on purpose",
                ))
            }
            "panic_in_create" => panic!("faulty: panic in create, on purpose"),
            _ => {}
        }
        Ok(Faulty {
            settings,
            stop: Arc::default(),
            threads: Vec::new(),
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        match self.settings.mode.as_str() {
            "panic_in_start" => panic!("faulty: panic in start, on purpose"),
            "hang_in_start" => loop {
                std::thread::park();
            },
            "panic_in_thread" => {
                self.threads.push(std::thread::spawn(|| {
                    panic!("faulty: panic on a helper thread, on purpose")
                }));
            }
            _ => {}
        }
        let (stop, interval) = (Arc::clone(&self.stop), self.settings.interval);
        let panic_in_emit = self.settings.mode == "panic_in_emit";
        self.threads.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let attrs = [Attribute::uint("faulty.tick", n)];
                sink.emit_one(Event::new("faulty.tick", Severity::Debug).with_attributes(&attrs));
                if panic_in_emit && n == 2 {
                    panic!("faulty: panic in the emitting thread after 3 events, on purpose");
                }
                n += 1;
                std::thread::sleep(interval);
            }
        }));
        Ok(())
    }

    fn health(&self) -> Health {
        if self.settings.mode == "panic_in_health" {
            panic!("faulty: panic in health, on purpose");
        }
        Health::healthy()
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        if self.settings.mode == "hang_in_stop" {
            loop {
                std::thread::park();
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        Ok(())
    }
}

export_plugin!(Faulty);
