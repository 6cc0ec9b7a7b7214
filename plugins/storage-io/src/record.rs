//! The ring record of `storage_io.bpf.c` (mirror of `bpf-objects/src/storage_io.h`) and its
//! decoded form.

use tapio_ebpf_support::record::{c_str, Record, RecordHeader};

/// `STORAGE_IO_KIND_BLOCK`: one block request, issue -> complete.
pub const KIND_BLOCK: u32 = 1;
/// `STORAGE_IO_KIND_FSYNC`: one fsync / fdatasync call.
pub const KIND_FSYNC: u32 = 2;

/// `STORAGE_IO_F_*` bits.
pub mod flags {
    /// REQ_SYNC.
    pub const SYNC: u32 = 0x1;
    /// REQ_META.
    pub const META: u32 = 0x2;
    /// REQ_FUA.
    pub const FUA: u32 = 0x4;
    /// REQ_PREFLUSH.
    pub const PREFLUSH: u32 = 0x8;
    /// pid/comm are the issuing context (the submitter was not seen).
    pub const ISSUER: u32 = 0x10;
    /// The fsync record is an fdatasync.
    pub const DATASYNC: u32 = 0x20;
}

/// Mirror of `struct storage_io_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawRecord {
    /// Common header (`ts_boot_ns` = completion).
    pub hdr: RecordHeader,
    /// Issue -> complete (block) or enter -> exit (fsync).
    pub latency_ns: u64,
    /// Submit -> issue (block); 0 when unknown.
    pub queue_ns: u64,
    /// First sector (block).
    pub sector: u64,
    /// v2 cgroup id of the submitter.
    pub cgroup_id: u64,
    /// Kernel dev_t (major << 20 | minor).
    pub dev: u32,
    /// Bytes completed (block).
    pub bytes: u32,
    /// Submitter tgid (0 = unknown).
    pub pid: u32,
    /// Submitter thread id.
    pub tid: u32,
    /// REQ_OP_* (block) or the fd (fsync).
    pub op: u32,
    /// blk_status_t (block) or the return value (fsync).
    pub error: i32,
    /// `flags::*`.
    pub flags: u32,
    /// Padding.
    pub _pad: u32,
    /// Submitter comm.
    pub comm: [u8; 16],
    /// fsync: the file's name.
    pub name: [u8; 48],
}
const _: () = assert!(size_of::<RawRecord>() == 144);
const _: () = assert!(std::mem::offset_of!(RawRecord, latency_ns) == 16);
const _: () = assert!(std::mem::offset_of!(RawRecord, dev) == 48);
const _: () = assert!(std::mem::offset_of!(RawRecord, flags) == 72);
const _: () = assert!(std::mem::offset_of!(RawRecord, comm) == 80);
const _: () = assert!(std::mem::offset_of!(RawRecord, name) == 96);

// SAFETY: repr(C), integers and byte arrays only; layout asserted above.
unsafe impl Record for RawRecord {}

/// What an I/O did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// REQ_OP_READ.
    Read,
    /// REQ_OP_WRITE.
    Write,
    /// REQ_OP_FLUSH (a cache flush, e.g. from fsync).
    Flush,
    /// REQ_OP_DISCARD.
    Discard,
    /// REQ_OP_WRITE_ZEROES.
    WriteZeroes,
    /// Any other request operation.
    Other,
    /// fsync(2).
    Fsync,
    /// fdatasync(2).
    Fdatasync,
}

impl Operation {
    /// From a block request's REQ_OP_* value.
    pub fn from_req_op(op: u32) -> Self {
        match op {
            0 => Operation::Read,
            1 => Operation::Write,
            2 => Operation::Flush,
            3 => Operation::Discard,
            9 => Operation::WriteZeroes,
            _ => Operation::Other,
        }
    }

    /// The `storage.io.operation` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Flush => "flush",
            Operation::Discard => "discard",
            Operation::WriteZeroes => "write_zeroes",
            Operation::Other => "other",
            Operation::Fsync => "fsync",
            Operation::Fdatasync => "fdatasync",
        }
    }

    /// The summary event type of this operation.
    pub const fn summary_event_type(self) -> &'static str {
        match self {
            Operation::Read => "storage.io.read",
            Operation::Fsync | Operation::Fdatasync => "storage.io.fsync",
            _ => "storage.io.write",
        }
    }

    /// Whether this is a file sync call (not a block request).
    pub const fn is_sync_call(self) -> bool {
        matches!(self, Operation::Fsync | Operation::Fdatasync)
    }
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Io {
    /// Completion, CLOCK_BOOTTIME ns.
    pub ts_boot_ns: u64,
    /// Operation.
    pub op: Operation,
    /// Latency (ns).
    pub latency_ns: u64,
    /// Queue time before issue (ns; block only, 0 when unknown).
    pub queue_ns: u64,
    /// Device (kernel dev_t encoding).
    pub dev: u32,
    /// Bytes (block only).
    pub bytes: u32,
    /// First sector (block only).
    pub sector: u64,
    /// Submitter tgid (0 = unknown).
    pub pid: u32,
    /// Submitter thread.
    pub tid: u32,
    /// Submitter comm.
    pub comm: String,
    /// Submitter v2 cgroup id.
    pub cgroup_id: u64,
    /// Error: blk_status_t (block) or -errno (fsync); 0 = success.
    pub error: i32,
    /// fsync: the fd.
    pub fd: Option<u32>,
    /// fsync: the file's name.
    pub file_name: String,
    /// `flags::*`.
    pub flags: u32,
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a record.
    #[error("record of {0} bytes is too short")]
    Short(usize),
    /// A kind this version does not know.
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
}

/// Decodes one ring record.
pub fn decode(bytes: &[u8]) -> Result<Io, DecodeError> {
    let raw = RawRecord::read(bytes).ok_or(DecodeError::Short(bytes.len()))?;
    let (op, fd) = match raw.hdr.kind {
        KIND_BLOCK => (Operation::from_req_op(raw.op), None),
        KIND_FSYNC if raw.flags & flags::DATASYNC != 0 => (Operation::Fdatasync, Some(raw.op)),
        KIND_FSYNC => (Operation::Fsync, Some(raw.op)),
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok(Io {
        ts_boot_ns: raw.hdr.ts_boot_ns,
        op,
        latency_ns: raw.latency_ns,
        queue_ns: raw.queue_ns,
        dev: raw.dev,
        bytes: raw.bytes,
        sector: raw.sector,
        pid: raw.pid,
        tid: raw.tid,
        comm: c_str(&raw.comm).into_owned(),
        cgroup_id: raw.cgroup_id,
        error: raw.error,
        fd,
        file_name: c_str(&raw.name).into_owned(),
        flags: raw.flags,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The bytes of a record as the kernel would write it.
    pub(crate) fn bytes_of(raw: &RawRecord) -> Vec<u8> {
        // SAFETY: RawRecord is plain data; reading its bytes is fine.
        unsafe {
            std::slice::from_raw_parts(
                (raw as *const RawRecord).cast::<u8>(),
                size_of::<RawRecord>(),
            )
        }
        .to_vec()
    }

    pub(crate) fn raw(kind: u32, op: u32, latency_ns: u64) -> RawRecord {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"fioX");
        let mut name = [0u8; 48];
        name[..8].copy_from_slice(b"data.log");
        RawRecord {
            hdr: RecordHeader {
                kind,
                cpu: 1,
                ts_boot_ns: 1_000,
            },
            latency_ns,
            queue_ns: 7,
            sector: 2048,
            cgroup_id: 1,
            dev: 254 << 20,
            bytes: 4096,
            pid: 42,
            tid: 43,
            op,
            error: 0,
            flags: 0,
            _pad: 0,
            comm,
            name,
        }
    }

    #[test]
    fn decodes_block_and_fsync() {
        let io = decode(&bytes_of(&raw(KIND_BLOCK, 1, 5_000))).unwrap();
        assert_eq!(io.op, Operation::Write);
        assert_eq!(
            (io.pid, io.tid, io.bytes, io.dev),
            (42, 43, 4096, 254 << 20)
        );
        assert_eq!(io.comm, "fioX");
        assert_eq!(io.fd, None);

        let mut r = raw(KIND_FSYNC, 3, 9);
        r.flags = flags::DATASYNC;
        let io = decode(&bytes_of(&r)).unwrap();
        assert_eq!(io.op, Operation::Fdatasync);
        assert_eq!(io.fd, Some(3));
        assert_eq!(io.file_name, "data.log");
    }

    #[test]
    fn rejects_short_and_unknown() {
        let bytes = bytes_of(&raw(KIND_BLOCK, 0, 1));
        assert_eq!(decode(&bytes[..100]), Err(DecodeError::Short(100)));
        assert_eq!(
            decode(&bytes_of(&raw(9, 0, 1))),
            Err(DecodeError::UnknownKind(9))
        );
    }

    #[test]
    fn operations_map_to_event_types() {
        assert_eq!(
            Operation::from_req_op(0).summary_event_type(),
            "storage.io.read"
        );
        assert_eq!(Operation::from_req_op(2).as_str(), "flush");
        assert_eq!(
            Operation::from_req_op(2).summary_event_type(),
            "storage.io.write"
        );
        assert_eq!(
            Operation::Fdatasync.summary_event_type(),
            "storage.io.fsync"
        );
        assert_eq!(Operation::from_req_op(35).as_str(), "other");
    }
}
