//! The reader thread: owns the sd-journal handle (not thread-safe), opens the configured
//! source with its matches, resumes after the persisted cursor, emits batches, persists the
//! cursor after each, follows new entries, and reopens with backoff when reading fails.
//! Entries the host's ring refuses are read again after a pause: none is lost.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use systemd::journal::{self, Journal, OpenDirectoryOptions, OpenFilesOptions};
use tapio_plugin_api::{log, EventSink, Health, Metric, PluginError};

use crate::config::{Plan, Source};
use crate::cursor_store::CursorStore;
use crate::entry::{parse_priority_field, Entry};
use crate::error::{chain, JournalError};

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

    fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }
}

/// What the thread shares with `health` and `metrics`.
struct Shared {
    health: Mutex<Health>,
    entries: AtomicU64,
    refused: AtomicU64,
    open_failures: AtomicU64,
    cursor_failures: AtomicU64,
    non_utf8: AtomicU64,
}

impl Shared {
    fn set_health(&self, h: Health) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = h;
    }
}

/// The running reader.
pub struct Reader {
    stop: Arc<StopSignal>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    /// Starts the reader thread.
    pub fn start(plan: Plan, store: CursorStore, sink: EventSink) -> Result<Self, PluginError> {
        let stop = Arc::new(StopSignal::default());
        let shared = Arc::new(Shared {
            health: Mutex::new(Health::degraded("opening the journal")),
            entries: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            open_failures: AtomicU64::new(0),
            cursor_failures: AtomicU64::new(0),
            non_utf8: AtomicU64::new(0),
        });
        let (s, sh) = (Arc::clone(&stop), Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name("journald-reader".into())
            .spawn(move || run(&plan, &store, &sink, &sh, &s))
            .map_err(|e| PluginError::other(format!("cannot spawn the reader thread: {e}")))?;
        Ok(Reader {
            stop,
            shared,
            thread: Some(thread),
        })
    }

    /// The reader's health.
    pub fn health(&self) -> Health {
        self.shared
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counters.
    pub fn metrics(&self) -> Vec<Metric> {
        let s = &self.shared;
        vec![
            Metric::counter(
                "entries_total",
                "Journal entries emitted (accepted by the host).",
                s.entries.load(Relaxed),
            ),
            Metric::counter(
                "refused_entries_total",
                "Entries the host's ring refused; each is read and emitted again later.",
                s.refused.load(Relaxed),
            ),
            Metric::counter(
                "open_failures_total",
                "Failed attempts to open or read the journal (each followed by a backoff).",
                s.open_failures.load(Relaxed),
            ),
            Metric::counter(
                "cursor_write_failures_total",
                "Cursor saves that failed (a restart may then repeat entries).",
                s.cursor_failures.load(Relaxed),
            ),
            Metric::counter(
                "non_utf8_fields_total",
                "Field values that were not UTF-8 (emitted with U+FFFD replacements).",
                s.non_utf8.load(Relaxed),
            ),
        ]
    }

    /// Stops the thread after its current batch (its cursor is persisted) and joins it.
    pub fn stop(mut self) -> Result<(), PluginError> {
        self.stop.stop();
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(PluginError::other("the reader thread panicked")),
            _ => Ok(()),
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens the source and installs the matches.
fn open(plan: &Plan) -> Result<Journal, JournalError> {
    let (what, opened) = match &plan.source {
        Source::System => (
            "the system journal".to_owned(),
            journal::OpenOptions::default()
                .system(true)
                .local_only(false)
                .open(),
        ),
        Source::Directory(dir) => (
            format!("journal directory {dir}"),
            OpenDirectoryOptions::default().open_directory(dir.as_str()),
        ),
        Source::Files(files) => (
            format!("journal files {}", files.join(", ")),
            OpenFilesOptions::default().open_files(files.iter().map(String::as_str)),
        ),
    };
    let mut j = opened.map_err(|source| JournalError::Open { what, source })?;
    for (field, value) in &plan.matches {
        j.match_add(field, value.as_bytes().to_vec())
            .map_err(|source| JournalError::Read {
                call: "sd_journal_add_match",
                source,
            })?;
    }
    Ok(j)
}

fn read_err(call: &'static str) -> impl FnOnce(systemd::Error) -> JournalError {
    move |source| JournalError::Read { call, source }
}

fn run(plan: &Plan, store: &CursorStore, sink: &EventSink, shared: &Shared, stop: &StopSignal) {
    let mut failures = 0u32;
    while !stop.is_stopped() {
        let outcome = open(plan).and_then(|mut j| follow(&mut j, plan, store, sink, shared, stop));
        let e = match outcome {
            Ok(()) => return,
            Err(e) => e,
        };
        failures = failures.saturating_add(1);
        shared.open_failures.fetch_add(1, Relaxed);
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        let wait = Duration::from_millis(250)
            .saturating_mul(factor)
            .min(plan.max_backoff);
        let reason = chain(&e);
        if failures == 1 {
            log::warn!("journald collector: {reason}");
        }
        shared.set_health(Health::failed(format!(
            "{reason} (attempt {failures} failed, next in {wait:?})"
        )));
        if stop.wait(wait) {
            return;
        }
    }
}

/// Reads from the saved position until stopped (`Ok`) or until reading fails (`Err`).
fn follow(
    j: &mut Journal,
    plan: &Plan,
    store: &CursorStore,
    sink: &EventSink,
    shared: &Shared,
    stop: &StopSignal,
) -> Result<(), JournalError> {
    // Position: just after the saved cursor, or at the configured end.
    let mut skip = store.load()?;
    match &skip {
        Some(c) => j
            .seek_cursor(c.as_str())
            .map_err(read_err("sd_journal_seek_cursor"))?,
        None if plan.from_head => j.seek_head().map_err(read_err("sd_journal_seek_head"))?,
        None => {
            j.seek_tail().map_err(read_err("sd_journal_seek_tail"))?;
            j.previous().map_err(read_err("sd_journal_previous"))?;
        }
    }
    let system_without_files = plan.source == Source::System
        && !j.has_runtime_files().unwrap_or(true)
        && !j.has_persistent_files().unwrap_or(true);
    shared.set_health(if system_without_files {
        Health::degraded("no journal files under /run/log/journal or /var/log/journal")
    } else {
        Health::healthy()
    });

    let mut batch: Vec<Entry> = Vec::with_capacity(plan.batch_size);
    let mut refused_pause = Duration::ZERO;
    let mut at_end = false;
    let mut saved: Option<String> = None;
    while !stop.is_stopped() {
        batch.clear();
        if !at_end || plan.follow {
            while batch.len() < plan.batch_size {
                if j.next().map_err(read_err("sd_journal_next"))? == 0 {
                    break;
                }
                if let Some(c) = skip.take() {
                    // The first entry after seeking to the saved cursor is that entry (if it
                    // still exists): already emitted before the restart.
                    if j.test_cursor(c.as_str())
                        .map_err(read_err("sd_journal_test_cursor"))?
                    {
                        continue;
                    }
                }
                batch.push(read_entry(j, plan, shared)?);
            }
        }
        if batch.is_empty() {
            at_end = true;
            if plan.follow {
                j.wait(Some(plan.poll_interval))
                    .map_err(read_err("sd_journal_wait"))?;
            } else {
                stop.wait(plan.poll_interval);
            }
            continue;
        }
        let attrs: Vec<_> = batch.iter().map(Entry::attributes).collect();
        let events: Vec<_> = batch.iter().zip(&attrs).map(|(e, a)| e.event(a)).collect();
        let outcome = sink.emit(&events);
        let accepted = usize::try_from(outcome.accepted)
            .unwrap_or(0)
            .min(batch.len());
        shared.entries.fetch_add(accepted as u64, Relaxed);
        if let Some(last) = accepted.checked_sub(1).and_then(|i| batch.get(i)) {
            saved = Some(last.cursor.clone());
            if let Err(e) = store.save(&last.cursor, false) {
                if shared.cursor_failures.fetch_add(1, Relaxed) == 0 {
                    log::warn!("journald collector: {}", chain(&e));
                }
                shared.set_health(Health::degraded(chain(&e)));
            }
        }
        if accepted < batch.len() {
            // The ring is full: go back to the first refused entry and try again later.
            shared
                .refused
                .fetch_add((batch.len() - accepted) as u64, Relaxed);
            j.seek_cursor(batch[accepted].cursor.as_str())
                .map_err(read_err("sd_journal_seek_cursor"))?;
            refused_pause =
                (refused_pause * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
            stop.wait(refused_pause);
        } else {
            refused_pause = Duration::ZERO;
        }
    }
    if let Some(c) = saved {
        store.save(&c, true)?;
    }
    Ok(())
}

/// Copies the fields the collector uses out of the current entry.
fn read_entry(j: &mut Journal, plan: &Plan, shared: &Shared) -> Result<Entry, JournalError> {
    let text = |j: &mut Journal, field: &str| -> Result<Option<String>, JournalError> {
        let data = j.get_data(field).map_err(read_err("sd_journal_get_data"))?;
        Ok(data.and_then(|d| d.value().map(<[u8]>::to_vec)).map(|v| {
            String::from_utf8(v).unwrap_or_else(|e| {
                shared.non_utf8.fetch_add(1, Relaxed);
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            })
        }))
    };
    let cursor = j.cursor().map_err(read_err("sd_journal_get_cursor"))?;
    let realtime_usec = j
        .timestamp_usec()
        .map_err(read_err("sd_journal_get_realtime_usec"))?;
    let (_, boot) = j
        .monotonic_timestamp()
        .map_err(read_err("sd_journal_get_monotonic_usec"))?;
    let mut extra = Vec::with_capacity(plan.fields.len());
    for (field, key) in &plan.fields {
        if let Some(v) = text(j, field)? {
            extra.push((key.clone(), v));
        }
    }
    Ok(Entry {
        realtime_usec,
        cursor,
        boot_id: boot.to_string(),
        message: text(j, "MESSAGE")?,
        unit: text(j, "_SYSTEMD_UNIT")?,
        priority: text(j, "PRIORITY")?
            .as_deref()
            .and_then(parse_priority_field),
        identifier: text(j, "SYSLOG_IDENTIFIER")?,
        pid: text(j, "_PID")?.and_then(|p| p.trim().parse().ok()),
        extra,
    })
}
