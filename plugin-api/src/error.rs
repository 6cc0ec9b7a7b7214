//! The error a plugin returns across the boundary.
//!
//! Ownership: a `PluginError` owns its message (an `RString` allocated by whichever side
//! created it; abi_stable frees it with the allocator that made it).

use abi_stable::{std_types::RString, StableAbi};

/// What kind of failure a [`PluginError`] reports.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The config is invalid (the host refuses to start the plugin).
    Config = 0,
    /// A privilege or capability is missing (name it in the message: `CAP_BPF`).
    Permission = 1,
    /// The plugin's data source is unavailable.
    Unavailable = 2,
    /// The plugin panicked; the message is the panic's.
    Panicked = 3,
    /// Anything else.
    Other = 4,
}

impl ErrorKind {
    /// Lowercase label for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Permission => "permission",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Panicked => "panicked",
            ErrorKind::Other => "other",
        }
    }
}

/// An error returned by a plugin call.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// One line saying what went wrong, for the host log.
    pub message: RString,
}

impl PluginError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: RString::from(message.into()),
        }
    }
    /// A config error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    /// A missing privilege.
    pub fn permission(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permission, message)
    }
    /// An unavailable source.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    /// Anything else.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            // The message already says "panicked in <call>: ...".
            ErrorKind::Panicked => f.write_str(&self.message),
            kind => write!(f, "{} error: {}", kind.as_str(), self.message),
        }
    }
}

impl std::error::Error for PluginError {}
