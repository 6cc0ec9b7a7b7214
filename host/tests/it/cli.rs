//! The inspection subcommands: `check-config`, `plugins list`, `plugins inspect`.

use std::process::{Command, Output};

use crate::support::{install, install_bytes, plugin_lib};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapio-collector"))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "orchestrator:\n  workers: 2\n  buffer_sise: 10\n").unwrap();
    let out = run(&[
        "check-config",
        file.to_str().unwrap(),
        "--plugins-dir",
        dir.path().to_str().unwrap(),
    ]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{}:3:3: orchestrator.buffer_sise: unknown field `buffer_sise`",
            file.display()
        )),
        "{err}"
    );

    std::fs::write(
        &file,
        "orchestrator:\n  workers: 2\n  log_level: \"unterminated\n",
    )
    .unwrap();
    let out = run(&["check-config", file.to_str().unwrap()]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains(&format!("{}:4:1: ", file.display())),
        "malformed YAML names file and line: {err}"
    );
}

#[test]
fn check_config_validates_collector_sections_against_plugin_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins.d");
    std::fs::create_dir(&plugins).unwrap();
    install(&plugin_lib("example"), &plugins, "example.so");
    let file = dir.path().join("c.yaml");
    std::fs::write(
        &file,
        "collectors:\n  example:\n    config:\n      interval: 2s\n  nosuch:\n    enabled: true\n",
    )
    .unwrap();
    let out = run(&[
        "check-config",
        file.to_str().unwrap(),
        "--plugins-dir",
        plugins.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "valid (1 collector section(s) checked against plugin schemas, 8 correlation rule(s))"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: collectors.nosuch: no plugin named \"nosuch\""),
        "{stdout}"
    );

    std::fs::write(
        &file,
        "collectors:\n  example:\n    config:\n      intervl: 2s\n",
    )
    .unwrap();
    let out = run(&[
        "check-config",
        file.to_str().unwrap(),
        "--plugins-dir",
        plugins.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(":4:7: collectors.example.config.intervl: unknown field `intervl` (this plugin accepts: interval, message)"),
        "{stderr}"
    );
}

#[test]
fn plugins_list_shows_loaded_and_refused_files_without_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    install(&plugin_lib("example"), dir.path(), "example.so");
    install_bytes(b"garbage", dir.path(), "junk.so", 0o644);
    let out = run(&[
        "plugins",
        "list",
        "--plugins-dir",
        dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused file makes the exit code 1: {stdout}{stderr}"
    );
    let example = stdout
        .lines()
        .find(|l| l.starts_with("example.so"))
        .expect(&stdout);
    assert!(
        example.contains("example")
            && example.contains("0.1.0")
            && example.contains("1.0")
            && example.ends_with("loaded"),
        "{example}"
    );
    let junk = stdout
        .lines()
        .find(|l| l.starts_with("junk.so"))
        .expect(&stdout);
    assert!(
        junk.contains("refused: not a loadable shared library"),
        "{junk}"
    );
    assert!(!stderr.contains("heartbeat started"), "nothing was started");
}

#[test]
fn plugins_inspect_prints_descriptor_and_schema() {
    let out = run(&[
        "plugins",
        "inspect",
        plugin_lib("loadgen").to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("name:         loadgen"), "{stdout}");
    assert!(stdout.contains("api version:  1.0"), "{stdout}");
    assert!(
        stdout.contains("only when collectors.<name>.enabled is true"),
        "{stdout}"
    );
    assert!(stdout.contains("loadgen.synthetic"), "{stdout}");
    assert!(
        stdout.contains("batch_size") && stdout.contains("uint") && stdout.contains("default 64"),
        "{stdout}"
    );
}
