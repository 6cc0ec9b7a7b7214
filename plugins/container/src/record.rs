//! The ring record and the `watched` map key of `container.bpf.c` (mirrors of
//! `bpf-objects/src/container.h`), and their decoded forms.

use tapio_cgroup_info::CgroupKey;
use tapio_ebpf_support::record::{c_str, Record, RecordHeader};

/// `CONTAINER_KIND_MKDIR`.
pub const KIND_MKDIR: u32 = 1;
/// `CONTAINER_KIND_RMDIR`.
pub const KIND_RMDIR: u32 = 2;
/// `CONTAINER_KIND_ATTACH`.
pub const KIND_ATTACH: u32 = 3;
/// `CONTAINER_KIND_EXIT`.
pub const KIND_EXIT: u32 = 4;
/// `CONTAINER_KIND_OOM`.
pub const KIND_OOM: u32 = 5;

/// Mirror of `struct container_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawRecord {
    /// Common header.
    pub hdr: RecordHeader,
    /// mkdir/rmdir/attach: the cgroup; exit/oom: the task's v2 cgroup.
    pub cgroup_id: u64,
    /// exit/oom: the task's memory cgroup.
    pub ctrl_cgroup_id: u64,
    /// mkdir/rmdir/attach: the cgroup's hierarchy; exit/oom: the memory controller's.
    pub hierarchy: u32,
    /// tgid.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Depth of the cgroup.
    pub level: u32,
    /// exit: wait status.
    pub exit_code: u32,
    /// Padding.
    pub _pad: u32,
    /// comm.
    pub comm: [u8; 16],
    /// Cgroup path inside its hierarchy.
    pub path: [u8; 256],
}
const _: () = assert!(size_of::<RawRecord>() == 328);
const _: () = assert!(std::mem::offset_of!(RawRecord, cgroup_id) == 16);
const _: () = assert!(std::mem::offset_of!(RawRecord, hierarchy) == 32);
const _: () = assert!(std::mem::offset_of!(RawRecord, comm) == 56);
const _: () = assert!(std::mem::offset_of!(RawRecord, path) == 72);

// SAFETY: repr(C), integers and byte arrays only; layout asserted above.
unsafe impl Record for RawRecord {}

/// Mirror of `struct container_cgroup_key` (the `watched` map's key).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WatchKey {
    /// Cgroup id.
    pub id: u64,
    /// Hierarchy id.
    pub hierarchy: u32,
    /// Padding (zero).
    pub _pad: u32,
}
const _: () = assert!(size_of::<WatchKey>() == 16);

// SAFETY: repr(C), integers only, the padding field is explicit and always zero.
unsafe impl tapio_ebpf_support::aya::Pod for WatchKey {}

impl From<CgroupKey> for WatchKey {
    fn from(k: CgroupKey) -> Self {
        WatchKey {
            id: k.id,
            hierarchy: k.hierarchy,
            _pad: 0,
        }
    }
}

/// A process as the records describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// tgid.
    pub pid: u32,
    /// comm.
    pub comm: String,
    /// Its v2 cgroup.
    pub dfl: CgroupKey,
    /// Its memory cgroup (hierarchy 0 on v2 hosts).
    pub memcg: CgroupKey,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    /// A cgroup was created.
    Mkdir {
        /// The cgroup.
        key: CgroupKey,
        /// Its path.
        path: String,
    },
    /// A cgroup was removed.
    Rmdir {
        /// The cgroup.
        key: CgroupKey,
        /// Its path.
        path: String,
    },
    /// A process was moved into a cgroup.
    Attach {
        /// The cgroup.
        key: CgroupKey,
        /// Its path.
        path: String,
        /// tgid.
        pid: u32,
        /// comm.
        comm: String,
    },
    /// A process of a watched cgroup exited.
    Exit {
        /// The process.
        proc: Proc,
        /// Wait status.
        exit_code: u32,
    },
    /// The OOM killer chose a victim.
    Oom {
        /// The victim.
        proc: Proc,
    },
}

/// When a record happened (CLOCK_BOOTTIME ns) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    /// CLOCK_BOOTTIME ns.
    pub ts_boot_ns: u64,
    /// The record.
    pub sample: Sample,
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
pub fn decode(bytes: &[u8]) -> Result<Timed, DecodeError> {
    let r = RawRecord::read(bytes).ok_or(DecodeError::Short(bytes.len()))?;
    let key = CgroupKey::new(r.hierarchy, r.cgroup_id);
    let path = || c_str(&r.path).into_owned();
    let proc = || Proc {
        pid: r.pid,
        comm: c_str(&r.comm).into_owned(),
        dfl: CgroupKey::new(0, r.cgroup_id),
        memcg: CgroupKey::new(r.hierarchy, r.ctrl_cgroup_id),
    };
    let sample = match r.hdr.kind {
        KIND_MKDIR => Sample::Mkdir { key, path: path() },
        KIND_RMDIR => Sample::Rmdir { key, path: path() },
        KIND_ATTACH => Sample::Attach {
            key,
            path: path(),
            pid: r.pid,
            comm: c_str(&r.comm).into_owned(),
        },
        KIND_EXIT => Sample::Exit {
            proc: proc(),
            exit_code: r.exit_code,
        },
        KIND_OOM => Sample::Oom { proc: proc() },
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok(Timed {
        ts_boot_ns: r.hdr.ts_boot_ns,
        sample,
    })
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

    pub(crate) fn raw(kind: u32, path: &str) -> RawRecord {
        let mut p = [0u8; 256];
        p[..path.len()].copy_from_slice(path.as_bytes());
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"runc");
        RawRecord {
            hdr: RecordHeader {
                kind,
                cpu: 0,
                ts_boot_ns: 9,
            },
            cgroup_id: 4242,
            ctrl_cgroup_id: 77,
            hierarchy: 4,
            pid: 100,
            tid: 100,
            level: 2,
            exit_code: 9,
            _pad: 0,
            comm,
            path: p,
        }
    }

    #[test]
    fn decodes_every_kind() {
        let t = decode(&bytes_of(&raw(KIND_MKDIR, "/docker/x"))).unwrap();
        assert_eq!(t.ts_boot_ns, 9);
        assert_eq!(
            t.sample,
            Sample::Mkdir {
                key: CgroupKey::new(4, 4242),
                path: "/docker/x".into()
            }
        );
        assert!(matches!(
            decode(&bytes_of(&raw(KIND_RMDIR, "/a"))).unwrap().sample,
            Sample::Rmdir { .. }
        ));
        match decode(&bytes_of(&raw(KIND_ATTACH, "/a"))).unwrap().sample {
            Sample::Attach { pid, comm, .. } => assert_eq!((pid, comm.as_str()), (100, "runc")),
            other => panic!("{other:?}"),
        }
        match decode(&bytes_of(&raw(KIND_EXIT, ""))).unwrap().sample {
            Sample::Exit { proc, exit_code } => {
                assert_eq!(exit_code, 9);
                assert_eq!(proc.dfl, CgroupKey::new(0, 4242));
                assert_eq!(proc.memcg, CgroupKey::new(4, 77));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode(&bytes_of(&raw(KIND_OOM, ""))).unwrap().sample,
            Sample::Oom { .. }
        ));
        assert_eq!(
            decode(&bytes_of(&raw(8, ""))),
            Err(DecodeError::UnknownKind(8))
        );
    }
}
