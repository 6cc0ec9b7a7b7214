//! Direct protobuf encoding of events for the gRPC exporter: an event goes straight from the
//! host's [`Event`] into the batch's wire bytes, without the owned `tapio.v1.Event` struct
//! (about ten allocations per event) that [`wire::to_proto`](crate::export::wire::to_proto)
//! builds. The bytes are exactly what prost produces for `to_proto` (tested), so any
//! `tapio.v1` decoder reads them.
//!
//! [`Outgoing`] is the collector's message on the stream: a prost `Hello`, or a batch whose
//! `events` are these pre-encoded bytes (shared, so a batch kept for resending is never
//! copied; the spool stores the same bytes).

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, DecodeContext, WireType};

use crate::event::{Event, Value};
use crate::export::proto as pb;
use crate::export::wire::severity;

/// The collector's message on the stream (encodes as `tapio.v1.CollectorMessage`).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Outgoing {
    /// Nothing (never sent).
    #[default]
    Empty,
    /// The first message of a call.
    Hello(pb::Hello),
    /// A batch: its sequence and its `events` field, pre-encoded.
    Batch {
        /// Sequence within the call.
        sequence: u64,
        /// Each event as field 2 of `EventBatch`, concatenated.
        events: Bytes,
    },
}

fn batch_body_len(sequence: u64, events: &Bytes) -> usize {
    let seq = if sequence != 0 {
        1 + encoded_len_varint(sequence)
    } else {
        0
    };
    seq + events.len()
}

impl prost::Message for Outgoing {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match self {
            Outgoing::Empty => {}
            Outgoing::Hello(h) => prost::encoding::message::encode(1, h, buf),
            Outgoing::Batch { sequence, events } => {
                encode_key(2, WireType::LengthDelimited, buf);
                encode_varint(batch_body_len(*sequence, events) as u64, buf);
                if *sequence != 0 {
                    prost::encoding::uint64::encode(1, sequence, buf);
                }
                buf.put_slice(events);
            }
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Never decoded by the collector: skip.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        match self {
            Outgoing::Empty => 0,
            Outgoing::Hello(h) => prost::encoding::message::encoded_len(1, h),
            Outgoing::Batch { sequence, events } => {
                let body = batch_body_len(*sequence, events);
                1 + encoded_len_varint(body as u64) + body
            }
        }
    }

    fn clear(&mut self) {
        *self = Outgoing::Empty;
    }
}

/// Appends `e` (collected on `host`) as field 2 of `EventBatch` to `out`; `scratch` is a
/// reusable buffer.
pub fn append_event(e: &Event, host: &str, out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    scratch.clear();
    encode_event(e, host, scratch);
    encode_key(2, WireType::LengthDelimited, out);
    encode_varint(scratch.len() as u64, out);
    out.extend_from_slice(scratch);
}

fn key_len(tag: u32) -> usize {
    encoded_len_varint(u64::from(tag << 3))
}

fn put_bytes(tag: u32, b: &[u8], out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

fn bytes_len(tag: u32, n: usize) -> usize {
    key_len(tag) + encoded_len_varint(n as u64) + n
}

fn put_varint(tag: u32, v: u64, out: &mut Vec<u8>) {
    encode_key(tag, WireType::Varint, out);
    encode_varint(v, out);
}

fn varint_len(tag: u32, v: u64) -> usize {
    key_len(tag) + encoded_len_varint(v)
}

/// The UUID-shaped text of an event id (as `EventId`'s `Display`), without allocating.
fn id_text(nonce: u64, seq: u64) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let digits = |v: u64, n: usize| {
        (0..n)
            .rev()
            .map(move |i| HEX[((v >> (i * 4)) & 0xf) as usize])
    };
    let parts: [(u64, usize, usize); 5] = [
        (nonce >> 32, 8, 0),
        ((nonce >> 16) & 0xffff, 4, 9),
        (nonce & 0xffff, 4, 14),
        (seq >> 48, 4, 19),
        (seq & 0xffff_ffff_ffff, 12, 24),
    ];
    for (v, n, at) in parts {
        for (i, d) in digits(v, n).enumerate() {
            out[at + i] = d;
        }
    }
    out
}

/// sint64 wire form.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn attribute_len(key: &str, value: &Value) -> usize {
    let k = if key.is_empty() {
        0
    } else {
        bytes_len(1, key.len())
    };
    let v = match value {
        Value::Str(s) => bytes_len(2, s.len()),
        Value::Int(i) => varint_len(3, zigzag(*i)),
        Value::UInt(u) => varint_len(4, *u),
        Value::Float(_) => key_len(5) + 8,
        Value::Bool(b) => varint_len(6, u64::from(*b)),
        Value::Bytes(b) => bytes_len(7, b.len()),
    };
    k + v
}

fn encode_event(e: &Event, host: &str, out: &mut Vec<u8>) {
    put_bytes(1, &id_text(e.id.nonce, e.id.seq), out);
    if e.timestamp_ns != 0 {
        encode_key(2, WireType::SixtyFourBit, out);
        out.extend_from_slice(&e.timestamp_ns.to_le_bytes());
    }
    if !e.event_type.is_empty() {
        put_bytes(3, e.event_type.as_bytes(), out);
    }
    if !e.source.is_empty() {
        put_bytes(4, e.source.as_bytes(), out);
    }
    let sev = severity(e.severity) as i32;
    if sev != 0 {
        put_varint(5, sev as u64, out);
    }
    if !host.is_empty() {
        put_bytes(6, host.as_bytes(), out);
    }
    if let Some(pid) = e.pid {
        put_varint(7, u64::from(pid), out);
    }
    if let Some(tid) = e.tid {
        put_varint(8, u64::from(tid), out);
    }
    if let Some(cg) = e.cgroup_id {
        put_varint(9, cg, out);
    }
    if let Some(c) = &e.container_id {
        put_bytes(10, c.as_bytes(), out);
    }
    for a in e.all_attributes() {
        encode_key(11, WireType::LengthDelimited, out);
        encode_varint(attribute_len(&a.key, &a.value) as u64, out);
        if !a.key.is_empty() {
            put_bytes(1, a.key.as_bytes(), out);
        }
        match &a.value {
            Value::Str(s) => put_bytes(2, s.as_bytes(), out),
            Value::Int(i) => put_varint(3, zigzag(*i), out),
            Value::UInt(u) => put_varint(4, *u, out),
            Value::Float(f) => {
                encode_key(5, WireType::SixtyFourBit, out);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::Bool(b) => put_varint(6, u64::from(*b), out),
            Value::Bytes(b) => put_bytes(7, b, out),
        }
    }
    if let Some(t) = &e.trace {
        let parent = t.has_parent();
        let flags = u64::from(t.flags);
        let len = bytes_len(1, 16)
            + bytes_len(2, 8)
            + if parent { bytes_len(3, 8) } else { 0 }
            + if flags != 0 { varint_len(4, flags) } else { 0 };
        encode_key(12, WireType::LengthDelimited, out);
        encode_varint(len as u64, out);
        put_bytes(1, &t.trace_id, out);
        put_bytes(2, &t.span_id, out);
        if parent {
            put_bytes(3, &t.parent_span_id, out);
        }
        if flags != 0 {
            put_varint(4, flags, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attribute, EventId, Severity, TraceContext};
    use crate::export::wire::to_proto;
    use prost::Message;

    fn events() -> Vec<Event> {
        let mut rich = Event::new(
            "kernel.process.exec",
            "process",
            Severity::Critical,
            1_700_000_000_123_456_789,
        );
        rich.id = EventId {
            nonce: 0x0123_4567_89ab_cdef,
            seq: 0xfedc_ba98_7654_3210,
        };
        rich.pid = Some(0);
        rich.tid = Some(u32::MAX);
        rich.cgroup_id = Some(u64::MAX);
        rich.container_id = Some("".into());
        for (k, v) in [
            ("s", Value::Str("".into())),
            ("", Value::Str("no key".into())),
            ("i", Value::Int(-1)),
            ("i0", Value::Int(0)),
            ("imin", Value::Int(i64::MIN)),
            ("u", Value::UInt(u64::MAX)),
            ("u0", Value::UInt(0)),
            ("f", Value::Float(-0.5)),
            ("f0", Value::Float(0.0)),
            ("b", Value::Bool(true)),
            ("b0", Value::Bool(false)),
            ("raw", Value::Bytes(vec![0, 255])),
            ("raw0", Value::Bytes(vec![])),
            ("long", Value::Str("x".repeat(300).into())),
        ] {
            rich.attributes.push(Attribute {
                key: k.into(),
                value: v,
            });
        }
        rich.shared_attributes = Some(
            vec![Attribute {
                key: "k8s.pod.uid".into(),
                value: Value::Str("1b2c3d4e-0000-1111-2222-333344445555".into()),
            }]
            .into(),
        );
        rich.trace = Some(TraceContext {
            trace_id: [0xab; 16],
            span_id: [0; 8],
            parent_span_id: [7; 8],
            flags: 0,
        });
        let mut minimal = Event::new("", "", Severity::Debug, 0);
        minimal.trace = Some(TraceContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: [0; 8],
            flags: 1,
        });
        vec![rich, minimal, Event::new("t", "s", Severity::Info, 5)]
    }

    #[test]
    fn direct_encoding_equals_prost_encoding_of_the_owned_message() {
        let mut scratch = Vec::new();
        for host in ["node-1", ""] {
            let mut bytes = Vec::new();
            for e in &events() {
                append_event(e, host, &mut bytes, &mut scratch);
            }
            let expected = pb::EventBatch {
                sequence: 0,
                events: events().iter().map(|e| to_proto(e, host)).collect(),
            };
            assert_eq!(bytes, expected.encode_to_vec(), "byte-identical to prost");
            let out = Outgoing::Batch {
                sequence: 42,
                events: Bytes::from(bytes),
            };
            let decoded = pb::CollectorMessage::decode(&*out.encode_to_vec()).unwrap();
            let want = pb::CollectorMessage {
                message: Some(pb::collector_message::Message::Batch(pb::EventBatch {
                    sequence: 42,
                    ..expected
                })),
            };
            assert_eq!(decoded, want);
            assert_eq!(out.encoded_len(), out.encode_to_vec().len());
        }
    }

    #[test]
    fn ids_format_like_the_display_impl() {
        for (nonce, seq) in [
            (0, 0),
            (1, 2),
            (u64::MAX, u64::MAX),
            (0x0123_4567_89ab_cdef, 77),
        ] {
            let text = id_text(nonce, seq);
            assert_eq!(
                std::str::from_utf8(&text).unwrap(),
                EventId { nonce, seq }.to_string()
            );
        }
    }

    #[test]
    fn a_hello_encodes_as_the_prost_message() {
        let hello = pb::Hello {
            node: "n".into(),
            version: "1".into(),
            instance_id: "i".into(),
        };
        let want = pb::CollectorMessage {
            message: Some(pb::collector_message::Message::Hello(hello.clone())),
        };
        assert_eq!(Outgoing::Hello(hello).encode_to_vec(), want.encode_to_vec());
    }
}
