//! Integration tests of the CRI collector against a real containerd started by the test.

mod containerd;
mod events_stream;
mod lifecycle;
mod oci;
mod streaming_runtime;

use std::sync::Mutex;

/// containerd instances run one at a time (each test starts its own).
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Prints why a test cannot run and returns `true` so the caller returns; panics instead
/// when `TAPIO_REQUIRE_ALL_TESTS=1` (CI), so that nothing is skipped silently there.
pub fn skip(test: &str, why: &str, needs: &str) -> bool {
    let message = format!("skipping {test}: {why}, needs {needs}");
    if std::env::var("TAPIO_REQUIRE_ALL_TESTS").as_deref() == Ok("1") {
        panic!("{message} (TAPIO_REQUIRE_ALL_TESTS=1)");
    }
    eprintln!("{message}");
    true
}
