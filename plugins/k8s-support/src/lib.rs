//! Plumbing shared by the k8s collector plugins (`cri`, `kubeapi`, `kubelet`):
//!
//! - [`OwnedEvent`]: an event that owns its strings, lent to the sink in batches;
//! - [`HealthCell`]: the health a worker reports and `Collector::health` reads;
//! - [`Backoff`]: capped exponential backoff with jitter for reconnects;
//! - [`FailureLog`]: the log of a source that keeps failing, without flooding;
//! - [`AsyncWorker`]: a thread running the plugin's own tokio runtime, stopped and joined
//!   by `stop` (plugins never see the host's runtime);
//! - `testing` (feature): in-test HTTP(S) servers with self-signed certificates, for tests
//!   of collectors whose real peer (API server, kubelet) cannot run here.

#![warn(missing_docs, unreachable_pub)]

mod backoff;
mod emit;
mod errors;
mod failure_log;
mod health;
mod worker;

#[cfg(feature = "testing")]
pub mod testing;

pub use backoff::Backoff;
pub use emit::{emit_all, owned_event, OwnedEvent, OwnedValue};
pub use errors::error_chain;
pub use failure_log::{FailureLog, Logged, REMIND_EVERY};
pub use health::HealthCell;
pub use tokio_util::sync::CancellationToken;
pub use worker::{AsyncWorker, WorkerError};
