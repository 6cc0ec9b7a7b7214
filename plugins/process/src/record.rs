//! The ring records of `process.bpf.c` (mirrors of `bpf-objects/src/process.h`) and their
//! decoded forms. Pure: no kernel access, unit-tested with hand-made bytes.

use tapio_ebpf_support::record::{c_str, kind_of, Record, RecordHeader};

/// `PROCESS_KIND_EXEC`.
pub const KIND_EXEC: u32 = 1;
/// `PROCESS_KIND_EXIT`.
pub const KIND_EXIT: u32 = 2;
/// `PROCESS_KIND_SIGNAL`.
pub const KIND_SIGNAL: u32 = 3;
/// `PROCESS_KIND_OOM`.
pub const KIND_OOM: u32 = 4;

/// `PROCESS_EXIT_OOM_KILLED`.
pub const EXIT_OOM_KILLED: u32 = 1;
/// `PROCESS_EXIT_SIGNALLED`.
pub const EXIT_SIGNALLED: u32 = 2;

/// `PROCESS_ARGS_LEN`: bytes of argv the kernel copies.
pub const ARGS_LEN: usize = 256;

/// Mirror of `struct process_exec`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawExec {
    /// Common header.
    pub hdr: RecordHeader,
    /// v2 cgroup.
    pub cgroup_id: u64,
    /// tgid.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent tgid.
    pub ppid: u32,
    /// Real uid.
    pub uid: u32,
    /// Thread id before exec.
    pub old_pid: u32,
    /// Bytes of `args` filled.
    pub args_len: u32,
    /// Bytes of the whole argument block.
    pub args_total: u32,
    /// Padding.
    pub _pad: u32,
    /// comm.
    pub comm: [u8; 16],
    /// Path given to execve.
    pub filename: [u8; 256],
    /// First bytes of argv, NUL-separated.
    pub args: [u8; ARGS_LEN],
}
const _: () = assert!(size_of::<RawExec>() == 584);
const _: () = assert!(std::mem::offset_of!(RawExec, pid) == 24);
const _: () = assert!(std::mem::offset_of!(RawExec, comm) == 56);
const _: () = assert!(std::mem::offset_of!(RawExec, filename) == 72);
const _: () = assert!(std::mem::offset_of!(RawExec, args) == 328);
// SAFETY: repr(C), integers and byte arrays only; layout asserted above.
unsafe impl Record for RawExec {}

/// Mirror of `struct process_exit`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawExit {
    /// Common header.
    pub hdr: RecordHeader,
    /// v2 cgroup.
    pub cgroup_id: u64,
    /// Process start (CLOCK_BOOTTIME ns).
    pub start_boot_ns: u64,
    /// When the fatal signal was generated (0 = none).
    pub killer_ts_ns: u64,
    /// tgid.
    pub pid: u32,
    /// Parent tgid.
    pub ppid: u32,
    /// Wait status.
    pub exit_code: u32,
    /// `EXIT_*` flags.
    pub flags: u32,
    /// Sender of the fatal signal.
    pub killer_pid: u32,
    /// The fatal signal.
    pub killer_signal: i32,
    /// Its si_code.
    pub killer_code: i32,
    /// Padding.
    pub _pad: u32,
    /// comm.
    pub comm: [u8; 16],
    /// Sender's comm.
    pub killer_comm: [u8; 16],
}
const _: () = assert!(size_of::<RawExit>() == 104);
const _: () = assert!(std::mem::offset_of!(RawExit, pid) == 40);
const _: () = assert!(std::mem::offset_of!(RawExit, comm) == 72);
const _: () = assert!(std::mem::offset_of!(RawExit, killer_comm) == 88);
// SAFETY: repr(C), integers and byte arrays only; layout asserted above.
unsafe impl Record for RawExit {}

/// Mirror of `struct process_signal`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawSignal {
    /// Common header.
    pub hdr: RecordHeader,
    /// Sender's v2 cgroup.
    pub sender_cgroup_id: u64,
    /// Target's v2 cgroup.
    pub target_cgroup_id: u64,
    /// Sender tgid.
    pub sender_pid: u32,
    /// Sender thread.
    pub sender_tid: u32,
    /// Target tgid.
    pub target_pid: u32,
    /// Target thread.
    pub target_tid: u32,
    /// Signal number.
    pub signal: i32,
    /// si_code.
    pub code: i32,
    /// Trace result.
    pub result: i32,
    /// Sent to the whole process.
    pub group: u32,
    /// Sender's comm.
    pub sender_comm: [u8; 16],
    /// Target's comm.
    pub target_comm: [u8; 16],
}
const _: () = assert!(size_of::<RawSignal>() == 96);
const _: () = assert!(std::mem::offset_of!(RawSignal, sender_pid) == 32);
const _: () = assert!(std::mem::offset_of!(RawSignal, sender_comm) == 64);
// SAFETY: repr(C), integers and byte arrays only; layout asserted above.
unsafe impl Record for RawSignal {}

/// Mirror of `struct process_oom`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawOom {
    /// Common header.
    pub hdr: RecordHeader,
    /// Victim's v2 cgroup.
    pub cgroup_id: u64,
    /// Victim's memory cgroup.
    pub memcg_id: u64,
    /// Its hierarchy (0 = v2).
    pub memcg_hierarchy: u32,
    /// Victim tgid.
    pub pid: u32,
    /// Victim uid.
    pub uid: u32,
    /// tgid of the task whose allocation triggered the OOM killer.
    pub trigger_pid: u32,
    /// Victim comm.
    pub comm: [u8; 16],
    /// Trigger comm.
    pub trigger_comm: [u8; 16],
}
const _: () = assert!(size_of::<RawOom>() == 80);
const _: () = assert!(std::mem::offset_of!(RawOom, pid) == 36);
const _: () = assert!(std::mem::offset_of!(RawOom, comm) == 48);
// SAFETY: repr(C), integers and byte arrays only; layout asserted above.
unsafe impl Record for RawOom {}

/// A process exec'd a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// tgid.
    pub pid: u32,
    /// Parent tgid.
    pub ppid: u32,
    /// Real uid.
    pub uid: u32,
    /// Thread id before exec (differs from `pid` when a non-leader thread exec'd).
    pub old_pid: u32,
    /// v2 cgroup.
    pub cgroup_id: u64,
    /// The new comm.
    pub comm: String,
    /// The path given to execve.
    pub path: String,
    /// argv, as far as captured.
    pub args: Vec<String>,
    /// Whether argv was cut at [`ARGS_LEN`] bytes.
    pub args_truncated: bool,
}

/// The fatal signal (or OOM kill) remembered for an exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Killer {
    /// Sender tgid (for an OOM kill: the task whose allocation triggered it).
    pub pid: u32,
    /// Sender comm.
    pub comm: String,
    /// The signal.
    pub signal: i32,
    /// Its si_code (> 0: generated by the kernel, e.g. a fault).
    pub code: i32,
    /// When it was generated (CLOCK_BOOTTIME ns).
    pub ts_boot_ns: u64,
}

/// The last thread of a process exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// tgid.
    pub pid: u32,
    /// Parent tgid.
    pub ppid: u32,
    /// comm.
    pub comm: String,
    /// v2 cgroup.
    pub cgroup_id: u64,
    /// Wait status.
    pub status: u32,
    /// Process start (CLOCK_BOOTTIME ns).
    pub start_boot_ns: u64,
    /// The OOM killer chose it.
    pub oom_killed: bool,
    /// The fatal signal generated for it within the window, if any.
    pub killer: Option<Killer>,
}

/// A fatal signal was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// Sender tgid.
    pub sender_pid: u32,
    /// Sender thread.
    pub sender_tid: u32,
    /// Sender comm.
    pub sender_comm: String,
    /// Sender v2 cgroup.
    pub sender_cgroup_id: u64,
    /// Target tgid.
    pub target_pid: u32,
    /// Target thread.
    pub target_tid: u32,
    /// Target comm.
    pub target_comm: String,
    /// Target v2 cgroup.
    pub target_cgroup_id: u64,
    /// Signal number.
    pub signal: i32,
    /// si_code.
    pub code: i32,
    /// Sent to the whole process (kill) rather than one thread (tgkill).
    pub group: bool,
}

/// The OOM killer chose a victim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oom {
    /// Victim tgid.
    pub pid: u32,
    /// Victim uid.
    pub uid: u32,
    /// Victim comm.
    pub comm: String,
    /// Victim v2 cgroup.
    pub cgroup_id: u64,
    /// Victim memory cgroup and its hierarchy (0 = v2).
    pub memcg: (u64, u32),
    /// The task whose allocation triggered the OOM killer.
    pub trigger_pid: u32,
    /// Its comm.
    pub trigger_comm: String,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    /// See [`Exec`].
    Exec(Exec),
    /// See [`Exit`].
    Exit(Exit),
    /// See [`Signal`].
    Signal(Signal),
    /// See [`Oom`].
    Oom(Oom),
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than its kind needs.
    #[error("record of kind {kind} has {len} bytes, needs {needed}")]
    Short {
        /// Record kind.
        kind: u32,
        /// Bytes received.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// A kind this version does not know.
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    /// Shorter than a header.
    #[error("record of {0} bytes is shorter than a header")]
    NoHeader(usize),
}

fn read<R: Record>(bytes: &[u8], kind: u32) -> Result<R, DecodeError> {
    R::read(bytes).ok_or(DecodeError::Short {
        kind,
        len: bytes.len(),
        needed: size_of::<R>(),
    })
}

/// Splits a NUL-separated argument block into arguments. A block cut inside an argument
/// keeps the partial last argument.
pub fn split_args(block: &[u8]) -> Vec<String> {
    let block = block.strip_suffix(&[0]).unwrap_or(block);
    if block.is_empty() {
        return Vec::new();
    }
    block
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Decodes one ring record: its CLOCK_BOOTTIME timestamp and content.
pub fn decode(bytes: &[u8]) -> Result<(u64, Sample), DecodeError> {
    let kind = kind_of(bytes).ok_or(DecodeError::NoHeader(bytes.len()))?;
    match kind {
        KIND_EXEC => {
            let r: RawExec = read(bytes, kind)?;
            let len = (r.args_len as usize).min(ARGS_LEN);
            Ok((
                r.hdr.ts_boot_ns,
                Sample::Exec(Exec {
                    pid: r.pid,
                    ppid: r.ppid,
                    uid: r.uid,
                    old_pid: r.old_pid,
                    cgroup_id: r.cgroup_id,
                    comm: c_str(&r.comm).into_owned(),
                    path: c_str(&r.filename).into_owned(),
                    args: split_args(&r.args[..len]),
                    args_truncated: r.args_total as usize > len,
                }),
            ))
        }
        KIND_EXIT => {
            let r: RawExit = read(bytes, kind)?;
            let killer = (r.flags & EXIT_SIGNALLED != 0).then(|| Killer {
                pid: r.killer_pid,
                comm: c_str(&r.killer_comm).into_owned(),
                signal: r.killer_signal,
                code: r.killer_code,
                ts_boot_ns: r.killer_ts_ns,
            });
            Ok((
                r.hdr.ts_boot_ns,
                Sample::Exit(Exit {
                    pid: r.pid,
                    ppid: r.ppid,
                    comm: c_str(&r.comm).into_owned(),
                    cgroup_id: r.cgroup_id,
                    status: r.exit_code,
                    start_boot_ns: r.start_boot_ns,
                    oom_killed: r.flags & EXIT_OOM_KILLED != 0,
                    killer,
                }),
            ))
        }
        KIND_SIGNAL => {
            let r: RawSignal = read(bytes, kind)?;
            Ok((
                r.hdr.ts_boot_ns,
                Sample::Signal(Signal {
                    sender_pid: r.sender_pid,
                    sender_tid: r.sender_tid,
                    sender_comm: c_str(&r.sender_comm).into_owned(),
                    sender_cgroup_id: r.sender_cgroup_id,
                    target_pid: r.target_pid,
                    target_tid: r.target_tid,
                    target_comm: c_str(&r.target_comm).into_owned(),
                    target_cgroup_id: r.target_cgroup_id,
                    signal: r.signal,
                    code: r.code,
                    group: r.group != 0,
                }),
            ))
        }
        KIND_OOM => {
            let r: RawOom = read(bytes, kind)?;
            Ok((
                r.hdr.ts_boot_ns,
                Sample::Oom(Oom {
                    pid: r.pid,
                    uid: r.uid,
                    comm: c_str(&r.comm).into_owned(),
                    cgroup_id: r.cgroup_id,
                    memcg: (r.memcg_id, r.memcg_hierarchy),
                    trigger_pid: r.trigger_pid,
                    trigger_comm: c_str(&r.trigger_comm).into_owned(),
                }),
            ))
        }
        other => Err(DecodeError::UnknownKind(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<R: Record>(r: &R) -> Vec<u8> {
        // SAFETY: R is plain data (the Record contract); we only read its bytes.
        unsafe { std::slice::from_raw_parts((r as *const R).cast::<u8>(), size_of::<R>()) }.to_vec()
    }

    fn fixed<const N: usize>(text: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        out[..text.len()].copy_from_slice(text);
        out
    }

    #[test]
    fn decodes_exec_with_args() {
        let block = b"/bin/echo\0hello\0world\0";
        let raw = RawExec {
            hdr: RecordHeader {
                kind: KIND_EXEC,
                cpu: 1,
                ts_boot_ns: 42,
            },
            cgroup_id: 7,
            pid: 100,
            tid: 100,
            ppid: 1,
            uid: 1000,
            old_pid: 100,
            args_len: block.len() as u32,
            args_total: block.len() as u32,
            _pad: 0,
            comm: fixed(b"echo"),
            filename: fixed(b"/bin/echo"),
            args: fixed(block),
        };
        let (ts, sample) = decode(&bytes_of(&raw)).unwrap();
        assert_eq!(ts, 42);
        let Sample::Exec(e) = sample else {
            panic!("{sample:?}")
        };
        assert_eq!(e.args, ["/bin/echo", "hello", "world"]);
        assert!(!e.args_truncated);
        assert_eq!((e.pid, e.ppid, e.uid, e.cgroup_id), (100, 1, 1000, 7));
        assert_eq!(e.path, "/bin/echo");
        assert_eq!(e.comm, "echo");
    }

    #[test]
    fn truncated_args_keep_the_partial_argument() {
        assert_eq!(split_args(b"a\0bc"), ["a", "bc"]);
        assert_eq!(split_args(b""), Vec::<String>::new());
        assert_eq!(split_args(b"a\0\0b\0"), ["a", "", "b"]);
    }

    #[test]
    fn decodes_exit_with_killer() {
        let raw = RawExit {
            hdr: RecordHeader {
                kind: KIND_EXIT,
                cpu: 0,
                ts_boot_ns: 10,
            },
            cgroup_id: 3,
            start_boot_ns: 4,
            killer_ts_ns: 9,
            pid: 5,
            ppid: 6,
            exit_code: 9,
            flags: EXIT_SIGNALLED | EXIT_OOM_KILLED,
            killer_pid: 8,
            killer_signal: 9,
            killer_code: 0,
            _pad: 0,
            comm: fixed(b"dd"),
            killer_comm: fixed(b"kill"),
        };
        let (_, Sample::Exit(e)) = decode(&bytes_of(&raw)).unwrap() else {
            panic!()
        };
        assert!(e.oom_killed);
        let k = e.killer.unwrap();
        assert_eq!((k.pid, k.comm.as_str(), k.signal), (8, "kill", 9));
    }

    #[test]
    fn rejects_bad_records() {
        assert_eq!(decode(&[0; 4]), Err(DecodeError::NoHeader(4)));
        let mut short = vec![0u8; 20];
        short[0] = KIND_EXIT as u8;
        assert!(matches!(decode(&short), Err(DecodeError::Short { .. })));
        let mut unknown = vec![0u8; 16];
        unknown[0] = 99;
        assert_eq!(decode(&unknown), Err(DecodeError::UnknownKind(99)));
    }
}
