//! The ring record of `cpu_starvation.bpf.c` (mirror of `bpf-objects/src/cpu_starvation.h`)
//! and its decoded form.

use tapio_cgroup_info::CgroupKey;
use tapio_ebpf_support::record::{c_str, Record, RecordHeader};

/// `CPU_STARVATION_KIND_WAIT`.
pub const KIND_WAIT: u32 = 1;
/// `CPU_STARVATION_F_WAKEUP_NEW`: the wait began when the task was created.
pub const F_WAKEUP_NEW: u32 = 0x1;
/// `CPU_STARVATION_F_PREEMPTED`: the wait began when the task was preempted.
pub const F_PREEMPTED: u32 = 0x2;

/// `CPU_STARVATION_F_TRUNCATED`: the wait spans more runs than the kernel's history.
pub const F_TRUNCATED: u32 = 0x4;

/// Mirror of `struct cpu_starvation_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawRecord {
    /// Common header (`ts_boot_ns` = when the task got the CPU, `cpu` = that CPU).
    pub hdr: RecordHeader,
    /// Runnable -> running.
    pub delay_ns: u64,
    /// Part of the wait other tasks ran on this CPU.
    pub busy_ns: u64,
    /// Part of the wait the neighbour ran on this CPU.
    pub nb_overlap_ns: u64,
    /// v2 cgroup of the task.
    pub cgroup_id: u64,
    /// Its cpu-controller cgroup.
    pub ctrl_cgroup_id: u64,
    /// Task tgid.
    pub pid: u32,
    /// Task thread id.
    pub tid: u32,
    /// Neighbour tgid.
    pub nb_pid: u32,
    /// Neighbour thread id (0 = none).
    pub nb_tid: u32,
    /// Hierarchy of the cpu controller (0 = v2).
    pub ctrl_hierarchy: u32,
    /// `F_*` bits.
    pub flags: u32,
    /// Task comm.
    pub comm: [u8; 16],
    /// Neighbour comm.
    pub nb_comm: [u8; 16],
}
const _: () = assert!(size_of::<RawRecord>() == 112);
const _: () = assert!(std::mem::offset_of!(RawRecord, delay_ns) == 16);
const _: () = assert!(std::mem::offset_of!(RawRecord, pid) == 56);
const _: () = assert!(std::mem::offset_of!(RawRecord, flags) == 76);
const _: () = assert!(std::mem::offset_of!(RawRecord, comm) == 80);
const _: () = assert!(std::mem::offset_of!(RawRecord, nb_comm) == 96);

// SAFETY: repr(C), integers and byte arrays only; layout asserted above.
unsafe impl Record for RawRecord {}

/// A task as the records describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// tgid.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Thread name (comm).
    pub comm: String,
    /// v2 cgroup id (the event's cgroup id).
    pub cgroup_id: u64,
    /// The cgroup to attribute it to (see [`CgroupKey::pick`]).
    pub cgroup: CgroupKey,
}

/// The task that ran longest on the CPU while another waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// tgid.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Thread name (comm).
    pub comm: String,
}

/// One decoded run-queue wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// When the task got the CPU (CLOCK_BOOTTIME ns).
    pub ts_boot_ns: u64,
    /// The CPU.
    pub cpu: u32,
    /// How long it waited.
    pub delay_ns: u64,
    /// The task that waited.
    pub task: Task,
    /// The task that ran longest on that CPU during the wait (None = no other task ran).
    pub neighbor: Option<Neighbor>,
    /// How much of the wait the neighbour ran there.
    pub overlap_ns: u64,
    /// How much of the wait any other task ran there.
    pub busy_ns: u64,
    /// `F_*` bits.
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
pub fn decode(bytes: &[u8]) -> Result<Wait, DecodeError> {
    let raw = RawRecord::read(bytes).ok_or(DecodeError::Short(bytes.len()))?;
    if raw.hdr.kind != KIND_WAIT {
        return Err(DecodeError::UnknownKind(raw.hdr.kind));
    }
    let neighbor = (raw.nb_tid != 0).then(|| Neighbor {
        pid: raw.nb_pid,
        tid: raw.nb_tid,
        comm: c_str(&raw.nb_comm).into_owned(),
    });
    Ok(Wait {
        ts_boot_ns: raw.hdr.ts_boot_ns,
        cpu: raw.hdr.cpu,
        delay_ns: raw.delay_ns,
        task: Task {
            pid: raw.pid,
            tid: raw.tid,
            comm: c_str(&raw.comm).into_owned(),
            cgroup_id: raw.cgroup_id,
            cgroup: CgroupKey::pick(raw.cgroup_id, raw.ctrl_hierarchy, raw.ctrl_cgroup_id),
        },
        overlap_ns: if neighbor.is_some() {
            raw.nb_overlap_ns
        } else {
            0
        },
        busy_ns: raw.busy_ns,
        neighbor,
        flags: raw.flags,
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

    fn comm(s: &str) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[..s.len()].copy_from_slice(s.as_bytes());
        c
    }

    pub(crate) fn raw(tid: u32, nb_tid: u32, delay_ns: u64) -> RawRecord {
        RawRecord {
            hdr: RecordHeader {
                kind: KIND_WAIT,
                cpu: 1,
                ts_boot_ns: 100,
            },
            delay_ns,
            busy_ns: delay_ns * 3 / 4,
            nb_overlap_ns: delay_ns / 2,
            cgroup_id: 1,
            ctrl_cgroup_id: 35,
            pid: 10,
            tid,
            nb_pid: 20,
            nb_tid,
            ctrl_hierarchy: 1,
            flags: F_PREEMPTED,
            comm: comm("victim"),
            nb_comm: comm("hog"),
        }
    }

    #[test]
    fn decodes_with_and_without_neighbour() {
        let w = decode(&bytes_of(&raw(11, 21, 1000))).unwrap();
        assert_eq!(w.task.comm, "victim");
        assert_eq!(w.task.cgroup, CgroupKey::new(1, 35));
        let nb = w.neighbor.unwrap();
        assert_eq!((nb.pid, nb.tid, nb.comm.as_str()), (20, 21, "hog"));
        assert_eq!((w.overlap_ns, w.busy_ns), (500, 750));

        let idle = decode(&bytes_of(&raw(11, 0, 1000))).unwrap();
        assert_eq!(idle.neighbor, None);
        assert_eq!(idle.overlap_ns, 0);
    }

    #[test]
    fn rejects_bad_records() {
        let bytes = bytes_of(&raw(1, 2, 3));
        assert_eq!(decode(&bytes[..10]), Err(DecodeError::Short(10)));
        let mut r = raw(1, 2, 3);
        r.hdr.kind = 4;
        assert_eq!(decode(&bytes_of(&r)), Err(DecodeError::UnknownKind(4)));
    }
}
