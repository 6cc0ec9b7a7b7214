//! Integration tests of the network collector against the real kernel: real TCP connections
//! on loopback (IPv4 and IPv6) made by this process, recognized by our pid, thread ids and
//! the ports the test owns. Run serially; each skips (or fails under
//! `TAPIO_REQUIRE_ALL_TESTS=1`) when BPF is unavailable.

mod workload;

use std::time::Duration;

use tapio_ebpf_support::test_support::{
    assert_unprivileged_start_names_the_capability, bpf_ready, run_in_new_cgroup, serial,
    tool_ready,
};
use tapio_plugin_api::HealthStatus;
use tapio_plugin_network::{events, Network};
use tapio_plugin_testkit::{spec, Captured, Harness, Value};

/// Waits until the collector reports healthy (attached) or fails the test.
fn wait_healthy(h: &Harness<Network>) {
    for _ in 0..100 {
        if h.health().status == HealthStatus::Healthy {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("collector not healthy: {:?}", h.health());
}

fn started(config: &str) -> Harness<Network> {
    let mut h = Harness::<Network>::create(config).unwrap();
    h.start().unwrap();
    wait_healthy(&h);
    h
}

fn port(e: &Captured, key: &str) -> u16 {
    e.int(key).unwrap_or_else(|| panic!("{key} missing: {e:?}")) as u16
}

/// Events of `event_type` with `local` as local port and/or `peer` as peer port.
fn with_ports<'a>(
    events: &'a [Captured],
    event_type: &str,
    local: Option<u16>,
    peer: Option<u16>,
) -> Vec<&'a Captured> {
    events
        .iter()
        .filter(|e| e.event_type == event_type)
        .filter(|e| local.is_none_or(|p| port(e, "network.local.port") == p))
        .filter(|e| peer.is_none_or(|p| port(e, "network.peer.port") == p))
        .collect()
}

fn uint(e: &Captured, key: &str) -> u64 {
    e.int(key).unwrap_or_else(|| panic!("{key} missing: {e:?}")) as u64
}

#[test]
fn collector_contract() {
    let _serial = serial();
    if !bpf_ready("collector_contract") {
        return;
    }
    spec::check::<Network>("{}", Duration::from_millis(300)).unwrap();
}

/// `n` loopback round trips give exactly n connects, n accepts and 2n closes, with the
/// right process, threads, ports, latencies and byte counts.
fn lifecycle(bind: &str, address: &str, network_type: &str) {
    const N: usize = 5;
    const REQUEST: usize = 1000;
    const RESPONSE: usize = 30_000;
    let h = started("{}");
    let run = workload::echo_round_trips(bind, N, REQUEST, RESPONSE);
    std::thread::sleep(Duration::from_millis(200));
    let mut h = h;
    h.stop().unwrap();
    let events = h.events();
    let pid = std::process::id();
    let server_port = run.server.port();

    let connects = with_ports(&events, events::CONNECT, None, Some(server_port));
    assert_eq!(connects.len(), N, "connects: {connects:#?}");
    let accepts = with_ports(&events, events::ACCEPT, Some(server_port), None);
    assert_eq!(accepts.len(), N, "accepts: {accepts:#?}");
    for (round, c) in run.rounds.iter().zip(&connects) {
        assert_eq!(port(c, "network.local.port"), round.client_port);
        assert_eq!(c.pid, Some(pid));
        assert_eq!(c.tid, Some(run.client_tid));
        assert_eq!(c.str("network.peer.address"), Some(address));
        assert_eq!(c.str("network.local.address"), Some(address));
        assert_eq!(c.str("network.type"), Some(network_type));
        assert_eq!(c.str("network.connection.role"), Some("client"));
        let latency = uint(c, "network.connect.latency_ns");
        assert!(
            latency > 0 && latency < 1_000_000_000,
            "connect latency {latency} ns"
        );
    }
    for (round, a) in run.rounds.iter().zip(&accepts) {
        assert_eq!(port(a, "network.peer.port"), round.client_port);
        assert_eq!(a.pid, Some(pid));
        assert_eq!(a.tid, Some(run.server_tid));
        assert_eq!(a.str("network.peer.address"), Some(address));
        assert_eq!(a.str("network.connection.role"), Some("server"));
        assert!(a.int("network.accept.queue_ns").is_some(), "{a:?}");
    }

    // Client side: we sent REQUEST and received RESPONSE bytes and closed first.
    let client_closes = with_ports(&events, events::CLOSE, None, Some(server_port));
    assert_eq!(client_closes.len(), N, "client closes: {client_closes:#?}");
    let server_closes = with_ports(&events, events::CLOSE, Some(server_port), None);
    let involving: Vec<_> = events
        .iter()
        .filter(|e| {
            e.int("network.local.port") == Some(server_port.into())
                || e.int("network.peer.port") == Some(server_port.into())
        })
        .map(|e| format!("{} {:?} {:?}", e.event_type, e.pid, e.attributes))
        .collect();
    assert_eq!(
        server_closes.len(),
        N,
        "server closes; events of the port:\n{}",
        involving.join("\n")
    );
    for c in &client_closes {
        assert_eq!(c.pid, Some(pid));
        assert_eq!(uint(c, "network.io.bytes_sent"), REQUEST as u64, "{c:?}");
        assert_eq!(
            uint(c, "network.io.bytes_received"),
            RESPONSE as u64,
            "{c:?}"
        );
        assert_eq!(c.str("network.close.initiator"), Some("local"));
        assert!(uint(c, "network.connection.duration_ns") > 0);
        assert!(c.attr("error.type").is_none(), "{c:?}");
    }
    for s in &server_closes {
        assert_eq!(s.pid, Some(pid));
        assert_eq!(s.tid, Some(run.server_tid));
        assert_eq!(uint(s, "network.io.bytes_sent"), RESPONSE as u64, "{s:?}");
        assert_eq!(
            uint(s, "network.io.bytes_received"),
            REQUEST as u64,
            "{s:?}"
        );
        assert_eq!(s.str("network.close.initiator"), Some("remote"));
    }
    // The connection id (the kernel socket, reused once closed) ties a connect to its close.
    for c in &connects {
        let local = port(c, "network.local.port");
        let close = client_closes
            .iter()
            .find(|x| port(x, "network.local.port") == local)
            .expect("a close for every connect");
        assert_eq!(
            close.str("network.connection.id"),
            c.str("network.connection.id")
        );
        assert!(close.timestamp_ns > c.timestamp_ns);
    }
    assert_eq!(h.metric("record_decode_errors_total"), Some(0.0));
}

#[test]
fn ipv4_loopback_connect_accept_close() {
    let _serial = serial();
    if !bpf_ready("ipv4_loopback_connect_accept_close") {
        return;
    }
    lifecycle("127.0.0.1:0", "127.0.0.1", "ipv4");
}

#[test]
fn ipv6_loopback_connect_accept_close() {
    let _serial = serial();
    if !bpf_ready("ipv6_loopback_connect_accept_close") {
        return;
    }
    lifecycle("[::1]:0", "::1", "ipv6");
}

#[test]
fn attributes_connections_to_the_owning_process_and_cgroup() {
    let _serial = serial();
    const TEST: &str = "attributes_connections_to_the_owning_process_and_cgroup";
    if !bpf_ready(TEST) || !tool_ready(TEST, "bash") {
        return;
    }
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got.len()
    });
    let mut h = started("{}");
    // A bash child, moved into a new cgroup, connects and sends 5 bytes.
    let run = run_in_new_cgroup(&format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; printf hello >&3; exec 3>&-"
    ))
    .unwrap();
    assert!(
        run.output.status.success(),
        "{}",
        String::from_utf8_lossy(&run.output.stderr)
    );
    assert_eq!(server.join().unwrap(), 5);
    std::thread::sleep(Duration::from_millis(200));
    h.stop().unwrap();
    let events = h.events();
    let connects = with_ports(&events, events::CONNECT, None, Some(port));
    assert_eq!(connects.len(), 1, "{connects:#?}");
    assert_eq!(connects[0].pid, Some(run.pid));
    assert_eq!(connects[0].cgroup_id, Some(run.cgroup_id));
    assert_eq!(connects[0].str("process.executable.name"), Some("bash"));
    let closes = with_ports(&events, events::CLOSE, None, Some(port));
    assert_eq!(closes.len(), 1, "{closes:#?}");
    assert_eq!(closes[0].pid, Some(run.pid));
    assert_eq!(closes[0].cgroup_id, Some(run.cgroup_id));
    assert_eq!(uint(closes[0], "network.io.bytes_sent"), 5);
    // The accepting side is this test process, in its own cgroup.
    let accepts = with_ports(&events, events::ACCEPT, Some(port), None);
    assert_eq!(accepts.len(), 1, "{accepts:#?}");
    assert_eq!(accepts[0].pid, Some(std::process::id()));
    assert_ne!(accepts[0].cgroup_id, Some(run.cgroup_id));
}

#[test]
fn refused_connect_gives_connect_refused_and_resets() {
    let _serial = serial();
    if !bpf_ready("refused_connect_gives_connect_refused_and_resets") {
        return;
    }
    const N: usize = 3;
    let mut h = started("{}");
    let closed = workload::closed_port();
    let tid = workload::gettid();
    for _ in 0..N {
        let err = std::net::TcpStream::connect(("127.0.0.1", closed)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
    std::thread::sleep(Duration::from_millis(200));
    h.stop().unwrap();
    let events = h.events();
    let refused = with_ports(&events, events::CONNECT_REFUSED, None, Some(closed));
    assert_eq!(refused.len(), N, "{refused:#?}");
    for r in &refused {
        assert_eq!(r.pid, Some(std::process::id()));
        assert_eq!(r.tid, Some(tid));
        assert_eq!(r.str("error.type"), Some("ECONNREFUSED"));
        assert_eq!(r.str("network.peer.address"), Some("127.0.0.1"));
        let latency = uint(r, "network.connect.latency_ns");
        assert!(latency > 0 && latency < 1_000_000_000, "{latency}");
    }
    // Each refusal is a RST the kernel sent for a SYN that matched no socket, and the RST
    // our SYN_SENT socket received.
    let sent: Vec<_> = with_ports(&events, events::RESET, Some(closed), None)
        .into_iter()
        .filter(|e| e.str("tcp.reset.direction") == Some("sent"))
        .collect();
    assert_eq!(sent.len(), N, "{sent:#?}");
    assert!(sent
        .iter()
        .all(|e| e.attr("tcp.reset.no_socket") == Some(&Value::Bool(true)) && e.pid.is_none()));
    let received = with_ports(&events, events::RESET, None, Some(closed));
    assert_eq!(received.len(), N, "{received:#?}");
    for r in &received {
        assert_eq!(r.str("tcp.reset.direction"), Some("received"));
        assert_eq!(r.str("tcp.state"), Some("SYN_SENT"));
        assert_eq!(r.pid, Some(std::process::id()));
    }
    // Never established: no connect or close events for that port.
    assert!(with_ports(&events, events::CONNECT, None, Some(closed)).is_empty());
    assert!(with_ports(&events, events::CLOSE, None, Some(closed)).is_empty());
}

#[test]
fn linger_zero_close_gives_resets() {
    let _serial = serial();
    if !bpf_ready("linger_zero_close_gives_resets") {
        return;
    }
    let mut h = started("{}");
    let run = workload::linger_reset();
    std::thread::sleep(Duration::from_millis(200));
    h.stop().unwrap();
    let events = h.events();
    let pid = std::process::id();
    // The client (ours) sent the RST on its established socket...
    let sent = with_ports(
        &events,
        events::RESET,
        Some(run.client_port),
        Some(run.server_port),
    );
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].str("tcp.reset.direction"), Some("sent"));
    assert_eq!(sent[0].str("tcp.state"), Some("ESTABLISHED"));
    assert_eq!(sent[0].pid, Some(pid));
    assert_eq!(sent[0].tid, Some(run.client_tid));
    // ...and the server socket (ours too, through accept) received it.
    let received = with_ports(
        &events,
        events::RESET,
        Some(run.server_port),
        Some(run.client_port),
    );
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(received[0].str("tcp.reset.direction"), Some("received"));
    assert_eq!(received[0].pid, Some(pid));
    // The server's close carries the reset as its error.
    let server_close = with_ports(&events, events::CLOSE, Some(run.server_port), None);
    assert_eq!(server_close.len(), 1, "{server_close:#?}");
    assert_eq!(server_close[0].str("error.type"), Some("ECONNRESET"));
    // The client's close is an abort (no FIN).
    let client_close = with_ports(&events, events::CLOSE, Some(run.client_port), None);
    assert_eq!(client_close.len(), 1, "{client_close:#?}");
    assert_eq!(
        client_close[0].str("network.close.initiator"),
        Some("abort")
    );
}

#[test]
fn dropped_syns_are_retransmitted() {
    let _serial = serial();
    const TEST: &str = "dropped_syns_are_retransmitted";
    if !bpf_ready(TEST) || !tool_ready(TEST, "ip") {
        return;
    }
    let mut h = started("{}");
    // SYNs are retransmitted after 1 s, then every 1 s while `tcp_syn_linear_timeouts`
    // lasts (4 here; older kernels double from 1 s): two or one within 2.5 s. The test
    // checks every retransmit the kernel counted against the events, not a count that
    // depends on that setting. (A 1.6 s wait for exactly one failed once in a full-suite
    // run with none seen; the message below now says what the plugin saw.)
    let run = workload::syn_retransmits(Duration::from_millis(2500)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    h.stop().unwrap();
    assert!(run.outcome.is_err(), "connect to a black hole succeeded");
    let events = h.events();
    let peer = run.peer.port();
    let retransmits = with_ports(&events, events::RETRANSMIT, None, Some(peer));
    let ours: Vec<_> = retransmits
        .iter()
        .filter(|e| e.str("network.peer.address") == Some("10.255.7.9"))
        .collect();
    // Should it miss again: what the plugin saw, and what the kernel side produced,
    // delivered and dropped.
    let seen = || {
        let mut types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        types.sort_unstable();
        types.dedup();
        format!(
            "{} events of types {types:?}; kernel {:?}; retransmits to port {peer}: {retransmits:#?}",
            events.len(),
            h.collector().kernel_stats()
        )
    };
    // The connect gave up before an answer: one failed connect, not a refusal, with the
    // kernel's count of its SYN retransmits.
    let failed = with_ports(&events, events::CONNECT_FAILED, None, Some(peer));
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let counted = uint(failed[0], "tcp.retransmits");
    assert!((1..=2).contains(&counted), "{}", seen());
    assert_eq!(
        ours.len() as u64,
        counted,
        "one event per retransmit: {}",
        seen()
    );
    for r in &ours {
        assert_eq!(r.str("tcp.state"), Some("SYN_SENT"));
        assert_eq!(r.pid, Some(std::process::id()));
        assert_eq!(r.tid, Some(run.tid));
    }
    assert_eq!(failed[0].str("error.type"), Some("aborted"));
    assert!(uint(failed[0], "network.connect.latency_ns") >= 2_400_000_000);
}

#[test]
fn pid_filter_keeps_only_that_process() {
    let _serial = serial();
    if !bpf_ready("pid_filter_keeps_only_that_process") {
        return;
    }
    // A filter on a pid that is not ours: our connections are not reported.
    let mut h = started(r#"{"pid": 1}"#);
    let run = workload::echo_round_trips("127.0.0.1:0", 2, 10, 10);
    std::thread::sleep(Duration::from_millis(200));
    h.stop().unwrap();
    let events = h.events();
    let port = run.server.port();
    assert!(with_ports(&events, events::CONNECT, None, Some(port)).is_empty());
    assert!(with_ports(&events, events::ACCEPT, Some(port), None).is_empty());
    assert!(with_ports(&events, events::CLOSE, None, Some(port)).is_empty());
}

#[test]
fn overload_drops_are_counted_exactly() {
    let _serial = serial();
    if !bpf_ready("overload_drops_are_counted_exactly") {
        return;
    }
    // Four records per connection into a one-page ring read twice a second: it overflows.
    // After stop (detach, final drain) the counters must add up exactly.
    let mut h =
        started(r#"{"ring_buffer_bytes":4096,"wakeup_bytes":1073741824,"poll_interval":"500ms"}"#);
    let connections = workload::connection_flood(Duration::from_millis(800));
    h.stop().unwrap();
    let stats = h.collector().kernel_stats().unwrap();
    assert!(connections > 100, "only {connections} connections");
    assert!(
        stats.dropped > 0,
        "the flood did not overflow the ring: {stats:?}"
    );
    assert!(stats.delivered > 0, "{stats:?}");
    assert_eq!(stats.produced, stats.delivered + stats.dropped, "{stats:?}");
    assert_eq!(
        h.metric("kernel_dropped_events_total"),
        Some(stats.dropped as f64)
    );
    assert_eq!(h.metric("record_decode_errors_total"), Some(0.0));
    assert_eq!(h.events().len() as u64, stats.delivered);
}

#[test]
fn bad_config_is_refused_with_every_problem() {
    let err = Harness::<Network>::create(r#"{"max_sockets": 5, "ring_buffer_bytes": 1000}"#)
        .err()
        .expect("refused");
    assert!(err.message.contains("max_sockets"), "{err}");
    assert!(err.message.contains("ring_buffer_bytes"), "{err}");
}

#[test]
fn unprivileged_reports_missing_capability() {
    assert_unprivileged_start_names_the_capability::<Network>(
        "unprivileged_reports_missing_capability",
    );
}
