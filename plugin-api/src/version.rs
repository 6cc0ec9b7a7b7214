//! The explicit API version a plugin is built against and the host's compatibility rule.
//!
//! The version is separate from the crate's package version: it changes only when the
//! contract changes. A minor version may append optional capabilities (new methods after the
//! last prefix field, new `HostApi` services); anything else needs a new major.

use abi_stable::StableAbi;

/// Major version of the plugin API. Changed only by a breaking change of the contract.
///
/// Kept as a macro so the same literal feeds [`API_VERSION`] and the abi_stable root module
/// version string (which must be a string literal).
#[doc(hidden)]
#[macro_export]
macro_rules! __api_major {
    () => {
        1
    };
}

/// Minor version of the plugin API. Raised when a capability is appended.
pub const API_MINOR: u16 = 0;

/// The version of the plugin API this crate implements.
///
/// A plugin records the value it was built with in the exported static
/// `TAPIO_PLUGIN_API_VERSION`; the host reads that static before any plugin code runs.
pub const API_VERSION: ApiVersion = ApiVersion {
    major: __api_major!(),
    minor: API_MINOR,
};

/// A plugin API version: `major.minor`.
///
/// Ownership: plain value, copied freely.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiVersion {
    /// Breaking-change counter.
    pub major: u16,
    /// Additive-change counter.
    pub minor: u16,
}

impl ApiVersion {
    /// Checks whether a host implementing `self` can run a plugin built against `plugin`.
    ///
    /// The rule: the same major, and the host's minor at least the plugin's minor (a plugin
    /// may rely on every capability up to its own minor).
    pub fn accepts(self, plugin: ApiVersion) -> Result<(), IncompatibleApi> {
        if self.major != plugin.major {
            return Err(IncompatibleApi {
                host: self,
                plugin,
                reason: "the major versions differ",
            });
        }
        if self.minor < plugin.minor {
            return Err(IncompatibleApi {
                host: self,
                plugin,
                reason: "the plugin needs a newer host (plugin minor is above the host's)",
            });
        }
        Ok(())
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a plugin's API version was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompatibleApi {
    /// The API version the host implements.
    pub host: ApiVersion,
    /// The API version the plugin was built against.
    pub plugin: ApiVersion,
    /// Which half of the rule failed.
    pub reason: &'static str,
}

impl std::fmt::Display for IncompatibleApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "incompatible plugin API: expected {}.x with x <= {}, found {} ({})",
            self.host.major, self.host.minor, self.plugin, self.reason
        )
    }
}

impl std::error::Error for IncompatibleApi {}

#[cfg(test)]
mod tests {
    use super::*;

    const fn v(major: u16, minor: u16) -> ApiVersion {
        ApiVersion { major, minor }
    }

    #[test]
    fn same_version_is_accepted() {
        assert_eq!(v(1, 2).accepts(v(1, 2)), Ok(()));
    }

    #[test]
    fn older_plugin_minor_is_accepted() {
        assert_eq!(v(1, 3).accepts(v(1, 0)), Ok(()));
    }

    #[test]
    fn newer_plugin_minor_is_refused() {
        let err = v(1, 0).accepts(v(1, 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "incompatible plugin API: expected 1.x with x <= 0, found 1.1 \
             (the plugin needs a newer host (plugin minor is above the host's))"
        );
    }

    #[test]
    fn other_major_is_refused() {
        let err = v(1, 0).accepts(v(2, 0)).unwrap_err();
        assert_eq!(err.reason, "the major versions differ");
        assert!(err.to_string().contains("found 2.0"), "{err}");
    }
}
