//! The benchmark object (`bpf-objects/src/bench.bpf.c`): every syscall entry of one thread
//! produces `burst` 64-byte records. Used by the ring-buffer benchmark and this crate's tests.

use crate::{record::Record, record::RecordHeader, Attach, ObjectSpec, ProgramSpec};

/// The compiled object.
pub static BENCH_OBJECT: &[u8] = crate::include_bpf_object!("../../../bpf-objects/obj/bench.bpf.o");

/// `BENCH_KIND_RECORD` of `bench.h`.
pub const BENCH_KIND_RECORD: u32 = 1;

/// Mirror of `struct bench_record` (`bench.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BenchRecord {
    /// Common header.
    pub hdr: RecordHeader,
    /// Index within the burst.
    pub seq: u64,
    /// Filler up to 64 bytes.
    pub payload: [u64; 5],
}
const _: () = assert!(size_of::<BenchRecord>() == 64);
const _: () = assert!(std::mem::offset_of!(BenchRecord, seq) == 16);

// SAFETY: repr(C), integers only, layout asserted above.
unsafe impl Record for BenchRecord {}

/// A spec producing `burst` records per syscall of thread `target_tid`.
pub fn spec(target_tid: u32, burst: u32) -> ObjectSpec {
    ObjectSpec::new("bench", BENCH_OBJECT)
        .program(ProgramSpec::new(
            "bench_sys_enter",
            Attach::RawTracepoint("sys_enter"),
        ))
        .global("target_tid", target_tid)
        .global("burst", burst)
}
