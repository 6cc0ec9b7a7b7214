//! Why the journal could not be read.

use std::path::PathBuf;

/// A journal failure; the reader reports it in the plugin's health and retries.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Opening the journal failed.
    #[error("cannot open {what}")]
    Open {
        /// The source (system journal, directory, files).
        what: String,
        /// libsystemd's reason.
        #[source]
        source: systemd::Error,
    },
    /// An sd-journal call failed on an open journal.
    #[error("{call} failed")]
    Read {
        /// The call.
        call: &'static str,
        /// libsystemd's reason.
        #[source]
        source: systemd::Error,
    },
    /// Reading or writing the cursor file failed.
    #[error("cursor file {path}")]
    CursorFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
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
