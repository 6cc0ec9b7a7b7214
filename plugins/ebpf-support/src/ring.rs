//! The ring-buffer reader: one thread per plugin sleeps in `poll(2)` on the ring and a stop
//! eventfd with the poll interval as timeout, then drains every pending record in batches,
//! handing each to the plugin's [`RecordHandler`].
//!
//! BPF programs submit with `BPF_RB_NO_WAKEUP` until `wakeup_bytes` are pending, so under
//! load one wakeup collects a large batch, and at low rates the timer bounds the latency.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aya::maps::{MapData, RingBuf};

use crate::{stats::KernelStats, EbpfError};

/// Records handled before [`RecordHandler::flush`] is called inside one drain.
pub(crate) const MAX_BATCH: u64 = 4096;

/// What a plugin does with the records of its ring. Runs on the reader thread.
pub trait RecordHandler: Send + 'static {
    /// Called after each successful load, before reading starts: take the extra maps the
    /// handler needs (`ebpf.take_map(..)`).
    fn attached(&mut self, _ebpf: &mut aya::Ebpf) -> Result<(), EbpfError> {
        Ok(())
    }

    /// One record (its bytes are only valid during the call).
    fn record(&mut self, bytes: &[u8]);

    /// The end of a batch: emit the events built since the last flush.
    fn flush(&mut self) {}

    /// Called after every wakeup (at least once per poll interval) and once at stop: time
    /// based work (timeouts, periodic aggregates). Must not block.
    fn tick(&mut self) {}
}

/// Tells the reader (and the retry loop) to stop; wakes them at once.
pub(crate) struct StopSignal {
    stopped: AtomicBool,
    fd: OwnedFd,
}

impl StopSignal {
    pub(crate) fn new() -> Result<Self, EbpfError> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(EbpfError::Io {
                what: "eventfd",
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(StopSignal {
            stopped: AtomicBool::new(false),
            // SAFETY: `fd` is a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub(crate) fn signal(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    pub(crate) fn is_set(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Sleeps up to `timeout`; returns true when stopped.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        poll(&mut fds, timeout);
        self.is_set()
    }
}

/// `poll(2)` with a millisecond timeout (at least 1 ms); EINTR counts as a wakeup.
fn poll(fds: &mut [libc::pollfd], timeout: Duration) {
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: `fds` is a valid slice of pollfd for the duration of the call.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
}

/// Reads until `stop` is signalled.
pub(crate) fn read_until_stopped(
    ring: &mut RingBuf<MapData>,
    handler: &mut dyn RecordHandler,
    stop: &StopSignal,
    poll_interval: Duration,
    stats: &KernelStats,
) {
    let mut fds = [
        libc::pollfd {
            fd: ring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: stop.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    while !stop.is_set() {
        poll(&mut fds, poll_interval);
        drain(ring, handler, stats);
        handler.tick();
    }
}

/// Takes every pending record out of the ring; returns how many.
pub(crate) fn drain(
    ring: &mut RingBuf<MapData>,
    handler: &mut dyn RecordHandler,
    stats: &KernelStats,
) -> u64 {
    let mut total = 0;
    let mut batch = 0;
    while let Some(item) = ring.next() {
        handler.record(&item);
        drop(item);
        batch += 1;
        if batch == MAX_BATCH {
            stats.add_delivered(batch);
            handler.flush();
            total += batch;
            batch = 0;
        }
    }
    if batch > 0 {
        stats.add_delivered(batch);
        handler.flush();
        total += batch;
    }
    total
}
