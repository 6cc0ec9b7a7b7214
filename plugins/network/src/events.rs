//! Events of the network collector, built from decoded records. Pure: the caller supplies
//! the wall-clock timestamp and the container id.

use std::net::IpAddr;

use tapio_event_buffer::OwnedEvent;
use tapio_plugin_api::{EventTypeInfo, Severity};

use crate::record::{errno_name, flags, state_name, Conn, Kind};

/// `kernel.network.connect`.
pub const CONNECT: &str = "kernel.network.connect";
/// `kernel.network.accept`.
pub const ACCEPT: &str = "kernel.network.accept";
/// `kernel.network.close`.
pub const CLOSE: &str = "kernel.network.close";
/// `kernel.network.connect_refused`.
pub const CONNECT_REFUSED: &str = "kernel.network.connect_refused";
/// `kernel.network.connect_failed`.
pub const CONNECT_FAILED: &str = "kernel.network.connect_failed";
/// `kernel.network.reset`.
pub const RESET: &str = "kernel.network.reset";
/// `kernel.network.retransmit`.
pub const RETRANSMIT: &str = "kernel.network.retransmit";

/// Every event type this collector emits.
pub const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(
        CONNECT,
        "An outgoing TCP connection was established (connect latency SYN_SENT -> ESTABLISHED)",
    ),
    EventTypeInfo::new(
        ACCEPT,
        "A process accepted an incoming TCP connection (accept queue wait)",
    ),
    EventTypeInfo::new(
        CLOSE,
        "An established TCP connection closed (duration, bytes, retransmits, who closed)",
    ),
    EventTypeInfo::new(
        CONNECT_REFUSED,
        "An outgoing TCP connection was refused by the peer (RST to the SYN)",
    ),
    EventTypeInfo::new(
        CONNECT_FAILED,
        "An outgoing TCP connection failed otherwise (timeout, unreachable, aborted)",
    ),
    EventTypeInfo::new(RESET, "A TCP reset was sent or received"),
    EventTypeInfo::new(RETRANSMIT, "A TCP segment was retransmitted"),
];

/// The event type of a record.
pub fn event_type(c: &Conn) -> &'static str {
    match c.kind {
        Kind::Connect => CONNECT,
        Kind::Accept => ACCEPT,
        Kind::Close => CLOSE,
        Kind::ConnectFailed if c.error == libc::ECONNREFUSED => CONNECT_REFUSED,
        Kind::ConnectFailed => CONNECT_FAILED,
        Kind::Reset => RESET,
        Kind::Retransmit => RETRANSMIT,
    }
}

fn network_type(addr: &IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

fn severity(c: &Conn) -> Severity {
    match c.kind {
        Kind::Connect | Kind::Accept => Severity::Info,
        Kind::Close if c.error != 0 => Severity::Low,
        Kind::Close => Severity::Info,
        Kind::ConnectFailed | Kind::Reset => Severity::Warning,
        Kind::Retransmit => Severity::Low,
    }
}

/// The event of one record. `timestamp_ns` is Unix ns; `container_id` may be empty.
pub fn event(c: &Conn, timestamp_ns: u64, container_id: &str) -> OwnedEvent {
    let mut e = OwnedEvent::new(timestamp_ns, event_type(c), severity(c))
        .cgroup_id(c.cgroup_id)
        .container_id(container_id)
        .str("network.transport", "tcp")
        .str("network.type", network_type(&c.peer))
        .str("network.local.address", c.local.to_string())
        .uint("network.local.port", u64::from(c.local_port))
        .str("network.peer.address", c.peer.to_string())
        .uint("network.peer.port", u64::from(c.peer_port));
    if c.sock != 0 {
        e = e.str("network.connection.id", format!("{:x}", c.sock));
    }
    if c.owner_known() {
        e = e
            .pid(c.pid)
            .tid(c.tid)
            .uint("process.pid", u64::from(c.pid))
            .str("process.executable.name", &c.comm);
    }
    if c.flags & flags::ROLE_CONNECT != 0 {
        e = e.str("network.connection.role", "client");
    } else if c.flags & flags::ROLE_ACCEPT != 0 {
        e = e.str("network.connection.role", "server");
    }
    match c.kind {
        Kind::Connect => {
            if let Some(latency) = c.latency_ns {
                e = e.uint("network.connect.latency_ns", latency);
            }
            e = e.uint("tcp.srtt_us", u64::from(c.srtt_us));
        }
        Kind::Accept => {
            if let Some(wait) = c.latency_ns {
                e = e.uint("network.accept.queue_ns", wait);
            }
            e = e.uint("tcp.srtt_us", u64::from(c.srtt_us));
        }
        Kind::Close => {
            let initiator = if c.flags & flags::CLOSED_LOCAL != 0 {
                "local"
            } else if c.flags & flags::CLOSED_REMOTE != 0 {
                "remote"
            } else {
                "abort"
            };
            e = e
                .uint("network.connection.duration_ns", c.duration_ns)
                .uint("network.io.bytes_sent", c.bytes_sent)
                .uint("network.io.bytes_received", c.bytes_received)
                .uint("tcp.retransmits", u64::from(c.total_retrans))
                .uint("tcp.srtt_us", u64::from(c.srtt_us))
                .str("tcp.state.previous", state_name(c.old_state))
                .str("network.close.initiator", initiator);
            if c.error != 0 {
                e = e.str("error.type", errno_name(c.error));
            }
        }
        Kind::ConnectFailed => {
            if let Some(latency) = c.latency_ns {
                e = e.uint("network.connect.latency_ns", latency);
            }
            // No socket error: the application closed the socket before the handshake
            // completed (gave up waiting).
            let error = if c.error == 0 {
                "aborted".to_string()
            } else {
                errno_name(c.error)
            };
            e = e
                .str("error.type", error)
                .uint("tcp.retransmits", u64::from(c.total_retrans));
        }
        Kind::Reset => {
            let sent = c.flags & flags::RST_SENT != 0;
            e = e.str(
                "tcp.reset.direction",
                if sent { "sent" } else { "received" },
            );
            if c.flags & flags::NO_SOCK != 0 {
                e = e.bool("tcp.reset.no_socket", true);
            } else {
                e = e.str("tcp.state", state_name(c.old_state));
            }
        }
        Kind::Retransmit => {
            e = e
                .str("tcp.state", state_name(c.old_state))
                .uint("tcp.retransmits", u64::from(c.total_retrans));
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{decode, tests::raw_bytes};
    use tapio_event_buffer::Value;

    fn str_attr<'a>(e: &'a OwnedEvent, key: &str) -> Option<&'a str> {
        match e.attr(key) {
            Some(Value::Str(s)) => Some(s.as_str()),
            _ => None,
        }
    }

    fn uint_attr(e: &OwnedEvent, key: &str) -> Option<u64> {
        match e.attr(key) {
            Some(Value::UInt(v)) => Some(*v),
            _ => None,
        }
    }

    #[test]
    fn connect_event_has_otel_addresses_and_latency() {
        let c = decode(&raw_bytes(|_| {})).unwrap();
        let e = event(&c, 5, "abc");
        assert_eq!(e.event_type, CONNECT);
        assert_eq!(str_attr(&e, "network.peer.address"), Some("127.0.0.1"));
        assert_eq!(uint_attr(&e, "network.peer.port"), Some(8080));
        assert_eq!(uint_attr(&e, "network.local.port"), Some(40000));
        assert_eq!(str_attr(&e, "network.type"), Some("ipv4"));
        assert_eq!(uint_attr(&e, "network.connect.latency_ns"), Some(12_345));
        assert_eq!(str_attr(&e, "network.connection.role"), Some("client"));
        assert_eq!(e.pid, Some(42));
    }

    #[test]
    fn refused_and_failed_connects_are_told_apart() {
        let refused = decode(&raw_bytes(|r| {
            r.hdr.kind = 4;
            r.error = libc::ECONNREFUSED;
        }))
        .unwrap();
        let e = event(&refused, 0, "");
        assert_eq!(e.event_type, CONNECT_REFUSED);
        assert_eq!(str_attr(&e, "error.type"), Some("ECONNREFUSED"));
        let timeout = decode(&raw_bytes(|r| {
            r.hdr.kind = 4;
            r.error = libc::ETIMEDOUT;
        }))
        .unwrap();
        assert_eq!(event(&timeout, 0, "").event_type, CONNECT_FAILED);
        let given_up = decode(&raw_bytes(|r| r.hdr.kind = 4)).unwrap();
        assert_eq!(
            str_attr(&event(&given_up, 0, ""), "error.type"),
            Some("aborted")
        );
    }

    #[test]
    fn close_reports_bytes_duration_and_initiator() {
        let c = decode(&raw_bytes(|r| {
            r.hdr.kind = 3;
            r.duration_ns = 999;
            r.bytes_sent = 10;
            r.bytes_received = 20;
            r.oldstate = 4;
            r.newstate = 7;
            r.flags |= flags::CLOSED_LOCAL;
        }))
        .unwrap();
        let e = event(&c, 0, "");
        assert_eq!(uint_attr(&e, "network.connection.duration_ns"), Some(999));
        assert_eq!(uint_attr(&e, "network.io.bytes_sent"), Some(10));
        assert_eq!(uint_attr(&e, "network.io.bytes_received"), Some(20));
        assert_eq!(str_attr(&e, "network.close.initiator"), Some("local"));
        assert_eq!(str_attr(&e, "tcp.state.previous"), Some("FIN_WAIT1"));
        assert!(e.attr("error.type").is_none());
    }

    #[test]
    fn reset_without_owner_has_no_pid() {
        let c = decode(&raw_bytes(|r| {
            r.hdr.kind = 5;
            r.sock = 0;
            r.flags = flags::RST_SENT | flags::NO_SOCK;
        }))
        .unwrap();
        let e = event(&c, 0, "");
        assert_eq!(e.event_type, RESET);
        assert_eq!(e.pid, None);
        assert_eq!(str_attr(&e, "tcp.reset.direction"), Some("sent"));
        assert!(e.attr("network.connection.id").is_none());
    }
}
