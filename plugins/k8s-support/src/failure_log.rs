//! Logs a source that keeps failing without flooding the journal: on a node without
//! Kubernetes the cri, kubeapi and kubelet collectors retry for as long as they run.
//!
//! The first failure and every change of reason are logged at WARN; a repeat of the same
//! reason at DEBUG, with a WARN reminder (and the count) every [`REMIND_EVERY`]; recovery
//! at INFO with the number of failures it ended. The plugin's health carries the current
//! reason all along.

use std::time::{Duration, Instant};

/// How often a failure that does not change is logged at WARN again.
pub const REMIND_EVERY: Duration = Duration::from_secs(600);

/// What [`FailureLog::failed`] decided for one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// At WARN: a first failure, a new reason, or the periodic reminder.
    Warn,
    /// At DEBUG: the same reason again.
    Debug,
}

/// The failure state of one source (see the module docs).
#[derive(Debug)]
pub struct FailureLog {
    source: String,
    reason: Option<String>,
    failures: u64,
    warned_at: Option<Instant>,
}

impl FailureLog {
    /// A log for `source` (the log lines' prefix: `cri`, `kubelet`, `kubeapi: pods`).
    pub fn new(source: impl Into<String>) -> Self {
        FailureLog {
            source: source.into(),
            reason: None,
            failures: 0,
            warned_at: None,
        }
    }

    /// Records one failure, retried after `retry_in` (when the caller knows); logs it as the
    /// module docs say.
    pub fn failed(&mut self, reason: &str, retry_in: Option<Duration>) -> Logged {
        self.failed_at(reason, retry_in, Instant::now())
    }

    fn failed_at(&mut self, reason: &str, retry_in: Option<Duration>, now: Instant) -> Logged {
        let retry =
            retry_in.map_or_else(|| "retrying".to_owned(), |d| format!("retrying in {d:?}"));
        self.failures += 1;
        let same = self.reason.as_deref() == Some(reason);
        let due = self
            .warned_at
            .is_none_or(|t| now.duration_since(t) >= REMIND_EVERY);
        if same && !due {
            log::debug!(
                "{}: {reason}; {retry} (failure {} in a row)",
                self.source,
                self.failures
            );
            return Logged::Debug;
        }
        if same {
            log::warn!(
                "{}: still failing after {} attempts: {reason}; {retry} (repeats are logged at debug)",
                self.source,
                self.failures
            );
        } else {
            log::warn!(
                "{}: {reason}; {retry} (repeats are logged at debug)",
                self.source
            );
            self.reason = Some(reason.to_owned());
        }
        self.warned_at = Some(now);
        Logged::Warn
    }

    /// The source works again: logs the recovery when there were failures, and resets.
    pub fn recovered(&mut self) {
        if self.failures > 0 {
            log::info!(
                "{}: recovered after {} failed attempts",
                self.source,
                self.failures
            );
        }
        self.reason = None;
        self.failures = 0;
        self.warned_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_go_to_debug_until_the_reason_changes_or_the_reminder_is_due() {
        let mut f = FailureLog::new("kubelet");
        let t0 = Instant::now();
        let d = Duration::from_secs(1);
        let r = Some(d);
        assert_eq!(f.failed_at("refused", r, t0), Logged::Warn);
        assert_eq!(f.failed_at("refused", r, t0 + d), Logged::Debug);
        assert_eq!(f.failed_at("refused", r, t0 + 2 * d), Logged::Debug);
        assert_eq!(f.failed_at("timed out", r, t0 + 3 * d), Logged::Warn);
        assert_eq!(f.failed_at("timed out", r, t0 + 4 * d), Logged::Debug);
        assert_eq!(
            f.failed_at("timed out", r, t0 + 3 * d + REMIND_EVERY),
            Logged::Warn,
            "a reminder every REMIND_EVERY"
        );
        assert_eq!(f.failures, 6);
        f.recovered();
        assert_eq!(
            f.failed_at("timed out", r, t0 + 5 * d),
            Logged::Warn,
            "after recovery a failure is news"
        );
    }
}
