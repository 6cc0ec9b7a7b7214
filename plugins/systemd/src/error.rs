//! Why a session with the bus ended.

use std::time::Duration;

/// A bus session failure; the worker reports it in the plugin's health and retries.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The configured address cannot be used.
    #[error("bad bus address {address:?}")]
    Address {
        /// The configured `bus_address`.
        address: String,
        /// zbus's reason.
        #[source]
        source: Box<zbus::Error>,
    },
    /// Connecting or authenticating to the bus failed.
    #[error("cannot connect to the bus at {address}")]
    Connect {
        /// The configured `bus_address`.
        address: String,
        /// zbus's reason.
        #[source]
        source: Box<zbus::Error>,
    },
    /// A step did not finish within `call_timeout`.
    #[error("timed out after {after:?} {what}")]
    Timeout {
        /// The step.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// A method call to systemd failed (systemd not on the bus, access denied, ...).
    #[error("{method} on {path} failed")]
    Call {
        /// The method.
        method: &'static str,
        /// The object path.
        path: String,
        /// zbus's reason (the D-Bus error name and message).
        #[source]
        source: Box<zbus::Error>,
    },
    /// A reply did not have the documented signature.
    #[error("unexpected reply to {method}")]
    Reply {
        /// The method.
        method: &'static str,
        /// The decoding error.
        #[source]
        source: Box<zbus::Error>,
    },
    /// Adding a match rule failed.
    #[error("cannot add a signal match rule")]
    Match {
        /// zbus's reason.
        #[source]
        source: Box<zbus::Error>,
    },
    /// The connection closed.
    #[error("the bus connection closed")]
    Closed,
    /// `org.freedesktop.systemd1` left the bus (systemd exited).
    #[error("systemd left the bus")]
    ManagerGone,
    /// `org.freedesktop.systemd1` moved to another connection (systemd re-executed): not a
    /// failure, the worker subscribes again at once.
    #[error("systemd's bus name moved to {owner} (re-executed)")]
    ManagerReplaced {
        /// The new unique name.
        owner: String,
    },
}

impl BusError {
    /// Whether the session ended only to subscribe again and take a fresh snapshot (not a
    /// failure: no backoff, health stays as it is).
    pub fn is_resync(&self) -> bool {
        matches!(self, BusError::ManagerReplaced { .. })
    }
}

/// An error and its causes on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
