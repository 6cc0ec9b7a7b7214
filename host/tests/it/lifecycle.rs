//! The running host: metrics and health endpoints, exact drop accounting under overload,
//! SIGHUP config reloads, a draining SIGTERM, systemd notifications, the `--enable-*` switches.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::{
    build_third_party_with, install, plugin_api_dir, plugin_lib, wait_for, Host, HostOptions,
};

#[test]
fn metrics_and_health_endpoints_report_plugins_and_the_ring() {
    let host = Host::start(HostOptions {
        yaml: "collectors:\n  example:\n    config:\n      interval: 20ms\n".into(),
        preinstalled: vec![(plugin_lib("example"), "example.so".into())],
        ..HostOptions::default()
    });
    host.wait_metric(
        "tapio_plugin_events_total",
        "plugin=\"example\"",
        Duration::from_secs(5),
        |v| v > 0.0,
    );
    assert_eq!(host.http_get("/healthz").0, 200);
    assert_eq!(host.http_get("/readyz").0, 200);
    assert_eq!(
        host.metric("tapio_plugin_up", "plugin=\"example\""),
        Some(1.0)
    );
    assert_eq!(
        host.metric("tapio_plugin_health_status", "plugin=\"example\""),
        Some(0.0)
    );
    assert_eq!(
        host.metric("tapio_plugin_dropped_events_total", "plugin=\"example\""),
        Some(0.0)
    );
    assert_eq!(host.metric("tapio_ring_capacity_events", ""), Some(65536.0));
    assert_eq!(
        host.metric("tapio_plugins_retained_libraries", ""),
        Some(1.0)
    );
    host.wait_metric(
        "tapio_sink_events_total",
        "sink=\"jsonl\"",
        Duration::from_secs(5),
        |v| v > 0.0,
    );
    // The pipeline's busy time: positive once batches went through (it is added just after
    // the sinks are counted), and below wall time.
    let busy = host.wait_metric(
        "tapio_pipeline_busy_seconds_total",
        "",
        Duration::from_secs(5),
        |v| v > 0.0,
    );
    assert!(busy < 60.0, "busy {busy} s");
    assert_eq!(host.http_get("/nope").0, 404);
}

#[test]
fn the_status_line_appears_every_interval() {
    let host = Host::start(HostOptions {
        yaml: "pipeline:\n  status_interval: 300ms\n".into(),
        preinstalled: vec![(plugin_lib("example"), "example.so".into())],
        ..HostOptions::default()
    });
    let line = host.expect_log(
        &[
            "Status: Events=",
            "Active Collectors=1",
            "Correlation Groups=",
            "Dropped=0",
        ],
        Duration::from_secs(5),
    );
    assert!(line.contains("Ring="), "{line}");
}

/// A flood larger than the ring: every generated event is either delivered or counted as
/// dropped, exactly.
#[test]
fn overload_drops_are_counted_exactly() {
    const PER_THREAD: u64 = 100_000;
    let host = Host::start(HostOptions {
        yaml: format!(
            "orchestrator:\n  buffer_size: 256\ncollectors:\n  loadgen:\n    enabled: true\n    config:\n      rate: 0\n      threads: 2\n      batch_size: 64\n      max_events: {PER_THREAD}\n"
        ),
        preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
        ..HostOptions::default()
    });
    let generated = host.wait_metric(
        "tapio_plugin_generated_events_total",
        "plugin=\"loadgen\"",
        Duration::from_secs(60),
        |v| v == (2 * PER_THREAD) as f64,
    );
    // Wait for the pipeline to drain and flush.
    let delivered = wait_for(Duration::from_secs(10), || {
        let a = host.metric("tapio_sink_events_total", "sink=\"jsonl\"")?;
        std::thread::sleep(Duration::from_millis(300));
        let b = host.metric("tapio_sink_events_total", "sink=\"jsonl\"")?;
        (a == b && host.metric("tapio_ring_queued_events", "") == Some(0.0)).then_some(b)
    })
    .unwrap();
    let dropped = host
        .metric("tapio_plugin_dropped_events_total", "plugin=\"loadgen\"")
        .unwrap();
    let accepted = host
        .metric("tapio_plugin_events_total", "plugin=\"loadgen\"")
        .unwrap();
    let lines = wait_for(Duration::from_secs(5), || {
        let n = host.events_of("loadgen").len() as f64;
        (n == delivered).then_some(n)
    })
    .unwrap_or_else(|| {
        panic!(
            "jsonl has {} lines, sink says {delivered}",
            host.events_of("loadgen").len()
        )
    });
    eprintln!("generated {generated} delivered {lines} dropped {dropped}");
    assert!(
        dropped > 0.0,
        "a 256-slot ring must overflow under this flood"
    );
    assert_eq!(accepted, lines, "every accepted event is delivered");
    assert_eq!(
        generated,
        lines + dropped,
        "generated = delivered + dropped"
    );
}

#[test]
fn sighup_reloads_the_config_and_restarts_changed_plugins() {
    let host = Host::start(HostOptions {
        yaml: "collectors:\n  example:\n    config:\n      interval: 50ms\n      message: first\n"
            .into(),
        preinstalled: vec![(plugin_lib("example"), "example.so".into())],
        ..HostOptions::default()
    });
    host.wait_events(Duration::from_secs(5), |e| {
        e.iter()
            .any(|e| e["attributes"]["heartbeat.message"] == "first")
    })
    .expect("first config runs");
    let text = std::fs::read_to_string(&host.config)
        .unwrap()
        .replace("message: first", "message: second");
    std::fs::write(&host.config, text).unwrap();
    host.signal(libc::SIGHUP);
    host.expect_log(
        &["plugin restarted with a new config", "example"],
        Duration::from_secs(5),
    );
    host.wait_events(Duration::from_secs(3), |e| {
        e.iter()
            .any(|e| e["attributes"]["heartbeat.message"] == "second")
    })
    .expect("second config runs");
    assert!(
        !host.log().contains("apply only at start"),
        "a plugin section change applies live"
    );

    // A setting built at start (the metrics endpoint, an exporter) is named, not silently
    // ignored; the plugin change in the same file still applies.
    let text = std::fs::read_to_string(&host.config)
        .unwrap()
        .replace("message: second", "message: third")
        + "export:\n  otlp:\n    max_in_flight: 9\npipeline:\n  status_interval: 7s\n";
    std::fs::write(&host.config, text).unwrap();
    host.signal(libc::SIGHUP);
    let line = host.expect_log(&["SIGHUP: these settings changed"], Duration::from_secs(5));
    assert!(
        line.contains("export.otlp") && line.contains("pipeline.status_interval"),
        "{line}"
    );
    host.wait_events(Duration::from_secs(3), |e| {
        e.iter()
            .any(|e| e["attributes"]["heartbeat.message"] == "third")
    })
    .expect("the plugin change applied");

    // A broken config is refused and the running one kept.
    std::fs::write(&host.config, "plugins: [broken\n").unwrap();
    host.signal(libc::SIGHUP);
    let line = host.expect_log(&["SIGHUP: config not reloaded"], Duration::from_secs(5));
    assert!(line.contains("config.yaml:"), "{line}");
    let before = host.events_of("example").len();
    host.wait_events(Duration::from_secs(3), |_| {
        host.events_of("example").len() > before + 3
    })
    .expect("still running on the old config");
}

#[test]
fn sigterm_drains_the_ring_and_flushes_every_event() {
    let mut host = Host::start(HostOptions {
        yaml: "collectors:\n  loadgen:\n    enabled: true\n    config:\n      rate: 200000\n      threads: 1\n".into(),
        preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
        ..HostOptions::default()
    });
    host.wait_metric(
        "tapio_plugin_events_total",
        "plugin=\"loadgen\"",
        Duration::from_secs(5),
        |v| v > 50_000.0,
    );
    assert_eq!(
        host.terminate(Duration::from_secs(20)),
        Some(0),
        "log:\n{}",
        host.log()
    );
    let log = host.log();
    let last = log
        .lines()
        .find(|l| l.contains("tapio-collector stopped"))
        .expect("stop line");
    let delivered: usize = last
        .split("Events=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let written = host.events_of("loadgen").len();
    assert_eq!(
        written, delivered,
        "every delivered event is in the file after SIGTERM"
    );
    assert!(written > 50_000);
    let dropped: u64 = last
        .split("Dropped=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(dropped, 0, "200 k/s fits the default ring");
}

#[test]
fn systemd_notifications_go_to_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut host = Host::start(HostOptions {
        env: vec![
            ("NOTIFY_SOCKET".into(), socket_path.display().to_string()),
            ("WATCHDOG_USEC".into(), "1000000".into()),
        ],
        preinstalled: vec![(plugin_lib("example"), "example.so".into())],
        ..HostOptions::default()
    });
    let mut received: Vec<String> = Vec::new();
    let recv_until = |received: &mut Vec<String>, want: &str, timeout: Duration| {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = socket.recv(&mut buf) {
                received.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                if received.last().unwrap().lines().any(|l| l == want) {
                    return true;
                }
            }
        }
        false
    };
    assert!(
        recv_until(&mut received, "READY=1", Duration::from_secs(5)),
        "{received:?}"
    );
    assert!(
        received
            .iter()
            .any(|m| m.contains("STATUS=Status: Events=")),
        "{received:?}"
    );
    assert!(
        recv_until(&mut received, "WATCHDOG=1", Duration::from_secs(3)),
        "watchdog every 500 ms: {received:?}"
    );
    host.signal(libc::SIGHUP);
    assert!(
        recv_until(&mut received, "RELOADING=1", Duration::from_secs(5)),
        "{received:?}"
    );
    let reloading = received.iter().find(|m| m.contains("RELOADING=1")).unwrap();
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    assert!(
        recv_until(&mut received, "READY=1", Duration::from_secs(5)),
        "ready again after reload: {received:?}"
    );
    host.signal(libc::SIGTERM);
    assert!(
        recv_until(&mut received, "STOPPING=1", Duration::from_secs(5)),
        "{received:?}"
    );
    assert_eq!(host.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn enable_switches_disable_plugins_by_tag() {
    let tagged = build_third_party_with(
        "kernel-ish",
        "1.0.0",
        &plugin_api_dir(),
        ".tags(&[tapio_plugin_api::RStr::from_str(\"ebpf\")])",
    );
    let host = Host::start(HostOptions {
        args: vec!["--enable-ebpf=false".into()],
        preinstalled: vec![
            (plugin_lib("example"), "example.so".into()),
            (tagged, "kernel-ish.so".into()),
        ],
        ..HostOptions::default()
    });
    host.wait_events(Duration::from_secs(5), |e| {
        e.iter().any(|e| e["source"] == "example")
    })
    .expect("untagged plugins run");
    host.expect_log(
        &[
            "loaded but not started",
            "kernel-ish",
            "--enable-ebpf=false",
        ],
        Duration::from_secs(5),
    );
    assert!(host.events_of("kernel-ish").is_empty());
}

#[test]
fn removing_a_plugin_file_stops_the_plugin() {
    let host = Host::start(HostOptions {
        yaml: "collectors:\n  example:\n    config:\n      interval: 20ms\n".into(),
        ..HostOptions::default()
    });
    install(&plugin_lib("example"), &host.plugins, "example.so");
    host.wait_events(Duration::from_secs(5), |e| {
        e.iter().any(|e| e["source"] == "example")
    })
    .unwrap();
    std::fs::remove_file(host.plugins.join("example.so")).unwrap();
    host.expect_log(
        &["plugin file removed; plugin stopped", "example"],
        Duration::from_secs(5),
    );
    std::thread::sleep(Duration::from_millis(200));
    let n = host.events_of("example").len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        host.events_of("example").len(),
        n,
        "no events after removal"
    );
    assert_eq!(
        host.metric("tapio_plugin_up", "plugin=\"example\""),
        Some(0.0)
    );
    assert_eq!(
        host.metric("tapio_plugins_retained_libraries", ""),
        Some(1.0),
        "the library stays mapped"
    );
}
