//! The shared ring of tapio-collector: one bounded, lock-free, multi-producer single-consumer queue that every
//! plugin thread writes into and the pipeline drains in batches.
//!
//! Why hand-written: producers reserve a whole batch with one CAS on `tail` and the consumer
//! frees a whole batch with one store of `head`, where a general MPMC queue
//! (crossbeam's `ArrayQueue`) pays two CAS loops per event. the host's `benches/ring.rs` measures
//! both carrying the host's `Event`; the numbers are in the README.
//!
//! Protocol (positions grow forever; slot = position & mask):
//! - a producer loads `tail` and the consumer-published `head`; `head + capacity - tail`
//!   slots are free; it CASes `tail` forward by `k <= free`, writes the `k` values, and
//!   publishes each slot by storing `position + 1` into the slot's `published` word
//!   (Release). A producer that unwinds while filling publishes the rest as tombstones.
//! - the consumer reads slots in order while `published == position + 1` (Acquire), moves
//!   the values out, then stores the new `head` (Release), which frees those slots.
//! - an idle consumer sets `sleeping` and parks; a producer that publishes while `sleeping`
//!   is set unparks it (SeqCst fences on both sides, so no wakeup is lost).
//!
//! Model-tested with loom (`RUSTFLAGS="--cfg loom" cargo test -p tapio-ring --release --lib`).

#[cfg(all(test, loom))]
mod loom_tests;
mod sync;
#[cfg(all(test, not(loom)))]
mod tests;

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use sync::{
    current, fence, park_timeout, AtomicBool, AtomicU64, Mutex, Ordering, Thread, UnsafeCell,
};

/// Marks a published slot whose producer unwound before writing it: skip, don't read.
const TOMBSTONE: u64 = 1 << 63;

struct Shared<T> {
    values: Box<[UnsafeCell<MaybeUninit<T>>]>,
    published: Box<[AtomicU64]>,
    mask: u64,
    capacity: u64,
    tail: CachePadded<AtomicU64>,
    head: CachePadded<AtomicU64>,
    sleeping: CachePadded<AtomicBool>,
    consumer: Mutex<Option<Thread>>,
}

// SAFETY: values are moved between threads through the publish protocol above; a slot is
// accessed by exactly one producer (between reservation and publication) or by the consumer
// (between publication and the next `head` store), never both.
unsafe impl<T: Send> Send for Shared<T> {}
unsafe impl<T: Send> Sync for Shared<T> {}

/// Creates a ring holding at least `capacity` values (rounded up to a power of two, >= 2).
pub fn ring<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let capacity = capacity.max(2).next_power_of_two();
    let shared = Arc::new(Shared {
        values: new_slots(capacity),
        published: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        mask: capacity as u64 - 1,
        capacity: capacity as u64,
        tail: CachePadded::new(AtomicU64::new(0)),
        head: CachePadded::new(AtomicU64::new(0)),
        sleeping: CachePadded::new(AtomicBool::new(false)),
        consumer: Mutex::new(None),
    });
    (
        Producer {
            shared: Arc::clone(&shared),
        },
        Consumer { shared, head: 0 },
    )
}

#[cfg(not(loom))]
fn new_slots<T>(capacity: usize) -> Box<[UnsafeCell<MaybeUninit<T>>]> {
    // Not touching the memory keeps an idle ring's pages out of RSS.
    let uninit = Box::<[UnsafeCell<MaybeUninit<T>>]>::new_uninit_slice(capacity);
    // SAFETY: `UnsafeCell<MaybeUninit<T>>` has no validity invariant: any bytes are valid.
    unsafe { uninit.assume_init() }
}

#[cfg(loom)]
fn new_slots<T>(capacity: usize) -> Box<[UnsafeCell<MaybeUninit<T>>]> {
    (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect()
}

/// The producing side; clone it freely, use it from any thread.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Producer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Send> Producer<T> {
    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.shared.capacity as usize
    }

    /// Values currently queued (a snapshot).
    pub fn len(&self) -> usize {
        let head = self.shared.head.load(Ordering::Acquire);
        let tail = self.shared.tail.load(Ordering::Acquire);
        tail.saturating_sub(head) as usize
    }

    /// Whether nothing is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reserves up to `n` slots and fills them in order with `fill(0)`, `fill(1)`, ...
    /// Returns how many were reserved and filled: fewer than `n` when the ring is full.
    pub fn push_with(&self, n: usize, mut fill: impl FnMut(usize) -> T) -> usize {
        if n == 0 {
            return 0;
        }
        let s = &*self.shared;
        let mut tail = s.tail.load(Ordering::Relaxed);
        let (start, count) = loop {
            let head = s.head.load(Ordering::Acquire);
            let free = (head + s.capacity).saturating_sub(tail);
            if free == 0 {
                return 0;
            }
            let count = free.min(n as u64);
            match s.tail.compare_exchange_weak(
                tail,
                tail + count,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break (tail, count),
                Err(actual) => tail = actual,
            }
        };
        let mut guard = PublishGuard {
            shared: s,
            next: start,
            end: start + count,
        };
        for i in 0..count {
            let value = fill(i as usize);
            let pos = start + i;
            // SAFETY: slot `pos` was reserved by the CAS above and is free (pos < head +
            // capacity); no one else touches it until it is published.
            s.values[(pos & s.mask) as usize].with_mut(|slot| unsafe { (*slot).write(value) });
            s.published[(pos & s.mask) as usize].store(pos + 1, Ordering::Release);
            guard.next = pos + 1;
        }
        drop(guard);
        self.wake_consumer();
        count as usize
    }

    /// Pushes one value; gives it back when the ring is full.
    pub fn push(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        if self.push_with(1, |_| value.take().expect("filled once")) == 1 {
            Ok(())
        } else {
            Err(value.take().expect("not consumed"))
        }
    }

    fn wake_consumer(&self) {
        let s = &*self.shared;
        // Pairs with the fence in `Consumer::wait`: either the consumer sees our publication
        // before parking, or we see `sleeping` and unpark it.
        fence(Ordering::SeqCst);
        if s.sleeping.load(Ordering::Relaxed) && s.sleeping.swap(false, Ordering::AcqRel) {
            if let Ok(guard) = s.consumer.lock() {
                if let Some(thread) = guard.as_ref() {
                    thread.unpark();
                }
            }
        }
    }
}

/// Publishes reserved-but-unfilled slots as tombstones if `fill` unwinds, so the consumer
/// never waits forever on a slot nobody will write.
struct PublishGuard<'a, T> {
    shared: &'a Shared<T>,
    next: u64,
    end: u64,
}

impl<T> Drop for PublishGuard<'_, T> {
    fn drop(&mut self) {
        for pos in self.next..self.end {
            self.shared.published[(pos & self.shared.mask) as usize]
                .store((pos + 1) | TOMBSTONE, Ordering::Release);
        }
    }
}

/// The consuming side: exactly one, owned by the pipeline thread.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    head: u64,
}

impl<T: Send> Consumer<T> {
    /// A producer handle for this ring.
    pub fn producer(&self) -> Producer<T> {
        Producer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Moves up to `max` published values, in order, onto `out`; returns how many.
    pub fn pop_batch(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        let s = &*self.shared;
        let mut taken = 0;
        let mut pos = self.head;
        while taken < max {
            let idx = (pos & s.mask) as usize;
            let published = s.published[idx].load(Ordering::Acquire);
            if published & !TOMBSTONE != pos + 1 {
                break;
            }
            if published & TOMBSTONE == 0 {
                // SAFETY: published for `pos` (Acquire pairs with the producer's Release), and
                // the slot stays ours until we store the new head below.
                let value = s.values[idx].with_mut(|slot| unsafe { (*slot).assume_init_read() });
                out.push(value);
                taken += 1;
            }
            pos += 1;
        }
        if pos != self.head {
            self.head = pos;
            s.head.store(pos, Ordering::Release);
        }
        taken
    }

    /// Whether the next slot is published (something to pop).
    pub fn has_data(&self) -> bool {
        let s = &*self.shared;
        let published = s.published[(self.head & s.mask) as usize].load(Ordering::Acquire);
        published & !TOMBSTONE == self.head + 1
    }

    /// Waits until a producer publishes or `timeout` passes: spins `spin` times first (cheap
    /// wakeups under load), then parks.
    pub fn wait(&mut self, spin: u32, timeout: Duration) {
        for _ in 0..spin {
            if self.has_data() {
                return;
            }
            std::hint::spin_loop();
        }
        let s = &*self.shared;
        if let Ok(mut guard) = s.consumer.lock() {
            *guard = Some(current());
        }
        // A read-modify-write (not a plain store) so the flag's modification order follows
        // every producer's earlier swap; loom checks this protocol and relies on it.
        s.sleeping.swap(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.has_data() {
            s.sleeping.swap(false, Ordering::AcqRel);
            return;
        }
        park_timeout(timeout);
        s.sleeping.swap(false, Ordering::AcqRel);
    }

    /// Values currently queued (a snapshot).
    pub fn len(&self) -> usize {
        self.shared
            .tail
            .load(Ordering::Acquire)
            .saturating_sub(self.head) as usize
    }

    /// Whether nothing is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Drop values still queued. Producers may still hold the ring, but with the consumer
        // gone nothing reads it again; only values published up to now are dropped here.
        let s = &*self.shared;
        let mut pos = self.head;
        loop {
            let idx = (pos & s.mask) as usize;
            let published = s.published[idx].load(Ordering::Acquire);
            if published & !TOMBSTONE != pos + 1 {
                break;
            }
            if published & TOMBSTONE == 0 {
                // SAFETY: as in `pop_batch`.
                s.values[idx].with_mut(|slot| unsafe { (*slot).assume_init_drop() });
            }
            pos += 1;
        }
        self.head = pos;
        s.head.store(pos, Ordering::Release);
    }
}
