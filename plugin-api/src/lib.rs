//! The contract between the `tapio-collector` host and its collector plugins.
//!
//! A plugin is a `cdylib` that implements [`Collector`] and calls [`export_plugin!`] once.
//! The host loads it from `plugins.d`, checks [`API_VERSION`] and the full type layout of
//! everything below before any plugin code runs, validates the user's config against the
//! plugin's schema, then drives the lifecycle: `create`, `start(sink)`, `health`/`metrics`
//! polls, `stop`.
//!
//! # Rules of the boundary
//! - Only types from this crate cross it. They are `#[repr(C)]` and checked by `abi_stable`.
//! - Everything passed INTO a call is borrowed for that call unless its docs say otherwise;
//!   everything RETURNED is owned by the receiver (`RString`, `RVec`, boxed instances).
//! - No panic crosses it: the export macro catches panics in every call and the panic hook
//!   it installs reports panics on the plugin's own threads. A panicking plugin is marked
//!   failed; the host keeps running.
//! - A plugin has no ambient runtime of the host: it starts and joins its own threads (and
//!   its own async runtime if it needs one). Its `log` / `tracing` output and panics reach
//!   the host through [`HostHandle`] (installed for you).
//! - Libraries are never unloaded; `'static` data in a plugin stays valid.
//!
//! See the crate README for a complete third-party plugin.

#![warn(missing_docs, unreachable_pub)]

mod collector;
pub mod config;
mod error;
mod event;
mod host;
pub mod logging;
pub mod module;
mod status;
mod version;

pub use abi_stable::std_types::{RSlice, RStr, RString};
pub use collector::Collector;
pub use config::{Config, ConfigDefault, ConfigField, FieldKind};
pub use error::{ErrorKind, PluginError};
pub use event::{now_unix_nanos, AttrValue, Attribute, Event, Severity, TraceContext};
pub use host::{EmitOutcome, EventSink, EventSinkApi, HostApi, HostHandle, LogLevel};
/// The `log` facade, re-exported so a plugin can log without its own dependency; records
/// reach the host log (see [`logging`]).
pub use log;
pub use module::{EventTypeInfo, PluginInfo};
pub use status::{Health, HealthStatus, Metric, MetricKind};
pub use version::{ApiVersion, IncompatibleApi, API_MINOR, API_VERSION};

/// Name of the exported static holding the plugin's [`ApiVersion`], read by the host before
/// anything else (NUL-terminated for `dlsym`).
pub const API_VERSION_SYMBOL: &[u8] = b"TAPIO_PLUGIN_API_VERSION\0";

/// Items the export macro refers to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::collector::root_module;
    pub use abi_stable;

    /// Must equal `abi_stable::library::ROOT_MODULE_LOADER_NAME` (checked by a test); kept as
    /// a literal because `#[export_name]` needs one.
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __root_module_loader_name {
        () => {
            "_1as_0lib_1header_0root_bmodule_bloader"
        };
    }
}

/// Exports a [`Collector`] as a tapio plugin. Call it once, at the crate root of a `cdylib`:
///
/// ```text
/// tapio_plugin_api::export_plugin!(Heartbeat);
/// ```
///
/// It generates every symbol the host looks up: the `TAPIO_PLUGIN_API_VERSION` static and the
/// abi_stable root module whose functions catch panics. The plugin's version defaults to its
/// crate's package version.
#[macro_export]
macro_rules! export_plugin {
    ($collector:ty) => {
        /// The plugin API version this library was built against, read by the host first.
        #[no_mangle]
        pub static TAPIO_PLUGIN_API_VERSION: $crate::ApiVersion = $crate::API_VERSION;

        #[doc(hidden)]
        #[export_name = $crate::__root_module_loader_name!()]
        pub static __TAPIO_ROOT_MODULE_LOADER: $crate::__private::abi_stable::library::LibHeader = {
            extern "C" fn __tapio_erased_root_module(
            ) -> $crate::__private::abi_stable::library::RootModuleResult {
                fn __tapio_root_module() -> $crate::module::PluginModRef {
                    $crate::__private::root_module::<$collector>(env!("CARGO_PKG_VERSION"))
                }
                $crate::__private::abi_stable::library::__call_root_module_loader(
                    __tapio_root_module,
                )
            }
            // SAFETY: the constructor returns the root module type named here, as
            // abi_stable's own `#[export_root_module]` expansion does.
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<
                    $crate::module::PluginModRef,
                >(
                    __tapio_erased_root_module,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_module_loader_name_matches_abi_stable() {
        assert_eq!(
            crate::__root_module_loader_name!(),
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }

    #[test]
    fn api_version_symbol_is_nul_terminated() {
        assert_eq!(crate::API_VERSION_SYMBOL.last(), Some(&0));
    }
}
