//! The `agg` map's key and value (mirrors of `bpf-objects/src/syscall_errors.h`) and the
//! decoded aggregate. Pure.

use tapio_ebpf_support::record::c_str;

use crate::errno::Class;
use crate::syscalls::{resolve, Syscall};

/// Mirror of `struct syserr_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawKey {
    /// tgid.
    pub pid: u32,
    /// Syscall number (| `COMPAT`).
    pub nr: u32,
    /// errno.
    pub err: u32,
    /// Generation.
    pub gen: u32,
}
const _: () = assert!(size_of::<RawKey>() == 16);
// SAFETY: repr(C), integers only, no padding.
unsafe impl tapio_ebpf_support::aya::Pod for RawKey {}

/// Mirror of `struct syserr_value`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawValue {
    /// Failures.
    pub count: u64,
    /// First failure (CLOCK_BOOTTIME ns).
    pub first_ts_ns: u64,
    /// v2 cgroup.
    pub cgroup_id: u64,
    /// First failing thread.
    pub tid: u32,
    /// errno class.
    pub severity: u32,
    /// comm.
    pub comm: [u8; 16],
    /// Path argument of the first failure.
    pub path: [u8; 256],
}
const _: () = assert!(size_of::<RawValue>() == 304);
const _: () = assert!(std::mem::offset_of!(RawValue, tid) == 24);
const _: () = assert!(std::mem::offset_of!(RawValue, comm) == 32);
const _: () = assert!(std::mem::offset_of!(RawValue, path) == 48);
// SAFETY: repr(C), integers and byte arrays only, no padding; layout asserted above.
unsafe impl tapio_ebpf_support::aya::Pod for RawValue {}

/// One (process, syscall, errno) aggregate of one report interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// tgid.
    pub pid: u32,
    /// First failing thread.
    pub tid: u32,
    /// comm of the first failure.
    pub comm: String,
    /// v2 cgroup.
    pub cgroup_id: u64,
    /// The call.
    pub syscall: Syscall,
    /// errno.
    pub errno: u32,
    /// Severity class.
    pub class: Class,
    /// Failures in the interval.
    pub count: u64,
    /// First failure (CLOCK_BOOTTIME ns).
    pub first_boot_ns: u64,
    /// Path argument of the first failure (file syscalls; empty otherwise).
    pub path: String,
}

impl Aggregate {
    /// Decodes a map entry.
    pub fn from_raw(key: &RawKey, value: &RawValue) -> Aggregate {
        Aggregate {
            pid: key.pid,
            tid: value.tid,
            comm: c_str(&value.comm).into_owned(),
            cgroup_id: value.cgroup_id,
            syscall: resolve(key.nr),
            errno: key.err,
            class: Class::from_raw(value.severity).unwrap_or_else(|| Class::of(key.err)),
            count: value.count,
            first_boot_ns: value.first_ts_ns,
            path: c_str(&value.path).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_an_entry() {
        let mut value = RawValue {
            count: 7,
            first_ts_ns: 10,
            cgroup_id: 3,
            tid: 12,
            severity: 0,
            comm: [0; 16],
            path: [0; 256],
        };
        value.comm[..3].copy_from_slice(b"cat");
        value.path[..4].copy_from_slice(b"/x/y");
        let key = RawKey {
            pid: 11,
            nr: 257,
            err: 28,
            gen: 0,
        };
        let a = Aggregate::from_raw(&key, &value);
        assert_eq!(a.syscall.name, "openat");
        assert_eq!(a.class, Class::Critical, "class from the errno when unset");
        assert_eq!(
            (a.count, a.path.as_str(), a.comm.as_str()),
            (7, "/x/y", "cat")
        );
        assert_eq!(a.first_boot_ns, 10);
    }
}
