//! Integration tests of the journald collector on real journal files written by
//! `systemd-journal-remote` (apt `systemd-journal-remote`) from export-format text, with live
//! appends through a FIFO, compared entry by entry with `journalctl --file F -o json`.

mod journal;
mod scenarios;

use std::path::Path;

/// What is missing to run here, if anything.
fn missing() -> Option<String> {
    if !Path::new(journal::JOURNAL_REMOTE).exists() {
        return Some(format!("{} not found", journal::JOURNAL_REMOTE));
    }
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("journalctl").exists()))
        .unwrap_or(false);
    if !found {
        return Some("journalctl not found".into());
    }
    None
}

/// Whether `test` can run. When it cannot, prints `skipping <test>: <why>, needs <what>`
/// and returns false, or panics when `TAPIO_REQUIRE_ALL_TESTS=1` (CI).
fn can_run(test: &str) -> bool {
    match missing() {
        None => true,
        Some(why) => {
            let message = format!(
                "skipping {test}: {why}, needs apt systemd systemd-journal-remote (.ci/deps/platform-sd.sh)"
            );
            if std::env::var("TAPIO_REQUIRE_ALL_TESTS").as_deref() == Ok("1") {
                panic!("{message} (TAPIO_REQUIRE_ALL_TESTS=1 forbids skipping)");
            }
            eprintln!("{message}");
            false
        }
    }
}
