//! The health a collector's worker reports and `Collector::health` reads.

use std::sync::Arc;

use parking_lot::Mutex;
use tapio_plugin_api::Health;

/// Shared, cheaply cloned health state. Workers set it when their source fails or recovers;
/// `Collector::health` returns a copy without blocking on I/O.
#[derive(Debug, Clone)]
pub struct HealthCell(Arc<Mutex<Health>>);

impl HealthCell {
    /// A cell that starts degraded with `reason` (typically "connecting to ...").
    pub fn starting(reason: impl Into<String>) -> Self {
        HealthCell(Arc::new(Mutex::new(Health::degraded(reason))))
    }

    /// The current health.
    pub fn get(&self) -> Health {
        self.0.lock().clone()
    }

    /// Marks the source reachable.
    pub fn healthy(&self) {
        *self.0.lock() = Health::healthy();
    }

    /// Marks the source partly working, with the reason.
    pub fn degraded(&self, reason: impl Into<String>) {
        *self.0.lock() = Health::degraded(reason);
    }

    /// Marks the source unavailable, with the reason.
    pub fn failed(&self, reason: impl Into<String>) {
        *self.0.lock() = Health::failed(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_plugin_api::HealthStatus;

    #[test]
    fn clones_share_state() {
        let a = HealthCell::starting("connecting");
        let b = a.clone();
        assert_eq!(a.get().status, HealthStatus::Degraded);
        b.failed("refused");
        assert_eq!(a.get().status, HealthStatus::Failed);
        assert_eq!(a.get().reason.as_str(), "refused");
        b.healthy();
        assert_eq!(a.get(), Health::healthy());
    }
}
