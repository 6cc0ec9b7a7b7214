//! The ring record and the map layouts of `memory.bpf.c` (mirrors of
//! `bpf-objects/src/memory.h`), and their decoded forms.

use tapio_cgroup_info::CgroupKey;
use tapio_ebpf_support::record::{c_str, Record, RecordHeader};

/// `MEMORY_KIND_MEMCG_RECLAIM`.
pub const KIND_MEMCG_RECLAIM: u32 = 1;
/// `MEMORY_KIND_DIRECT_RECLAIM`.
pub const KIND_DIRECT_RECLAIM: u32 = 2;
/// `MEMORY_KIND_RSS`.
pub const KIND_RSS: u32 = 3;

/// Mirror of `struct memory_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawRecord {
    /// Common header.
    pub hdr: RecordHeader,
    /// v2 cgroup id.
    pub cgroup_id: u64,
    /// Memory-controller cgroup id.
    pub ctrl_cgroup_id: u64,
    /// Reclaim stall (ns).
    pub reclaim_ns: u64,
    /// Pages reclaimed.
    pub reclaimed_pages: u64,
    /// File-backed resident bytes.
    pub rss_file: u64,
    /// Anonymous resident bytes.
    pub rss_anon: u64,
    /// Shared-memory resident bytes.
    pub rss_shmem: u64,
    /// Swapped-out bytes.
    pub swap: u64,
    /// tgid.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Memory controller hierarchy (0 = v2).
    pub ctrl_hierarchy: u32,
    /// Reclaim: allocation order.
    pub order: u32,
    /// Reclaim: gfp flags.
    pub gfp: u32,
    /// Padding.
    pub _pad: u32,
    /// comm.
    pub comm: [u8; 16],
}
const _: () = assert!(size_of::<RawRecord>() == 120);
const _: () = assert!(std::mem::offset_of!(RawRecord, cgroup_id) == 16);
const _: () = assert!(std::mem::offset_of!(RawRecord, pid) == 80);
const _: () = assert!(std::mem::offset_of!(RawRecord, comm) == 104);

// SAFETY: repr(C), integers and byte arrays only; layout asserted above.
unsafe impl Record for RawRecord {}

/// Mirror of `struct memory_alloc_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocKey {
    /// tgid.
    pub pid: u32,
    /// Padding.
    pub _pad: u32,
    /// Address returned by the allocation.
    pub addr: u64,
}
const _: () = assert!(size_of::<AllocKey>() == 16);

/// Mirror of `struct memory_alloc`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alloc {
    /// Bytes requested.
    pub size: u64,
    /// When the call returned (CLOCK_BOOTTIME ns).
    pub ts_boot_ns: u64,
    /// Return address of the call (in the caller).
    pub caller: u64,
    /// Thread that allocated.
    pub tid: u32,
    /// `MEMORY_ALLOC_*`.
    pub call: u32,
}
const _: () = assert!(size_of::<Alloc>() == 32);
const _: () = assert!(std::mem::offset_of!(Alloc, tid) == 24);

// SAFETY: both are repr(C) plain integers without padding holes the kernel could leave
// uninitialised (the BPF side zero-initialises keys and values).
unsafe impl tapio_ebpf_support::aya::Pod for AllocKey {}
// SAFETY: as above.
unsafe impl tapio_ebpf_support::aya::Pod for Alloc {}

/// The allocation function of a tracked allocation.
pub const fn call_name(call: u32) -> &'static str {
    match call {
        1 => "malloc",
        2 => "calloc",
        3 => "realloc",
        4 => "mmap",
        _ => "unknown",
    }
}

/// Who a record is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// tgid.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// comm.
    pub comm: String,
    /// v2 cgroup id.
    pub cgroup_id: u64,
    /// The cgroup to attribute to (see [`CgroupKey::pick`]).
    pub cgroup: CgroupKey,
}

/// A decoded ring record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    /// One reclaim.
    Reclaim {
        /// CLOCK_BOOTTIME ns at the end.
        ts_boot_ns: u64,
        /// Memcg (true) or direct (false) reclaim.
        memcg: bool,
        /// Stall (ns).
        stall_ns: u64,
        /// Pages reclaimed.
        pages: u64,
        /// The task that stalled.
        task: TaskRef,
    },
    /// One RSS reading.
    Rss {
        /// CLOCK_BOOTTIME ns.
        ts_boot_ns: u64,
        /// The process.
        task: TaskRef,
        /// File-backed bytes.
        file: u64,
        /// Anonymous bytes.
        anon: u64,
        /// Shared-memory bytes.
        shmem: u64,
        /// Swapped-out bytes.
        swap: u64,
    },
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
pub fn decode(bytes: &[u8]) -> Result<Sample, DecodeError> {
    let r = RawRecord::read(bytes).ok_or(DecodeError::Short(bytes.len()))?;
    let task = TaskRef {
        pid: r.pid,
        tid: r.tid,
        comm: c_str(&r.comm).into_owned(),
        cgroup_id: r.cgroup_id,
        cgroup: CgroupKey::pick(r.cgroup_id, r.ctrl_hierarchy, r.ctrl_cgroup_id),
    };
    match r.hdr.kind {
        KIND_MEMCG_RECLAIM | KIND_DIRECT_RECLAIM => Ok(Sample::Reclaim {
            ts_boot_ns: r.hdr.ts_boot_ns,
            memcg: r.hdr.kind == KIND_MEMCG_RECLAIM,
            stall_ns: r.reclaim_ns,
            pages: r.reclaimed_pages,
            task,
        }),
        KIND_RSS => Ok(Sample::Rss {
            ts_boot_ns: r.hdr.ts_boot_ns,
            task,
            file: r.rss_file,
            anon: r.rss_anon,
            shmem: r.rss_shmem,
            swap: r.swap,
        }),
        other => Err(DecodeError::UnknownKind(other)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn bytes_of(raw: &RawRecord) -> Vec<u8> {
        // SAFETY: plain data.
        unsafe {
            std::slice::from_raw_parts(
                (raw as *const RawRecord).cast::<u8>(),
                size_of::<RawRecord>(),
            )
        }
        .to_vec()
    }

    pub(crate) fn raw(kind: u32) -> RawRecord {
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"app");
        RawRecord {
            hdr: RecordHeader {
                kind,
                cpu: 0,
                ts_boot_ns: 50,
            },
            cgroup_id: 1,
            ctrl_cgroup_id: 99,
            reclaim_ns: 1_000,
            reclaimed_pages: 32,
            rss_file: 4096,
            rss_anon: 8192,
            rss_shmem: 0,
            swap: 0,
            pid: 5,
            tid: 6,
            ctrl_hierarchy: 4,
            order: 0,
            gfp: 0,
            _pad: 0,
            comm,
        }
    }

    #[test]
    fn decodes_each_kind() {
        match decode(&bytes_of(&raw(KIND_MEMCG_RECLAIM))).unwrap() {
            Sample::Reclaim {
                memcg,
                stall_ns,
                pages,
                task,
                ..
            } => {
                assert!(memcg);
                assert_eq!((stall_ns, pages), (1_000, 32));
                assert_eq!(task.cgroup, CgroupKey::new(4, 99));
                assert_eq!(task.comm, "app");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode(&bytes_of(&raw(KIND_DIRECT_RECLAIM))).unwrap(),
            Sample::Reclaim { memcg: false, .. }
        ));
        match decode(&bytes_of(&raw(KIND_RSS))).unwrap() {
            Sample::Rss { file, anon, .. } => assert_eq!((file, anon), (4096, 8192)),
            other => panic!("{other:?}"),
        }
        assert_eq!(decode(&bytes_of(&raw(9))), Err(DecodeError::UnknownKind(9)));
        assert_eq!(decode(&[0; 3]), Err(DecodeError::Short(3)));
        assert_eq!(call_name(2), "calloc");
    }
}
