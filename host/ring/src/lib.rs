//! The shared ring of tapio-collector: one bounded, lock-free, multi-producer
//! single-consumer queue that every plugin thread writes into and the pipeline drains in
//! batches.
//!
//! Why hand-written: a producer reserves a whole batch with one CAS on `tail` and publishes
//! it with one store; the consumer frees what it read with one store of `head`. A general
//! MPMC queue (crossbeam's `ArrayQueue`) pays a CAS and a stamp store per event on each
//! side, and its consumer polls the very cache lines producers are writing. The host's
//! `benches/ring.rs` measures both carrying the host's `Event`; numbers are in the README.
//!
//! Protocol (positions grow forever; slot = position & mask):
//! - a producer loads `tail` and the consumer-published `head`; `head + capacity - tail`
//!   slots are free; it CASes `tail` forward by `k <= free` (a batch), writes the values,
//!   then publishes the batch at its FIRST slot: `meta = (k << 32) | written` (Relaxed) and
//!   `published = position + 1` (Release). Batches tile the position space, so the consumer
//!   always knows where the next batch head is. A producer that unwinds while filling
//!   publishes `written < k`; the unwritten slots are skipped.
//! - the consumer loads `published` of the next batch head (Acquire); when it equals
//!   `position + 1` it takes the batch's values, then stores the new `head` (Release), which
//!   frees those slots.
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

struct Shared<T> {
    values: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// At a batch's first slot: the batch's first position + 1, once published.
    published: Box<[AtomicU64]>,
    /// At a batch's first slot: `(reserved << 32) | written`.
    meta: Box<[AtomicU64]>,
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
    // Batch lengths are stored in 32 bits.
    let capacity = capacity.clamp(2, 1 << 31).next_power_of_two();
    let shared = Arc::new(Shared {
        values: new_slots(capacity),
        published: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        meta: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
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
        Consumer {
            shared,
            head: 0,
            batch_end: 0,
            written_end: 0,
        },
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
            start,
            reserved: count,
            written: 0,
        };
        for i in 0..count {
            let value = fill(i as usize);
            let pos = start + i;
            // SAFETY: slot `pos` was reserved by the CAS above and is free (pos < head +
            // capacity); no one else touches it until the batch is published.
            s.values[(pos & s.mask) as usize].with_mut(|slot| unsafe { (*slot).write(value) });
            guard.written = i + 1;
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

/// Publishes the batch when dropped, also when `fill` unwinds: then only the values written
/// so far are marked readable and the consumer skips the rest, instead of waiting forever.
struct PublishGuard<'a, T> {
    shared: &'a Shared<T>,
    start: u64,
    reserved: u64,
    written: u64,
}

impl<T> Drop for PublishGuard<'_, T> {
    fn drop(&mut self) {
        let s = self.shared;
        let idx = (self.start & s.mask) as usize;
        s.meta[idx].store((self.reserved << 32) | self.written, Ordering::Relaxed);
        s.published[idx].store(self.start + 1, Ordering::Release);
    }
}

/// The consuming side: exactly one, owned by the pipeline thread.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// Next position to read.
    head: u64,
    /// End of the batch being read (positions below it are published).
    batch_end: u64,
    /// End of the written part of that batch (positions from here to `batch_end` are skipped).
    written_end: u64,
}

impl<T: Send> Consumer<T> {
    /// A producer handle for this ring.
    pub fn producer(&self) -> Producer<T> {
        Producer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Learns the next batch if it is published; `false` when nothing is.
    fn next_batch(&mut self) -> bool {
        let s = &*self.shared;
        let idx = (self.head & s.mask) as usize;
        if s.published[idx].load(Ordering::Acquire) != self.head + 1 {
            return false;
        }
        let meta = s.meta[idx].load(Ordering::Relaxed);
        self.batch_end = self.head + (meta >> 32);
        self.written_end = self.head + (meta & 0xffff_ffff);
        true
    }

    /// Moves up to `max` published values, in order, onto `out`; returns how many.
    pub fn pop_batch(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        let mut taken = 0;
        let start = self.head;
        while taken < max {
            if self.head == self.batch_end && !self.next_batch() {
                break;
            }
            let s = &*self.shared;
            let readable = self
                .written_end
                .saturating_sub(self.head)
                .min((max - taken) as u64);
            for _ in 0..readable {
                let idx = (self.head & s.mask) as usize;
                // SAFETY: published (the Acquire in `next_batch` pairs with the producer's
                // Release), and the slot stays ours until we store the new head below.
                out.push(s.values[idx].with_mut(|slot| unsafe { (*slot).assume_init_read() }));
                self.head += 1;
            }
            taken += readable as usize;
            if self.head >= self.written_end {
                // Skip what an unwinding producer reserved but never wrote.
                self.head = self.batch_end;
            }
        }
        if self.head != start {
            self.shared.head.store(self.head, Ordering::Release);
        }
        taken
    }

    /// Whether something is published and not yet popped.
    pub fn has_data(&self) -> bool {
        if self.head < self.batch_end {
            return true;
        }
        let s = &*self.shared;
        s.published[(self.head & s.mask) as usize].load(Ordering::Acquire) == self.head + 1
    }

    /// Waits until a producer publishes or `timeout` passes: spins for up to `spin` first
    /// (cheap wakeups under steady load), then parks.
    pub fn wait(&mut self, spin: Duration, timeout: Duration) {
        if !spin.is_zero() {
            let started = std::time::Instant::now();
            loop {
                for _ in 0..32 {
                    if self.has_data() {
                        return;
                    }
                    std::hint::spin_loop();
                }
                if started.elapsed() >= spin {
                    break;
                }
            }
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
        // Drop the values still queued. Producers may still hold the ring, but with the
        // consumer gone nothing reads it again; only values published up to now are dropped.
        let s = &*self.shared;
        loop {
            if self.head == self.batch_end {
                let idx = (self.head & s.mask) as usize;
                if s.published[idx].load(Ordering::Acquire) != self.head + 1 {
                    break;
                }
                let meta = s.meta[idx].load(Ordering::Relaxed);
                self.batch_end = self.head + (meta >> 32);
                self.written_end = self.head + (meta & 0xffff_ffff);
            }
            while self.head < self.written_end {
                let idx = (self.head & s.mask) as usize;
                // SAFETY: as in `pop_batch`.
                s.values[idx].with_mut(|slot| unsafe { (*slot).assume_init_drop() });
                self.head += 1;
            }
            self.head = self.batch_end;
        }
        s.head.store(self.head, Ordering::Release);
    }
}
