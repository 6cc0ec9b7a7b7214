//! One polling thread per endpoint: poll, turn the outcome into events, emit, wait (the
//! interval, or a growing backoff while the endpoint does not answer), until stopped.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tapio_plugin_api::{log, now_unix_nanos, EventSink, Health, Metric, PluginError};
use ureq::tls::TlsConfig;

use crate::client::Client;
use crate::config::Settings;
use crate::endpoint::Endpoint;
use crate::metrics;
use crate::monitor::{EndpointHealth, Monitor, Observation, Thresholds};

/// A stop flag threads can sleep on.
#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    /// Sleeps up to `timeout`; returns whether stop was requested.
    fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        while !*stopped {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *stopped
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }
}

/// What the threads share with `health` and `metrics`.
#[derive(Default)]
struct Shared {
    /// Per endpoint: its health and, when failing, the wait before the next try.
    endpoints: Mutex<Vec<(EndpointHealth, Option<Duration>)>>,
    polls: AtomicU64,
    unreachable_polls: AtomicU64,
    metrics_failures: AtomicU64,
    bad_metric_lines: AtomicU64,
    events: AtomicU64,
    dropped: AtomicU64,
}

/// The running threads.
pub struct Workers {
    stop: Arc<StopSignal>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// The wait after `failures` failed polls in a row: `interval` doubled per failure after
/// the first, capped at `max`.
pub fn backoff(interval: Duration, max: Duration, failures: u32) -> Duration {
    if failures <= 1 {
        return interval;
    }
    let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
    interval.saturating_mul(factor).min(max)
}

impl Workers {
    /// Starts one thread per endpoint.
    pub fn start(
        settings: &Settings,
        tls: &TlsConfig,
        sink: EventSink,
    ) -> Result<Self, PluginError> {
        let stop = Arc::new(StopSignal::default());
        let shared = Arc::new(Shared::default());
        *shared.endpoints.lock().unwrap_or_else(|p| p.into_inner()) =
            vec![(EndpointHealth::Pending, None); settings.endpoints.len()];
        let thresholds = Thresholds {
            health_latency: settings.health_latency_warning,
            db_size_bytes: settings.db_size_warning_bytes,
            wal_fsync_p99: settings.wal_fsync_warning,
        };
        let mut workers = Workers {
            stop,
            shared,
            threads: Vec::new(),
        };
        for (index, url) in settings.endpoints.iter().enumerate() {
            let endpoint = Endpoint::parse(url).map_err(PluginError::config)?;
            let client = Client::new(endpoint.clone(), settings.timeout, tls.clone());
            let monitor = Monitor::new(endpoint, thresholds, settings.emit_status);
            let poller = Poller {
                index,
                client,
                monitor,
                sink: sink.clone(),
                interval: settings.interval,
                max_backoff: settings.max_backoff,
                stop: Arc::clone(&workers.stop),
                shared: Arc::clone(&workers.shared),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("etcd-poll-{index}"))
                .spawn(move || poller.run());
            match spawned {
                Ok(handle) => workers.threads.push(handle),
                Err(e) => {
                    let _ = workers.stop();
                    return Err(PluginError::other(format!("cannot spawn poll thread: {e}")));
                }
            }
        }
        Ok(workers)
    }

    /// Healthy when every polled endpoint is; degraded with every reason otherwise.
    pub fn health(&self) -> Health {
        let endpoints = self
            .shared
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let reasons: Vec<String> = endpoints
            .iter()
            .filter_map(|(h, retry)| match (h, retry) {
                (EndpointHealth::Unhealthy(r), Some(wait)) => {
                    Some(format!("{r} (next try in {wait:?})"))
                }
                (EndpointHealth::Unhealthy(r), None) => Some(r.clone()),
                _ => None,
            })
            .collect();
        if reasons.is_empty() {
            Health::healthy()
        } else {
            Health::degraded(reasons.join("; "))
        }
    }

    /// Poll counters and per-endpoint `up` gauges.
    pub fn metrics(&self) -> Vec<Metric> {
        let s = &self.shared;
        vec![
            Metric::counter(
                "polls_total",
                "Polls of etcd endpoints.",
                s.polls.load(Relaxed),
            ),
            Metric::counter(
                "unreachable_polls_total",
                "Polls whose /health request failed.",
                s.unreachable_polls.load(Relaxed),
            ),
            Metric::counter(
                "metrics_failures_total",
                "Polls whose /metrics request failed after /health answered.",
                s.metrics_failures.load(Relaxed),
            ),
            Metric::counter(
                "bad_metric_lines_total",
                "Lines of wanted etcd metric families that could not be parsed.",
                s.bad_metric_lines.load(Relaxed),
            ),
            Metric::counter("events_total", "Events emitted.", s.events.load(Relaxed)),
            Metric::counter(
                "dropped_events_total",
                "Events the host's ring refused.",
                s.dropped.load(Relaxed),
            ),
        ]
    }

    /// Signals every thread and joins them (an in-flight request ends within `timeout`).
    pub fn stop(mut self) -> Result<(), PluginError> {
        self.stop.stop();
        let mut panicked = 0;
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                panicked += 1;
            }
        }
        if panicked > 0 {
            return Err(PluginError::other(format!(
                "{panicked} poll thread(s) panicked"
            )));
        }
        Ok(())
    }
}

/// One endpoint's loop.
struct Poller {
    index: usize,
    client: Client,
    monitor: Monitor,
    sink: EventSink,
    interval: Duration,
    max_backoff: Duration,
    stop: Arc<StopSignal>,
    shared: Arc<Shared>,
}

impl Poller {
    fn run(mut self) {
        log::info!("polling etcd endpoint {}", self.client.endpoint().url);
        loop {
            let observation = self.poll();
            let events = self.monitor.observe(now_unix_nanos(), observation);
            let failures = self.monitor.consecutive_failures();
            let wait = backoff(self.interval, self.max_backoff, failures);
            // Health first, so that it already agrees with the events when they arrive.
            if let Some(slot) = self
                .shared
                .endpoints
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(self.index)
            {
                *slot = (self.monitor.health(), (failures > 0).then_some(wait));
            }
            let outcome = tapio_event_buffer::emit_all(&self.sink, &events);
            self.shared
                .events
                .fetch_add(outcome.accepted.into(), Relaxed);
            self.shared
                .dropped
                .fetch_add(outcome.dropped.into(), Relaxed);
            if self.stop.wait(wait) {
                break;
            }
        }
    }

    fn poll(&self) -> Observation {
        self.shared.polls.fetch_add(1, Relaxed);
        // A pooled keep-alive connection the member closed fails once; one immediate retry
        // on a fresh connection tells that apart from a member that is down (not after a
        // timeout, which already took the whole deadline).
        let first = self.client.health();
        let health = match first {
            Err(ref e) if e.kind() != "timeout" => self.client.health(),
            other => other,
        };
        let health = match health {
            Ok(h) => h,
            Err(e) => {
                self.shared.unreachable_polls.fetch_add(1, Relaxed);
                if self.monitor.consecutive_failures() == 0 {
                    log::warn!("etcd endpoint unreachable: {}", e.full_message());
                }
                return Observation::Unreachable {
                    kind: e.kind(),
                    message: e.full_message(),
                };
            }
        };
        let metrics = match self.client.metrics() {
            Ok(text) => {
                let snapshot = metrics::parse(&text);
                self.shared
                    .bad_metric_lines
                    .fetch_add(snapshot.bad_lines.into(), Relaxed);
                Ok(snapshot)
            }
            Err(e) => {
                self.shared.metrics_failures.fetch_add(1, Relaxed);
                Err(e.full_message())
            }
        };
        Observation::Reached { health, metrics }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_interval_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), s(10), 0), s(1));
        assert_eq!(backoff(s(1), s(10), 1), s(1));
        assert_eq!(backoff(s(1), s(10), 2), s(2));
        assert_eq!(backoff(s(1), s(10), 4), s(8));
        assert_eq!(backoff(s(1), s(10), 5), s(10));
        assert_eq!(backoff(s(1), s(10), 200), s(10));
    }

    #[test]
    fn stop_signal_wakes_sleepers() {
        let signal = Arc::new(StopSignal::default());
        let s = Arc::clone(&signal);
        let t = std::thread::spawn(move || s.wait(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        signal.stop();
        assert!(t.join().unwrap());
        assert!(!StopSignal::default().wait(Duration::from_millis(1)));
    }
}
