//! Refusals and isolation: each bad plugin is refused or isolated while the host and the
//! example plugin keep running.

use std::time::Duration;

use crate::support::{
    build_third_party, install, install_bytes, patched_plugin_api, plugin_lib, Host, HostOptions,
};

/// A host running the example plugin (heartbeat every 50 ms), plus `yaml`.
fn host_with_example(yaml: &str, plugins_yaml: &str) -> Host {
    let host = Host::start(HostOptions {
        yaml: format!("collectors:\n  example:\n    config:\n      interval: 50ms\n{yaml}"),
        plugins_yaml: plugins_yaml.to_owned(),
        preinstalled: vec![(plugin_lib("example"), "example.so".into())],
        ..HostOptions::default()
    });
    host.wait_events(Duration::from_secs(5), |e| {
        e.iter().any(|e| e["source"] == "example")
    })
    .expect("example runs");
    host
}

/// The host is alive, healthy, and the example plugin still emits.
fn assert_still_running(host: &mut Host) {
    assert!(host.alive(), "the host died; log:\n{}", host.log());
    assert_eq!(
        host.http_get("/healthz").0,
        200,
        "host unhealthy; log:\n{}",
        host.log()
    );
    let before = host.events_of("example").len();
    let more = host.wait_events(Duration::from_secs(3), |_| {
        host.events_of("example").len() > before + 3
    });
    assert!(
        more.is_some(),
        "the example plugin stopped emitting; log:\n{}",
        host.log()
    );
}

#[test]
fn a_garbage_file_named_so_is_refused() {
    let mut host = host_with_example("", "");
    install_bytes(
        b"\x7fELF this is not really a shared object",
        &host.plugins,
        "garbage.so",
        0o644,
    );
    host.expect_log(
        &[
            "plugin file refused",
            "garbage.so",
            "not a loadable shared library",
        ],
        Duration::from_secs(5),
    );
    assert_still_running(&mut host);
    assert_eq!(host.metric("tapio_plugins_refused_files", ""), Some(1.0));
}

#[test]
fn a_plugin_built_against_another_api_major_is_refused_before_it_runs() {
    let api = patched_plugin_api(
        "major2",
        "version.rs",
        "    () => {\n        1\n    };",
        "    () => {\n        2\n    };",
    );
    let lib = build_third_party("future-plugin", "9.0.0", &api);
    let mut host = host_with_example("", "");
    install(&lib, &host.plugins, "future.so");
    let line = host.expect_log(
        &["plugin file refused", "future.so"],
        Duration::from_secs(10),
    );
    assert!(
        line.contains("incompatible plugin API: expected 1.x with x <= 0, found 2.0"),
        "{line}"
    );
    assert!(
        line.len() < 600,
        "the reason must be one short line: {line}"
    );
    assert!(
        !host.log().contains("future-plugin"),
        "no plugin code may have run (it would log its name)"
    );
    assert_still_running(&mut host);
}

#[test]
fn a_plugin_with_a_different_type_layout_is_refused_with_a_short_reason() {
    // Same API version, but `Event` gained a field: abi_stable's layout check must catch it.
    let api = patched_plugin_api(
        "layout",
        "event.rs",
        "    /// Trace context the plugin already knows, if any.\n    pub trace: ROption<TraceContext>,",
        "    /// Trace context the plugin already knows, if any.\n    pub trace: ROption<TraceContext>,\n    /// Added.\n    pub extra: u64,",
    );
    std::fs::write(
        api.join("src/event.rs"),
        std::fs::read_to_string(api.join("src/event.rs"))
            .unwrap()
            .replace(
                "            trace: ROption::RNone,\n",
                "            trace: ROption::RNone,\n            extra: 0,\n",
            ),
    )
    .unwrap();
    let lib = build_third_party("reshaped-plugin", "1.0.0", &api);
    let mut host = host_with_example("", "");
    install(&lib, &host.plugins, "reshaped.so");
    let line = host.expect_log(
        &["plugin file refused", "reshaped.so"],
        Duration::from_secs(10),
    );
    assert!(
        line.contains("incompatible plugin-api type layout"),
        "{line}"
    );
    assert!(
        line.len() < 1500,
        "the reason must be short, not abi_stable's full report: {line}"
    );
    assert_still_running(&mut host);
}

#[test]
fn a_world_writable_plugin_file_is_refused() {
    let mut host = host_with_example("", "");
    install_bytes(
        &std::fs::read(plugin_lib("faulty")).unwrap(),
        &host.plugins,
        "open.so",
        0o666,
    );
    let line = host.expect_log(&["plugin file refused", "open.so"], Duration::from_secs(5));
    assert!(line.contains("writable by group and others"), "{line}");
    assert!(line.contains("chmod go-w"), "{line}");
    assert_still_running(&mut host);
}

#[test]
fn a_plugin_whose_config_fails_host_validation_is_refused_with_file_line_and_field() {
    let mut host = host_with_example(
        "  faulty:\n    enabled: true\n    config:\n      interval: soon\n",
        "",
    );
    install(&plugin_lib("faulty"), &host.plugins, "faulty.so");
    let line = host.expect_log(
        &["plugin file refused", "faulty.so", "invalid config"],
        Duration::from_secs(5),
    );
    assert!(line.contains("config.yaml:"), "names the file: {line}");
    assert!(
        line.contains("collectors.faulty.config.interval"),
        "names the field: {line}"
    );
    assert!(line.contains("invalid duration"), "{line}");
    assert_still_running(&mut host);
}

#[test]
fn a_plugin_that_rejects_its_config_in_create_is_refused() {
    let mut host = host_with_example(
        "  faulty:\n    enabled: true\n    config:\n      mode: reject_config\n",
        "",
    );
    install(&plugin_lib("faulty"), &host.plugins, "faulty.so");
    let line = host.expect_log(
        &["plugin file refused", "faulty.so"],
        Duration::from_secs(5),
    );
    assert!(
        line.contains("create failed: config error: mode reject_config"),
        "{line}"
    );
    assert_still_running(&mut host);
}

fn faulty_mode(mode: &str, plugins_yaml: &str) -> Host {
    let host = host_with_example(
        &format!(
            "  faulty:\n    enabled: true\n    config:\n      mode: {mode}\n      interval: 20ms\n"
        ),
        plugins_yaml,
    );
    install(&plugin_lib("faulty"), &host.plugins, "faulty.so");
    host
}

#[test]
fn a_plugin_that_panics_in_start_is_isolated() {
    let mut host = faulty_mode("panic_in_start", "");
    let line = host.expect_log(
        &["plugin failed to start", "faulty"],
        Duration::from_secs(5),
    );
    assert!(
        line.contains("panicked in start: faulty: panic in start, on purpose"),
        "{line}"
    );
    host.expect_log(
        &["faulty", "panicked on thread", "panic in start, on purpose"],
        Duration::from_secs(1),
    );
    assert_panic_counted_and_marked_failed(&host);
    assert_still_running(&mut host);
}

#[test]
fn a_plugin_that_panics_while_emitting_is_isolated() {
    let mut host = faulty_mode("panic_in_emit", "");
    host.expect_log(
        &[
            "faulty",
            "panicked on thread",
            "panic in the emitting thread",
        ],
        Duration::from_secs(5),
    );
    // The three events before the panic were delivered; the plugin is marked failed.
    host.wait_events(Duration::from_secs(2), |e| {
        e.iter().filter(|e| e["source"] == "faulty").count() == 3
    })
    .expect("the events emitted before the panic are kept");
    assert_marked_failed(&host);
    assert_still_running(&mut host);
}

#[test]
fn a_plugin_that_panics_on_its_own_thread_is_isolated() {
    let mut host = faulty_mode("panic_in_thread", "");
    host.expect_log(
        &["faulty", "panicked on thread", "panic on a helper thread"],
        Duration::from_secs(5),
    );
    assert_panic_counted_and_marked_failed(&host);
    assert_still_running(&mut host);
}

#[test]
fn a_plugin_that_panics_in_health_is_marked_failed() {
    let mut host = faulty_mode("panic_in_health", "");
    host.wait_metric(
        "tapio_plugin_health_status",
        "plugin=\"faulty\"",
        Duration::from_secs(6),
        |v| v == 2.0,
    );
    assert_still_running(&mut host);
}

#[test]
fn a_plugin_that_hangs_in_start_is_abandoned_after_the_deadline() {
    let mut host = faulty_mode("hang_in_start", "  start_timeout: 1s\n");
    let line = host.expect_log(
        &["plugin failed to start", "faulty"],
        Duration::from_secs(5),
    );
    assert!(line.contains("start did not return within 1s"), "{line}");
    host.wait_metric(
        "tapio_plugins_abandoned_instances",
        "",
        Duration::from_secs(3),
        |v| v == 1.0,
    );
    assert_still_running(&mut host);
}

#[test]
fn a_plugin_that_hangs_in_stop_is_reported_and_the_host_goes_on() {
    let mut host = faulty_mode("hang_in_stop", "  stop_timeout: 1s\n");
    host.wait_events(Duration::from_secs(5), |e| {
        e.iter().any(|e| e["source"] == "faulty")
    })
    .expect("faulty runs");
    std::fs::remove_file(host.plugins.join("faulty.so")).unwrap();
    let line = host.expect_log(
        &["plugin missed its stop deadline", "faulty"],
        Duration::from_secs(5),
    );
    assert!(line.contains("1s"), "the deadline is reported: {line}");
    host.wait_metric(
        "tapio_plugin_stop_timeouts_total",
        "plugin=\"faulty\"",
        Duration::from_secs(3),
        |v| v == 1.0,
    );
    // Its thread still runs, but its events are refused now and counted as dropped.
    host.wait_metric(
        "tapio_plugin_dropped_events_total",
        "plugin=\"faulty\"",
        Duration::from_secs(3),
        |v| v >= 1.0,
    );
    assert_still_running(&mut host);
    assert_eq!(
        host.terminate(Duration::from_secs(15)),
        Some(0),
        "clean exit despite the hung plugin; log:\n{}",
        host.log()
    );
}

#[test]
fn the_sha256_allowlist_pins_which_builds_load() {
    use sha2::Digest;
    let example = std::fs::read(plugin_lib("example")).unwrap();
    let hash: String = sha2::Sha256::digest(&example)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut host = host_with_example(
        "  faulty:\n    enabled: true\n",
        &format!("  allowlist_sha256: [\"{hash}\"]\n"),
    );
    install(&plugin_lib("faulty"), &host.plugins, "faulty.so");
    let line = host.expect_log(
        &["plugin file refused", "faulty.so"],
        Duration::from_secs(5),
    );
    assert!(
        line.contains("is not in plugins.allowlist_sha256"),
        "{line}"
    );
    assert!(host.events_of("faulty").is_empty());
    assert_still_running(&mut host);
}

/// The faulty plugin's panic is counted and its health is failed (2).
fn assert_panic_counted_and_marked_failed(host: &Host) {
    host.wait_metric(
        "tapio_plugin_panics_total",
        "plugin=\"faulty\"",
        Duration::from_secs(3),
        |v| v >= 1.0,
    );
    assert_marked_failed(host);
}

/// The faulty plugin's health is failed (2).
fn assert_marked_failed(host: &Host) {
    host.wait_metric(
        "tapio_plugin_health_status",
        "plugin=\"faulty\"",
        Duration::from_secs(3),
        |v| v == 2.0,
    );
}
