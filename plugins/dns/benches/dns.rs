//! Kernel-side cost of the dns programs. The cgroup_skb programs run for EVERY packet a
//! local socket sends or receives, so two phases are measured separately:
//! 1. 20 000 UDP datagrams to a port that is not watched (the cost every other packet of
//!    the host pays: parse the IP and UDP headers, compare the ports, pass);
//! 2. 20 000 DNS queries to a watched port (parse, copy 256 bytes into the ring, submit),
//!    to a silent UDP socket of this process.
//!
//! `cargo bench -p tapio-plugin-dns` (root). Prints runs and mean ns per run per phase.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use tapio_bpf_bench::{can_run, print_costs, CostMeter, ProgramCost};
use tapio_plugin_dns::message::build_query;
use tapio_plugin_dns::Dns;
use tapio_plugin_testkit::Harness;

const PROGRAMS: &[&str] = &["dns_egress", "dns_ingress"];
const PACKETS: usize = 20_000;

/// The difference of two cumulative readings.
fn delta(after: &[ProgramCost], before: &[ProgramCost]) -> Vec<ProgramCost> {
    after
        .iter()
        .map(|a| {
            let b = before.iter().find(|b| b.id == a.id);
            ProgramCost {
                id: a.id,
                name: a.name.clone(),
                run_count: a.run_count - b.map_or(0, |b| b.run_count),
                run_time_ns: a.run_time_ns - b.map_or(0, |b| b.run_time_ns),
            }
        })
        .collect()
}

fn send(target: &UdpSocket, payload: &dyn Fn(usize) -> Vec<u8>) -> Duration {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = target.local_addr().unwrap();
    let mut buf = [0u8; 512];
    target.set_nonblocking(true).unwrap();
    let started = Instant::now();
    for i in 0..PACKETS {
        client.send_to(&payload(i), to).unwrap();
        while target.recv_from(&mut buf).is_ok() {}
    }
    started.elapsed()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --benches`: nothing to do
    }
    if !can_run("dns") {
        return;
    }
    let watched = UdpSocket::bind("127.0.0.1:0").unwrap();
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    let meter = CostMeter::start().unwrap();
    let mut h = Harness::<Dns>::create(&format!(
        r#"{{"ports":[{}],"queries":true,"timeout":"300s","max_pending":4194304}}"#,
        watched.local_addr().unwrap().port()
    ))
    .unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let start = meter.read(PROGRAMS);
    let took = send(&other, &|_| vec![0u8; 40]);
    let mid = meter.read(PROGRAMS);
    println!("dns: {PACKETS} non-DNS UDP datagrams in {took:?}");
    print_costs(
        "phase 1, packets to an unwatched port (every packet of the host pays this):",
        &delta(&mid, &start),
    );
    let took = send(&watched, &|i| build_query(i as u16, "www.example.com", 1));
    std::thread::sleep(Duration::from_millis(100));
    let end = meter.read(PROGRAMS);
    h.stop().unwrap();
    println!("dns: {PACKETS} DNS queries in {took:?}");
    print_costs(
        "phase 2, DNS queries (parsed and copied to the ring):",
        &delta(&end, &mid),
    );
    let stats = h.collector().kernel_stats().unwrap();
    println!(
        "records: produced {} delivered {} dropped {}",
        stats.produced, stats.delivered, stats.dropped
    );
}
