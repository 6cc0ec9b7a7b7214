//! The ring record of `network.bpf.c` (mirror of `bpf-objects/src/network.h`) and its
//! decoded form, [`Conn`]. Pure: no kernel, no clock.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tapio_ebpf_support::record::{c_str, Record, RecordHeader};

/// `NET_KIND_*`: what a record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// SYN_SENT -> ESTABLISHED.
    Connect,
    /// accept(2) returned the connection.
    Accept,
    /// An established connection reached CLOSE.
    Close,
    /// SYN_SENT -> CLOSE (refused, timed out, unreachable, aborted).
    ConnectFailed,
    /// A reset was sent or received.
    Reset,
    /// A segment was retransmitted.
    Retransmit,
}

impl Kind {
    fn from_raw(kind: u32) -> Option<Kind> {
        Some(match kind {
            1 => Kind::Connect,
            2 => Kind::Accept,
            3 => Kind::Close,
            4 => Kind::ConnectFailed,
            5 => Kind::Reset,
            6 => Kind::Retransmit,
            _ => return None,
        })
    }
}

/// `NET_F_*` bits.
pub mod flags {
    /// pid / tid / comm are the socket's owner.
    pub const OWNER: u32 = 0x1;
    /// Opened by connect(2).
    pub const ROLE_CONNECT: u32 = 0x2;
    /// Accepted from a listener.
    pub const ROLE_ACCEPT: u32 = 0x4;
    /// This side sent the first FIN.
    pub const CLOSED_LOCAL: u32 = 0x8;
    /// The peer sent the first FIN.
    pub const CLOSED_REMOTE: u32 = 0x10;
    /// Reset sent by this host (else received).
    pub const RST_SENT: u32 = 0x20;
    /// Reset sent for a packet that matched no socket.
    pub const NO_SOCK: u32 = 0x40;
    /// Start time known: latency / duration valid.
    pub const STARTED: u32 = 0x80;
}

/// Mirror of `struct net_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawRecord {
    /// Common header.
    pub hdr: RecordHeader,
    /// Kernel socket address.
    pub sock: u64,
    /// v2 cgroup id of the owner (or of the socket's creator).
    pub cgroup_id: u64,
    /// Connect / accept-queue / failed-connect latency.
    pub latency_ns: u64,
    /// ESTABLISHED -> CLOSE.
    pub duration_ns: u64,
    /// Payload bytes sent (first transmissions).
    pub bytes_sent: u64,
    /// Payload bytes received (without the FIN).
    pub bytes_received: u64,
    /// Local address, network order.
    pub saddr: [u8; 16],
    /// Peer address, network order.
    pub daddr: [u8; 16],
    /// Owner tgid.
    pub pid: u32,
    /// Owner thread.
    pub tid: u32,
    /// Local port.
    pub sport: u16,
    /// Peer port.
    pub dport: u16,
    /// AF_INET or AF_INET6.
    pub family: u16,
    /// TCP state before.
    pub oldstate: u8,
    /// TCP state after.
    pub newstate: u8,
    /// sk_err (positive errno).
    pub error: i32,
    /// Retransmitted segments over the connection's life.
    pub total_retrans: u32,
    /// Smoothed RTT in 1/8 us.
    pub srtt_us: u32,
    /// `flags::*`.
    pub flags: u32,
    /// Owner comm.
    pub comm: [u8; 16],
}
const _: () = assert!(size_of::<RawRecord>() == 144);
const _: () = assert!(std::mem::offset_of!(RawRecord, sock) == 16);
const _: () = assert!(std::mem::offset_of!(RawRecord, saddr) == 64);
const _: () = assert!(std::mem::offset_of!(RawRecord, daddr) == 80);
const _: () = assert!(std::mem::offset_of!(RawRecord, pid) == 96);
const _: () = assert!(std::mem::offset_of!(RawRecord, sport) == 104);
const _: () = assert!(std::mem::offset_of!(RawRecord, oldstate) == 110);
const _: () = assert!(std::mem::offset_of!(RawRecord, error) == 112);
const _: () = assert!(std::mem::offset_of!(RawRecord, flags) == 124);
const _: () = assert!(std::mem::offset_of!(RawRecord, comm) == 128);

// SAFETY: repr(C), integers and byte arrays only; layout asserted above.
unsafe impl Record for RawRecord {}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than a record.
    #[error("network record too short: {len} bytes, expected {expected}")]
    Short {
        /// Bytes received.
        len: usize,
        /// Bytes of a record.
        expected: usize,
    },
    /// A kind this version does not know.
    #[error("unknown network record kind {0}")]
    Kind(u32),
    /// An address family other than AF_INET / AF_INET6.
    #[error("network record with address family {0}")]
    Family(u16),
}

/// `AF_INET`.
const AF_INET: u16 = 2;
/// `AF_INET6`.
const AF_INET6: u16 = 10;

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    /// What happened.
    pub kind: Kind,
    /// CLOCK_BOOTTIME of the record.
    pub ts_boot_ns: u64,
    /// Kernel socket address (connection id while it lives).
    pub sock: u64,
    /// Local address (IPv4-mapped IPv6 addresses are shown as IPv4).
    pub local: IpAddr,
    /// Local port.
    pub local_port: u16,
    /// Peer address.
    pub peer: IpAddr,
    /// Peer port.
    pub peer_port: u16,
    /// Owner tgid (0 = unknown).
    pub pid: u32,
    /// Owner thread.
    pub tid: u32,
    /// Owner comm (empty when unknown).
    pub comm: String,
    /// v2 cgroup id.
    pub cgroup_id: u64,
    /// Latency (connect, accept queue, failed connect), when known.
    pub latency_ns: Option<u64>,
    /// Connection lifetime (close).
    pub duration_ns: u64,
    /// Payload bytes sent (first transmissions).(close).
    pub bytes_sent: u64,
    /// Bytes received (close).
    pub bytes_received: u64,
    /// TCP state before the transition.
    pub old_state: u8,
    /// TCP state after.
    pub new_state: u8,
    /// sk_err (positive errno, 0 = none).
    pub error: i32,
    /// Retransmitted segments so far.
    pub total_retrans: u32,
    /// Smoothed RTT in microseconds.
    pub srtt_us: u32,
    /// `flags::*`.
    pub flags: u32,
}

impl Conn {
    /// Whether the owner (pid, comm) is known.
    pub fn owner_known(&self) -> bool {
        self.flags & flags::OWNER != 0
    }
}

fn addr(family: u16, bytes: &[u8; 16]) -> Result<IpAddr, DecodeError> {
    match family {
        AF_INET => Ok(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        AF_INET6 => {
            let v6 = Ipv6Addr::from(*bytes);
            Ok(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        other => Err(DecodeError::Family(other)),
    }
}

/// Decodes one ring record.
pub fn decode(bytes: &[u8]) -> Result<Conn, DecodeError> {
    let raw = RawRecord::read(bytes).ok_or(DecodeError::Short {
        len: bytes.len(),
        expected: size_of::<RawRecord>(),
    })?;
    let kind = Kind::from_raw(raw.hdr.kind).ok_or(DecodeError::Kind(raw.hdr.kind))?;
    let owner = raw.flags & flags::OWNER != 0;
    Ok(Conn {
        kind,
        ts_boot_ns: raw.hdr.ts_boot_ns,
        sock: raw.sock,
        local: addr(raw.family, &raw.saddr)?,
        local_port: raw.sport,
        peer: addr(raw.family, &raw.daddr)?,
        peer_port: raw.dport,
        pid: if owner { raw.pid } else { 0 },
        tid: if owner { raw.tid } else { 0 },
        comm: if owner {
            c_str(&raw.comm).into_owned()
        } else {
            String::new()
        },
        cgroup_id: raw.cgroup_id,
        latency_ns: (raw.flags & flags::STARTED != 0).then_some(raw.latency_ns),
        duration_ns: raw.duration_ns,
        bytes_sent: raw.bytes_sent,
        bytes_received: raw.bytes_received,
        old_state: raw.oldstate,
        new_state: raw.newstate,
        error: raw.error,
        total_retrans: raw.total_retrans,
        srtt_us: raw.srtt_us >> 3,
        flags: raw.flags,
    })
}

/// The name of a TCP state (`enum tcp_state`).
pub fn state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// The symbolic name of a positive errno (`ECONNREFUSED`), or `errno N`.
pub fn errno_name(errno: i32) -> String {
    match errno {
        libc::ECONNREFUSED => "ECONNREFUSED".into(),
        libc::ECONNRESET => "ECONNRESET".into(),
        libc::ETIMEDOUT => "ETIMEDOUT".into(),
        libc::EHOSTUNREACH => "EHOSTUNREACH".into(),
        libc::ENETUNREACH => "ENETUNREACH".into(),
        libc::ECONNABORTED => "ECONNABORTED".into(),
        libc::EPIPE => "EPIPE".into(),
        libc::EPROTO => "EPROTO".into(),
        libc::ENOBUFS => "ENOBUFS".into(),
        libc::ENOMEM => "ENOMEM".into(),
        libc::EACCES => "EACCES".into(),
        libc::EPERM => "EPERM".into(),
        other => format!("errno {other}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes of a record (for decode and event tests).
    pub(crate) fn raw_bytes(edit: impl FnOnce(&mut RawRecord)) -> Vec<u8> {
        let mut raw = RawRecord {
            hdr: RecordHeader {
                kind: 1,
                cpu: 0,
                ts_boot_ns: 1_000,
            },
            sock: 0xffff_8880_0000_1000,
            cgroup_id: 77,
            latency_ns: 12_345,
            duration_ns: 0,
            bytes_sent: 0,
            bytes_received: 0,
            saddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            daddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            pid: 42,
            tid: 43,
            sport: 40000,
            dport: 8080,
            family: AF_INET,
            oldstate: 2,
            newstate: 1,
            error: 0,
            total_retrans: 0,
            srtt_us: 80,
            flags: flags::OWNER | flags::ROLE_CONNECT | flags::STARTED,
            comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
        };
        edit(&mut raw);
        // SAFETY: RawRecord is repr(C) plain data; we copy its bytes.
        unsafe {
            std::slice::from_raw_parts(
                (&raw as *const RawRecord).cast::<u8>(),
                size_of::<RawRecord>(),
            )
        }
        .to_vec()
    }

    #[test]
    fn decodes_ipv4_connect() {
        let c = decode(&raw_bytes(|_| {})).unwrap();
        assert_eq!(c.kind, Kind::Connect);
        assert_eq!(c.local, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((c.local_port, c.peer_port), (40000, 8080));
        assert_eq!((c.pid, c.tid, c.comm.as_str()), (42, 43, "curl"));
        assert_eq!(c.latency_ns, Some(12_345));
        assert_eq!(c.srtt_us, 10);
    }

    #[test]
    fn decodes_ipv6_and_mapped_addresses() {
        let c = decode(&raw_bytes(|r| {
            r.family = AF_INET6;
            r.saddr = Ipv6Addr::LOCALHOST.octets();
            r.daddr = Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped().octets();
        }))
        .unwrap();
        assert_eq!(c.local, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(c.peer, IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
    }

    #[test]
    fn unknown_owner_and_start_are_not_invented() {
        let c = decode(&raw_bytes(|r| r.flags = 0)).unwrap();
        assert_eq!((c.pid, c.tid, c.comm.as_str()), (0, 0, ""));
        assert_eq!(c.latency_ns, None);
    }

    #[test]
    fn rejects_bad_records() {
        assert!(matches!(
            decode(&[0u8; 10]),
            Err(DecodeError::Short { len: 10, .. })
        ));
        assert_eq!(
            decode(&raw_bytes(|r| r.hdr.kind = 99)),
            Err(DecodeError::Kind(99))
        );
        assert_eq!(
            decode(&raw_bytes(|r| r.family = 1)),
            Err(DecodeError::Family(1))
        );
    }

    #[test]
    fn names() {
        assert_eq!(state_name(2), "SYN_SENT");
        assert_eq!(errno_name(libc::ECONNREFUSED), "ECONNREFUSED");
        assert_eq!(errno_name(9999), "errno 9999");
    }
}
