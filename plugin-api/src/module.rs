//! The raw ABI: the root module every plugin library exports and the instance trait object.
//!
//! Plugin authors do not use this module directly: they implement
//! [`Collector`](crate::Collector) and call [`export_plugin!`](crate::export_plugin), which
//! generates the exports. The host uses it to load libraries.

// `#[sabi_trait]` generates `_TO` type names and impls inside a const block.
#![allow(non_camel_case_types, non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RSlice, RStr, RVec},
    StableAbi,
};

use crate::{ApiVersion, ConfigField, EventSink, Health, HostHandle, Metric, PluginError};

/// An event type a plugin emits, for `plugins inspect` and the generated reference.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTypeInfo {
    /// Dotted type (`kernel.process.exec`).
    pub name: RStr<'static>,
    /// What it means.
    pub description: RStr<'static>,
}

impl EventTypeInfo {
    /// An event type with its description.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        EventTypeInfo {
            name: RStr::from_str(name),
            description: RStr::from_str(description),
        }
    }
}

/// How a plugin describes itself. `'static`: lives in the plugin library, which the host
/// never unloads; the host copies what it keeps anyway.
///
/// Build it in a `const` with [`PluginInfo::new`] and the builder methods.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct PluginInfo {
    /// Unique name; the key of its section under `collectors:` in the config.
    pub name: RStr<'static>,
    /// The plugin's version. Empty means "the crate's package version" (filled by
    /// [`export_plugin!`](crate::export_plugin)).
    pub version: RStr<'static>,
    /// One sentence saying what it collects.
    pub description: RStr<'static>,
    /// The API version the plugin was built against (filled by the export macro).
    pub api_version: ApiVersion,
    /// Groups that command-line switches act on: `ebpf`, `k8s`, `systemd`, `journald`.
    pub tags: RSlice<'static, RStr<'static>>,
    /// Whether it starts when the config does not mention it. `false` for test and load
    /// generators.
    pub enabled_by_default: bool,
    /// The event types it emits.
    pub event_types: RSlice<'static, EventTypeInfo>,
    /// Its config schema.
    pub config: RSlice<'static, ConfigField>,
}

impl PluginInfo {
    /// A plugin named `name`, enabled by default, with no events, tags or config yet.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        PluginInfo {
            name: RStr::from_str(name),
            version: RStr::from_str(""),
            description: RStr::from_str(description),
            api_version: crate::API_VERSION,
            tags: RSlice::from_slice(&[]),
            enabled_by_default: true,
            event_types: RSlice::from_slice(&[]),
            config: RSlice::from_slice(&[]),
        }
    }
    /// Overrides the version (default: the crate's package version).
    pub const fn version(mut self, version: &'static str) -> Self {
        self.version = RStr::from_str(version);
        self
    }
    /// Sets the tags.
    pub const fn tags(mut self, tags: &'static [RStr<'static>]) -> Self {
        self.tags = RSlice::from_slice(tags);
        self
    }
    /// Sets the event types.
    pub const fn event_types(mut self, types: &'static [EventTypeInfo]) -> Self {
        self.event_types = RSlice::from_slice(types);
        self
    }
    /// Sets the config schema.
    pub const fn config(mut self, fields: &'static [ConfigField]) -> Self {
        self.config = RSlice::from_slice(fields);
        self
    }
    /// Only start when the config enables it explicitly.
    pub const fn disabled_by_default(mut self) -> Self {
        self.enabled_by_default = false;
        self
    }
}

/// A created plugin instance, driven by the host from one thread at a time.
///
/// Every method is wrapped by the export macro so that a panic becomes an
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) error instead of unwinding.
#[sabi_trait]
pub trait PluginInstance: Send {
    /// Starts collecting; the plugin may keep clones of `sink` until `stop` returns.
    fn start(&mut self, sink: EventSink) -> RResult<(), PluginError>;

    /// Current health. Must return quickly (the host calls it every few seconds).
    fn health(&self) -> Health;

    /// Plugin-specific metrics. Must return quickly.
    fn metrics(&self) -> RVec<Metric>;

    /// Stops collecting and joins every thread the plugin started. The host waits up to its
    /// stop deadline, then reports the plugin as hung and abandons it.
    #[sabi(last_prefix_field)]
    fn stop(&mut self) -> RResult<(), PluginError>;
}

/// An owned plugin instance; dropping it releases the plugin's resources.
pub type PluginInstanceBox = PluginInstance_TO<'static, RBox<()>>;

/// The root module each plugin library exports (generated by the export macro).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// Describes the plugin. Pure: reads constants, runs no collector code.
    pub describe: extern "C" fn() -> PluginInfo,

    /// Creates an instance from the validated config (JSON text, borrowed for the call).
    #[sabi(last_prefix_field)]
    pub create: extern "C" fn(
        host: HostHandle,
        config_json: RStr<'_>,
    ) -> RResult<PluginInstanceBox, PluginError>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "tapio_plugin";
    const NAME: &'static str = "tapio_plugin";
    // Checked by abi_stable as well as by the host's explicit API check: only the major
    // matters to abi_stable for versions >= 1.0.
    const VERSION_STRINGS: VersionStrings =
        VersionStrings::new(concat!(crate::__api_major!(), ".0.0"));
}

/// The plugin-api crate's own package version, for diagnostics.
pub const CRATE_VERSION: VersionStrings = package_version_strings!();
