//! The inspection subcommands: `plugins list`, `plugins inspect`, `check-config`. They load
//! plugin libraries to read their descriptors but never create or start a plugin.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::LoadedConfig;
use crate::plugin::library::{
    check_file, content_addressed_copy, load_library, LoadPolicy, LoadedLibrary,
};
use crate::plugin::manager::is_plugin_file;

/// A scratch directory for content-addressed copies, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("tapio-inspect-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // The libraries stay mapped; removing their files is safe.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load(file: &Path, policy: &LoadPolicy, scratch: &Scratch) -> Result<LoadedLibrary, String> {
    let checked = check_file(file, policy).map_err(|e| e.to_string())?;
    let copy = content_addressed_copy(&scratch.0, &checked).map_err(|e| e.to_string())?;
    load_library(&copy, checked.sha256).map_err(|e| e.to_string())
}

fn plugin_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_plugin_file(p))
        .collect();
    files.sort();
    Ok(files)
}

fn policy_of(config: Option<&LoadedConfig>) -> LoadPolicy {
    let plugins = config.map(|c| c.config.plugins.clone()).unwrap_or_default();
    LoadPolicy {
        strict_modes: plugins.strict_modes,
        allowlist_sha256: plugins.allowlist_sha256,
    }
}

/// `plugins list`: one line per plugin file. Returns the text and whether every file loads.
pub fn list(dir: &Path, config: Option<&LoadedConfig>) -> anyhow::Result<(String, bool)> {
    let files =
        plugin_files(dir).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
    let scratch = Scratch::new()?;
    let policy = policy_of(config);
    let mut out = format!(
        "{:<28} {:<20} {:<10} {:<5} STATUS\n",
        "FILE", "NAME", "VERSION", "API"
    );
    let mut all_ok = true;
    for file in files {
        let shown = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match load(&file, &policy, &scratch) {
            Ok(lib) => {
                let d = &lib.descriptor;
                let status = match config.map(|c| c.plugin_config(d.name, &d.config)) {
                    Some(Err(e)) => {
                        all_ok = false;
                        format!("refused: invalid config: {e}")
                    }
                    _ => "loaded".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "{shown:<28} {:<20} {:<10} {:<5} {status}",
                    d.name,
                    d.version,
                    d.api_version.to_string()
                );
            }
            Err(reason) => {
                all_ok = false;
                let _ = writeln!(
                    out,
                    "{shown:<28} {:<20} {:<10} {:<5} refused: {reason}",
                    "-", "-", "-"
                );
            }
        }
    }
    Ok((out, all_ok))
}

/// `plugins inspect FILE`: the descriptor and config schema.
pub fn inspect(file: &Path) -> anyhow::Result<String> {
    let scratch = Scratch::new()?;
    // Inspection reads any file the user names; strict modes apply to running, not reading.
    let lib = load(file, &LoadPolicy::default(), &scratch)
        .map_err(|reason| anyhow::anyhow!("{}: {reason}", file.display()))?;
    let d = &lib.descriptor;
    let mut out = String::new();
    let _ = writeln!(out, "name:         {}", d.name);
    let _ = writeln!(out, "version:      {}", d.version);
    let _ = writeln!(out, "api version:  {}", d.api_version);
    let _ = writeln!(out, "description:  {}", d.description);
    let _ = writeln!(
        out,
        "tags:         {}",
        if d.tags.is_empty() {
            "-".to_owned()
        } else {
            d.tags.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "enabled:      {}",
        if d.enabled_by_default {
            "by default"
        } else {
            "only when collectors.<name>.enabled is true"
        }
    );
    let _ = writeln!(out, "sha256:       {}", lib.sha256);
    let _ = writeln!(out, "\nevent types:");
    for (name, description) in &d.event_types {
        let _ = writeln!(out, "  {name:<36} {description}");
    }
    let _ = writeln!(out, "\nconfig (collectors.{}.config):", d.name);
    if d.config.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for f in &d.config {
        let default = match f.default.to_json() {
            Some(v) => v.to_string(),
            None if matches!(f.default, tapio_plugin_api::ConfigDefault::Required) => {
                "required".to_owned()
            }
            None => "unset".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {:<24} {:<16} default {}",
            f.name.as_str(),
            f.kind.as_str(),
            default
        );
        if !f.choices.is_empty() {
            let choices: Vec<&str> = f.choices.iter().map(|c| c.as_str()).collect();
            let _ = writeln!(out, "  {:<24} one of: {}", "", choices.join(", "));
        }
        let _ = writeln!(out, "  {:<24} {}", "", f.doc);
    }
    let _ = writeln!(
        out,
        "\nexample:\ncollectors:\n  {}:\n    enabled: true\n    config:",
        d.name
    );
    for f in &d.config {
        if let Some(v) = f.default.to_json() {
            let _ = writeln!(out, "      {}: {}", f.name.as_str(), v);
        }
    }
    Ok(out)
}

/// `check-config FILE`: `Ok(report)` when valid, `Err(message)` naming file, line and field.
pub fn check_config(file: &Path, plugins_dir: Option<PathBuf>) -> Result<String, String> {
    let loaded = LoadedConfig::load(file).map_err(|e| e.to_string())?;
    let dir = crate::app::plugins_dir_for(plugins_dir, Some(&loaded));
    let mut report = String::new();
    let mut checked = 0;
    let mut names = Vec::new();
    match plugin_files(&dir) {
        Ok(files) => {
            let scratch = Scratch::new().map_err(|e| e.to_string())?;
            let policy = policy_of(Some(&loaded));
            for plugin in files {
                if let Ok(lib) = load(&plugin, &policy, &scratch) {
                    let d = &lib.descriptor;
                    names.push(d.name.to_owned());
                    if loaded.config.collectors.contains_key(d.name) {
                        loaded
                            .plugin_config(d.name, &d.config)
                            .map_err(|e| e.to_string())?;
                        checked += 1;
                    }
                }
            }
        }
        Err(e) => {
            let _ = writeln!(
                report,
                "warning: cannot read plugins directory {}: {e}; collector sections not checked",
                dir.display()
            );
        }
    }
    for name in loaded.config.collectors.keys() {
        if !names.contains(name) {
            let _ = writeln!(
                report,
                "warning: collectors.{name}: no plugin named {name:?} in {}",
                dir.display()
            );
        }
    }
    let rules = crate::correlate::setup::load_rules(&loaded.config.correlation)
        .map_err(|e| format!("correlation rules: {e}"))?;
    let _ = writeln!(
        report,
        "{}: valid ({checked} collector section(s) checked against plugin schemas, {} correlation rule(s))",
        file.display(),
        rules.len()
    );
    Ok(report)
}

/// Loads every plugin file of `dir` (in file name order) to read its descriptor, for the
/// generated reference docs. Creates and starts nothing; a file that does not load is an
/// error naming it.
pub fn descriptors(dir: &Path) -> anyhow::Result<Vec<LoadedLibrary>> {
    let files =
        plugin_files(dir).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
    let scratch = Scratch::new()?;
    files
        .iter()
        .map(|file| {
            load(file, &LoadPolicy::default(), &scratch)
                .map_err(|reason| anyhow::anyhow!("{}: {reason}", file.display()))
        })
        .collect()
}
