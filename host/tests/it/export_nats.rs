//! The NATS JetStream exporter against a real `nats-server -js`: a nats-py pull consumer
//! receives every event exactly once, across a NATS restart mid-stream and a forced
//! republish (duplicates removed by `Nats-Msg-Id`); an unreachable server is logged and
//! counted; token, user/password and mutual TLS credentials are used, and wrong ones are
//! reported.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::export_support::{
    cannot_run, host_events, loadgen_yaml, pki, port, python_with, script, Peer,
};
use crate::support::{plugin_lib, wait_for, Host, HostOptions};

fn nats_server(port: u16, store: &Path) -> Option<Peer> {
    nats_server_with(port, store, &[])
}

/// `nats-server -js` on 127.0.0.1:`port` with its store in `store` and `extra` flags (auth,
/// TLS); `None` (after saying why) when nats-server is not installed.
fn nats_server_with(port: u16, store: &Path, extra: &[&std::ffi::OsStr]) -> Option<Peer> {
    if Command::new("nats-server")
        .arg("--version")
        .output()
        .is_err()
    {
        cannot_run("nats-server is not installed (apt nats-server)");
        return None;
    }
    let mut cmd = Command::new("nats-server");
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js"])
        .args(extra)
        .arg("-sd")
        .arg(store);
    Some(Peer::start("nats-server", cmd, "Server is ready"))
}

/// A host whose NATS credentials are refused: it says so with `expect` in the line, acks
/// nothing and keeps running.
fn assert_refused(bad: &mut Host, expect: &str) {
    let line = bad.expect_log(
        &["cannot reach NATS JetStream; retrying"],
        Duration::from_secs(15),
    );
    assert!(line.to_lowercase().contains(expect), "{line}");
    assert_eq!(
        bad.metric("tapio_export_acked_events_total", "exporter=\"nats\""),
        Some(0.0)
    );
    assert!(bad.alive());
}

/// Runs `py/nats_check.py` (a nats-py pull consumer on stream TAPIO_TEST, `tapio.events.>`)
/// with `args`; returns its JSON report.
fn nats_check(python: &Path, port: u16, args: &[&str]) -> Value {
    let out = Command::new(python)
        .arg(script("nats_check.py"))
        .args(["--url", &format!("nats://127.0.0.1:{port}")])
        .args(["--stream", "TAPIO_TEST", "--filter", "tapio.events.>"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nats_check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

fn nats_yaml(port: u16) -> String {
    format!(
        "orchestrator:\n  nats:\n    enabled: true\n    url: nats://127.0.0.1:{port}\n    stream: TAPIO_TEST\n    backoff: {{initial: 100ms, max: 500ms}}\n"
    )
}

#[test]
fn every_event_reaches_a_pull_consumer_exactly_once_across_a_nats_restart() {
    let Some(python) = python_with("nats") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("js");
    let p = port();
    let Some(mut nats) = nats_server(p, &store) else {
        return;
    };
    let host = Host::start(HostOptions {
        yaml: nats_yaml(p) + &loadgen_yaml(6000, 2000),
        preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
        ..HostOptions::default()
    });
    host.wait_metric(
        "tapio_export_acked_events_total",
        "exporter=\"nats\"",
        Duration::from_secs(20),
        |v| v >= 1000.0,
    );
    nats.kill(); // mid-stream, no goodbye
    let acked_at_kill = host
        .metric("tapio_export_acked_events_total", "exporter=\"nats\"")
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let _nats = nats_server(p, &store).unwrap();
    let want = host_events(&host, 6000);
    host.wait_metric(
        "tapio_export_acked_events_total",
        "exporter=\"nats\"",
        Duration::from_secs(60),
        |v| v >= 6000.0,
    );
    assert!(acked_at_kill < 6000.0, "the restart happened mid-stream");
    host.expect_log(&["connected to NATS JetStream"], Duration::from_secs(1));

    let report = nats_check(&python, p, &["--expect", "6000", "--republish", "100"]);
    let messages = report["messages"].as_array().unwrap();
    let ids: Vec<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        ids.len(),
        6000,
        "exactly once: {} messages, {} unique",
        ids.len(),
        unique.len()
    );
    assert_eq!(
        unique,
        want.keys().map(String::as_str).collect::<HashSet<_>>()
    );
    for m in messages {
        assert_eq!(m["subject"], "tapio.events.loadgen");
        assert_eq!(m["msg_id"], m["id"], "Nats-Msg-Id is the event id");
    }
    assert_eq!(
        report["republished_duplicates"], 100,
        "a forced republish is de-duplicated"
    );
    assert_eq!(report["stream_messages"], 6000);
    assert_eq!(
        report["stream_subjects"],
        serde_json::json!(["tapio.events.>"])
    );
    eprintln!(
        "republished by the exporter after the restart: {}",
        host.metric("tapio_export_retried_events_total", "exporter=\"nats\"")
            .unwrap()
    );
}

#[test]
fn an_unreachable_nats_is_logged_and_every_event_is_accounted_for() {
    let p = port(); // nobody listens
    let yaml = nats_yaml(p).replace("    backoff", "    queue_events: 1000\n    backoff")
        + &loadgen_yaml(3000, 3000);
    let mut host = Host::start(HostOptions {
        yaml,
        preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
        ..HostOptions::default()
    });
    host_events(&host, 3000);
    host.expect_log(
        &["cannot reach NATS JetStream; retrying"],
        Duration::from_secs(5),
    );
    host.expect_log(&["NATS queue full: events dropped"], Duration::from_secs(5));
    let ok = wait_for(Duration::from_secs(5), || {
        let d = host.metric("tapio_export_dropped_events_total", "exporter=\"nats\"")?;
        let q = host.metric("tapio_export_queue_depth_events", "exporter=\"nats\"")?;
        (d + q == 3000.0 && q <= 1000.0).then_some(())
    });
    assert!(
        ok.is_some(),
        "dropped + queued != 3000; log:\n{}",
        host.log()
    );
    assert!(host.alive());
}

#[test]
fn token_authentication_is_used_and_a_wrong_token_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let auth = ["--auth", "s3cret"].map(std::ffi::OsStr::new);
    let Some(_nats) = nats_server_with(p, &dir.path().join("js"), &auth) else {
        return;
    };
    let good = Host::start(HostOptions {
        yaml: nats_yaml(p).replace("    backoff", "    token: s3cret\n    backoff")
            + &loadgen_yaml(500, 1000),
        preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
        ..HostOptions::default()
    });
    good.wait_metric(
        "tapio_export_acked_events_total",
        "exporter=\"nats\"",
        Duration::from_secs(20),
        |v| v == 500.0,
    );
    let mut bad = Host::start(HostOptions {
        yaml: nats_yaml(p).replace("    backoff", "    token: wrong\n    backoff")
            + &loadgen_yaml(100, 1000),
        preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
        ..HostOptions::default()
    });
    assert_refused(&mut bad, "authorization");
}

#[test]
fn user_password_and_mutual_tls_are_used_and_wrong_ones_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let p = port();
    let flags = [
        // -D: the server logs each client's TLS handshake.
        "-D".as_ref(),
        "--user".as_ref(),
        "tapio".as_ref(),
        "--pass".as_ref(),
        "pa55word".as_ref(),
        "--tlsverify".as_ref(),
        "--tlscert".as_ref(),
        pki.server_cert.as_os_str(),
        "--tlskey".as_ref(),
        pki.server_key.as_os_str(),
        "--tlscacert".as_ref(),
        pki.ca.as_os_str(),
    ];
    let Some(nats) = nats_server_with(p, &dir.path().join("js"), &flags) else {
        return;
    };
    let yaml = |password: &str, client_cert: bool, events: u64| {
        let mut creds = format!(
            "    user: tapio\n    password: {password}\n    tls_ca: {}\n",
            pki.ca.display()
        );
        if client_cert {
            creds += &format!(
                "    tls_cert: {}\n    tls_key: {}\n",
                pki.client_cert.display(),
                pki.client_key.display()
            );
        }
        nats_yaml(p).replace("    backoff", &format!("{creds}    backoff"))
            + &loadgen_yaml(events, 1000)
    };
    let good = Host::start(HostOptions {
        yaml: yaml("pa55word", true, 500),
        preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
        ..HostOptions::default()
    });
    good.wait_metric(
        "tapio_export_acked_events_total",
        "exporter=\"nats\"",
        Duration::from_secs(20),
        |v| v == 500.0,
    );
    // The server completed a TLS handshake with our client.
    assert!(
        wait_for(Duration::from_secs(5), || nats
            .output()
            .contains("TLS handshake complete")
            .then_some(()))
        .is_some(),
        "nats-server output:\n{}",
        nats.output()
    );
    for (password, client_cert, expect) in [
        ("wrong", true, "authorization"),
        ("pa55word", false, "certificate"),
    ] {
        let mut bad = Host::start(HostOptions {
            yaml: yaml(password, client_cert, 100),
            preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
            ..HostOptions::default()
        });
        eprintln!("password {password}, client certificate {client_cert}:");
        assert_refused(&mut bad, expect);
    }
}

#[test]
fn a_stream_deleted_mid_stream_is_created_again_and_nothing_is_dropped() {
    let Some(python) = python_with("nats") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let Some(_nats) = nats_server(p, &dir.path().join("js")) else {
        return;
    };
    let host = Host::start(HostOptions {
        yaml: nats_yaml(p) + &loadgen_yaml(4000, 1000),
        preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
        ..HostOptions::default()
    });
    let acked = |host: &Host| {
        host.metric("tapio_export_acked_events_total", "exporter=\"nats\"")
            .unwrap_or(0.0)
    };
    host.wait_metric(
        "tapio_export_acked_events_total",
        "exporter=\"nats\"",
        Duration::from_secs(20),
        |v| v >= 500.0,
    );
    // An operator deletes the stream while events flow.
    let out = Command::new(&python)
        .arg("-c")
        .arg(
            "import asyncio, sys, nats\n\
             async def main():\n\
             \x20   nc = await nats.connect(sys.argv[1])\n\
             \x20   await nc.jetstream().delete_stream('TAPIO_TEST')\n\
             \x20   await nc.close()\n\
             asyncio.run(main())\n",
        )
        .arg(format!("nats://127.0.0.1:{p}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acked_at_delete = acked(&host);
    assert!(acked_at_delete < 4000.0, "the delete happened mid-stream");
    host.expect_log(
        &["JetStream refused a publish", "no responders"],
        Duration::from_secs(10),
    );
    host.wait_metric(
        "tapio_export_acked_events_total",
        "exporter=\"nats\"",
        Duration::from_secs(30),
        |v| v == 4000.0,
    );
    assert_eq!(
        host.metric("tapio_export_dropped_events_total", "exporter=\"nats\""),
        Some(0.0)
    );
    // The stream exists again and holds what was published after the delete (give or take
    // the few publishes in flight at 1000/s while the delete ran, stored in the old stream
    // but counted as acked a moment later).
    let report = nats_check(&python, p, &["--expect", "1", "--timeout", "5"]);
    let stored = report["stream_messages"].as_f64().unwrap();
    assert!(
        stored >= 4000.0 - acked_at_delete - 20.0 && stored <= 4000.0,
        "stream holds {stored} messages; {acked_at_delete} were acked before the delete"
    );
}
