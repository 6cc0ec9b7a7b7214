//! Loom models of the ring: every interleaving of two producers and the consumer, on a ring
//! small enough to wrap. Run with `RUSTFLAGS="--cfg loom" cargo test -p tapio-ring
//! --release --lib`.

use super::*;
use loom::sync::atomic::{AtomicUsize, Ordering as O};
use loom::sync::Arc as LArc;
use loom::thread;

/// Explores every interleaving with at most this many preemptions (tokio's loom tests use 2
/// or 3: bugs needing more are rare and the space grows exponentially).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(f);
}

/// Two producers push two values each (the ring has room for all, so no producer spins);
/// the consumer parks whenever it finds nothing and must still receive every value (no lost
/// wakeup), each producer's values in order.
#[test]
fn no_value_and_no_wakeup_is_lost() {
    model(|| {
        let (p, mut c) = ring::<(u8, u8)>(4);
        let handles: Vec<_> = (0..2u8)
            .map(|id| {
                let p = p.clone();
                thread::spawn(move || {
                    for seq in 0..2u8 {
                        p.push((id, seq))
                            .expect("the ring has room for every value");
                    }
                })
            })
            .collect();
        let mut out = Vec::new();
        while out.len() < 4 {
            if c.pop_batch(&mut out, 4) == 0 {
                c.wait(Duration::ZERO, Duration::from_secs(1));
            }
        }
        for h in handles {
            h.join().unwrap();
        }
        for id in 0..2u8 {
            let seqs: Vec<u8> = out.iter().filter(|v| v.0 == id).map(|v| v.1).collect();
            assert_eq!(seqs, vec![0, 1]);
        }
    });
}

/// Producers never retry: what the ring refuses is counted; after both finish,
/// delivered + dropped == produced exactly.
#[test]
fn drops_are_counted_exactly() {
    model(|| {
        let (p, mut c) = ring::<u8>(2);
        let dropped = LArc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let p = p.clone();
                let dropped = LArc::clone(&dropped);
                thread::spawn(move || {
                    let taken = p.push_with(2, |i| i as u8);
                    dropped.fetch_add(2 - taken, O::SeqCst);
                })
            })
            .collect();
        let mut out = Vec::new();
        c.pop_batch(&mut out, 4);
        for h in handles {
            h.join().unwrap();
        }
        c.pop_batch(&mut out, 4);
        assert_eq!(out.len() + dropped.load(O::SeqCst), 4);
    });
}

/// The consumer takes one value at a time out of two-value batches while the producer wraps
/// around the ring: values stay in order and nothing is lost or read twice.
#[test]
fn partial_batches_and_wrap_around() {
    model(|| {
        let (p, mut c) = ring::<u8>(2);
        let producer = thread::spawn(move || {
            let first = p.push_with(2, |i| i as u8);
            let second = p.push_with(2, |i| 2 + i as u8);
            (first, second)
        });
        let mut out = Vec::new();
        for _ in 0..3 {
            c.pop_batch(&mut out, 1);
        }
        let (first, second) = producer.join().unwrap();
        while c.pop_batch(&mut out, 1) == 1 {}
        let mut expected: Vec<u8> = (0..first as u8).collect();
        expected.extend((0..second as u8).map(|i| 2 + i));
        assert_eq!(out, expected);
    });
}
