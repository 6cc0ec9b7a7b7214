//! Events of the dns collector. Pure: the caller supplies wall-clock timestamps and
//! container ids.

use std::net::IpAddr;

use tapio_event_buffer::OwnedEvent;
use tapio_plugin_api::{EventTypeInfo, Severity};

use crate::message::{rcode_name, type_name, Message};
use crate::record::{Packet, Transport};
use crate::tracker::{Key, Query};

/// `kernel.dns.query`.
pub const QUERY: &str = "kernel.dns.query";
/// `kernel.dns.response`.
pub const RESPONSE: &str = "kernel.dns.response";
/// `kernel.dns.timeout`.
pub const TIMEOUT: &str = "kernel.dns.timeout";

/// Every event type this collector emits.
pub const EVENT_TYPES: &[EventTypeInfo] = &[
    EventTypeInfo::new(QUERY, "A DNS query sent by a local process"),
    EventTypeInfo::new(
        RESPONSE,
        "A DNS response received, with its query's process and the latency",
    ),
    EventTypeInfo::new(
        TIMEOUT,
        "A DNS query that got no response within the timeout",
    ),
];

fn network_type(addr: &IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

fn endpoints(
    e: OwnedEvent,
    local: (IpAddr, u16),
    server: (IpAddr, u16),
    transport: Transport,
) -> OwnedEvent {
    e.str("network.transport", transport.as_str())
        .str("network.type", network_type(&server.0))
        .str("network.peer.address", server.0.to_string())
        .uint("network.peer.port", u64::from(server.1))
        .str("network.local.address", local.0.to_string())
        .uint("network.local.port", u64::from(local.1))
}

fn question(mut e: OwnedEvent, name: Option<&str>, qtype: u16) -> OwnedEvent {
    if let Some(name) = name {
        e = e
            .str("dns.question.name", name)
            .str("dns.question.type", type_name(qtype));
    }
    e
}

fn process(e: OwnedEvent, q: &Query) -> OwnedEvent {
    if q.pid == 0 {
        return e;
    }
    e.pid(q.pid)
        .tid(q.tid)
        .uint("process.pid", u64::from(q.pid))
        .str("process.executable.name", &q.comm)
}

/// The `kernel.dns.query` event of a query packet.
pub fn query_event(
    p: &Packet,
    m: &Message,
    q: &Query,
    timestamp_ns: u64,
    container_id: &str,
) -> OwnedEvent {
    let e = OwnedEvent::new(timestamp_ns, QUERY, Severity::Info)
        .cgroup_id(p.cgroup_id)
        .container_id(container_id);
    let e = endpoints(e, p.local(), p.server(), p.transport);
    let e = question(e, m.name.as_deref(), m.qtype).uint("dns.id", u64::from(m.id));
    process(e, q)
}

/// The `kernel.dns.response` event of a response packet, with its query when it was seen.
pub fn response_event(
    p: &Packet,
    m: &Message,
    query: Option<&Query>,
    timestamp_ns: u64,
    container_id: &str,
) -> OwnedEvent {
    let severity = match m.rcode {
        0 => Severity::Info,
        3 => Severity::Low,
        _ => Severity::Warning,
    };
    let e = OwnedEvent::new(timestamp_ns, RESPONSE, severity)
        .cgroup_id(p.cgroup_id)
        .container_id(container_id);
    let e = endpoints(e, p.local(), p.server(), p.transport);
    let mut e = question(e, m.name.as_deref(), m.qtype)
        .uint("dns.id", u64::from(m.id))
        .str("dns.response_code", rcode_name(m.rcode))
        .uint("dns.answer.count", u64::from(m.answer_count))
        .bool("dns.truncated", m.truncated);
    if let Some(q) = query {
        e = process(e, q).uint("dns.latency_ns", p.ts_boot_ns.saturating_sub(q.ts_boot_ns));
    }
    if m.rcode != 0 {
        e = e.str("error.type", rcode_name(m.rcode));
    }
    e
}

/// The `kernel.dns.timeout` event of a query that got no response.
pub fn timeout_event(
    key: &Key,
    q: &Query,
    timeout_ns: u64,
    timestamp_ns: u64,
    container_id: &str,
) -> OwnedEvent {
    let e = OwnedEvent::new(timestamp_ns, TIMEOUT, Severity::Warning)
        .cgroup_id(q.cgroup_id)
        .container_id(container_id);
    let e = endpoints(e, q.local, key.server, key.transport);
    let e = question(e, q.name.as_deref(), q.qtype)
        .uint("dns.id", u64::from(key.id))
        .uint("dns.timeout_ns", timeout_ns)
        .str("error.type", "timeout");
    process(e, q)
}
