//! Trace context from the `tapio.io/trace-id` annotation, inherited along owner references.
//!
//! The annotation holds either a 32-hex-digit W3C trace id or a whole `traceparent`
//! (`00-<trace id>-<span id>-<flags>`). An object without the annotation inherits the trace
//! of its controlling owner (a pod from its ReplicaSet, the ReplicaSet from its Deployment),
//! up to [`MAX_HOPS`] levels, as far as the owners have been seen.

use std::collections::HashMap;

use tapio_plugin_api::TraceContext;

/// The annotation read.
pub const ANNOTATION: &str = "tapio.io/trace-id";

/// Longest owner chain followed.
pub const MAX_HOPS: usize = 5;

/// Parses the annotation value; `uid` supplies the span id when the value has none (the
/// object stands for one span of the trace: its first 8 uid bytes).
pub fn parse(value: &str, uid: &str) -> Option<TraceContext> {
    let value = value.trim();
    let parts: Vec<&str> = value.split('-').collect();
    let (trace_hex, span_hex, flags_hex) = match parts.as_slice() {
        [trace] => (*trace, None, None),
        ["00", trace, span, flags] => (*trace, Some(*span), Some(*flags)),
        _ => return None,
    };
    let mut trace_id = [0u8; 16];
    hex::decode_to_slice(trace_hex, &mut trace_id).ok()?;
    if trace_id == [0; 16] {
        return None;
    }
    let mut span_id = [0u8; 8];
    match span_hex {
        Some(s) => hex::decode_to_slice(s, &mut span_id).ok()?,
        None => span_id = uid_span(uid)?,
    }
    let flags = match flags_hex {
        Some(f) => {
            let mut b = [0u8; 1];
            hex::decode_to_slice(f, &mut b).ok()?;
            b[0]
        }
        None => 1,
    };
    Some(TraceContext {
        trace_id,
        span_id,
        parent_span_id: [0; 8],
        flags,
    })
}

/// The first 8 bytes of a uid (`8e0f...-...`), as a span id.
fn uid_span(uid: &str) -> Option<[u8; 8]> {
    let digits: String = uid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect();
    let mut span = [0u8; 8];
    hex::decode_to_slice(&digits, &mut span).ok()?;
    (span != [0; 8]).then_some(span)
}

#[derive(Debug, Clone)]
struct Entry {
    trace: Option<TraceContext>,
    owner: Option<String>,
}

/// Trace ids by object uid, with each object's controlling owner.
#[derive(Debug, Default)]
pub struct TraceIndex {
    by_uid: HashMap<String, Entry>,
}

impl TraceIndex {
    /// Records an object: its own trace (from the annotation) and its owner's uid.
    pub fn record(&mut self, uid: &str, trace: Option<TraceContext>, owner: Option<&str>) {
        if uid.is_empty() {
            return;
        }
        self.by_uid.insert(
            uid.to_owned(),
            Entry {
                trace,
                owner: owner.map(str::to_owned),
            },
        );
    }

    /// Forgets a deleted object.
    pub fn forget(&mut self, uid: &str) {
        self.by_uid.remove(uid);
    }

    /// The trace of `uid`, its own or its nearest owner's. The span id is the object's own
    /// (from its uid) with the owner's span as parent when inherited.
    pub fn resolve(&self, uid: &str) -> Option<TraceContext> {
        let mut current = uid;
        for _ in 0..=MAX_HOPS {
            let entry = self.by_uid.get(current)?;
            if let Some(t) = entry.trace {
                if current == uid {
                    return Some(t);
                }
                return Some(TraceContext {
                    span_id: uid_span(uid).unwrap_or(t.span_id),
                    parent_span_id: t.span_id,
                    ..t
                });
            }
            current = entry.owner.as_deref()?;
        }
        None
    }

    /// Objects indexed.
    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn parses_trace_id_and_traceparent() {
        let t = parse(TRACE, "8e0f1a2b-3c4d-5e6f-7a8b-9c0d1e2f3a4b").unwrap();
        assert_eq!(hex::encode(t.trace_id), TRACE);
        assert_eq!(hex::encode(t.span_id), "8e0f1a2b3c4d5e6f");
        assert_eq!(t.flags, 1);
        let t = parse(&format!("00-{TRACE}-00f067aa0ba902b7-00"), "x").unwrap();
        assert_eq!(hex::encode(t.span_id), "00f067aa0ba902b7");
        assert_eq!(t.flags, 0);
        assert!(parse("not-a-trace", "u").is_none());
        assert!(parse("00000000000000000000000000000000", "8e0f1a2b").is_none());
        assert!(parse(TRACE, "").is_none(), "no span id can be made");
    }

    #[test]
    fn inherits_along_owners() {
        let mut idx = TraceIndex::default();
        let deploy = parse(TRACE, "aaaaaaaa-0000-0000-0000-000000000000").unwrap();
        idx.record("aaaaaaaa-0000-0000-0000-000000000000", Some(deploy), None);
        idx.record(
            "bbbbbbbb-0000-0000-0000-000000000000",
            None,
            Some("aaaaaaaa-0000-0000-0000-000000000000"),
        );
        idx.record(
            "cccccccc-0000-0000-0000-000000000000",
            None,
            Some("bbbbbbbb-0000-0000-0000-000000000000"),
        );
        let pod = idx.resolve("cccccccc-0000-0000-0000-000000000000").unwrap();
        assert_eq!(pod.trace_id, deploy.trace_id);
        assert_eq!(hex::encode(pod.span_id), "cccccccc00000000");
        assert_eq!(pod.parent_span_id, deploy.span_id);
        idx.forget("aaaaaaaa-0000-0000-0000-000000000000");
        assert!(idx
            .resolve("cccccccc-0000-0000-0000-000000000000")
            .is_none());
    }

    #[test]
    fn owner_cycles_end() {
        let mut idx = TraceIndex::default();
        idx.record("a", None, Some("b"));
        idx.record("b", None, Some("a"));
        assert!(idx.resolve("a").is_none());
    }
}
