//! Errors of loading, attaching and reading eBPF objects.

use tapio_plugin_api::PluginError;

/// What can go wrong bringing up an eBPF collector.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    /// The process lacks a capability needed to load BPF programs.
    #[error("{message}")]
    Permission {
        /// The full explanation, naming each missing capability.
        message: String,
    },
    /// The kernel exposes no BTF (`/sys/kernel/btf/vmlinux`), needed for CO-RE.
    #[error("kernel BTF unavailable (needs CONFIG_DEBUG_INFO_BTF, kernel >= 5.8)")]
    Btf(#[source] aya::BtfError),
    /// The object could not be parsed, relocated or its maps created.
    #[error("cannot load BPF object {object}")]
    Load {
        /// Which object.
        object: &'static str,
        /// aya's error.
        #[source]
        source: Box<aya::EbpfError>,
    },
    /// A program named by the spec is missing from the object.
    #[error("program {program} is not in BPF object {object}")]
    MissingProgram {
        /// Which object.
        object: &'static str,
        /// Which program.
        program: &'static str,
    },
    /// A map the runtime needs is missing or has the wrong type.
    #[error("map {map} of BPF object {object} is missing or of the wrong type")]
    Map {
        /// Which object.
        object: &'static str,
        /// Which map.
        map: &'static str,
        /// aya's error, when there is one.
        #[source]
        source: Option<aya::maps::MapError>,
    },
    /// The verifier refused a program, or attaching it failed.
    #[error("cannot {action} program {program} ({target})")]
    Program {
        /// `load` or `attach`.
        action: &'static str,
        /// Which program.
        program: &'static str,
        /// The tracepoint it goes to.
        target: String,
        /// aya's error (carries the verifier log).
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// tracefs is not mounted and mounting it failed.
    #[error("tracefs is not mounted at /sys/kernel/tracing and mounting it failed")]
    Tracefs(#[source] std::io::Error),
    /// Any other system call failure (eventfd, poll, thread spawn).
    #[error("{what} failed")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl EbpfError {
    /// Whether this is a missing privilege (retrying will not help until it is granted).
    pub fn is_permission(&self) -> bool {
        matches!(self, EbpfError::Permission { .. })
    }

    /// The error and its causes on one line (`a: b: c`), for health reasons and logs.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        // Verifier logs are long: keep the health reason to one readable line.
        text.split('\n')
            .next()
            .unwrap_or_default()
            .chars()
            .take(600)
            .collect()
    }

    /// The matching plugin error.
    pub fn to_plugin_error(&self) -> PluginError {
        if self.is_permission() {
            PluginError::permission(self.chain())
        } else {
            PluginError::unavailable(self.chain())
        }
    }
}
