//! OpenTelemetry attachment: kernel and node events of an application span's process or
//! container, during the span, join that span's trace (parent = the span).
//!
//! Spans reach the collector when they end, after the kernel events they contain. So events
//! of an *instrumented* entity (one that sent a span recently) wait in a delay line for
//! `attach_delay` before they are matched against the spans known by then. Events of other
//! entities are never delayed. The delay line is bounded; an event that does not fit is
//! released at once (counted).

use std::collections::VecDeque;

use compact_str::CompactString;

use crate::correlate::entity::Resolved;
use crate::correlate::lru::BoundedMap;
use crate::correlate::vocab::{attr, types};
use crate::event::{Event, Value};

/// A known application span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanRef {
    /// Trace id.
    pub trace_id: [u8; 16],
    /// Span id.
    pub span_id: [u8; 8],
    /// Start (ns).
    pub start_ns: u64,
    /// End (ns).
    pub end_ns: u64,
}

/// Most spans remembered per process or container (the newest).
const SPANS_PER_ENTITY: usize = 32;

/// Recent spans per process and per container.
pub struct SpanIndex {
    by_pid: BoundedMap<u32, Vec<SpanRef>>,
    by_container: BoundedMap<CompactString, Vec<SpanRef>>,
}

fn remember(list: &mut Vec<SpanRef>, s: SpanRef) {
    if list.len() >= SPANS_PER_ENTITY {
        list.remove(0);
    }
    list.push(s);
}

fn innermost(list: Option<&Vec<SpanRef>>, ts: u64) -> Option<SpanRef> {
    list?
        .iter()
        .filter(|s| s.start_ns <= ts && ts <= s.end_ns)
        .min_by_key(|s| s.end_ns - s.start_ns)
        .copied()
}

impl SpanIndex {
    /// An empty index of at most `max_entities` processes and containers each, forgetting
    /// entities without spans for `ttl_ns`.
    pub fn new(max_entities: usize, ttl_ns: u64) -> Self {
        SpanIndex {
            by_pid: BoundedMap::new(max_entities, ttl_ns),
            by_container: BoundedMap::new(max_entities, ttl_ns),
        }
    }

    /// Entities with spans.
    pub fn len(&self) -> usize {
        self.by_pid.len() + self.by_container.len()
    }

    /// Whether no span is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records an `otel.span` event (ignores other events).
    pub fn record(&mut self, e: &Event, r: &Resolved<'_>) {
        if e.event_type != types::OTEL_SPAN {
            return;
        }
        let Some(t) = e.trace else { return };
        let duration = e
            .attribute(attr::SPAN_DURATION)
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0) as u64;
        let s = SpanRef {
            trace_id: t.trace_id,
            span_id: t.span_id,
            start_ns: e.timestamp_ns,
            end_ns: e.timestamp_ns.saturating_add(duration),
        };
        let now = s.end_ns;
        if let Some(pid) = r.pid {
            remember(self.by_pid.entry(pid, now, Vec::new), s);
        }
        if let Some(c) = &r.container {
            remember(
                self.by_container
                    .entry_by(&**c, |k: &str| CompactString::new(k), now, Vec::new),
                s,
            );
        }
    }

    /// Whether the entity of `r` sent spans recently.
    pub fn instrumented(&self, r: &Resolved<'_>) -> bool {
        r.pid.is_some_and(|p| self.by_pid.get(&p).is_some())
            || r.container
                .as_ref()
                .is_some_and(|c| self.by_container.get(&**c).is_some())
    }

    /// The innermost span of the event's process (else container) that contains its time.
    pub fn find(&self, r: &Resolved<'_>, ts: u64) -> Option<SpanRef> {
        r.pid
            .and_then(|p| innermost(self.by_pid.get(&p), ts))
            .or_else(|| {
                r.container
                    .as_ref()
                    .and_then(|c| innermost(self.by_container.get(&**c), ts))
            })
    }

    /// Forgets entities without spans for the TTL.
    pub fn expire(&mut self, now_ns: u64) {
        self.by_pid.expire(now_ns);
        self.by_container.expire(now_ns);
    }
}

/// Puts `e` into span `s`'s trace with `s` as parent (its own span id stays) and notes it.
pub fn attach(e: &mut Event, s: &SpanRef) {
    if let Some(t) = &mut e.trace {
        t.trace_id = s.trace_id;
        t.parent_span_id = s.span_id;
    }
    e.attributes.push(crate::event::Attribute {
        key: CompactString::const_new(attr::ATTACHED_SPAN),
        value: Value::Str(CompactString::new(crate::event::hex(&s.span_id))),
    });
}

/// An event waiting for spans, with what the stage knew about it.
pub struct Held {
    /// Release time (pipeline clock, ns).
    pub release_ns: u64,
    /// The event.
    pub event: Event,
    /// Its entities.
    pub resolved: Resolved<'static>,
    /// Whether its trace came from its plugin.
    pub own_trace: bool,
}

/// The bounded delay line.
pub struct DelayLine {
    queue: VecDeque<Held>,
    capacity: usize,
    /// Events delayed.
    pub delayed: u64,
    /// Events released early because the line was full.
    pub overflow: u64,
}

impl DelayLine {
    /// A line of at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        DelayLine {
            queue: VecDeque::new(),
            capacity,
            delayed: 0,
            overflow: 0,
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Holds `h`; when full, the oldest is returned for release now.
    pub fn hold(&mut self, h: Held) -> Option<Held> {
        self.delayed += 1;
        self.queue.push_back(h);
        if self.queue.len() > self.capacity {
            self.overflow += 1;
            return self.queue.pop_front();
        }
        None
    }

    /// Moves every event due at `now_ns` (or all, with `u64::MAX`) into `out`.
    pub fn release(&mut self, now_ns: u64, out: &mut Vec<Held>) {
        while self.queue.front().is_some_and(|h| h.release_ns <= now_ns) {
            out.extend(self.queue.pop_front());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Severity, TraceContext};

    fn span(pid: u32, start: u64, dur: i64, trace: u8, id: u8) -> Event {
        let mut e = Event::new(types::OTEL_SPAN, "otel", Severity::Info, start);
        e.pid = Some(pid);
        e.attributes.push(crate::event::Attribute {
            key: attr::SPAN_DURATION.into(),
            value: Value::Int(dur),
        });
        e.trace = Some(TraceContext {
            trace_id: [trace; 16],
            span_id: [id; 8],
            parent_span_id: [0; 8],
            flags: 1,
        });
        e
    }

    #[test]
    fn innermost_span_of_the_process_during_the_event() {
        let mut idx = SpanIndex::new(100, u64::MAX);
        let r = Resolved {
            pid: Some(7),
            ..Resolved::default()
        };
        idx.record(&span(7, 100, 1000, 1, 1), &r);
        idx.record(&span(7, 200, 100, 1, 2), &r);
        assert!(idx.instrumented(&r));
        assert_eq!(idx.find(&r, 250).unwrap().span_id, [2; 8], "innermost");
        assert_eq!(idx.find(&r, 500).unwrap().span_id, [1; 8]);
        assert_eq!(idx.find(&r, 2000), None, "after the span");
        let other = Resolved {
            pid: Some(8),
            ..Resolved::default()
        };
        assert_eq!(idx.find(&other, 250), None, "another process");
        let mut k = Event::new(
            "kernel.network.connect_refused",
            "net",
            Severity::Warning,
            250,
        );
        k.trace = Some(TraceContext {
            trace_id: [9; 16],
            span_id: [5; 8],
            ..TraceContext::default()
        });
        attach(&mut k, &idx.find(&r, 250).unwrap());
        let t = k.trace.unwrap();
        assert_eq!(
            (t.trace_id, t.span_id, t.parent_span_id),
            ([1; 16], [5; 8], [2; 8])
        );
    }

    #[test]
    fn delay_line_is_bounded_and_releases_in_order() {
        let mut d = DelayLine::new(2);
        let h = |at| Held {
            release_ns: at,
            event: Event::new("x", "t", Severity::Info, at),
            resolved: Resolved::default(),
            own_trace: false,
        };
        assert!(d.hold(h(10)).is_none());
        assert!(d.hold(h(20)).is_none());
        let early = d.hold(h(30)).expect("full: the oldest leaves");
        assert_eq!(early.release_ns, 10);
        assert_eq!(d.overflow, 1);
        let mut out = Vec::new();
        d.release(25, &mut out);
        assert_eq!(out.len(), 1);
        d.release(u64::MAX, &mut out);
        assert_eq!(out.len(), 2);
        assert!(d.is_empty());
    }
}
