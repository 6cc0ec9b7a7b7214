//! How long the pipeline thread spins on an empty ring before it parks.
//!
//! A parked thread is woken by the producer that pushes next, and that wake-up costs the
//! events behind it the scheduler's latency (20-30 us on the 2-core test machine). So the
//! thread spins a little before parking. While it is busy a good share of the time anyway
//! (sustained load), it spins longer, so the next burst is taken without a wake-up. Under
//! light load it keeps the short spin, and an idle collector does not burn a core.
//!
//! The busy share is taken over short windows (`WINDOW`, 10 ms), so the policy follows a
//! load within a few bursts. With the pipeline's one-second tick as the window, the first
//! second of a load ran with the short spin: every burst paid a wake-up, and at 1 M
//! events/s that second's p50 was twice the rest's.
//!
//! Measured with the correlation bench (`CORRELATION_BENCH_PARTS=2`, 5 s runs, two each,
//! against a fixed 30 us spin): ring-to-sink p50 at 1 M events/s (bursts of 100) 133-135 us
//! -> 85-92 us; at 500 k/s (bursts of 50) 80-83 us -> 42 us, for pipeline-thread CPU of
//! 1.33 -> 1.85 us per event (it spins through its idle gaps). At 200 k/s (bursts of 10,
//! under a quarter busy) it keeps the short spin: p50 31-32 us either way. A fixed 300 us
//! spin would bring that to 9-11 us, for a core spinning at any load above a few thousand
//! events/s, so light load keeps the short spin.

use std::time::{Duration, Instant};

/// Spin before parking under light load.
pub const SHORT_SPIN: Duration = Duration::from_micros(30);
/// Spin before parking under sustained load.
pub const LONG_SPIN: Duration = Duration::from_micros(250);
/// The span over which the busy share is taken.
pub const WINDOW: Duration = Duration::from_millis(10);
/// Busy share of the last interval from which the next one spins long (about 300 k
/// correlated events/s on the test machine).
pub const LONG_SPIN_FROM_BUSY: f64 = 0.25;

/// The spin policy: the busy share of one interval (the pipeline's tick), read from the
/// thread's cumulative busy time (`PipelineStats::busy_ns`), sets the spin of the next.
#[derive(Debug)]
pub struct IdlePolicy {
    /// Cumulative busy time at the start of the interval.
    busy_at_start_ns: u64,
    since: Instant,
    long: bool,
}

impl IdlePolicy {
    /// A policy whose first interval starts at `now` (no busy time yet), spinning short.
    pub fn new(now: Instant) -> Self {
        IdlePolicy {
            busy_at_start_ns: 0,
            since: now,
            long: false,
        }
    }

    /// Ends the interval at `now`, when the cumulative busy time is `busy_ns`, and sets the
    /// spin of the next from the interval's busy share, which it returns.
    fn roll(&mut self, now: Instant, busy_ns: u64) -> f64 {
        let span = now.saturating_duration_since(self.since);
        let busy = Duration::from_nanos(busy_ns.saturating_sub(self.busy_at_start_ns));
        let share = if span.is_zero() {
            0.0
        } else {
            (busy.as_secs_f64() / span.as_secs_f64()).min(1.0)
        };
        self.long = share >= LONG_SPIN_FROM_BUSY;
        self.busy_at_start_ns = busy_ns;
        self.since = now;
        share
    }

    /// Rolls the interval when it is at least `WINDOW` long (see `roll`); returns the
    /// share it ended with, if it did.
    pub fn observe(&mut self, now: Instant, busy_ns: u64) -> Option<f64> {
        (now.saturating_duration_since(self.since) >= WINDOW).then(|| self.roll(now, busy_ns))
    }

    /// How long to spin before parking now.
    pub fn spin(&self) -> Duration {
        if self.long {
            LONG_SPIN
        } else {
            SHORT_SPIN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spin_follows_the_busy_share_of_the_last_interval() {
        const MS: u64 = 1_000_000;
        let t0 = Instant::now();
        let mut p = IdlePolicy::new(t0);
        assert_eq!(p.spin(), SHORT_SPIN, "starts short");
        // 100 ms busy in the first second.
        let share = p.roll(t0 + Duration::from_secs(1), 100 * MS);
        assert!((share - 0.1).abs() < 1e-9);
        assert_eq!(p.spin(), SHORT_SPIN, "a tenth busy is light load");
        // 600 ms more in the next.
        p.roll(t0 + Duration::from_secs(2), 700 * MS);
        assert_eq!(p.spin(), LONG_SPIN, "six tenths busy is sustained load");
        // No busy time in the third: the load stopped.
        p.roll(t0 + Duration::from_secs(3), 700 * MS);
        assert_eq!(p.spin(), SHORT_SPIN);
    }

    #[test]
    fn observe_rolls_only_whole_windows() {
        const MS: u64 = 1_000_000;
        let t0 = Instant::now();
        let mut p = IdlePolicy::new(t0);
        // Half of a window: too short to judge, nothing changes.
        assert_eq!(p.observe(t0 + WINDOW / 2, 5 * MS), None);
        assert_eq!(p.spin(), SHORT_SPIN);
        // The whole window, half busy: sustained load from the next one.
        let share = p
            .observe(t0 + WINDOW, 5 * MS)
            .expect("a whole window rolls");
        assert!((share - 0.5).abs() < 1e-9, "{share}");
        assert_eq!(p.spin(), LONG_SPIN);
        // The next window starts where that one ended: idle throughout, back to short.
        assert_eq!(p.observe(t0 + WINDOW * 3 / 2, 5 * MS), None);
        assert_eq!(p.observe(t0 + WINDOW * 2, 5 * MS), Some(0.0));
        assert_eq!(p.spin(), SHORT_SPIN);
    }

    #[test]
    fn an_empty_interval_is_idle() {
        let t0 = Instant::now();
        let mut p = IdlePolicy::new(t0);
        assert_eq!(p.roll(t0, 5_000_000), 0.0);
        assert_eq!(p.spin(), SHORT_SPIN);
    }
}
