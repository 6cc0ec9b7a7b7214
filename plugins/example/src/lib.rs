//! Heartbeat collector: emits one `example.heartbeat` event per interval. The tutorial
//! plugin: copy this crate to start your own (see plugin-api's README).

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use tapio_plugin_api::{
    config::duration, export_plugin, log, Attribute, Collector, Config, ConfigField, Event,
    EventSink, EventTypeInfo, HostHandle, PluginError, PluginInfo, Severity,
};

/// The plugin's config, deserialized from what the host validated against `INFO.config`.
#[derive(serde::Deserialize)]
struct Settings {
    #[serde(with = "duration")]
    interval: Duration,
    message: String,
}

/// The collector: its settings, and the worker thread while running.
struct Heartbeat {
    settings: Settings,
    worker: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Collector for Heartbeat {
    const INFO: PluginInfo = PluginInfo::new("example", "Emits a heartbeat event every interval")
        .event_types(&[EventTypeInfo::new(
            "example.heartbeat",
            "The collector is alive",
        )])
        .config(&[
            ConfigField::duration("interval", "1s", "Time between two heartbeats."),
            ConfigField::string("message", "alive", "Text carried by each heartbeat."),
        ]);

    fn create(_host: HostHandle, config: Config<'_>) -> Result<Self, PluginError> {
        let settings: Settings = config.parse()?;
        if settings.interval.is_zero() {
            return Err(PluginError::config("interval must be greater than zero"));
        }
        Ok(Heartbeat {
            settings,
            worker: None,
        })
    }

    fn start(&mut self, sink: EventSink) -> Result<(), PluginError> {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (interval, message) = (self.settings.interval, self.settings.message.clone());
        let handle = std::thread::Builder::new()
            .name("example-heartbeat".into())
            .spawn(move || {
                let pid = std::process::id();
                for sequence in 0u64.. {
                    let attrs = [
                        Attribute::uint("heartbeat.sequence", sequence),
                        Attribute::str("heartbeat.message", &message),
                    ];
                    let event = Event::new("example.heartbeat", Severity::Info)
                        .with_pid(pid)
                        .with_attributes(&attrs);
                    sink.emit_one(event);
                    // Sleeps one interval, or returns at once when `stop` drops the sender.
                    match stop_rx.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        _ => break,
                    }
                }
            })
            .map_err(|e| PluginError::other(format!("cannot spawn thread: {e}")))?;
        self.worker = Some((stop_tx, handle));
        log::info!("heartbeat started, interval {:?}", self.settings.interval);
        Ok(())
    }

    fn stop(&mut self) -> Result<(), PluginError> {
        if let Some((stop_tx, handle)) = self.worker.take() {
            drop(stop_tx);
            handle
                .join()
                .map_err(|_| PluginError::other("heartbeat thread panicked"))?;
        }
        Ok(())
    }
}

export_plugin!(Heartbeat);
