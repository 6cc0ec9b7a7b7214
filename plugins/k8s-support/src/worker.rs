//! A thread running a plugin's own tokio runtime.
//!
//! Plugins have no host runtime (each `.so` has its own tokio statics). [`AsyncWorker`]
//! builds a current-thread runtime on a named thread in `start`, runs the collector's main
//! future with a [`CancellationToken`], and in `stop` cancels it, waits for the future to
//! return, shuts the runtime down (dropping any task still spawned on it) and joins the
//! thread.

use std::future::Future;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Errors starting or stopping an [`AsyncWorker`].
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The runtime or its thread could not be created.
    #[error("cannot start worker thread {name}")]
    Spawn {
        /// Thread name.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The worker thread panicked.
    #[error("worker thread {name} panicked")]
    Panicked {
        /// Thread name.
        name: String,
    },
}

/// A running worker thread with its own runtime.
#[derive(Debug)]
pub struct AsyncWorker {
    name: String,
    cancel: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl AsyncWorker {
    /// Starts thread `name` running `main(cancel)` on a fresh current-thread runtime with
    /// I/O and timers. `main` must return soon after `cancel` fires.
    pub fn start<F, Fut>(name: &str, main: F) -> Result<Self, WorkerError>
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let spawn_err = |source| WorkerError::Spawn {
            name: name.to_owned(),
            source,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(spawn_err)?;
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(main(token));
                // Tasks spawned by `main` and still pending are dropped here.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(spawn_err)?;
        Ok(AsyncWorker {
            name: name.to_owned(),
            cancel,
            thread: Some(thread),
        })
    }

    /// Cancels the worker and joins its thread.
    pub fn stop(mut self) -> Result<(), WorkerError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), WorkerError> {
        self.cancel.cancel();
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| WorkerError::Panicked {
                name: self.name.clone(),
            }),
            None => Ok(()),
        }
    }
}

impl Drop for AsyncWorker {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn stop_cancels_and_joins() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let w = AsyncWorker::start("t-worker", move |cancel| async move {
            tokio::spawn(std::future::pending::<()>());
            cancel.cancelled().await;
            flag.store(true, Ordering::SeqCst);
        })
        .unwrap();
        w.stop().unwrap();
        assert!(done.load(Ordering::SeqCst));
    }
}
