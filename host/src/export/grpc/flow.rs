//! The server's flow-control rate limit (`FlowControl.max_events_per_second`).

use std::time::{Duration, Instant};

/// Server-imposed rate limit: a token bucket with a one-second burst.
pub(super) struct Bucket {
    pub(super) rate: f64,
    pub(super) tokens: f64,
    pub(super) last: Instant,
}

impl Bucket {
    pub(super) fn refill(&mut self, now: Instant) {
        let dt = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        self.last = now;
    }

    /// When a send may happen (now if the bucket is not in debt).
    pub(super) fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        (self.tokens < 0.0).then(|| now + Duration::from_secs_f64(-self.tokens / self.rate))
    }
}
