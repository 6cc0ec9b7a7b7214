//! Why a process died: the shared classification of its wait status
//! ([`tapio_ebpf_support::death`]) plus the fatal signal the kernel saw generated for it
//! (within the window) with its sender. Pure.

pub use tapio_ebpf_support::death::{signal_name, Reason};

use crate::record::{Exit, Killer};

/// The death of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    /// Why.
    pub reason: Reason,
    /// Exit code when it exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// Whether it dumped core.
    pub core_dumped: bool,
    /// Who sent the signal that killed it (for an OOM kill: the task whose allocation
    /// invoked the OOM killer); `None` when it exited by itself or the signal was not seen.
    pub killer: Option<Killer>,
}

/// Classifies an exit.
pub fn classify(exit: &Exit) -> Death {
    let base = tapio_ebpf_support::death::classify(exit.status, exit.oom_killed);
    // The remembered signal explains the death only if it is the one that killed it.
    let killer = base.signal.and_then(|signal| {
        exit.killer
            .as_ref()
            .filter(|k| k.signal == signal || exit.oom_killed)
            .cloned()
    });
    Death {
        reason: base.reason,
        exit_code: base.exit_code,
        signal: base.signal,
        core_dumped: base.core_dumped,
        killer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(status: u32, oom_killed: bool, killer: Option<(u32, i32)>) -> Exit {
        Exit {
            pid: 10,
            ppid: 1,
            comm: "victim".into(),
            cgroup_id: 1,
            status,
            start_boot_ns: 0,
            oom_killed,
            killer: killer.map(|(pid, signal)| Killer {
                pid,
                comm: "killer".into(),
                signal,
                code: 0,
                ts_boot_ns: 1,
            }),
        }
    }

    #[test]
    fn normal_exits() {
        let d = classify(&exit(0, false, None));
        assert_eq!(
            (d.reason, d.exit_code, d.signal),
            (Reason::NormalExit, Some(0), None)
        );
        let d = classify(&exit(3 << 8, false, None));
        assert_eq!(d.exit_code, Some(3));
    }

    #[test]
    fn signals_and_killers() {
        let d = classify(&exit(9, false, Some((77, 9))));
        assert_eq!(d.reason, Reason::Signal);
        assert_eq!(d.killer.as_ref().map(|k| k.pid), Some(77));
        // A remembered SIGTERM does not explain a death by SIGKILL.
        let d = classify(&exit(9, false, Some((77, 15))));
        assert_eq!(d.killer, None);
        let d = classify(&exit(11 | 0x80, false, Some((10, 11))));
        assert_eq!((d.reason, d.core_dumped), (Reason::SegmentationFault, true));
        assert_eq!(classify(&exit(6, false, None)).reason, Reason::Abort);
        assert_eq!(classify(&exit(7, false, None)).reason, Reason::Crash);
        assert_eq!(classify(&exit(8, false, None)).reason, Reason::Crash);
        let d = classify(&exit(9, true, Some((55, 9))));
        assert_eq!(d.reason, Reason::OomKill);
        assert_eq!(d.killer.map(|k| k.pid), Some(55));
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(40), "SIG40");
    }
}
