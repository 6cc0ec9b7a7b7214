//! The persisted cursor: one file in the plugin's state directory, replaced atomically
//! (write a temporary file, rename) after every emitted batch, and fsynced when the reader
//! stops. A process crash keeps the last renamed cursor; a power loss may bring back an
//! older one (entries repeated, never lost).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::JournalError;

/// Where the cursor lives.
#[derive(Debug, Clone)]
pub struct CursorStore {
    path: PathBuf,
}

impl CursorStore {
    /// The store in `state_dir` (created when missing).
    pub fn new(state_dir: &Path) -> Self {
        CursorStore {
            path: state_dir.join("cursor"),
        }
    }

    /// The file path.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved cursor, if any.
    pub fn load(&self) -> Result<Option<String>, JournalError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                let c = text.trim();
                Ok((!c.is_empty()).then(|| c.to_owned()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(JournalError::CursorFile {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Replaces the saved cursor with `cursor`; `durable` also fsyncs it (at stop: an fsync
    /// per batch would cost more than reading the batch).
    pub fn save(&self, cursor: &str, durable: bool) -> Result<(), JournalError> {
        let err = |source| JournalError::CursorFile {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(cursor.as_bytes()).map_err(err)?;
        if durable {
            f.sync_data().map_err(err)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        if durable {
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = CursorStore::new(&dir.path().join("state"));
        assert_eq!(store.load().unwrap(), None);
        store.save("s=1;i=1", false).unwrap();
        store.save("s=1;i=2", true).unwrap();
        assert_eq!(store.load().unwrap().as_deref(), Some("s=1;i=2"));
        assert!(!store.path().with_extension("tmp").exists());
    }
}
