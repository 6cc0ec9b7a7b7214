//! What the host gives a plugin: a handle for host services (logging, panic reports, the
//! state directory) and an event sink.
//!
//! Both are host-implemented trait objects. The plugin may clone and keep them, and use them
//! from any of its threads, until its `stop` returns; after that the host ignores calls on
//! them (emits are refused and counted).

// `#[sabi_trait]` generates `_TO` type names and impls inside a const block.
#![allow(non_camel_case_types, non_local_definitions)]

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RSlice, RStr, RString},
    StableAbi,
};

use crate::Event;

/// Log levels, most severe first (the `log` crate's order).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Something failed.
    Error = 1,
    /// Something is wrong but work goes on.
    Warn = 2,
    /// Normal lifecycle messages.
    Info = 3,
    /// Diagnostic detail.
    Debug = 4,
    /// Very verbose detail.
    Trace = 5,
}

/// The outcome of one [`EventSink::emit`] call.
///
/// The host copies events into its ring in order. The first `accepted` events of the batch
/// were taken; the remaining `dropped` were not, because the ring stayed full (after waiting,
/// if the host's policy waits). Dropped events are already counted in the host's
/// `tapio_plugin_dropped_events_total` for this plugin; the plugin should slow down.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmitOutcome {
    /// Events taken into the ring (a prefix of the batch).
    pub accepted: u32,
    /// Events refused and counted as dropped (the rest of the batch).
    pub dropped: u32,
}

impl EmitOutcome {
    /// Whether every event of the batch was taken.
    pub const fn all_accepted(&self) -> bool {
        self.dropped == 0
    }
}

/// Host services, implemented by the host. Use it through [`HostHandle`].
#[sabi_trait]
pub trait HostApi: Send + Sync + Clone {
    /// Writes one log record to the host log, attributed to this plugin.
    /// `target` and `message` are borrowed for the call.
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);

    /// The most verbose level the host will print; plugins skip formatting below it.
    fn max_log_level(&self) -> LogLevel;

    /// Reports a panic seen by the plugin's panic hook (any thread of the plugin). The host
    /// logs it, counts it and marks the plugin failed.
    fn report_panic(&self, thread: RStr<'_>, message: RStr<'_>, location: RStr<'_>);

    /// A directory owned by this plugin for state that must survive restarts (cursors,
    /// spools). It exists when this returns; owned by the caller.
    #[sabi(last_prefix_field)]
    fn state_dir(&self) -> RString;
}

/// A cloneable handle to the host services, valid from `create` until `stop` returns.
#[repr(transparent)]
#[derive(StableAbi, Clone)]
pub struct HostHandle {
    inner: HostApi_TO<'static, RBox<()>>,
}

impl HostHandle {
    /// Wraps a host implementation (used by the host and by test harnesses).
    pub fn new<T: HostApi + 'static>(host: T) -> Self {
        HostHandle {
            inner: HostApi_TO::from_value(host, abi_stable::sabi_trait::TD_Opaque),
        }
    }
    /// Writes a log record to the host log.
    pub fn log(&self, level: LogLevel, target: &str, message: &str) {
        self.inner.log(level, target.into(), message.into());
    }
    /// The most verbose level the host prints.
    pub fn max_log_level(&self) -> LogLevel {
        self.inner.max_log_level()
    }
    /// Reports a panic (called by the panic hook the export macro installs).
    pub fn report_panic(&self, thread: &str, message: &str, location: &str) {
        self.inner
            .report_panic(thread.into(), message.into(), location.into());
    }
    /// This plugin's state directory.
    pub fn state_dir(&self) -> std::path::PathBuf {
        self.inner.state_dir().into_string().into()
    }
}

/// Where events go, implemented by the host. Use it through [`EventSink`].
#[sabi_trait]
pub trait EventSinkApi: Send + Sync + Clone {
    /// Copies the batch into the host's ring; see [`EmitOutcome`]. `events` and everything
    /// they borrow are borrowed for this call only.
    #[sabi(last_prefix_field)]
    fn emit(&self, events: RSlice<'_, Event<'_>>) -> EmitOutcome;
}

/// A cloneable event sink handed to `start`. Safe to use from many threads at once; valid
/// until `stop` returns (later emits are refused and counted as dropped).
#[repr(transparent)]
#[derive(StableAbi, Clone)]
pub struct EventSink {
    inner: EventSinkApi_TO<'static, RBox<()>>,
}

impl EventSink {
    /// Wraps a host implementation (used by the host and by test harnesses).
    pub fn new<T: EventSinkApi + 'static>(sink: T) -> Self {
        EventSink {
            inner: EventSinkApi_TO::from_value(sink, abi_stable::sabi_trait::TD_Opaque),
        }
    }

    /// Emits a batch; the host copies it before returning. Batches of tens to thousands of
    /// events amortize the call; see [`EmitOutcome`] for what happens when the ring is full.
    pub fn emit(&self, events: &[Event<'_>]) -> EmitOutcome {
        self.inner.emit(RSlice::from_slice(events))
    }

    /// Emits one event.
    pub fn emit_one(&self, event: Event<'_>) -> EmitOutcome {
        self.emit(std::slice::from_ref(&event))
    }
}
