//! A real DNS server (dnsmasq, started by the test on 127.0.0.1 and ::1) and a client in
//! this process that sends real queries over UDP and TCP through the kernel. Names carry a
//! marker unique to the test run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tapio_ebpf_support::test_support::{free_port, which, ChildGuard};
use tapio_plugin_dns::message::{build_query, parse, Message};

/// A dnsmasq answering `known.<marker>.test` with 10.1.2.3 and NXDOMAIN for any other name
/// under `.test`; no upstream, no hosts file, no config file.
pub struct Dnsmasq {
    _child: ChildGuard,
    /// Its port (UDP and TCP, on 127.0.0.1 and ::1).
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts it and waits until it answers.
    pub fn start(marker: &str) -> Result<Dnsmasq, String> {
        let binary = which("dnsmasq").ok_or("dnsmasq is not installed")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let child = ChildGuard::spawn(
            Command::new(binary)
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    "--listen-address=::1",
                    "--user=root",
                    "--local=/test/",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--address=/known.{marker}.test/10.1.2.3"))
                .arg(format!("--pid-file={}", dir.path().join("pid").display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .map_err(|e| format!("spawning dnsmasq: {e}"))?;
        let server = Dnsmasq {
            _child: child,
            port,
            _dir: dir,
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if udp_query(
                addr,
                1,
                &format!("ready.{marker}.test"),
                1,
                Duration::from_millis(100),
            )
            .is_ok()
            {
                return Ok(server);
            }
        }
        Err(format!("dnsmasq did not answer on port {port} within 5 s"))
    }
}

/// What the client saw for one query.
#[derive(Debug)]
pub struct Answer {
    /// The parsed response.
    pub message: Message,
    /// The client's local port.
    pub local_port: u16,
    /// Send to receive, measured by the client.
    pub round_trip: Duration,
}

/// One query over UDP from a fresh socket.
pub fn udp_query(
    server: SocketAddr,
    id: u16,
    name: &str,
    qtype: u16,
    wait: Duration,
) -> Result<Answer, String> {
    let bind = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let socket = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(wait))
        .map_err(|e| e.to_string())?;
    let local_port = socket.local_addr().unwrap().port();
    let query = build_query(id, name, qtype);
    let started = Instant::now();
    socket.send_to(&query, server).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let (n, _) = socket.recv_from(&mut buf).map_err(|e| e.to_string())?;
    let round_trip = started.elapsed();
    let message = parse(&buf[..n]).map_err(|e| e.to_string())?;
    Ok(Answer {
        message,
        local_port,
        round_trip,
    })
}

/// One query over TCP (2-byte length prefix).
pub fn tcp_query(server: SocketAddr, id: u16, name: &str, qtype: u16) -> Result<Answer, String> {
    let mut stream = TcpStream::connect(server).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let local_port = stream.local_addr().unwrap().port();
    let query = build_query(id, name, qtype);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    let started = Instant::now();
    stream.write_all(&framed).map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).map_err(|e| e.to_string())?;
    let round_trip = started.elapsed();
    let message = parse(&buf).map_err(|e| e.to_string())?;
    Ok(Answer {
        message,
        local_port,
        round_trip,
    })
}

/// A UDP socket on 127.0.0.1 that receives queries and never answers.
pub struct Silent {
    /// Kept open so queries are delivered, not refused.
    _socket: UdpSocket,
    /// Its port.
    pub port: u16,
}

impl Silent {
    /// Binds it.
    pub fn bind() -> Silent {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        Silent {
            _socket: socket,
            port,
        }
    }
}

/// Sends `n` queries to `server` from one socket as fast as possible (no waiting for
/// answers).
pub fn query_flood(server: SocketAddr, name: &str, n: usize) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..n {
        let query = build_query(i as u16, name, 1);
        socket.send_to(&query, server).unwrap();
    }
}
