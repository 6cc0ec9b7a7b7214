//! Loading one plugin file: strict-mode and allowlist checks, a content-addressed copy, the
//! explicit API version check, abi_stable's layout check, and the descriptor.
//!
//! Never dlopen the watched file itself: dlopen caches by path (a replaced file would return
//! the old image) and overwriting a mapped file crashes the process. The file is copied to
//! `<runtime_dir>/<sha256>.so` and the copy is loaded; the same content is the same copy.
//! Libraries are never unloaded (abi_stable keeps process-wide references into them).

use std::io::Write;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_raw_library, LibraryError, RawLibrary};
use sha2::{Digest, Sha256};
use tapio_plugin_api::{
    module::PluginModRef, ApiVersion, ConfigField, EventTypeInfo, API_VERSION, API_VERSION_SYMBOL,
};

use crate::plugin::security::{check_owner_and_mode, InsecureReason};

/// Why a plugin file was refused. Each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Strict modes refused the file or its directory.
    #[error("insecure: {0}")]
    Insecure(#[from] InsecureReason),
    /// An allowlist is configured and this build is not on it.
    #[error("sha256 {hash} is not in plugins.allowlist_sha256")]
    NotAllowed {
        /// The file's sha256.
        hash: String,
    },
    /// Reading or copying the file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// dlopen refused it (not an ELF shared object, wrong architecture, missing symbols).
    #[error("not a loadable shared library: {0}")]
    Open(String),
    /// It loads but exports no tapio plugin.
    #[error("not a tapio plugin: no `TAPIO_PLUGIN_API_VERSION` symbol (build it with `tapio_plugin_api::export_plugin!`)")]
    NotAPlugin,
    /// The explicit API version check failed.
    #[error("{0}")]
    Api(#[from] tapio_plugin_api::IncompatibleApi),
    /// abi_stable found a type layout different from the host's.
    #[error("incompatible plugin-api type layout: {0}")]
    Layout(String),
    /// abi_stable refused the library for another reason.
    #[error("abi_stable refused the library: {0}")]
    Abi(String),
}

/// A plugin's self-description, copied into host memory.
#[derive(Debug, Clone)]
pub struct Descriptor {
    /// Unique name (interned for the life of the process).
    pub name: &'static str,
    /// The plugin's version.
    pub version: String,
    /// What it collects.
    pub description: String,
    /// The API version it was built against.
    pub api_version: ApiVersion,
    /// Groups the `--enable-*` switches act on.
    pub tags: Vec<String>,
    /// Whether it starts when the config does not mention it.
    pub enabled_by_default: bool,
    /// Event types it emits, with descriptions.
    pub event_types: Vec<(String, String)>,
    /// Its config schema (`'static` data in the library, which is never unloaded).
    pub config: Vec<ConfigField>,
}

/// A loaded, checked plugin library. Kept for the life of the process.
pub struct LoadedLibrary {
    /// sha256 of the file, lowercase hex.
    pub sha256: String,
    /// The content-addressed copy that was loaded.
    pub copy: PathBuf,
    /// The root module.
    pub module: PluginModRef,
    /// Its descriptor.
    pub descriptor: Descriptor,
}

impl std::fmt::Debug for LoadedLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedLibrary")
            .field("sha256", &self.sha256)
            .field("copy", &self.copy)
            .field("name", &self.descriptor.name)
            .finish()
    }
}

/// Checks for a plugin file, before anything is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadPolicy {
    /// Enforce owner and mode checks (sshd's StrictModes).
    pub strict_modes: bool,
    /// When not empty, only files whose sha256 is listed may load.
    pub allowlist_sha256: Vec<String>,
}

/// The bytes and hash of a plugin file that passed the file checks.
pub struct CheckedFile {
    /// The file's content.
    pub bytes: Vec<u8>,
    /// Its sha256, lowercase hex.
    pub sha256: String,
}

/// Reads `file` and applies the policy: strict modes on the file and its directory, the
/// allowlist.
pub fn check_file(file: &Path, policy: &LoadPolicy) -> Result<CheckedFile, LoadError> {
    if policy.strict_modes {
        if let Some(dir) = file.parent() {
            check_owner_and_mode(dir, false)?;
        }
        check_owner_and_mode(file, true)?;
    }
    let bytes = std::fs::read(file).map_err(|source| LoadError::Io {
        action: "read",
        path: file.to_owned(),
        source,
    })?;
    let sha256 = sha256_hex(&bytes);
    if !policy.allowlist_sha256.is_empty()
        && !policy
            .allowlist_sha256
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&sha256))
    {
        return Err(LoadError::NotAllowed { hash: sha256 });
    }
    Ok(CheckedFile { bytes, sha256 })
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes the content-addressed copy (once per content) and returns its path.
pub fn content_addressed_copy(
    runtime_dir: &Path,
    file: &CheckedFile,
) -> Result<PathBuf, LoadError> {
    let copy = runtime_dir.join(format!("{}.so", file.sha256));
    if copy.exists() {
        return Ok(copy);
    }
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |source| LoadError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(runtime_dir).map_err(io("create", runtime_dir))?;
    let tmp = runtime_dir.join(format!(".{}.so.tmp{}", file.sha256, std::process::id()));
    let mut out = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    out.write_all(&file.bytes).map_err(io("write", &tmp))?;
    out.sync_all().map_err(io("sync", &tmp))?;
    drop(out);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o500))
        .map_err(io("chmod", &tmp))?;
    std::fs::rename(&tmp, &copy).map_err(io("rename", &tmp))?;
    Ok(copy)
}

/// Loads the copy at `copy`: API version first, then abi_stable's layout check, then the
/// descriptor. Runs no plugin code beyond the library's static initializers and the
/// macro-generated root module constructor.
pub fn load_library(copy: &Path, sha256: String) -> Result<LoadedLibrary, LoadError> {
    let raw = RawLibrary::load_at(copy).map_err(|e| LoadError::Open(one_line(&e.to_string())))?;
    // SAFETY: the symbol is declared by `export_plugin!` as `static ApiVersion`; the
    // reference stays valid because the library is never unloaded (`forget` below).
    let plugin_api: ApiVersion = unsafe {
        match raw.get::<&'static ApiVersion>(API_VERSION_SYMBOL) {
            Ok(symbol) => **symbol,
            Err(_) => {
                std::mem::forget(raw);
                return Err(LoadError::NotAPlugin);
            }
        }
    };
    // SAFETY: as above; abi_stable checks the header it reads.
    let header = unsafe { lib_header_from_raw_library(&raw) };
    std::mem::forget(raw);
    API_VERSION.accepts(plugin_api)?;
    let module = header
        .map_err(abi_error)?
        .init_root_module::<PluginModRef>()
        .map_err(abi_error)?;
    let info = (module.describe())();
    let descriptor = Descriptor {
        name: intern(info.name.as_str()),
        version: info.version.to_string(),
        description: info.description.to_string(),
        api_version: plugin_api,
        tags: info.tags.iter().map(|t| t.to_string()).collect(),
        enabled_by_default: info.enabled_by_default,
        event_types: info
            .event_types
            .iter()
            .map(|t: &EventTypeInfo| (t.name.to_string(), t.description.to_string()))
            .collect(),
        config: info.config.to_vec(),
    };
    Ok(LoadedLibrary {
        sha256,
        copy: copy.to_owned(),
        module,
        descriptor,
    })
}

fn abi_error(e: LibraryError) -> LoadError {
    match e {
        LibraryError::AbiInstability(details) => {
            LoadError::Layout(summarize_layout_error(&details.to_string()))
        }
        other => LoadError::Abi(one_line(&other.to_string())),
    }
}

/// abi_stable's layout report runs to ~1,000 lines; keep its `Error:` lines, deduplicated.
pub fn summarize_layout_error(report: &str) -> String {
    let mut reasons: Vec<String> = Vec::new();
    for line in report.lines() {
        if let Some(pos) = line.find("Error:") {
            let reason = line[pos + "Error:".len()..].trim().to_owned();
            if !reason.is_empty() && !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
    }
    if reasons.is_empty() {
        return one_line(report);
    }
    reasons.truncate(3);
    reasons.join("; ")
}

/// The first line of `text`, at most 300 characters.
fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().take(300).collect()
}

/// Interns a plugin name for the life of the process (names are few and libraries are never
/// unloaded, so this set stays small).
pub fn intern(name: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(existing) = names.get(name) {
        return existing;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_reports_are_summarized() {
        let report = "lots of text\n  Error:field count differs\nmore\n   Error:field count differs\nError: name mismatch\n";
        assert_eq!(
            summarize_layout_error(report),
            "field count differs; name mismatch"
        );
    }

    #[test]
    fn interned_names_are_shared() {
        let a = intern("dns");
        let b = intern(&String::from("dns"));
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn garbage_is_refused_with_the_loader_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("garbage.so");
        std::fs::write(&file, b"this is not an ELF file").unwrap();
        let err = load_library(&file, "x".into()).unwrap_err();
        assert!(matches!(err, LoadError::Open(_)), "{err}");
        assert!(
            err.to_string().contains("not a loadable shared library"),
            "{err}"
        );
    }

    #[test]
    fn the_copy_is_content_addressed_and_read_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let checked = CheckedFile {
            bytes: b"abc".to_vec(),
            sha256: sha256_hex(b"abc"),
        };
        let copy = content_addressed_copy(dir.path(), &checked).unwrap();
        assert_eq!(
            copy.file_name().unwrap().to_str().unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.so"
        );
        assert_eq!(
            std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
            0o500
        );
        assert_eq!(content_addressed_copy(dir.path(), &checked).unwrap(), copy);
    }
}
