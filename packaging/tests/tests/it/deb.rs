//! The Debian package on this machine: build it (cargo-deb), install it with `dpkg -i`,
//! check every file and permission, verify the installed unit, run the installed binary
//! on the installed config, upgrade to a second build, remove, purge.
//!
//! Needs root, dpkg, cargo-deb and systemd-analyze. Installs `tapio-collector` system-wide
//! for the duration of the test and purges it at the end (also when the test fails).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    assert_all_loaded, assert_notices_cover_the_shipped_crates, can_run, installable_plugin_names,
    is_root, missing_tool, ok, release_build_lock, root, target_dir, text,
};

const PACKAGE: &str = "tapio-collector";

/// Builds the package with `version` as its Debian version.
fn build(version: &str, out: &Path) -> PathBuf {
    let _guard = release_build_lock();
    let o = ok(Command::new(root().join("packaging/deb/build.sh"))
        .arg(out)
        .env("TAPIO_DEB_VERSION", version)
        .env("TAPIO_PROFILE", crate::support::profile())
        .env("CARGO_TARGET_DIR", target_dir()));
    let path = PathBuf::from(text(&o).trim());
    assert!(
        path.exists(),
        "build.sh printed {path:?}, which does not exist"
    );
    path
}

/// `dpkg ARGS`, retried while another dpkg/apt holds the lock (shared machine).
fn dpkg(args: &[&str]) -> String {
    let started = Instant::now();
    loop {
        let out = Command::new("dpkg").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return format!("{}{stderr}", text(&out));
        }
        if stderr.contains("lock") && started.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        panic!(
            "dpkg {} failed ({}):\n{}{stderr}",
            args.join(" "),
            out.status,
            text(&out)
        );
    }
}

fn status() -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", PACKAGE])
        .output()
        .unwrap();
    text(&out)
}

/// Purges the package when the test ends, whatever happened.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        if !status().is_empty() && !status().contains("not-installed") {
            let _ = Command::new("dpkg").args(["--purge", PACKAGE]).status();
        }
    }
}

fn mode(path: &str) -> (u32, u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.permissions().mode() & 0o7777, m.uid(), m.gid())
}

fn getent(db: &str, key: &str) -> Option<String> {
    let out = Command::new("getent").args([db, key]).output().unwrap();
    out.status.success().then(|| text(&out).trim().to_owned())
}

const UNIT_PATHS: [&str; 2] = [
    "/usr/lib/systemd/system/tapio-collector.service",
    "/lib/systemd/system/tapio-collector.service",
];

fn unit_path() -> &'static str {
    UNIT_PATHS
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the unit is installed under /usr/lib/systemd/system or /lib/systemd/system")
}

const WANTS: &str = "/etc/systemd/system/multi-user.target.wants/tapio-collector.service";

/// Every file and permission of an installed package.
fn check_installed(plugins: &[String]) {
    let (m, uid, _) = mode("/usr/bin/tapio-collector");
    assert_eq!((m, uid), (0o755, 0), "/usr/bin/tapio-collector");
    for dir in ["/usr/lib/tapio", "/usr/lib/tapio/plugins.d"] {
        let (m, uid, _) = mode(dir);
        assert_eq!(uid, 0, "{dir} owner");
        assert_eq!(m & 0o022, 0, "{dir} is writable by group or others: {m:o}");
    }
    assert_eq!(
        crate::support::so_names(Path::new("/usr/lib/tapio/plugins.d")),
        plugins,
        "installed plugins differ from the installable plugins of the workspace"
    );
    for p in plugins {
        let (m, uid, _) = mode(&format!("/usr/lib/tapio/plugins.d/{p}.so"));
        assert_eq!((m, uid), (0o644, 0), "{p}.so");
    }
    let tapio = getent("passwd", "tapio").expect("the tapio user exists");
    let fields: Vec<&str> = tapio.split(':').collect();
    let (tapio_uid, tapio_gid): (u32, u32) =
        (fields[2].parse().unwrap(), fields[3].parse().unwrap());
    assert!(tapio_uid < 1000, "tapio is not a system user: {tapio}");
    assert_eq!(fields[5], "/var/lib/tapio");
    assert!(
        fields[6].ends_with("nologin"),
        "tapio has a login shell: {tapio}"
    );
    assert!(getent("group", "tapio").is_some(), "the tapio group exists");
    let (m, uid, gid) = mode("/etc/tapio/config.yaml");
    assert_eq!(
        (m, uid, gid),
        (0o640, 0, tapio_gid),
        "/etc/tapio/config.yaml"
    );
    let (m, uid, gid) = mode("/etc/tapio/rules.d");
    assert_eq!((m, uid, gid), (0o750, 0, tapio_gid), "/etc/tapio/rules.d");
    let (_, uid, _) = mode("/var/lib/tapio");
    assert_eq!(uid, tapio_uid, "/var/lib/tapio owner");
    assert!(Path::new("/usr/share/tapio/rules/README.md").exists());
    let rules: Vec<_> = std::fs::read_dir(root().join("packaging/rules"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".yaml"))
        .collect();
    for rule in rules {
        let installed = Path::new("/usr/share/tapio/rules").join(rule.file_name());
        assert!(
            installed.exists(),
            "rule {} not installed",
            installed.display()
        );
    }
    let (m, uid, _) = mode(unit_path());
    assert_eq!((m, uid), (0o644, 0), "unit file");
    assert!(
        Path::new(WANTS).is_symlink(),
        "the unit is not enabled ({WANTS} missing)"
    );
    assert!(Path::new("/usr/share/doc/tapio-collector/operations.md").exists());
    assert_notices_cover_the_shipped_crates(Path::new(
        "/usr/share/doc/tapio-collector/THIRD-PARTY-LICENSES",
    ));
    assert!(Path::new("/usr/share/doc/tapio-collector/examples/run-as-tapio.conf").exists());

    // The installed binary on the installed config: strict modes pass for every plugin.
    let out =
        ok(Command::new("/usr/bin/tapio-collector")
            .args(["check-config", "/etc/tapio/config.yaml"]));
    assert!(text(&out).contains("valid"), "{}", text(&out));
    let out = ok(Command::new("/usr/bin/tapio-collector").args([
        "plugins",
        "list",
        "--config",
        "/etc/tapio/config.yaml",
    ]));
    assert_all_loaded(&text(&out), plugins);

    // The installed unit, as installed (ExecStart points at the installed binary).
    let out = Command::new("systemd-analyze")
        .args(["verify", unit_path()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("tapio-collector.service"),
        "verify warned about the unit:\n{stderr}"
    );
    // The run-as-tapio drop-in on top of it verifies too.
    let dropin = tempfile::tempdir().unwrap();
    let unit = dropin.path().join("tapio-collector.service");
    std::fs::copy(unit_path(), &unit).unwrap();
    std::fs::create_dir(dropin.path().join("tapio-collector.service.d")).unwrap();
    std::fs::copy(
        "/usr/share/doc/tapio-collector/examples/run-as-tapio.conf",
        dropin
            .path()
            .join("tapio-collector.service.d/run-as-tapio.conf"),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify"])
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify with the drop-in: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_deb_installs_upgrades_removes_and_purges_cleanly() {
    let test = "the_deb_installs_upgrades_removes_and_purges_cleanly";
    let missing = if !is_root() {
        Some("needs root (dpkg -i)".to_owned())
    } else {
        missing_tool(Path::new("dpkg"), &["--version"], "dpkg")
            .or_else(|| {
                missing_tool(
                    Path::new("systemd-analyze"),
                    &["--version"],
                    "systemd-analyze",
                )
            })
            .or_else(|| {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
                missing_tool(Path::new(&cargo), &["deb", "--version"], "cargo-deb")
            })
    };
    if !can_run(test, missing) {
        return;
    }
    let previous = status();
    assert!(
        previous.is_empty() || previous.contains("not-installed"),
        "{PACKAGE} is already installed on this machine ({previous}); this test installs and purges it, refusing to touch an existing installation"
    );
    let _purge = Purge;
    let out = tempfile::tempdir().unwrap();
    let v1 = build("0.1.0-1", out.path());
    let v2 = build("0.1.0-2", out.path());
    let plugins = installable_plugin_names();

    // The package's own metadata and contents.
    let info = text(&ok(Command::new("dpkg-deb").arg("--info").arg(&v1)));
    for field in [
        "Package: tapio-collector",
        "Version: 0.1.0-1",
        "Depends:",
        "adduser",
    ] {
        assert!(
            info.contains(field),
            "dpkg-deb --info lacks {field}:\n{info}"
        );
    }
    let contents = text(&ok(Command::new("dpkg-deb").arg("--contents").arg(&v1)));
    for p in &plugins {
        assert!(
            contents.contains(&format!("./usr/lib/tapio/plugins.d/{p}.so")),
            "{p}.so not in the package:\n{contents}"
        );
    }
    let conf = text(&ok(Command::new("dpkg-deb")
        .arg("-I")
        .arg(&v1)
        .arg("conffiles")));
    assert!(conf.contains("/etc/tapio/config.yaml"), "conffiles: {conf}");

    // Install.
    dpkg(&["-i", v1.to_str().unwrap()]);
    assert!(status().contains("install ok installed"), "{}", status());
    check_installed(&plugins);

    // Upgrade to a second build, keeping a local edit of the conffile.
    let edited = format!(
        "{}\n# edited by the packaging test\n",
        std::fs::read_to_string("/etc/tapio/config.yaml").unwrap()
    );
    std::fs::write("/etc/tapio/config.yaml", &edited).unwrap();
    dpkg(&["--force-confold", "-i", v2.to_str().unwrap()]);
    let version = text(&ok(Command::new("dpkg-query").args([
        "-W",
        "-f=${Version}",
        PACKAGE,
    ])));
    assert_eq!(version, "0.1.0-2");
    assert_eq!(
        std::fs::read_to_string("/etc/tapio/config.yaml").unwrap(),
        edited,
        "the upgrade lost the local config edit"
    );
    check_installed(&plugins);

    // Remove: program files go, config and the user stay.
    dpkg(&["--remove", PACKAGE]);
    assert!(status().contains("config-files"), "{}", status());
    assert!(!Path::new("/usr/bin/tapio-collector").exists());
    assert!(
        !Path::new("/usr/lib/tapio/plugins.d").exists()
            || crate::support::so_names(Path::new("/usr/lib/tapio/plugins.d")).is_empty()
    );
    assert!(
        Path::new("/etc/tapio/config.yaml").exists(),
        "remove deleted the config"
    );
    assert!(
        getent("passwd", "tapio").is_some(),
        "remove deleted the user"
    );
    for unit in UNIT_PATHS {
        assert!(!Path::new(unit).exists(), "{unit} stayed after remove");
    }

    // Purge: nothing left.
    dpkg(&["--purge", PACKAGE]);
    let after = status();
    assert!(
        after.is_empty() || after.contains("not-installed"),
        "{after}"
    );
    for gone in [
        "/etc/tapio",
        "/var/lib/tapio",
        "/usr/lib/tapio",
        "/usr/share/tapio",
        WANTS,
    ] {
        assert!(
            !Path::new(gone).exists() && !Path::new(gone).is_symlink(),
            "{gone} is left after purge"
        );
    }
    assert!(
        getent("passwd", "tapio").is_none(),
        "purge left the tapio user"
    );
    assert!(
        getent("group", "tapio").is_none(),
        "purge left the tapio group"
    );
}
