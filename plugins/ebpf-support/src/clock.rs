//! Kernel timestamps to wall-clock time. BPF programs stamp records with
//! `bpf_ktime_get_boot_ns()` (CLOCK_BOOTTIME: counts suspend, never jumps); events carry
//! Unix nanoseconds.

/// Reads a clock in nanoseconds.
fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// CLOCK_BOOTTIME now, in nanoseconds.
pub fn boot_now_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME) as u64
}

/// CLOCK_MONOTONIC now, in nanoseconds (the clock of `task_struct.start_time`).
pub fn monotonic_now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC) as u64
}

/// Converts boot-time nanoseconds to Unix nanoseconds with an offset measured once.
#[derive(Debug, Clone, Copy)]
pub struct BootClock {
    offset_ns: i128,
}

impl BootClock {
    /// Measures the offset between the wall clock and the boot clock now.
    pub fn new() -> Self {
        let realtime = clock_ns(libc::CLOCK_REALTIME);
        let boot = clock_ns(libc::CLOCK_BOOTTIME);
        BootClock {
            offset_ns: realtime - boot,
        }
    }

    /// A clock with a fixed offset (tests).
    pub const fn with_offset(offset_ns: i128) -> Self {
        BootClock { offset_ns }
    }

    /// Unix nanoseconds of a boot-time timestamp.
    pub fn to_unix_ns(&self, boot_ns: u64) -> u64 {
        (i128::from(boot_ns) + self.offset_ns).max(0) as u64
    }
}

impl Default for BootClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_boot_time_to_wall_clock() {
        let clock = BootClock::new();
        let now = tapio_plugin_api::now_unix_nanos() as i128;
        let converted = clock.to_unix_ns(boot_now_ns()) as i128;
        assert!(
            (converted - now).abs() < 1_000_000_000,
            "{converted} vs {now}"
        );
        assert_eq!(BootClock::with_offset(10).to_unix_ns(5), 15);
        assert_eq!(BootClock::with_offset(-10).to_unix_ns(5), 0);
    }
}
