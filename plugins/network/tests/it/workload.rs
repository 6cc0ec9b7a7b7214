//! Real TCP workloads on loopback, from this process (the marker: our pid, the connecting
//! thread's id, and ports the test owns).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

/// The calling thread's id.
pub fn gettid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// One client connection of [`echo_round_trips`].
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// The client's local port.
    pub client_port: u16,
}

/// What [`echo_round_trips`] did.
pub struct EchoRun {
    /// The listener's address.
    pub server: SocketAddr,
    /// Thread that connected.
    pub client_tid: u32,
    /// Thread that accepted.
    pub server_tid: u32,
    /// One entry per connection.
    pub rounds: Vec<Round>,
}

/// `n` connections to a listener on `bind` (`127.0.0.1:0` or `[::1]:0`): the client sends
/// `request` bytes, the server answers `response` bytes, then the client closes first and the
/// server closes after reading EOF.
pub fn echo_round_trips(bind: &str, n: usize, request: usize, response: usize) -> EchoRun {
    let listener = TcpListener::bind(bind).expect("bind");
    let server = listener.local_addr().unwrap();
    let server_thread = std::thread::spawn(move || {
        let tid = gettid();
        for _ in 0..n {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = vec![0u8; request];
            s.read_exact(&mut buf).expect("server read");
            s.write_all(&vec![7u8; response]).expect("server write");
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).expect("read EOF");
            assert!(rest.is_empty());
            drop(s);
        }
        tid
    });
    let client_tid = gettid();
    let mut rounds = Vec::new();
    for _ in 0..n {
        let mut c = TcpStream::connect(server).expect("connect");
        rounds.push(Round {
            client_port: c.local_addr().unwrap().port(),
        });
        c.write_all(&vec![1u8; request]).expect("client write");
        let mut buf = vec![0u8; response];
        c.read_exact(&mut buf).expect("client read");
        c.shutdown(Shutdown::Write).unwrap();
        // Wait for the server's FIN so the server side is closed before the next round.
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        drop(c);
    }
    let server_tid = server_thread.join().unwrap();
    EchoRun {
        server,
        client_tid,
        server_tid,
        rounds,
    }
}

/// A port on 127.0.0.1 nobody listens on (bound once, then closed).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What [`linger_reset`] did.
pub struct ResetRun {
    /// The listener's port.
    pub server_port: u16,
    /// The client's local port.
    pub client_port: u16,
    /// Thread that connected and reset.
    pub client_tid: u32,
}

/// A client that connects, exchanges a few bytes, and closes with SO_LINGER {on, 0}: the
/// kernel aborts the connection with a RST instead of a FIN.
pub fn linger_reset() -> ResetRun {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server_port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"pong").unwrap();
        // The next read sees the reset.
        let mut rest = [0u8; 16];
        let got = s.read(&mut rest);
        assert!(
            matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "server read after RST: {got:?}"
        );
    });
    let client_tid = gettid();
    let mut c = TcpStream::connect(("127.0.0.1", server_port)).unwrap();
    let client_port = c.local_addr().unwrap().port();
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid socket fd, pointer to a linger of the right size.
    let rc = unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
    drop(c);
    server.join().unwrap();
    ResetRun {
        server_port,
        client_port,
        client_tid,
    }
}

/// What [`syn_retransmits`] did.
pub struct RetransmitRun {
    /// Thread that connected (in its own network namespace).
    pub tid: u32,
    /// The unreachable peer.
    pub peer: SocketAddr,
    /// The connect result (a timeout).
    pub outcome: std::io::Result<()>,
}

/// Connects, from a thread moved into a new network namespace, to an address routed to the
/// loopback device but owned by nobody: every SYN is dropped, so the kernel retransmits it
/// (first after the initial RTO of 1 s). Gives up after `wait`. Needs `ip` (iproute2).
pub fn syn_retransmits(wait: Duration) -> Result<RetransmitRun, String> {
    std::thread::spawn(move || {
        // SAFETY: plain syscall; moves only this thread into a fresh network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!(
                "unshare(CLONE_NEWNET): {}",
                std::io::Error::last_os_error()
            ));
        }
        for args in [
            &["link", "set", "lo", "up"][..],
            &["route", "add", "10.255.7.0/24", "dev", "lo"][..],
        ] {
            // A child forked from this thread inherits its network namespace.
            let status = Command::new("ip")
                .args(args)
                .status()
                .map_err(|e| format!("ip {args:?}: {e}"))?;
            if !status.success() {
                return Err(format!("ip {args:?}: {status}"));
            }
        }
        let peer: SocketAddr = "10.255.7.9:4711".parse().unwrap();
        let tid = gettid();
        let outcome = TcpStream::connect_timeout(&peer, wait).map(drop);
        Ok(RetransmitRun { tid, peer, outcome })
    })
    .join()
    .map_err(|_| "retransmit thread panicked".to_string())?
}

/// Many short loopback connections as fast as possible, for `duration`.
pub fn connection_flood(duration: Duration) -> u64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => drop(s),
                    Err(_) => std::thread::sleep(Duration::from_micros(50)),
                }
            }
        })
    };
    let started = std::time::Instant::now();
    let mut n = 0;
    while started.elapsed() < duration {
        if let Ok(c) = TcpStream::connect(addr) {
            drop(c);
            n += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    server.join().unwrap();
    n
}
