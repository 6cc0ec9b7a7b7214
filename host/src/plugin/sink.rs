//! The event sink the host hands to each plugin instance: copies borrowed events into the
//! shared ring, applies the full-ring policy and counts every accepted and dropped event.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abi_stable::std_types::RSlice;
use tapio_plugin_api as api;
use tapio_ring::Producer;

use crate::event::Event;
use crate::plugin::stats::PluginStats;

/// What an emit does when the ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    /// Refuse the rest of the batch at once and count it as dropped.
    Drop,
    /// Retry until the deadline, then drop the rest and count it.
    Wait(Duration),
}

/// State shared by every clone of one instance's sink.
pub struct SinkShared {
    ring: Producer<Event>,
    plugin: &'static str,
    stats: Arc<PluginStats>,
    policy: FullPolicy,
    open: AtomicBool,
}

impl SinkShared {
    /// A sink for `plugin` writing into `ring`.
    pub fn new(
        ring: Producer<Event>,
        plugin: &'static str,
        stats: Arc<PluginStats>,
        policy: FullPolicy,
    ) -> Arc<Self> {
        Arc::new(SinkShared {
            ring,
            plugin,
            stats,
            policy,
            open: AtomicBool::new(true),
        })
    }

    /// Refuses every later emit (after the instance stopped or was abandoned).
    pub fn close(&self) {
        self.open.store(false, Ordering::Release);
    }

    /// Copies `events` into the ring; returns how many were accepted (a prefix).
    pub fn emit(&self, events: &[api::Event<'_>]) -> api::EmitOutcome {
        let total = events.len();
        let mut accepted = 0;
        if self.open.load(Ordering::Acquire) {
            let deadline = match self.policy {
                FullPolicy::Drop => None,
                FullPolicy::Wait(d) => Some(Instant::now() + d),
            };
            let mut backoff = 0u32;
            loop {
                let rest = &events[accepted..];
                accepted += self
                    .ring
                    .push_with(rest.len(), |i| Event::copy_from_abi(&rest[i], self.plugin));
                if accepted == total {
                    break;
                }
                match deadline {
                    Some(deadline) if Instant::now() < deadline => wait_a_little(&mut backoff),
                    _ => break,
                }
            }
        }
        let dropped = total - accepted;
        self.stats
            .emitted
            .fetch_add(accepted as u64, Ordering::Relaxed);
        if dropped > 0 {
            self.stats
                .dropped
                .fetch_add(dropped as u64, Ordering::Relaxed);
        }
        api::EmitOutcome {
            accepted: accepted as u32,
            dropped: dropped as u32,
        }
    }
}

/// Spins, then yields, then sleeps briefly: the consumer needs the core on small machines.
fn wait_a_little(backoff: &mut u32) {
    *backoff += 1;
    match *backoff {
        0..=8 => std::hint::spin_loop(),
        9..=32 => std::thread::yield_now(),
        _ => std::thread::sleep(Duration::from_micros(50)),
    }
}

/// The `EventSinkApi` implementation handed across the boundary.
#[derive(Clone)]
pub struct HostSink(pub Arc<SinkShared>);

impl api::EventSinkApi for HostSink {
    fn emit(&self, events: RSlice<'_, api::Event<'_>>) -> api::EmitOutcome {
        // No panic may unwind into the plugin: count the batch as dropped instead.
        catch_unwind(AssertUnwindSafe(|| self.0.emit(events.as_slice()))).unwrap_or_else(|_| {
            let n = events.len() as u64;
            self.0.stats.dropped.fetch_add(n, Ordering::Relaxed);
            self.0.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                plugin = self.0.plugin,
                events = n,
                "host panicked while copying events; batch dropped"
            );
            api::EmitOutcome {
                accepted: 0,
                dropped: n as u32,
            }
        })
    }
}
