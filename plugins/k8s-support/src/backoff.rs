//! Capped exponential backoff with jitter, for retrying an unreachable source.

use std::time::Duration;

/// Delays between retries: `initial`, doubling up to `max`, each with up to 20 % jitter
/// subtracted so that many nodes do not retry in step. [`reset`](Self::reset) after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    attempts: u32,
}

impl Backoff {
    /// A backoff starting at `initial` and capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
            attempts: 0,
        }
    }

    /// The delay before the next retry; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        self.attempts = self.attempts.saturating_add(1);
        let jitter = base.mul_f64(fastrand::f64() * 0.2);
        base - jitter
    }

    /// Failed attempts since the last [`reset`](Self::reset).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over from `initial` (call after a success).
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let d: Vec<_> = (0..4).map(|_| b.next_delay()).collect();
        let within = |d: Duration, base: u64| {
            d <= Duration::from_millis(base) && d >= Duration::from_millis(base * 8 / 10)
        };
        assert!(within(d[0], 100), "{d:?}");
        assert!(within(d[1], 200), "{d:?}");
        assert!(within(d[2], 350), "{d:?}");
        assert!(within(d[3], 350), "{d:?}");
        assert_eq!(b.attempts(), 4);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert!(within(b.next_delay(), 100));
    }
}
