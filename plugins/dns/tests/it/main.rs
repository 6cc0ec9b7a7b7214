//! Integration tests of the dns collector against the real kernel and a real DNS server
//! (dnsmasq, started by the tests on loopback): queries from this process, recognized by
//! our pid, the names' unique marker and the ports the test owns. Run serially; each skips
//! (or fails under `TAPIO_REQUIRE_ALL_TESTS=1`) when BPF or dnsmasq is unavailable.

mod workload;

use std::net::SocketAddr;
use std::time::Duration;

use tapio_ebpf_support::test_support::{
    assert_unprivileged_start_names_the_capability, bpf_ready, run_in_new_cgroup, serial,
    tool_ready, unique_marker,
};
use tapio_plugin_api::HealthStatus;
use tapio_plugin_dns::{events, Dns};
use tapio_plugin_testkit::{spec, Captured, Harness};

fn wait_healthy(h: &Harness<Dns>) {
    for _ in 0..100 {
        if h.health().status == HealthStatus::Healthy {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("collector not healthy: {:?}", h.health());
}

fn started(config: &str) -> Harness<Dns> {
    let mut h = Harness::<Dns>::create(config).unwrap();
    h.start().unwrap();
    wait_healthy(&h);
    h
}

fn named<'a>(events: &'a [Captured], event_type: &str, name: &str) -> Vec<&'a Captured> {
    events
        .iter()
        .filter(|e| e.event_type == event_type && e.str("dns.question.name") == Some(name))
        .collect()
}

fn uint(e: &Captured, key: &str) -> u64 {
    e.int(key).unwrap_or_else(|| panic!("{key} missing: {e:?}")) as u64
}

fn ready(test: &str) -> bool {
    bpf_ready(test) && tool_ready(test, "dnsmasq")
}

#[test]
fn collector_contract() {
    let _serial = serial();
    if !bpf_ready("collector_contract") {
        return;
    }
    spec::check::<Dns>("{}", Duration::from_millis(300)).unwrap();
}

/// Queries of known and unknown names, A and AAAA, over UDP to a real dnsmasq on
/// `server`: one query and one response event each, with the name, type, rcode, answer
/// count the client received, our pid and thread, and a latency within the client's
/// round trip.
fn udp_queries(loopback: &str, network_type: &str) {
    let marker = unique_marker();
    let dnsmasq = workload::Dnsmasq::start(&marker).unwrap();
    let server: SocketAddr = format!("{loopback}:{}", dnsmasq.port).parse().unwrap();
    let mut h = started(&format!(r#"{{"ports":[53,{}]}}"#, dnsmasq.port));
    let known = format!("known.{marker}.test");
    let unknown = format!("nope.{marker}.test");
    let cases = [
        (known.as_str(), 1u16),
        (known.as_str(), 28),
        (unknown.as_str(), 1),
    ];
    let tid = unsafe { libc::gettid() } as u32;
    let mut answers = Vec::new();
    for (i, (name, qtype)) in cases.iter().enumerate() {
        let a = workload::udp_query(server, 100 + i as u16, name, *qtype, Duration::from_secs(2))
            .unwrap();
        answers.push(a);
    }
    std::thread::sleep(Duration::from_millis(100));
    h.stop().unwrap();
    let events = h.events();

    // What dnsmasq answered, as the client saw it.
    assert_eq!(answers[0].message.rcode, 0);
    assert_eq!(answers[0].message.answer_count, 1);
    assert_eq!(answers[2].message.rcode, 3, "NXDOMAIN for an unknown name");

    let pid = std::process::id();
    for (i, ((name, qtype), answer)) in cases.iter().zip(&answers).enumerate() {
        let id = 100 + i as i128;
        let type_name = if *qtype == 1 { "A" } else { "AAAA" };
        let queries: Vec<_> = named(&events, events::QUERY, name)
            .into_iter()
            .filter(|e| e.int("dns.id") == Some(id))
            .collect();
        assert_eq!(queries.len(), 1, "{name} {type_name}: {queries:#?}");
        let q = queries[0];
        assert_eq!(q.str("dns.question.type"), Some(type_name));
        assert_eq!(q.pid, Some(pid));
        assert_eq!(q.tid, Some(tid));
        assert_eq!(q.str("network.transport"), Some("udp"));
        assert_eq!(q.str("network.type"), Some(network_type));
        assert_eq!(uint(q, "network.peer.port"), u64::from(dnsmasq.port));
        assert_eq!(uint(q, "network.local.port"), u64::from(answer.local_port));

        let responses: Vec<_> = named(&events, events::RESPONSE, name)
            .into_iter()
            .filter(|e| e.int("dns.id") == Some(id))
            .collect();
        assert_eq!(responses.len(), 1, "{name} {type_name}: {responses:#?}");
        let r = responses[0];
        assert_eq!(r.str("dns.question.type"), Some(type_name));
        assert_eq!(
            r.str("dns.response_code"),
            Some(tapio_plugin_dns::message::rcode_name(answer.message.rcode).as_str())
        );
        assert_eq!(
            uint(r, "dns.answer.count"),
            u64::from(answer.message.answer_count)
        );
        assert_eq!(r.pid, Some(pid), "the response takes its query's process");
        let latency = uint(r, "dns.latency_ns");
        assert!(
            latency > 0 && latency <= answer.round_trip.as_nanos() as u64,
            "latency {latency} ns, client round trip {:?}",
            answer.round_trip
        );
        assert_eq!(
            r.str("network.peer.address"),
            Some(loopback.trim_matches(['[', ']']))
        );
    }
    let nx = named(&events, events::RESPONSE, &unknown);
    assert_eq!(nx[0].str("dns.response_code"), Some("NXDOMAIN"));
    assert_eq!(nx[0].str("error.type"), Some("NXDOMAIN"));
    assert!(named(&events, events::TIMEOUT, &known).is_empty());
    assert_eq!(h.metric("malformed_messages_total"), Some(0.0));
}

#[test]
fn udp_queries_ipv4_give_names_types_rcodes_latency() {
    let _serial = serial();
    if !ready("udp_queries_ipv4_give_names_types_rcodes_latency") {
        return;
    }
    udp_queries("127.0.0.1", "ipv4");
}

#[test]
fn udp_queries_ipv6_give_names_types_rcodes_latency() {
    let _serial = serial();
    if !ready("udp_queries_ipv6_give_names_types_rcodes_latency") {
        return;
    }
    udp_queries("[::1]", "ipv6");
}

#[test]
fn attributes_queries_to_the_sending_process_and_cgroup() {
    let _serial = serial();
    const TEST: &str = "attributes_queries_to_the_sending_process_and_cgroup";
    if !ready(TEST) || !tool_ready(TEST, "python3") {
        return;
    }
    let marker = unique_marker();
    let dnsmasq = workload::Dnsmasq::start(&marker).unwrap();
    let mut h = started(&format!(r#"{{"ports":[{}]}}"#, dnsmasq.port));
    let name = format!("known.{marker}.test");
    let query: String = tapio_plugin_dns::message::build_query(555, &name, 1)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // A python child, moved into a new cgroup, asks and waits for the answer.
    let run = run_in_new_cgroup(&format!(
        "exec python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
         s.settimeout(2); s.sendto(bytes.fromhex(\"{query}\"), (\"127.0.0.1\", {port})); \
         print(len(s.recv(512)))'",
        port = dnsmasq.port
    ))
    .unwrap();
    assert!(
        run.output.status.success(),
        "{}",
        String::from_utf8_lossy(&run.output.stderr)
    );
    std::thread::sleep(Duration::from_millis(100));
    h.stop().unwrap();
    let events = h.events();
    let q = named(&events, events::QUERY, &name);
    assert_eq!(q.len(), 1, "{q:#?}");
    assert_eq!(q[0].pid, Some(run.pid));
    assert_eq!(q[0].cgroup_id, Some(run.cgroup_id));
    assert_eq!(q[0].str("process.executable.name"), Some("python3"));
    let r = named(&events, events::RESPONSE, &name);
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0].pid, Some(run.pid));
    assert_eq!(r[0].cgroup_id, Some(run.cgroup_id));
    assert_eq!(r[0].str("dns.response_code"), Some("NOERROR"));
}

#[test]
fn tcp_query_is_seen() {
    let _serial = serial();
    if !ready("tcp_query_is_seen") {
        return;
    }
    let marker = unique_marker();
    let dnsmasq = workload::Dnsmasq::start(&marker).unwrap();
    let server: SocketAddr = ([127, 0, 0, 1], dnsmasq.port).into();
    let mut h = started(&format!(r#"{{"ports":[{}]}}"#, dnsmasq.port));
    let name = format!("known.{marker}.test");
    let answer = workload::tcp_query(server, 4242, &name, 1).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    h.stop().unwrap();
    let events = h.events();
    let q = named(&events, events::QUERY, &name);
    assert_eq!(q.len(), 1, "{q:#?}");
    assert_eq!(q[0].str("network.transport"), Some("tcp"));
    assert_eq!(q[0].pid, Some(std::process::id()));
    let r = named(&events, events::RESPONSE, &name);
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0].str("network.transport"), Some("tcp"));
    assert_eq!(r[0].str("dns.response_code"), Some("NOERROR"));
    assert_eq!(
        uint(r[0], "dns.answer.count"),
        u64::from(answer.message.answer_count)
    );
    assert_eq!(uint(r[0], "dns.id"), 4242);
    assert!(uint(r[0], "dns.latency_ns") <= answer.round_trip.as_nanos() as u64);
}

#[test]
fn unanswered_query_times_out() {
    let _serial = serial();
    if !bpf_ready("unanswered_query_times_out") {
        return;
    }
    let silent = workload::Silent::bind();
    let mut h = started(&format!(
        r#"{{"ports":[{}],"timeout":"300ms"}}"#,
        silent.port
    ));
    let marker = unique_marker();
    let name = format!("lost.{marker}.test");
    let server: SocketAddr = ([127, 0, 0, 1], silent.port).into();
    let err = workload::udp_query(server, 77, &name, 1, Duration::from_millis(100));
    assert!(err.is_err(), "the silent server answered");
    // Not yet timed out at 100 ms; timed out by 300 ms + a few ticks.
    let early = h.events();
    assert!(named(&early, events::TIMEOUT, &name).is_empty());
    let events = h.wait_until(Duration::from_secs(3), |events| {
        !named(events, events::TIMEOUT, &name).is_empty()
    });
    h.stop().unwrap();
    let timeouts = named(&events, events::TIMEOUT, &name);
    assert_eq!(timeouts.len(), 1, "{timeouts:#?}");
    let t = timeouts[0];
    assert_eq!(t.pid, Some(std::process::id()));
    assert_eq!(t.str("dns.question.type"), Some("A"));
    assert_eq!(uint(t, "dns.timeout_ns"), 300_000_000);
    assert_eq!(uint(t, "network.peer.port"), u64::from(silent.port));
    assert_eq!(t.str("error.type"), Some("timeout"));
    let query = named(&events, events::QUERY, &name);
    assert_eq!(query.len(), 1);
    assert!(t.timestamp_ns >= query[0].timestamp_ns + 300_000_000);
    assert!(named(&events, events::RESPONSE, &name).is_empty());
    drop(silent);
}

#[test]
fn queries_can_be_left_out() {
    let _serial = serial();
    if !ready("queries_can_be_left_out") {
        return;
    }
    let marker = unique_marker();
    let dnsmasq = workload::Dnsmasq::start(&marker).unwrap();
    let server: SocketAddr = ([127, 0, 0, 1], dnsmasq.port).into();
    let mut h = started(&format!(
        r#"{{"ports":[{}],"queries":false}}"#,
        dnsmasq.port
    ));
    let name = format!("known.{marker}.test");
    workload::udp_query(server, 9, &name, 1, Duration::from_secs(2)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    h.stop().unwrap();
    let events = h.events();
    assert!(named(&events, events::QUERY, &name).is_empty());
    let r = named(&events, events::RESPONSE, &name);
    assert_eq!(r.len(), 1);
    assert!(
        r[0].int("dns.latency_ns").is_some(),
        "still paired: {:?}",
        r[0]
    );
}

#[test]
fn overload_drops_are_counted_exactly() {
    let _serial = serial();
    if !bpf_ready("overload_drops_are_counted_exactly") {
        return;
    }
    let silent = workload::Silent::bind();
    let mut h = started(&format!(
        r#"{{"ports":[{}],"ring_buffer_bytes":4096,"wakeup_bytes":1073741824,"poll_interval":"500ms","timeout":"60s"}}"#,
        silent.port
    ));
    let server: SocketAddr = ([127, 0, 0, 1], silent.port).into();
    workload::query_flood(server, &format!("flood.{}.test", unique_marker()), 2000);
    h.stop().unwrap();
    let stats = h.collector().kernel_stats().unwrap();
    assert!(stats.produced >= 2000, "{stats:?}");
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
    assert_eq!(h.metric("unreadable_packets_total"), Some(0.0));
    drop(silent);
}

#[test]
fn bad_config_is_refused_with_every_problem() {
    let err =
        Harness::<Dns>::create(r#"{"ports":[1,2,3,4,5,6,7,8,9],"timeout":"1ms","max_pending":1}"#)
            .err()
            .expect("refused");
    for field in ["ports", "timeout", "max_pending"] {
        assert!(err.message.contains(field), "{field}: {err}");
    }
    let zero = Harness::<Dns>::create(r#"{"ports":[0]}"#)
        .err()
        .expect("refused");
    assert!(zero.message.contains("0"), "{zero}");
}

#[test]
fn unprivileged_reports_missing_capability() {
    assert_unprivileged_start_names_the_capability::<Dns>(
        "unprivileged_reports_missing_capability",
    );
}
