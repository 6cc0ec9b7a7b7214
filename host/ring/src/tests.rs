//! Unit and stress tests of the ring on real threads (the loom models are in `loom_tests`).

use super::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering as O};
use std::thread;

#[test]
fn capacity_rounds_up_to_a_power_of_two() {
    assert_eq!(ring::<u32>(1000).0.capacity(), 1024);
    assert_eq!(ring::<u32>(0).0.capacity(), 2);
    assert_eq!(ring::<u32>(64).0.capacity(), 64);
}

#[test]
fn values_come_out_in_order() {
    let (p, mut c) = ring::<u32>(8);
    assert_eq!(p.push_with(5, |i| i as u32), 5);
    let mut out = Vec::new();
    assert_eq!(c.pop_batch(&mut out, 3), 3);
    assert_eq!(c.pop_batch(&mut out, 10), 2);
    assert_eq!(out, vec![0, 1, 2, 3, 4]);
    assert!(c.is_empty() && p.is_empty());
}

#[test]
fn a_full_ring_takes_exactly_the_free_slots() {
    let (p, mut c) = ring::<u32>(8);
    assert_eq!(p.push_with(5, |i| i as u32), 5);
    assert_eq!(
        p.push_with(5, |i| 10 + i as u32),
        3,
        "only 3 slots were free"
    );
    assert_eq!(p.push(99), Err(99));
    assert_eq!(p.len(), 8);
    let mut out = Vec::new();
    assert_eq!(c.pop_batch(&mut out, 2), 2);
    assert_eq!(p.push_with(4, |i| 20 + i as u32), 2, "two slots were freed");
    c.pop_batch(&mut out, 100);
    assert_eq!(out, vec![0, 1, 2, 3, 4, 10, 11, 12, 20, 21]);
}

#[test]
fn wrapping_many_laps_keeps_order() {
    let (p, mut c) = ring::<u64>(4);
    let mut out = Vec::new();
    for lap in 0..1000u64 {
        assert_eq!(p.push_with(3, |i| lap * 3 + i as u64), 3);
        assert_eq!(c.pop_batch(&mut out, 3), 3);
    }
    assert!(out.iter().copied().eq(0..3000));
}

#[test]
fn a_panicking_fill_leaves_tombstones_not_a_stuck_ring() {
    let (p, mut c) = ring::<String>(8);
    let result = catch_unwind(AssertUnwindSafe(|| {
        p.push_with(3, |i| {
            if i == 1 {
                panic!("conversion failed")
            } else {
                format!("v{i}")
            }
        })
    }));
    assert!(result.is_err());
    assert_eq!(p.push_with(1, |_| "after".to_owned()), 1);
    let mut out = Vec::new();
    c.pop_batch(&mut out, 10);
    assert_eq!(out, vec!["v0".to_owned(), "after".to_owned()]);
}

#[test]
fn dropping_the_consumer_drops_queued_values() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Counted;
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, O::SeqCst);
        }
    }
    let (p, c) = ring::<Counted>(8);
    p.push_with(6, |_| Counted);
    drop(c);
    assert_eq!(DROPS.load(O::SeqCst), 6);
}

/// Two producers flood a small ring while the consumer drains: every value is either
/// delivered or counted as dropped, exactly, and each producer's values stay in order.
#[test]
fn overload_counts_every_drop_exactly() {
    const PER_PRODUCER: u64 = 200_000;
    let (p, mut c) = ring::<(u8, u64)>(256);
    let producers: Vec<_> = (0..2u8)
        .map(|id| {
            let p = p.clone();
            thread::spawn(move || {
                let mut dropped = 0u64;
                let mut next = 0u64;
                while next < PER_PRODUCER {
                    let n = (PER_PRODUCER - next).min(32) as usize;
                    let taken = p.push_with(n, |i| (id, next + i as u64)) as u64;
                    dropped += n as u64 - taken;
                    next += n as u64;
                }
                dropped
            })
        })
        .collect();
    let mut delivered = [0u64; 2];
    let mut last = [None::<u64>; 2];
    let mut out = Vec::new();
    let mut finished = false;
    loop {
        out.clear();
        if c.pop_batch(&mut out, 1024) == 0 {
            if finished {
                break;
            }
            finished = producers.iter().all(|h| h.is_finished());
            c.wait(Duration::from_micros(20), Duration::from_millis(1));
            continue;
        }
        for &(id, seq) in &out {
            let id = id as usize;
            assert!(
                last[id].is_none_or(|prev| prev < seq),
                "out of order for producer {id}"
            );
            last[id] = Some(seq);
            delivered[id] += 1;
        }
    }
    let dropped: u64 = producers.into_iter().map(|h| h.join().unwrap()).sum();
    let delivered: u64 = delivered.iter().sum();
    assert_eq!(
        delivered + dropped,
        2 * PER_PRODUCER,
        "delivered {delivered} dropped {dropped}"
    );
    assert!(dropped > 0, "the flood should overflow a 256-slot ring");
}

/// The consumer parked with a long timeout is woken by a producer promptly.
#[test]
fn a_parked_consumer_is_woken_by_a_push() {
    let (p, mut c) = ring::<u32>(8);
    let waiter = thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        while c.pop_batch(&mut out, 8) == 0 {
            c.wait(Duration::ZERO, Duration::from_secs(30));
        }
        (out, started.elapsed())
    });
    thread::sleep(Duration::from_millis(50));
    p.push(7).unwrap();
    let (out, waited) = waiter.join().unwrap();
    assert_eq!(out, vec![7]);
    assert!(
        waited < Duration::from_secs(10),
        "woken by the push, not the timeout: {waited:?}"
    );
}
