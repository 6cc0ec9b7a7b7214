//! Settings of the global allocator (mimalloc, set in `main.rs` and in the benches).
//!
//! mimalloc returns freed memory to the kernel (`madvise`) once it has stayed unused for
//! its purge delay, 1 s by default. Under a steady event stream the pipeline thread then
//! faults the same pages back in: with the default, the correlation bench at 300 k events/s
//! showed stalls of about 10 ms (max latency 10-11 ms in six runs of six, p99 0.5-2.3 ms);
//! with a 10 s delay the max was 2.8-5.4 ms and p99 0.4-0.6 ms
//! (`CORRELATION_BENCH_PARTS=2 CORRELATION_BENCH_RATE=300000 cargo bench -p
//! tapio-collector --bench correlation`, `MIMALLOC_PURGE_DELAY` set for each run). Idle
//! memory still goes back to the kernel, 10 s after the load stops.

use std::ffi::c_long;

/// mimalloc's `mi_option_purge_delay` (v3 `mi_option_e`; the sys crate leaves option
/// constants out on purpose, see its docs). Checked by the test below.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds freed memory stays with the process before it is returned to the kernel.
pub const PURGE_DELAY_MS: c_long = 10_000;

/// Applies [`PURGE_DELAY_MS`] unless the operator set `MIMALLOC_PURGE_DELAY` (mimalloc
/// reads its `MIMALLOC_*` environment itself). Call first thing in `main`.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one integer option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

/// The purge delay in effect, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    // SAFETY: reads one integer option.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_index_is_the_purge_delay_and_configure_sets_it() {
        match std::env::var("MIMALLOC_PURGE_DELAY") {
            // The operator's value wins: mimalloc read it, configure leaves it.
            Ok(v) => {
                configure();
                assert_eq!(purge_delay_ms().to_string(), v);
            }
            Err(_) => {
                // mimalloc v3's default purge delay: the index names that option.
                assert_eq!(
                    purge_delay_ms(),
                    1000,
                    "index 15 is not mimalloc's purge delay"
                );
                configure();
                assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
            }
        }
    }
}
