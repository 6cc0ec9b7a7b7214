//! The host's own telemetry: Prometheus metrics, `/healthz` and `/readyz`, the periodic
//! status line, and systemd notifications.

pub mod http;
pub mod metrics;
pub mod status;
pub mod systemd;

use std::sync::Arc;

use parking_lot::Mutex;

use crate::pipeline::PipelineStats;
use crate::plugin::manager::ManagerStatus;
use crate::plugin::stats::StatsRegistry;

/// Everything the endpoints and the status line read. Cheap to clone.
#[derive(Clone)]
pub struct Observer {
    /// Per-plugin counters.
    pub plugins: Arc<StatsRegistry>,
    /// The plugin manager's published status.
    pub manager: Arc<Mutex<ManagerStatus>>,
    /// Pipeline counters.
    pub pipeline: Arc<PipelineStats>,
    /// A producer handle, for the ring's fill level.
    pub ring: tapio_ring::Producer<crate::event::Event>,
    /// Counters of the enabled exporters.
    pub exporters: Vec<Arc<crate::export::ExporterStats>>,
}

impl Observer {
    /// Events dropped since start: by every plugin (ring full, plugin stopped), and with
    /// pipeline stages that panicked (`pipeline::guard`).
    pub fn dropped_total(&self) -> u64 {
        self.plugins
            .all()
            .iter()
            .map(|(_, s)| s.dropped.load(std::sync::atomic::Ordering::Relaxed))
            .sum::<u64>()
            + self.pipeline.stage_dropped()
    }
}
