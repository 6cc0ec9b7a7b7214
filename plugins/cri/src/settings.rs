//! The plugin's config: schema (validated by the host) and the parsed form.

use std::time::Duration;

use serde::Deserialize;
use tapio_plugin_api::{config::duration, ConfigField, PluginError, RStr};

/// How container changes are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventsMode {
    /// Follow `GetContainerEvents` when the runtime implements it, else poll.
    Auto,
    /// Expect the event stream; report degraded health (and poll) when it is missing.
    Stream,
    /// Only poll.
    Poll,
}

/// The parsed config.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// CRI socket path, empty = auto-detect.
    pub socket: String,
    /// Listing period (also the resync period when events stream).
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// Event source.
    pub events: EventsMode,
    /// Deadline of each CRI call and of connecting.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Longest delay between reconnection attempts.
    #[serde(with = "duration")]
    pub retry_max: Duration,
}

static EVENTS_CHOICES: [RStr<'static>; 3] = [
    RStr::from_str("auto"),
    RStr::from_str("stream"),
    RStr::from_str("poll"),
];

/// The schema the host validates.
pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::string(
        "socket",
        "",
        "CRI socket path (`unix://` prefix allowed). Empty: the first of /run/containerd/containerd.sock, /run/crio/crio.sock, /run/k3s/containerd/containerd.sock, /var/run/containerd/containerd.sock, /var/run/crio/crio.sock, /run/cri-dockerd.sock that exists.",
    ),
    ConfigField::duration(
        "poll_interval",
        "2s",
        "How often containers and sandboxes are listed; with an event stream, the resync period.",
    ),
    ConfigField::string(
        "events",
        "auto",
        "`auto`: follow GetContainerEvents when the runtime implements it, else poll; `stream`: the same, but health is degraded without the stream; `poll`: never use the stream.",
    )
    .choices(&EVENTS_CHOICES),
    ConfigField::duration("timeout", "5s", "Deadline of each CRI call and of connecting."),
    ConfigField::duration(
        "retry_max",
        "30s",
        "Longest delay between reconnection attempts (backoff starts at 250ms and doubles).",
    ),
];

impl Settings {
    /// Checks what the schema cannot.
    pub fn validate(&self) -> Result<(), PluginError> {
        let mut problems = Vec::new();
        if self.poll_interval < Duration::from_millis(100) {
            problems.push("poll_interval must be at least 100ms");
        }
        if self.timeout.is_zero() {
            problems.push("timeout must be greater than zero");
        }
        if self.retry_max.is_zero() {
            problems.push("retry_max must be greater than zero");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PluginError::config(problems.join("; ")))
        }
    }
}
