//! A cache hint: ask the CPU to start fetching memory that will be read soon, without
//! waiting for it (the correlation stage's warm pass, the entity tables, the trace windows).

/// Asks the CPU to fetch the cache lines of `len` bytes from `at`. A hint only: the address
/// need not be valid memory (it is never dereferenced).
pub(crate) fn prefetch<T>(at: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = at as usize;
        let mut line = start & !63;
        while line < start + len {
            // SAFETY: prefetch is a hint; it does not access memory or fault.
            unsafe {
                std::arch::x86_64::_mm_prefetch(line as *const i8, std::arch::x86_64::_MM_HINT_T0);
            }
            line += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, len);
}
