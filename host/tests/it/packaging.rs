//! The shipped packaging: the systemd unit passes `systemd-analyze verify`, the shipped and
//! development configs pass `check-config`.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("TAPIO_REQUIRE_ALL_TESTS").is_none(),
            "systemd-analyze is required (apt-get install systemd)"
        );
        eprintln!("skipping the_systemd_unit_passes_systemd_analyze_verify: systemd-analyze not found, needs the systemd package");
        return;
    }
    let unit =
        std::fs::read_to_string(repo().join("packaging/systemd/tapio-collector.service")).unwrap();
    for key in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "ExecReload=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "StateDirectory=tapio",
        "CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH CAP_SYS_PTRACE CAP_NET_ADMIN CAP_SYS_RESOURCE",
    ] {
        assert!(unit.contains(key), "unit lacks {key}");
    }
    // verify checks that ExecStart's binary exists: point it at the one just built.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tapio-collector.service");
    std::fs::write(
        &copy,
        unit.replace(
            "/usr/bin/tapio-collector",
            env!("CARGO_BIN_EXE_tapio-collector"),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        !stderr.contains("tapio-collector.service"),
        "verify printed warnings about the unit:\n{stderr}"
    );
}

#[test]
fn the_shipped_configs_pass_check_config() {
    for config in ["packaging/config/config.yaml", "packaging/config/dev.yaml"] {
        let out = Command::new(env!("CARGO_BIN_EXE_tapio-collector"))
            .arg("check-config")
            .arg(repo().join(config))
            .arg("--plugins-dir")
            .arg(repo().join("plugins.d"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{config}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
