//! Paths, tools and commands shared by the packaging tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("packaging/tests lives two levels below the root")
        .to_owned()
}

/// The cargo target directory (honours CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// A tool installed by `.ci/deps/ship.sh` into the Python venv.
pub fn venv_bin(name: &str) -> PathBuf {
    let cache = std::env::var_os("TAPIO_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/tapio")
        });
    cache.join("venv/bin").join(name)
}

/// Whether a test can run: prints why not, and fails instead when
/// `TAPIO_REQUIRE_ALL_TESTS` is set.
pub fn can_run(test: &str, missing: Option<String>) -> bool {
    let Some(what) = missing else { return true };
    assert!(
        std::env::var_os("TAPIO_REQUIRE_ALL_TESTS").is_none(),
        "{test} cannot run: {what} (install with .ci/deps/ship.sh)"
    );
    eprintln!("skipping {test}: {what} (install with .ci/deps/ship.sh)");
    false
}

/// `Some(reason)` when `program --version`-like probe fails.
pub fn missing_tool(program: &Path, probe: &[&str], what: &str) -> Option<String> {
    match Command::new(program).args(probe).output() {
        Ok(o) if o.status.success() => None,
        _ => Some(format!("needs {what} ({})", program.display())),
    }
}

/// Whether the tests run as root (dpkg -i, chown in the image build steps).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs `cmd`, panics with its output unless it succeeds.
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `cargo` as the test runner's cargo, in the repository root.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    c.current_dir(root());
    c
}

/// stdout as text.
pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Nested release builds share one target directory: run them one at a time.
pub fn release_build_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The debug host binary, built once per test run.
pub fn host_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        ok(cargo().args(["build", "-p", "tapio-collector"]));
        target_dir().join("debug/tapio-collector")
    })
    .clone()
}

/// Every installable plugin, built (debug) and installed by `cargo xtask install-plugins`
/// into a directory of this test run.
pub fn debug_plugins() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join("packaging-tests-plugins.d");
        let _ = std::fs::remove_dir_all(&dir);
        ok(cargo()
            .args(["xtask", "install-plugins", "--debug", "--dir"])
            .arg(&dir));
        dir
    })
    .clone()
}

/// Names of the installable plugins (`[package.metadata.tapio] install = true`), read from
/// `cargo metadata` independently of the scripts under test.
pub fn installable_plugin_names() -> Vec<String> {
    let out = ok(cargo().args(["metadata", "--format-version", "1", "--no-deps"]));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["tapio"]["install"] == true)
        .map(|p| {
            let name = p["name"].as_str().unwrap();
            name.strip_prefix("tapio-plugin-")
                .unwrap_or(name)
                .to_owned()
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no installable plugin in the workspace");
    names
}

/// `*.so` file stems of `dir`, sorted.
pub fn so_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".so"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// Checks `plugins list` output: one `loaded` line per plugin, nothing refused.
pub fn assert_all_loaded(listing: &str, expected: &[String]) {
    let rows: Vec<&str> = listing.lines().skip(1).collect();
    assert_eq!(rows.len(), expected.len(), "plugins list:\n{listing}");
    for row in rows {
        assert!(row.trim_end().ends_with("loaded"), "not loaded: {row}");
    }
}

/// Build profile of the packages the tests build: `debug` unless
/// `TAPIO_PACKAGING_PROFILE=release` (a release build of every plugin takes long on a
/// 2-core CI machine; the packaging steps are the same).
pub fn profile() -> String {
    std::env::var("TAPIO_PACKAGING_PROFILE").unwrap_or_else(|_| "debug".to_owned())
}

/// Checks the third-party licence notices at `path` (packaging/stage.sh): every crate
/// outside the workspace that the workspace builds for Linux x86-64 (`cargo tree`, normal
/// dependencies) is listed by name and version, and the licence texts themselves are there.
pub fn assert_notices_cover_the_shipped_crates(path: &Path) {
    let notices = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read the licence notices {}: {e}", path.display()));
    let tree = ok(cargo().args([
        "tree",
        "--workspace",
        "--locked",
        "-e",
        "normal",
        "--target",
        "x86_64-unknown-linux-gnu",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]));
    let mut crates = 0;
    let mut missing: Vec<String> = Vec::new();
    for line in text(&tree).lines() {
        let line = line.trim_end_matches(" (*)").replace(" (proc-macro)", "");
        // Workspace members are path crates: "name v0.1.0 (/path)".
        if line.is_empty() || line.contains(" (/") {
            continue;
        }
        let (name, version) = line
            .split_once(" v")
            .unwrap_or_else(|| panic!("unexpected cargo tree line {line:?}"));
        crates += 1;
        if !notices.contains(&format!("  - {name} {version}")) {
            missing.push(format!("{name} {version}"));
        }
    }
    missing.sort();
    missing.dedup();
    assert!(crates > 100, "cargo tree listed only {crates} crates");
    assert!(
        missing.is_empty(),
        "{} lacks {} shipped crate(s): {missing:?}",
        path.display(),
        missing.len()
    );
    for text in [
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "Permission is hereby granted, free of charge",
    ] {
        assert!(
            notices.contains(text),
            "{} has no licence text with {text:?}",
            path.display()
        );
    }
}
