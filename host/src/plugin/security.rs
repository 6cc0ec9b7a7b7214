//! Who may supply plugin code: sshd-style strict modes on the plugins directory and each
//! file, and an optional sha256 allowlist.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Why a file or directory may not supply plugin code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InsecureReason {
    /// Group or others can write it.
    #[error("{path} is writable by {who} (mode {mode:04o}); run `chmod go-w {path}`")]
    Writable {
        /// The offending path.
        path: String,
        /// "group", "others" or "group and others".
        who: &'static str,
        /// Its permission bits.
        mode: u32,
    },
    /// Owned by someone other than root or the service user.
    #[error("{path} is owned by uid {owner}; only root (0) or the service user ({service}) may own plugin files")]
    Owner {
        /// The offending path.
        path: String,
        /// Its owner.
        owner: u32,
        /// The uid the host runs as.
        service: u32,
    },
    /// Not a regular file (a directory, a socket, ...).
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The offending path.
        path: String,
    },
    /// Its metadata could not be read.
    #[error("cannot read the metadata of {path}: {error}")]
    Unreadable {
        /// The offending path.
        path: String,
        /// The OS error.
        error: String,
    },
}

/// Checks that `path` (a file or directory) is owned by root or the service user and not
/// writable by group or others.
pub fn check_owner_and_mode(path: &Path, expect_file: bool) -> Result<(), InsecureReason> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| InsecureReason::Unreadable {
        path: shown.clone(),
        error: e.to_string(),
    })?;
    if expect_file && !meta.is_file() {
        return Err(InsecureReason::NotAFile { path: shown });
    }
    let mode = meta.permissions().mode() & 0o7777;
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => Some("group and others"),
        (true, false) => Some("group"),
        (false, true) => Some("others"),
        (false, false) => None,
    };
    if let Some(who) = who {
        return Err(InsecureReason::Writable {
            path: shown,
            who,
            mode,
        });
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let service = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != service {
        return Err(InsecureReason::Owner {
            path: shown,
            owner: meta.uid(),
            service,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn world_and_group_writable_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.so");
        fs::write(&file, b"x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(check_owner_and_mode(&file, true), Ok(()));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        let err = check_owner_and_mode(&file, true).unwrap_err();
        assert!(
            matches!(
                err,
                InsecureReason::Writable {
                    who: "group and others",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
        assert!(matches!(
            check_owner_and_mode(&file, true),
            Err(InsecureReason::Writable { who: "group", .. })
        ));
    }

    #[test]
    fn a_directory_is_not_a_plugin_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_owner_and_mode(dir.path(), true),
            Err(InsecureReason::NotAFile { .. })
        ));
        assert_eq!(check_owner_and_mode(dir.path(), false), Ok(()));
    }

    #[test]
    fn files_of_other_users_are_refused() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: changing a file's owner needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.so");
        fs::write(&file, b"x").unwrap();
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        let err = check_owner_and_mode(&file, true).unwrap_err();
        assert!(
            matches!(err, InsecureReason::Owner { owner: 65534, .. }),
            "{err}"
        );
    }
}
