//! Config fields every eBPF plugin shares: the ring buffer and its wakeup batching.
//!
//! A plugin lists [`RING_BUFFER_BYTES`], [`WAKEUP_BYTES`] and [`POLL_INTERVAL`] in its
//! `INFO.config` and flattens [`RingSettings`] into its own settings struct:
//! `#[serde(flatten)] ring: RingSettings`, then calls [`RingSettings::validate`].

use std::time::Duration;

use serde::Deserialize;
use tapio_plugin_api::{config::duration, ConfigField, PluginError};

/// Default ring buffer size (1 MiB).
pub const DEFAULT_RING_BYTES: u64 = 1 << 20;

/// `ring_buffer_bytes`: size of the kernel ring buffer.
pub const RING_BUFFER_BYTES: ConfigField = ConfigField::uint(
    "ring_buffer_bytes",
    DEFAULT_RING_BYTES,
    "Size of the kernel ring buffer in bytes: a power of two, at least one page (4096). \
     Records that do not fit are dropped in the kernel and counted.",
);

/// `wakeup_bytes`: pending bytes that wake the reader.
pub const WAKEUP_BYTES: ConfigField = ConfigField::uint(
    "wakeup_bytes",
    64 << 10,
    "Pending bytes in the ring that wake the reader at once; below it records wait for the \
     poll interval (batched wakeups). 0 wakes the reader on every record.",
);

/// `poll_interval`: the reader's timer.
pub const POLL_INTERVAL: ConfigField = ConfigField::duration(
    "poll_interval",
    "10ms",
    "Longest time a record waits in the ring before the reader collects it.",
);

/// The ring settings of a plugin config.
#[derive(Debug, Clone, Deserialize)]
pub struct RingSettings {
    /// See [`RING_BUFFER_BYTES`].
    pub ring_buffer_bytes: u32,
    /// See [`WAKEUP_BYTES`].
    pub wakeup_bytes: u64,
    /// See [`POLL_INTERVAL`].
    #[serde(with = "duration")]
    pub poll_interval: Duration,
}

impl Default for RingSettings {
    fn default() -> Self {
        RingSettings {
            ring_buffer_bytes: DEFAULT_RING_BYTES as u32,
            wakeup_bytes: 64 << 10,
            poll_interval: Duration::from_millis(10),
        }
    }
}

impl RingSettings {
    /// Checks the values; every problem is listed in one error.
    pub fn validate(&self) -> Result<(), PluginError> {
        let mut problems = Vec::new();
        let size = self.ring_buffer_bytes;
        if size < 4096 || !size.is_power_of_two() {
            problems.push(format!(
                "ring_buffer_bytes must be a power of two >= 4096, got {size}"
            ));
        }
        if self.poll_interval.is_zero() || self.poll_interval > Duration::from_secs(10) {
            problems.push(format!(
                "poll_interval must be between 1ms and 10s, got {:?}",
                self.poll_interval
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PluginError::config(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_lists_every_problem() {
        let bad = RingSettings {
            ring_buffer_bytes: 5000,
            wakeup_bytes: 0,
            poll_interval: Duration::ZERO,
        };
        let err = bad.validate().unwrap_err();
        assert!(err.message.contains("ring_buffer_bytes"), "{err}");
        assert!(err.message.contains("poll_interval"), "{err}");
        assert!(RingSettings::default().validate().is_ok());
    }
}
