//! Record layout conventions shared by every program.
//!
//! Every record starts with [`RecordHeader`] (mirror of `struct tapio_record_header` in
//! `bpf-objects/src/tapio.h`). A program's records are `#[repr(C)]` structs implementing
//! [`Record`], with compile-time assertions on their size and the offsets of their fields,
//! the same numbers as the `_Static_assert`s of the C header:
//!
//! ```
//! use tapio_ebpf_support::record::{Record, RecordHeader};
//! #[repr(C)]
//! #[derive(Clone, Copy)]
//! struct Sample { hdr: RecordHeader, value: u64 }
//! const _: () = assert!(size_of::<Sample>() == 24);
//! const _: () = assert!(std::mem::offset_of!(Sample, value) == 16);
//! // SAFETY: repr(C), only integers: every bit pattern is valid.
//! unsafe impl Record for Sample {}
//! ```

/// The first 16 bytes of every record.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordHeader {
    /// Program-specific record kind.
    pub kind: u32,
    /// CPU that produced it.
    pub cpu: u32,
    /// `bpf_ktime_get_boot_ns()` at production.
    pub ts_boot_ns: u64,
}
const _: () = assert!(size_of::<RecordHeader>() == 16);
const _: () = assert!(std::mem::offset_of!(RecordHeader, ts_boot_ns) == 8);

/// A plain record type that can be read from ring-buffer bytes.
///
/// # Safety
/// The type must be `#[repr(C)]`, contain only integers and arrays of integers (every bit
/// pattern valid), and mirror the C layout exactly (assert its size and offsets).
pub unsafe trait Record: Copy + 'static {
    /// Reads one record from the start of `bytes`; `None` when `bytes` is too short.
    fn read(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < size_of::<Self>() {
            return None;
        }
        // SAFETY: the length is checked; `Record` guarantees every bit pattern is valid;
        // `read_unaligned` has no alignment requirement.
        Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }
}

// SAFETY: repr(C), integers only.
unsafe impl Record for RecordHeader {}

/// The record kind of raw ring bytes (`None` when shorter than a header).
pub fn kind_of(bytes: &[u8]) -> Option<u32> {
    RecordHeader::read(bytes).map(|h| h.kind)
}

/// The text of a NUL-terminated fixed-size C string field (lossy UTF-8, up to the first NUL).
pub fn c_str(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_header_and_strings() {
        let mut bytes = vec![0u8; 20];
        bytes[0] = 7;
        bytes[4] = 1;
        bytes[8] = 9;
        let h = RecordHeader::read(&bytes).unwrap();
        assert_eq!((h.kind, h.cpu, h.ts_boot_ns), (7, 1, 9));
        assert_eq!(RecordHeader::read(&bytes[..15]), None);
        assert_eq!(kind_of(&bytes), Some(7));
        assert_eq!(c_str(b"bash\0\0junk"), "bash");
        assert_eq!(c_str(b"full"), "full");
    }
}
