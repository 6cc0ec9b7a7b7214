//! The trait plugin authors implement, and the panic-safe adapter the export macro puts
//! between it and the host.

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RResult, RStr, RVec},
};

use crate::{
    module::{PluginInstance, PluginInstanceBox, PluginInstance_TO, PluginMod, PluginModRef},
    Config, ErrorKind, EventSink, Health, HostHandle, Metric, PluginError, PluginInfo,
};

/// A collector. Implement it, then call [`export_plugin!`](crate::export_plugin).
///
/// The host calls these methods from one thread at a time, never concurrently. A panic in
/// any of them (or on any thread the plugin starts) marks the plugin failed; the host keeps
/// running.
pub trait Collector: Send + Sized + 'static {
    /// Name, description, event types and config schema.
    const INFO: PluginInfo;

    /// Creates the collector from its validated config. Do not start threads or attach
    /// anything here: the host may create a replacement while the old instance still runs.
    fn create(host: HostHandle, config: Config<'_>) -> Result<Self, PluginError>;

    /// Starts collecting into `sink`.
    fn start(&mut self, sink: EventSink) -> Result<(), PluginError>;

    /// Current health; the default reports healthy.
    fn health(&self) -> Health {
        Health::healthy()
    }

    /// Plugin-specific metrics; the default reports none.
    fn metrics(&self) -> Vec<Metric> {
        Vec::new()
    }

    /// Stops collecting and joins every thread started by `start`.
    fn stop(&mut self) -> Result<(), PluginError>;
}

/// Runs `f`, turning a panic into an [`ErrorKind::Panicked`] error.
fn guarded<T>(call: &str, f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(PluginError::new(
            ErrorKind::Panicked,
            format!("panicked in {call}: {}", panic_message(payload.as_ref())),
        )),
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Wraps a [`Collector`] so that no panic crosses the boundary. After a panic the instance
/// is poisoned: `health` reports failed with the panic message.
struct Guarded<C> {
    collector: C,
    poisoned: Option<String>,
}

impl<C: Collector> Guarded<C> {
    fn record(&mut self, result: Result<(), PluginError>) -> RResult<(), PluginError> {
        if let Err(e) = &result {
            if e.kind == ErrorKind::Panicked {
                self.poisoned = Some(e.message.to_string());
            }
        }
        result.into()
    }
}

impl<C: Collector> PluginInstance for Guarded<C> {
    fn start(&mut self, sink: EventSink) -> RResult<(), PluginError> {
        let collector = &mut self.collector;
        let result = guarded("start", || collector.start(sink));
        self.record(result)
    }

    fn health(&self) -> Health {
        if let Some(message) = &self.poisoned {
            return Health::failed(message.clone());
        }
        guarded("health", || Ok(self.collector.health()))
            .unwrap_or_else(|e| Health::failed(e.message.to_string()))
    }

    fn metrics(&self) -> RVec<Metric> {
        guarded("metrics", || Ok(self.collector.metrics()))
            .map(RVec::from)
            .unwrap_or_default()
    }

    fn stop(&mut self) -> RResult<(), PluginError> {
        let collector = &mut self.collector;
        let result = guarded("stop", || collector.stop());
        self.record(result)
    }
}

extern "C" fn describe<C: Collector>() -> crate::PluginInfo {
    C::INFO
}

extern "C" fn create<C: Collector>(
    host: HostHandle,
    config_json: RStr<'_>,
) -> RResult<PluginInstanceBox, PluginError> {
    crate::logging::install(host.clone());
    guarded("create", || {
        let collector = C::create(host, Config::from_json(config_json.as_str()))?;
        let guarded = Guarded {
            collector,
            poisoned: None,
        };
        Ok(PluginInstance_TO::from_value(guarded, TD_Opaque))
    })
    .into()
}

/// Builds the root module for `C` (called by the export macro; `crate_version` is the
/// plugin crate's package version, used when `C::INFO` sets none).
#[doc(hidden)]
pub fn root_module<C: Collector>(crate_version: &'static str) -> PluginModRef {
    use abi_stable::prefix_type::PrefixTypeTrait;
    // `describe` is a plain fn pointer and cannot capture the crate version, so the export
    // macro's value is kept in this library's static.
    VERSION_FALLBACK.get_or_init(|| crate_version);
    // Leaked once per library load; the library is never unloaded.
    PluginMod {
        describe: describe_with_version::<C>,
        create: create::<C>,
    }
    .leak_into_prefix()
}

static VERSION_FALLBACK: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

extern "C" fn describe_with_version<C: Collector>() -> PluginInfo {
    let mut info = describe::<C>();
    if info.version.is_empty() {
        info.version = RStr::from_str(VERSION_FALLBACK.get().copied().unwrap_or("0.0.0"));
    }
    info.api_version = crate::API_VERSION;
    info
}
