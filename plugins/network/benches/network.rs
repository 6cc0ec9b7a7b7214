//! Kernel-side cost per event of the network programs, under a loopback workload of short
//! TCP connections (connect, 100-byte request, 100-byte answer, close), made by this
//! process: each connection runs inet_sock_set_state ~10 times (both ends) and accept once.
//! One reset and one refused connect per 100 connections exercise the reset programs.
//!
//! `cargo bench -p tapio-plugin-network` (root). Prints, per program, how often it ran and
//! its mean run time (`run_time_ns / run_cnt` with BPF run-time statistics on), and the
//! records produced / delivered / dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tapio_bpf_bench::{can_run, print_costs, CostMeter};
use tapio_plugin_network::Network;
use tapio_plugin_testkit::Harness;

const PROGRAMS: &[&str] = &[
    "inet_sock_set_state",
    "sys_exit_accept4",
    "sys_exit_accept",
    "tcp_receive_reset",
    "tcp_send_reset",
    "tcp_retransmit_skb",
];

fn workload(connections: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..connections {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 100];
            if s.read_exact(&mut buf).is_ok() {
                let _ = s.write_all(&buf);
            }
        }
    });
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for i in 0..connections {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(&[1u8; 100]).unwrap();
        let mut buf = [0u8; 100];
        c.read_exact(&mut buf).unwrap();
        if i % 100 == 0 {
            let _ = TcpStream::connect(closed);
        }
    }
    server.join().unwrap();
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --benches`: nothing to do
    }
    if !can_run("network") {
        return;
    }
    let meter = CostMeter::start().unwrap();
    let mut h = Harness::<Network>::create("{}").unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    const CONNECTIONS: usize = 5000;
    let started = Instant::now();
    workload(CONNECTIONS);
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    let costs = meter.read(PROGRAMS);
    h.stop().unwrap();
    println!(
        "network: {CONNECTIONS} loopback connections in {took:?} ({:.0} connections/s)",
        CONNECTIONS as f64 / took.as_secs_f64()
    );
    print_costs(
        "kernel-side cost per event (run_time_ns / run_cnt):",
        &costs,
    );
    let stats = h.collector().kernel_stats().unwrap();
    println!(
        "records: produced {} delivered {} dropped {}; events {}",
        stats.produced,
        stats.delivered,
        stats.dropped,
        h.events().len()
    );
}
