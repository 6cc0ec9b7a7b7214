//! `cargo xtask <task>`: the project's development tasks.
//!
//! - `install-plugins [--debug] [--dir DIR]`: build the collector plugins and install each
//!   into `plugins.d` as `<name>.so` (written to a hidden temporary file, then renamed, as
//!   an operator should deploy).
//! - `run [-- ARGS]`: install the plugins (release), build the host and run it on
//!   `packaging/config/dev.yaml`.
//! - `test`: everything CI checks: formatting, clippy, the committed BPF objects, every test
//!   of the workspace (unit, integration, plugin tests), then the ring's loom models.
//! - `bench`: the ring and end-to-end benchmarks.
//! - `deb`: the Debian package (`packaging/deb/build.sh`).
//! - `docs [--check]`: regenerate (or check) the generated sections of `docs/operations.md`.
//! - `api-snapshot [--check]`: regenerate (or check) `plugin-api/public-api.txt`.

mod api;
mod docs;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("install-plugins") => {
            let debug = args.iter().any(|a| a == "--debug");
            let dir = flag_value(&args, "--dir")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("plugins.d"));
            install_plugins(!debug, &dir)
        }
        Some("run") => {
            install_plugins(true, &root.join("plugins.d"))?;
            cargo(&["build", "--release", "-p", "tapio-collector"])?;
            let extra: Vec<&str> = args
                .iter()
                .skip(1)
                .skip_while(|a| *a == "--")
                .map(String::as_str)
                .collect();
            let binary = target_dir().join("release/tapio-collector");
            let status = Command::new(&binary)
                .args(["--config", "packaging/config/dev.yaml"])
                .args(extra)
                .status()
                .with_context(|| format!("cannot run {}", binary.display()))?;
            if !status.success() {
                bail!("tapio-collector exited with {status}");
            }
            Ok(())
        }
        Some("test") => {
            cargo(&["fmt", "--all", "--", "--check"])?;
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])?;
            if root.join("bpf-objects/Makefile").exists() {
                run("make", &["-C", "bpf-objects", "check"])?;
            }
            // Plugin libraries first: host tests load the real .so files.
            cargo(&["build", "--workspace"])?;
            cargo(&["test", "--workspace", "--no-fail-fast"])?;
            loom()
        }
        Some("loom") => loom(),
        Some("bench") => {
            cargo(&[
                "build",
                "--release",
                "-p",
                "tapio-plugin-loadgen",
                "-p",
                "tapio-plugin-example",
            ])?;
            cargo(&["bench", "-p", "tapio-collector"])
        }
        Some("deb") => run("packaging/deb/build.sh", &[]),
        Some("docs") => {
            let check = args.iter().any(|a| a == "--check");
            cargo(&["build", "-p", "tapio-collector"])?;
            let plugins = target_dir().join("docs-plugins.d");
            let _ = std::fs::remove_dir_all(&plugins);
            install_plugins(false, &plugins)?;
            let binary = target_dir().join("debug/tapio-collector");
            docs::update(&root, &binary, &plugins, check)
        }
        Some("api-snapshot") => {
            let check = args.iter().any(|a| a == "--check");
            let current = api::current(&target_dir())?;
            let path = root.join(api::SNAPSHOT);
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            if current == committed {
                eprintln!("{} is up to date", api::SNAPSHOT);
                Ok(())
            } else if check {
                let diff = diff_lines(&committed, &current);
                bail!(
                    "the public API of tapio-plugin-api changed:\n{diff}\nIf intended, check the compatibility promise (docs/writing-a-plugin.md), bump the version if needed, run `cargo xtask api-snapshot` and commit {}",
                    api::SNAPSHOT
                )
            } else {
                std::fs::write(&path, current)?;
                eprintln!("updated {}", api::SNAPSHOT);
                Ok(())
            }
        }
        _ => {
            eprintln!("usage: cargo xtask <install-plugins [--debug] [--dir DIR] | run [-- ARGS] | test | loom | bench | deb | docs [--check] | api-snapshot [--check]>");
            std::process::exit(2);
        }
    }
}

/// Lines only in `old` (`-`) and only in `new` (`+`).
fn diff_lines(old: &str, new: &str) -> String {
    let old_set: std::collections::BTreeSet<&str> = old.lines().collect();
    let new_set: std::collections::BTreeSet<&str> = new.lines().collect();
    let mut out = String::new();
    for l in old_set.difference(&new_set) {
        out.push_str(&format!("- {l}\n"));
    }
    for l in new_set.difference(&old_set) {
        out.push_str(&format!("+ {l}\n"));
    }
    out
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// The cargo target directory (honours CARGO_TARGET_DIR).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("+ cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo {} failed with {status}", args.join(" "));
    }
    Ok(())
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    eprintln!("+ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("{program} {} failed with {status}", args.join(" "));
    }
    Ok(())
}

fn loom() -> Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["test", "-p", "tapio-ring", "--release", "--lib"])
        .env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", target_dir().join("loom"))
        .status()?;
    if !status.success() {
        bail!("loom model tests failed");
    }
    Ok(())
}

/// Collector plugins to install: crates under plugins/ that say
/// `[package.metadata.tapio] install = true`.
fn installable_plugins() -> Result<Vec<(String, String)>> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut plugins = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        if package["metadata"]["tapio"]["install"].as_bool() != Some(true) {
            continue;
        }
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let lib = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                t["crate_types"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c == "cdylib"))
            })
            .and_then(|t| t["name"].as_str())
            .map(|n| n.replace('-', "_"));
        if let Some(lib) = lib {
            plugins.push((name, lib));
        }
    }
    plugins.sort();
    Ok(plugins)
}

fn install_plugins(release: bool, dir: &Path) -> Result<()> {
    let plugins = installable_plugins()?;
    let mut args = vec!["build"];
    if release {
        args.push("--release");
    }
    for (package, _) in &plugins {
        args.extend(["-p", package.as_str()]);
    }
    cargo(&args)?;
    std::fs::create_dir_all(dir)?;
    let profile = if release { "release" } else { "debug" };
    for (package, lib) in &plugins {
        let built = target_dir().join(profile).join(format!("lib{lib}.so"));
        let name = package.strip_prefix("tapio-plugin-").unwrap_or(package);
        let tmp = dir.join(format!(".{name}.so.tmp"));
        let dest = dir.join(format!("{name}.so"));
        // `install -m 0644 built .tmp && mv .tmp dest`: the host never sees a partial file.
        std::fs::copy(&built, &tmp).with_context(|| format!("cannot copy {}", built.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&tmp, &dest)?;
        eprintln!("installed {}", dest.display());
    }
    Ok(())
}
