//! Eviction at the open-group limit.

use super::*;
use crate::correlate::rules::load_builtin;
use crate::event::Severity;

fn pressure(container: &str, at: u64) -> (Event, Resolved<'static>) {
    let mut e = Event::new("container.memory_pressure", "memory", Severity::Warning, at);
    e.container_id = Some(container.into());
    let r = Resolved {
        container: Some(container.into()),
        ..Resolved::default()
    };
    (e, r)
}

/// Feeds `engine` memory pressure on `container` at `at` (outputs dropped).
fn feed(engine: &mut Engine, container: &str, at: u64) {
    let (mut e, r) = pressure(container, at);
    engine.on_event(&mut e, &r, false, &mut Vec::new());
}

/// An engine over the built-in rules keeping at most `max_open_groups`.
fn with_limit(max_open_groups: usize) -> Engine {
    let limits = EngineLimits {
        max_open_groups,
        ..EngineLimits::default()
    };
    let rules = RuleSet::new(load_builtin().expect("built-in rules"));
    Engine::new(rules, limits, fastrand::Rng::with_seed(1))
}

fn open_keys(engine: &Engine) -> Vec<String> {
    let mut keys: Vec<String> = engine.groups.keys().map(|k| k.1.to_string()).collect();
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn the_least_recently_active_group_is_evicted_at_the_limit() {
    let mut engine = with_limit(3);
    // Memory pressure is a step of one built-in rule, grouped by workload.
    feed(&mut engine, "a", 1_000);
    assert_eq!(
        engine.open_groups(),
        1,
        "one rule step matches memory pressure"
    );
    feed(&mut engine, "b", 2_000);
    feed(&mut engine, "c", 3_000);
    // `a` was opened first but is active again: `b` is now the least recent.
    feed(&mut engine, "a", 4_000);
    feed(&mut engine, "d", 5_000);
    assert_eq!(
        open_keys(&engine),
        ["container/a", "container/c", "container/d"]
    );
    assert_eq!(engine.counts.evicted, 1);
    feed(&mut engine, "e", 6_000);
    assert_eq!(
        open_keys(&engine),
        ["container/a", "container/d", "container/e"]
    );
    assert_eq!(engine.counts.evicted, 2);
    assert_eq!(engine.counts.discarded, 2, "unconfirmed candidates");
}

#[test]
fn groups_closed_at_a_tick_leave_the_eviction_order_intact() {
    let mut engine = with_limit(3);
    feed(&mut engine, "a", 1_000);
    feed(&mut engine, "b", 2_000);
    // An hour later both are idle past their window and close.
    let later = 3_600_000_000_000;
    let mut closed = Vec::new();
    engine.tick(later, &mut closed);
    assert_eq!(engine.open_groups(), 0);
    feed(&mut engine, "c", later + 1_000);
    feed(&mut engine, "d", later + 2_000);
    feed(&mut engine, "c", later + 3_000);
    feed(&mut engine, "e", later + 4_000);
    assert_eq!(engine.counts.evicted, 0, "three groups fit the limit");
    // `d` is the least recently active of c, d, e.
    feed(&mut engine, "f", later + 5_000);
    assert_eq!(
        open_keys(&engine),
        ["container/c", "container/e", "container/f"]
    );
    assert_eq!(engine.counts.evicted, 1);
}

#[test]
fn churn_through_the_limit_keeps_the_open_groups_bounded() {
    let mut engine = with_limit(100);
    for n in 0..20_000u64 {
        feed(&mut engine, &format!("c{}", n % 150), n * 1_000);
        // Groups idle longer than the window close at a tick.
        if n % 500 == 0 {
            engine.tick(n * 1_000 + 3_600_000_000_000, &mut Vec::new());
        }
        assert!(engine.open_groups() <= 100);
    }
    assert!(engine.counts.evicted > 0);
    // Every group opened is still open or was delivered (closed) or discarded, evicted ones
    // included: none is lost or counted twice.
    let c = &engine.counts;
    assert_eq!(
        c.opened,
        c.closed + c.discarded + engine.open_groups() as u64
    );
}

/// A network event toward `peer` (the network-failure rule groups by peer).
fn toward(
    peer: &str,
    event_type: &str,
    at: u64,
    extra: &[(&str, &str)],
) -> (Event, Resolved<'static>) {
    let mut e = Event::new(event_type, "network", Severity::Warning, at);
    e.pid = Some(42);
    let mut attrs = vec![(attr::PEER_ADDR, peer)];
    attrs.extend_from_slice(extra);
    for (k, v) in attrs {
        e.attributes.push(crate::event::Attribute {
            key: CompactString::new(k),
            value: Value::Str(v.into()),
        });
    }
    (e, Resolved::default())
}

const SECOND: u64 = 1_000_000_000;

#[test]
fn a_tick_closes_the_idle_groups_and_keeps_the_active_ones() {
    let mut engine = with_limit(100);
    // The memory-pressure rule's window is 10 minutes.
    feed(&mut engine, "old", SECOND);
    feed(&mut engine, "recent", 500 * SECOND);
    engine.tick(700 * SECOND, &mut Vec::new());
    assert_eq!(open_keys(&engine), ["container/recent"]);
    engine.tick(1200 * SECOND, &mut Vec::new());
    assert_eq!(engine.open_groups(), 0);
}

#[test]
fn a_complete_group_closes_after_its_linger_behind_active_groups() {
    let mut engine = with_limit(100);
    let send = |engine: &mut Engine, (mut e, r): (Event, Resolved)| {
        engine.on_event(&mut e, &r, false, &mut Vec::new());
    };
    // An active group first, so the complete one is not at the front.
    feed(&mut engine, "busy", SECOND);
    let peer = "10.0.0.9";
    let mut at = 2 * SECOND;
    let mut next = || {
        at += SECOND / 10;
        at
    };
    send(
        &mut engine,
        toward(
            peer,
            "kernel.dns.response",
            next(),
            &[("dns.response_code", "NXDOMAIN")],
        ),
    );
    for _ in 0..3 {
        send(
            &mut engine,
            toward(peer, "kernel.network.retransmit", next(), &[]),
        );
    }
    for _ in 0..2 {
        send(
            &mut engine,
            toward(peer, "kernel.network.connect_refused", next(), &[]),
        );
    }
    send(
        &mut engine,
        toward(peer, "kernel.network.reset", next(), &[]),
    );
    let done = at;
    assert!(engine
        .groups
        .values()
        .any(|g| g.key == peer && g.complete_ns == Some(done)));
    // Within the linger it stays; after it, it is delivered as complete.
    let mut out = Vec::new();
    engine.tick(done + SECOND, &mut out);
    assert!(out.is_empty());
    engine.tick(done + 6 * SECOND, &mut out);
    let closed: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Closed(g, why) => Some((g.key.to_string(), *why)),
            _ => None,
        })
        .collect();
    assert_eq!(closed, [(peer.to_string(), CloseReason::Complete)]);
    assert_eq!(open_keys(&engine), ["container/busy"]);
}

#[test]
fn the_open_group_table_neither_grows_nor_fills_with_deleted_markers_at_the_limit() {
    let mut engine = with_limit(1_000);
    let made_with = engine.groups.capacity();
    assert!(made_with >= 2_000, "sized for twice the limit: {made_with}");
    // Forty times the limit in distinct workloads: every one past the limit evicts one.
    let mut lowest = made_with;
    for i in 0..40_000u64 {
        feed(&mut engine, &format!("c{i}"), 1_000 + i);
        let now = engine.groups.capacity();
        assert!(
            now <= made_with,
            "the table grew (rehashed): {now} > {made_with}"
        );
        lowest = lowest.min(now);
    }
    assert_eq!(engine.open_groups(), 1_000);
    assert_eq!(engine.counts.evicted, 39_000);
    // A removal that leaves a deleted marker lowers the capacity by one until an insert
    // reuses the slot; a table whose spare room runs out rehashes in place. Below half
    // load most removals leave empty slots, so the markers stay few.
    let spare = made_with - 1_000;
    assert!(
        lowest - 1_000 > spare * 9 / 10,
        "deleted markers piled up: capacity {lowest} of {made_with}"
    );
}
