//! The ring record of `dns.bpf.c` (mirror of `bpf-objects/src/dns.h`) and its decoded
//! form, [`Packet`]. Pure: no kernel, no clock.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tapio_ebpf_support::record::{c_str, Record, RecordHeader};

/// `DNS_PAYLOAD_MAX`: bytes of a DNS message a record carries.
pub const PAYLOAD_MAX: usize = 256;
/// `DNS_MAX_PORTS`: ports the kernel side can watch.
pub const MAX_PORTS: usize = 8;

/// Mirror of `struct dns_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawRecord {
    /// Common header (kind 1 = egress, 2 = ingress).
    pub hdr: RecordHeader,
    /// Socket cookie.
    pub cookie: u64,
    /// v2 cgroup id of the socket.
    pub cgroup_id: u64,
    /// Packet source address.
    pub saddr: [u8; 16],
    /// Packet destination address.
    pub daddr: [u8; 16],
    /// Egress: sender's tgid.
    pub pid: u32,
    /// Egress: sender's thread.
    pub tid: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// AF_INET / AF_INET6.
    pub family: u16,
    /// IPPROTO_UDP / IPPROTO_TCP.
    pub protocol: u8,
    /// Padding.
    pub _pad: u8,
    /// Length of the DNS message.
    pub message_len: u32,
    /// Bytes of it captured.
    pub captured: u32,
    /// Egress: sender's comm.
    pub comm: [u8; 16],
    /// The first bytes of the message.
    pub payload: [u8; PAYLOAD_MAX],
}
const _: () = assert!(size_of::<RawRecord>() == 360);
const _: () = assert!(std::mem::offset_of!(RawRecord, saddr) == 32);
const _: () = assert!(std::mem::offset_of!(RawRecord, pid) == 64);
const _: () = assert!(std::mem::offset_of!(RawRecord, sport) == 72);
const _: () = assert!(std::mem::offset_of!(RawRecord, protocol) == 78);
const _: () = assert!(std::mem::offset_of!(RawRecord, message_len) == 80);
const _: () = assert!(std::mem::offset_of!(RawRecord, comm) == 88);
const _: () = assert!(std::mem::offset_of!(RawRecord, payload) == 104);

// SAFETY: repr(C), integers and byte arrays only; layout asserted above.
unsafe impl Record for RawRecord {}

/// Which way a packet went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by a local socket to a DNS port.
    Egress,
    /// Received by a local socket from a DNS port.
    Ingress,
}

/// The transport of a DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (2-byte length prefix).
    Tcp,
}

impl Transport {
    /// `udp` / `tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than a record.
    #[error("dns record too short: {len} bytes, expected {expected}")]
    Short {
        /// Bytes received.
        len: usize,
        /// Bytes of a record.
        expected: usize,
    },
    /// Unknown kind, family or protocol.
    #[error("dns record with unknown {what} {value}")]
    Unknown {
        /// `kind`, `family` or `protocol`.
        what: &'static str,
        /// The value.
        value: u32,
    },
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Which way it went.
    pub direction: Direction,
    /// CLOCK_BOOTTIME of the record.
    pub ts_boot_ns: u64,
    /// Socket cookie.
    pub cookie: u64,
    /// v2 cgroup id of the socket.
    pub cgroup_id: u64,
    /// Source address and port.
    pub src: (IpAddr, u16),
    /// Destination address and port.
    pub dst: (IpAddr, u16),
    /// Egress: sender's tgid (0 = unknown).
    pub pid: u32,
    /// Egress: sender's thread.
    pub tid: u32,
    /// Egress: sender's comm.
    pub comm: String,
    /// UDP or TCP.
    pub transport: Transport,
    /// Length of the whole DNS message.
    pub message_len: u32,
    /// Its first bytes.
    pub payload: Vec<u8>,
}

impl Packet {
    /// The local end (source of a query, destination of a response).
    pub fn local(&self) -> (IpAddr, u16) {
        match self.direction {
            Direction::Egress => self.src,
            Direction::Ingress => self.dst,
        }
    }

    /// The DNS server's end.
    pub fn server(&self) -> (IpAddr, u16) {
        match self.direction {
            Direction::Egress => self.dst,
            Direction::Ingress => self.src,
        }
    }
}

fn addr(family: u16, bytes: &[u8; 16]) -> Result<IpAddr, DecodeError> {
    match family {
        2 => Ok(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        10 => {
            let v6 = Ipv6Addr::from(*bytes);
            Ok(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        other => Err(DecodeError::Unknown {
            what: "family",
            value: u32::from(other),
        }),
    }
}

/// Decodes one ring record.
pub fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
    let raw = RawRecord::read(bytes).ok_or(DecodeError::Short {
        len: bytes.len(),
        expected: size_of::<RawRecord>(),
    })?;
    let direction = match raw.hdr.kind {
        1 => Direction::Egress,
        2 => Direction::Ingress,
        other => {
            return Err(DecodeError::Unknown {
                what: "kind",
                value: other,
            })
        }
    };
    let transport = match raw.protocol {
        17 => Transport::Udp,
        6 => Transport::Tcp,
        other => {
            return Err(DecodeError::Unknown {
                what: "protocol",
                value: u32::from(other),
            })
        }
    };
    let captured = (raw.captured as usize).min(PAYLOAD_MAX);
    Ok(Packet {
        direction,
        ts_boot_ns: raw.hdr.ts_boot_ns,
        cookie: raw.cookie,
        cgroup_id: raw.cgroup_id,
        src: (addr(raw.family, &raw.saddr)?, raw.sport),
        dst: (addr(raw.family, &raw.daddr)?, raw.dport),
        pid: raw.pid,
        tid: raw.tid,
        comm: c_str(&raw.comm).into_owned(),
        transport,
        message_len: raw.message_len,
        payload: raw.payload[..captured].to_vec(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes of a record carrying `message`.
    pub(crate) fn raw_bytes(
        kind: u32,
        message: &[u8],
        edit: impl FnOnce(&mut RawRecord),
    ) -> Vec<u8> {
        let mut payload = [0u8; PAYLOAD_MAX];
        let n = message.len().min(PAYLOAD_MAX);
        payload[..n].copy_from_slice(&message[..n]);
        let mut raw = RawRecord {
            hdr: RecordHeader {
                kind,
                cpu: 0,
                ts_boot_ns: 1_000,
            },
            cookie: 99,
            cgroup_id: 5,
            saddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            daddr: [127, 0, 0, 53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            pid: 10,
            tid: 11,
            sport: 40000,
            dport: 53,
            family: 2,
            protocol: 17,
            _pad: 0,
            message_len: message.len() as u32,
            captured: n as u32,
            comm: *b"dig\0\0\0\0\0\0\0\0\0\0\0\0\0",
            payload,
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
    fn decodes_egress_and_ingress() {
        let p = decode(&raw_bytes(1, b"0123456789ab", |_| {})).unwrap();
        assert_eq!(p.direction, Direction::Egress);
        assert_eq!(p.server(), ("127.0.0.53".parse().unwrap(), 53));
        assert_eq!(p.local().1, 40000);
        assert_eq!(p.payload, b"0123456789ab");
        assert_eq!(p.comm, "dig");
        let p = decode(&raw_bytes(2, b"0123456789ab", |r| {
            r.sport = 53;
            r.dport = 40000;
            r.saddr[3] = 53;
            r.daddr[3] = 1;
        }))
        .unwrap();
        assert_eq!(p.server(), ("127.0.0.53".parse().unwrap(), 53));
        assert_eq!(p.local(), ("127.0.0.1".parse().unwrap(), 40000));
    }

    #[test]
    fn rejects_bad_records() {
        assert!(matches!(decode(&[0; 8]), Err(DecodeError::Short { .. })));
        assert!(matches!(
            decode(&raw_bytes(7, b"", |_| {})),
            Err(DecodeError::Unknown { what: "kind", .. })
        ));
        assert!(matches!(
            decode(&raw_bytes(1, b"", |r| r.protocol = 1)),
            Err(DecodeError::Unknown {
                what: "protocol",
                ..
            })
        ));
        // A lying `captured` never reads past the payload.
        let p = decode(&raw_bytes(1, b"x", |r| r.captured = 10_000)).unwrap();
        assert_eq!(p.payload.len(), PAYLOAD_MAX);
    }
}
