//! The gRPC exporter against a real Python gRPC server generated from `host/proto` with
//! grpcio-tools (`py/tapio_server.py`): exact events, at-least-once across a server kill,
//! the spool across a `kill -9` of the host, flow control, TLS and mutual TLS, and bad
//! peers (unreachable, erroring, malformed acks, full spool).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::export_support::{
    host_events, ids, loadgen_yaml, pki, port, proto_dir, python_with, read_jsonl, script, Peer,
};
use crate::support::{plugin_lib, wait_for, Host, HostOptions};

/// The Python Tapio server on `port`, appending to `out`.
struct PyServer {
    peer: Peer,
    port: u16,
    out: PathBuf,
    python: PathBuf,
    args: Vec<String>,
}

impl PyServer {
    fn start(python: &Path, port: u16, out: &Path, args: &[&str]) -> PyServer {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let peer = Self::spawn(python, port, out, &args);
        PyServer {
            peer,
            port,
            out: out.to_owned(),
            python: python.to_owned(),
            args,
        }
    }

    fn spawn(python: &Path, port: u16, out: &Path, args: &[String]) -> Peer {
        let mut cmd = Command::new(python);
        cmd.arg(script("tapio_server.py"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--out")
            .arg(out)
            .arg("--proto")
            .arg(proto_dir())
            .args(args);
        Peer::start("tapio_server.py", cmd, "READY")
    }

    fn restart(&mut self) {
        self.peer = Self::spawn(&self.python, self.port, &self.out, &self.args);
    }

    fn records(&self) -> Vec<Value> {
        read_jsonl(&self.out)
    }

    fn acked(&self) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r["outcome"] == "acked")
            .collect()
    }

    /// Waits until the acked records hold every id of `want`.
    fn wait_ids(
        &self,
        want: &HashMap<String, Value>,
        timeout: Duration,
        host: &Host,
    ) -> Vec<Value> {
        wait_for(timeout, || {
            let acked = self.acked();
            let got = ids(&acked);
            want.keys().all(|k| got.contains(k)).then_some(acked)
        })
        .unwrap_or_else(|| {
            let got = ids(&self.acked());
            let missing = want.keys().filter(|k| !got.contains(*k)).count();
            panic!(
                "{missing} of {} events never reached the server; host log:\n{}\nserver:\n{}",
                want.len(),
                host.log(),
                self.peer.output()
            )
        })
    }
}

/// The host's JSON Lines form of a server record (to compare with what the host wrote).
fn host_form(r: &Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), r["id"].clone());
    m.insert(
        "timestamp".into(),
        tapio_host::sink::json::rfc3339_nanos(r["timestamp_ns"].as_u64().unwrap()).into(),
    );
    m.insert("type".into(), r["type"].clone());
    m.insert("source".into(), r["source"].clone());
    let sev = r["severity"].as_str().unwrap();
    m.insert(
        "severity".into(),
        sev.strip_prefix("SEVERITY_").unwrap().to_lowercase().into(),
    );
    m.insert("host".into(), r["host"].clone());
    for k in ["pid", "tid", "cgroup_id", "container_id", "parent_span_id"] {
        if !r[k].is_null() {
            m.insert(k.into(), r[k].clone());
        }
    }
    m.insert("attributes".into(), r["attributes"].clone());
    m.insert("trace_id".into(), r["trace_id"].clone());
    m.insert("span_id".into(), r["span_id"].clone());
    Value::Object(m)
}

fn grpc_host(server_port: u16, yaml: &str, args: &[&str]) -> Host {
    let mut all = vec![
        "--server".to_owned(),
        format!("127.0.0.1:{server_port}"),
        "--buffer-size".to_owned(),
        "200".to_owned(),
        "--flush-interval".to_owned(),
        "100ms".to_owned(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    Host::start(HostOptions {
        yaml: yaml.to_owned(),
        args: all,
        preinstalled: vec![(plugin_lib("loadgen"), "loadgen.so".into())],
        ..HostOptions::default()
    })
}

fn export_yaml(grpc: &str) -> String {
    format!("export:\n  grpc:\n    backoff: {{initial: 100ms, max: 500ms}}\n{grpc}")
}

fn metric(host: &Host, name: &str) -> f64 {
    host.metric(name, "exporter=\"grpc\"").unwrap_or(-1.0)
}

#[test]
fn a_python_server_receives_exactly_the_loadgen_events() {
    let Some(python) = python_with("grpc_tools.protoc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let server = PyServer::start(&python, p, &dir.path().join("got.jsonl"), &[]);
    let yaml = export_yaml("    spool: {dir: \"\"}\n")
        + &loadgen_yaml(3000, 3000)
        + "pipeline:\n  status_interval: 300ms\n";
    let host = grpc_host(p, &yaml, &[]);
    let want = host_events(&host, 3000);
    assert_eq!(want.len(), 3000);
    let acked = server.wait_ids(&want, Duration::from_secs(30), &host);
    let mut seen = HashMap::new();
    for r in &acked {
        *seen
            .entry(r["id"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
        assert_eq!(
            host_form(r),
            want[r["id"].as_str().unwrap()],
            "content differs"
        );
    }
    assert_eq!(seen.len(), 3000, "no foreign events");
    assert!(
        seen.values().all(|n| *n == 1),
        "no duplicates without failures"
    );
    host.wait_metric(
        "tapio_export_acked_events_total",
        "exporter=\"grpc\"",
        Duration::from_secs(5),
        |v| v == 3000.0,
    );
    assert_eq!(metric(&host, "tapio_export_dropped_events_total"), 0.0);
    assert_eq!(metric(&host, "tapio_export_connected"), 1.0);
    host.expect_log(&["connected to the Tapio server"], Duration::from_secs(1));
    host.expect_log(
        &[
            "Status: ",
            "Export=[grpc up acked=3000 queued=0 spooled=0 dropped=0]",
        ],
        Duration::from_secs(5),
    );
    assert!(
        server.peer.output().contains("HELLO"),
        "the hello names the node"
    );
}

#[test]
fn killing_the_server_mid_stream_loses_nothing() {
    let Some(python) = python_with("grpc_tools.protoc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let mut server = PyServer::start(&python, p, &dir.path().join("got.jsonl"), &[]);
    let yaml = export_yaml("    spool: {dir: \"\"}\n") + &loadgen_yaml(8000, 2000);
    let host = grpc_host(p, &yaml, &[]);
    // Mid-stream: some events acked, most still to come.
    wait_for(Duration::from_secs(20), || {
        (server.acked().len() >= 1000).then_some(())
    })
    .expect("first events never arrived");
    server.peer.kill();
    let killed_at = server.acked().len();
    std::thread::sleep(Duration::from_millis(1500));
    server.restart();
    let want = host_events(&host, 8000);
    let acked = server.wait_ids(&want, Duration::from_secs(60), &host);
    assert!(
        killed_at < 8000,
        "the kill happened mid-stream ({killed_at} acked)"
    );
    assert_eq!(ids(&acked).len(), 8000);
    host.expect_log(&["lost the Tapio server"], Duration::from_secs(1));
    assert!(
        host.log().matches("connected to the Tapio server").count() >= 2,
        "reconnected; log:\n{}",
        host.log()
    );
    assert_eq!(metric(&host, "tapio_export_dropped_events_total"), 0.0);
    eprintln!(
        "duplicates after the kill: {} (retried: {})",
        acked.len() - 8000,
        metric(&host, "tapio_export_retried_events_total")
    );
}

#[test]
fn spooled_events_survive_kill_9_of_the_host_and_arrive_after_restart() {
    let Some(python) = python_with("grpc_tools.protoc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let p = port();
    // The server is down; memory holds nothing, so every batch goes to disk.
    let grpc = format!(
        "    memory_events: 0\n    spool: {{dir: {}}}\n",
        spool.display()
    );
    let mut first = grpc_host(p, &(export_yaml(&grpc) + &loadgen_yaml(3000, 3000)), &[]);
    let want = host_events(&first, 3000);
    first.wait_metric(
        "tapio_export_spooled_events_total",
        "exporter=\"grpc\"",
        Duration::from_secs(10),
        |v| v == 3000.0,
    );
    first.expect_log(
        &["cannot connect to the Tapio server"],
        Duration::from_secs(1),
    );
    first.signal(libc::SIGKILL);
    wait_for(Duration::from_secs(5), || (!first.alive()).then_some(())).expect("host died");
    let spooled: u64 = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(spooled > 0, "the spool is on disk");

    let server = PyServer::start(&python, p, &dir.path().join("got.jsonl"), &[]);
    // A second host with the same spool and no plugin: only the spooled events can arrive.
    let second = Host::start(HostOptions {
        yaml: export_yaml(&grpc),
        args: vec!["--server".into(), format!("127.0.0.1:{p}")],
        ..HostOptions::default()
    });
    second.expect_log(
        &["spooled events found", "events=3000"],
        Duration::from_secs(5),
    );
    let acked = server.wait_ids(&want, Duration::from_secs(30), &second);
    assert_eq!(ids(&acked).len(), 3000);
    for r in &acked {
        assert_eq!(host_form(r), want[r["id"].as_str().unwrap()]);
    }
    // Replayed in order: batch sequences grow with the loadgen sequence numbers.
    let order: Vec<&str> = acked.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "replayed in order");
    second.wait_metric(
        "tapio_export_spool_bytes",
        "exporter=\"grpc\"",
        Duration::from_secs(5),
        |v| v == 0.0,
    );
}

#[test]
fn the_collector_obeys_the_servers_flow_control() {
    let Some(python) = python_with("grpc_tools.protoc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let server = PyServer::start(
        &python,
        p,
        &dir.path().join("got.jsonl"),
        &["--mode", "flow", "--eps", "1000", "--batch", "100"],
    );
    // loadgen produces 5000 events in 0.5 s; the server allows 1000 per second.
    let yaml = export_yaml("    spool: {dir: \"\"}\n") + &loadgen_yaml(5000, 10_000);
    let host = grpc_host(p, &yaml, &[]);
    let want = host_events(&host, 5000);
    let acked = server.wait_ids(&want, Duration::from_secs(30), &host);
    let times: Vec<f64> = acked.iter().map(|r| r["recv"].as_f64().unwrap()).collect();
    let span = times.iter().cloned().fold(f64::MIN, f64::max)
        - times.iter().cloned().fold(f64::MAX, f64::min);
    let rate = (acked.len() as f64 - 100.0) / span;
    eprintln!("arrival rate under a 1000/s directive: {rate:.0} events/s over {span:.2} s");
    assert!(
        (700.0..=1300.0).contains(&rate),
        "rate {rate:.0}/s does not follow 1000/s"
    );
    let mut sizes: HashMap<u64, usize> = HashMap::new();
    for r in &acked {
        *sizes.entry(r["seq"].as_u64().unwrap()).or_default() += 1;
    }
    assert!(
        sizes.values().all(|n| *n <= 100),
        "batches obey max_batch_size 100"
    );
    host.expect_log(
        &[
            "flow control from the Tapio server",
            "max_events_per_second=1000",
        ],
        Duration::from_secs(1),
    );
}

fn tls_round(python: &Path, mutual: bool) {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let p = port();
    let args = pki.server_args(mutual);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = PyServer::start(python, p, &dir.path().join("got.jsonl"), &args);
    let client = if mutual {
        pki.client_yaml(6)
    } else {
        String::new()
    };
    let grpc = format!(
        "    spool: {{dir: \"\"}}\n    tls:\n      ca: {}\n{client}",
        pki.ca.display()
    );
    let host = grpc_host(
        p,
        &(export_yaml(&grpc) + &loadgen_yaml(500, 1000)),
        &["--grpc-insecure=false"],
    );
    let want = host_events(&host, 500);
    let acked = server.wait_ids(&want, Duration::from_secs(30), &host);
    assert_eq!(ids(&acked).len(), 500);
    let line = host.expect_log(&["connected to the Tapio server"], Duration::from_secs(1));
    assert!(line.contains("https://"), "{line}");

    if mutual {
        // Without a client certificate the server refuses the handshake: nothing arrives,
        // the host says so and keeps running.
        let dir2 = tempfile::tempdir().unwrap();
        let before = server.records().len();
        let grpc = format!(
            "    spool: {{dir: \"\"}}\n    tls:\n      ca: {}\n",
            pki.ca.display()
        );
        let mut host2 = grpc_host(
            p,
            &(export_yaml(&grpc) + &loadgen_yaml(100, 1000)),
            &["--grpc-insecure=false"],
        );
        host_events(&host2, 100);
        host2.expect_log(&["Tapio server"], Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(
            server.records().len(),
            before,
            "no event without a client certificate"
        );
        assert!(
            !host2.log().contains("connected to the Tapio server"),
            "{}",
            host2.log()
        );
        assert!(host2.alive());
        assert_eq!(host2.http_get("/healthz").0, 200);
        drop(dir2);
    }
}

#[test]
fn tls_and_mutual_tls_with_certificates_made_by_the_test() {
    let Some(python) = python_with("grpc_tools.protoc") else {
        return;
    };
    tls_round(&python, false);
    tls_round(&python, true);
}

#[test]
fn an_unreachable_server_without_spool_drops_past_the_memory_bound_and_counts_it() {
    let p = port(); // nobody listens
    let grpc = "    memory_events: 1000\n    spool: {dir: \"\"}\n";
    let mut host = grpc_host(p, &(export_yaml(grpc) + &loadgen_yaml(5000, 5000)), &[]);
    host_events(&host, 5000);
    host.expect_log(
        &["cannot connect to the Tapio server", "127.0.0.1"],
        Duration::from_secs(5),
    );
    host.expect_log(
        &["events dropped", "no spool configured"],
        Duration::from_secs(5),
    );
    let received = host.wait_metric(
        "tapio_export_received_events_total",
        "exporter=\"grpc\"",
        Duration::from_secs(5),
        |v| v == 5000.0,
    );
    let dropped = metric(&host, "tapio_export_dropped_events_total");
    let queued = metric(&host, "tapio_export_queue_depth_events");
    assert_eq!(
        dropped + queued,
        received,
        "every event is queued or counted as dropped"
    );
    assert!(
        queued <= 1000.0 + 200.0,
        "memory bound (plus one batch being built): {queued}"
    );
    assert!(host.alive());
    assert_eq!(host.http_get("/healthz").0, 200);
}

#[test]
fn a_server_returning_errors_gets_retries_and_a_rejected_batch_is_counted() {
    let Some(python) = python_with("grpc_tools.protoc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let server = PyServer::start(
        &python,
        p,
        &dir.path().join("got.jsonl"),
        &["--mode", "errors", "--errors", "3", "--reject", "2"],
    );
    let host = grpc_host(
        p,
        &(export_yaml("    spool: {dir: \"\"}\n") + &loadgen_yaml(2000, 2000)),
        &[],
    );
    let want = host_events(&host, 2000);
    host.expect_log(
        &["retryable error from the Tapio server", "overloaded"],
        Duration::from_secs(10),
    );
    host.expect_log(
        &["rejected a batch for good", "schema violation"],
        Duration::from_secs(20),
    );
    let rejected: Vec<Value> = server
        .records()
        .into_iter()
        .filter(|r| r["outcome"] == "rejected")
        .collect();
    assert!(!rejected.is_empty());
    let rejected_ids = ids(&rejected);
    let expected: HashMap<String, Value> = want
        .into_iter()
        .filter(|(k, _)| !rejected_ids.contains(k))
        .collect();
    let acked = server.wait_ids(&expected, Duration::from_secs(30), &host);
    assert_eq!(ids(&acked).len() + rejected_ids.len(), 2000);
    host.wait_metric(
        "tapio_export_dropped_events_total",
        "exporter=\"grpc\"",
        Duration::from_secs(5),
        |v| v == rejected_ids.len() as f64,
    );
    assert!(metric(&host, "tapio_export_retried_events_total") > 0.0);
}

#[test]
fn malformed_acks_are_logged_and_counted_and_nothing_is_lost() {
    let Some(python) = python_with("grpc_tools.protoc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let server = PyServer::start(
        &python,
        p,
        &dir.path().join("got.jsonl"),
        &["--mode", "malformed"],
    );
    let mut host = grpc_host(
        p,
        &(export_yaml("    spool: {dir: \"\"}\n") + &loadgen_yaml(1000, 1000)),
        &[],
    );
    let want = host_events(&host, 1000);
    server.wait_ids(&want, Duration::from_secs(30), &host);
    host.expect_log(
        &["malformed ack", "unknown sequence"],
        Duration::from_secs(5),
    );
    host.expect_log(&["malformed message", "empty"], Duration::from_secs(5));
    host.expect_log(
        &["malformed ack", "counts do not match"],
        Duration::from_secs(5),
    );
    host.wait_metric(
        "tapio_export_protocol_errors_total",
        "exporter=\"grpc\"",
        Duration::from_secs(5),
        |v| v == 3.0,
    );
    assert!(host.alive());
}

#[test]
fn a_full_spool_drops_the_oldest_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let p = port(); // nobody listens
    let grpc = format!(
        "    memory_events: 0\n    spool: {{dir: {}, max_bytes: 65536, segment_bytes: 16384}}\n",
        spool.display()
    );
    let host = grpc_host(p, &(export_yaml(&grpc) + &loadgen_yaml(5000, 5000)), &[]);
    host_events(&host, 5000);
    host.expect_log(&["events dropped", "spool full"], Duration::from_secs(10));
    let spooled = host.wait_metric(
        "tapio_export_spooled_events_total",
        "exporter=\"grpc\"",
        Duration::from_secs(10),
        |v| v == 5000.0,
    );
    let dropped = metric(&host, "tapio_export_dropped_events_total");
    assert!(dropped > 0.0 && dropped < spooled, "dropped {dropped}");
    let bytes: u64 = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(bytes <= 65536, "the cap holds: {bytes}");
    assert!(metric(&host, "tapio_export_spool_bytes") <= 65536.0);
}

#[test]
fn a_spool_on_a_full_filesystem_counts_every_lost_event() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("tiny");
    std::fs::create_dir(&mount).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mount)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        crate::export_support::cannot_run("cannot mount a 64 KiB tmpfs (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let p = port();
    let grpc = format!(
        "    memory_events: 0\n    spool: {{dir: {}}}\n",
        mount.join("spool").display()
    );
    let mut host = grpc_host(p, &(export_yaml(&grpc) + &loadgen_yaml(5000, 5000)), &[]);
    host_events(&host, 5000);
    host.expect_log(
        &["events dropped", "No space left on device"],
        Duration::from_secs(10),
    );
    let start = Instant::now();
    let settled = wait_for(Duration::from_secs(10), || {
        let s = metric(&host, "tapio_export_spooled_events_total");
        let d = metric(&host, "tapio_export_dropped_events_total");
        (s + d == 5000.0).then_some((s, d))
    });
    let (spooled, dropped) = settled.unwrap_or_else(|| {
        panic!(
            "spooled + dropped != 5000 after {:?}; log:\n{}",
            start.elapsed(),
            host.log()
        )
    });
    assert!(
        spooled > 0.0 && dropped > 0.0,
        "spooled {spooled}, dropped {dropped}"
    );
    assert!(host.alive());
}

#[test]
fn the_receive_subcommand_acks_and_writes_what_it_gets() {
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let out = dir.path().join("received.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapio-collector"));
    cmd.args(["receive", "--listen", &format!("127.0.0.1:{p}"), "--jsonl"])
        .arg(&out);
    let mut receiver = Peer::start("receive", cmd, "receiver listening");
    let host = grpc_host(
        p,
        &(export_yaml("    spool: {dir: \"\"}\n") + &loadgen_yaml(2000, 2000)),
        &[],
    );
    let want = host_events(&host, 2000);
    let got = wait_for(Duration::from_secs(30), || {
        let got = read_jsonl(&out);
        (got.len() >= 2000).then_some(got)
    })
    .unwrap_or_else(|| {
        panic!(
            "receiver got {}; log:\n{}",
            read_jsonl(&out).len(),
            host.log()
        )
    });
    assert_eq!(got.len(), 2000);
    for e in &got {
        assert_eq!(
            e,
            &want[e["id"].as_str().unwrap()],
            "same JSON as the host's --jsonl"
        );
    }
    host.wait_metric(
        "tapio_export_acked_events_total",
        "exporter=\"grpc\"",
        Duration::from_secs(5),
        |v| v == 2000.0,
    );
    receiver.terminate();
    assert!(
        receiver.output().contains("events=2000"),
        "{}",
        receiver.output()
    );
}

#[test]
fn zstd_refused_by_the_server_falls_back_to_uncompressed() {
    let Some(python) = python_with("grpc_tools.protoc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let server = PyServer::start(&python, p, &dir.path().join("got.jsonl"), &[]);
    let yaml =
        export_yaml("    compression: zstd\n    spool: {dir: \"\"}\n") + &loadgen_yaml(500, 1000);
    let host = grpc_host(p, &yaml, &[]);
    let want = host_events(&host, 500);
    server.wait_ids(&want, Duration::from_secs(30), &host);
    host.expect_log(&["refuses our compression", "Zstd"], Duration::from_secs(1));
    assert_eq!(metric(&host, "tapio_export_dropped_events_total"), 0.0);
}
