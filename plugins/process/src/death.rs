//! Why a process died: from its wait status, whether the OOM killer chose it, and the fatal
//! signal the kernel saw generated for it (within the window) with its sender. Pure.

use crate::record::{Exit, Killer};

/// `process.death_reason` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// It exited by itself (any exit code).
    NormalExit,
    /// Killed by the OOM killer.
    OomKill,
    /// SIGSEGV.
    SegmentationFault,
    /// SIGABRT (`abort(3)`, failed assertions).
    Abort,
    /// SIGBUS, SIGILL, SIGFPE, SIGSYS or SIGTRAP: a crash.
    Crash,
    /// Any other signal (SIGKILL, SIGTERM, SIGINT, ...).
    Signal,
}

impl Reason {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::NormalExit => "normal_exit",
            Reason::OomKill => "oom_kill",
            Reason::SegmentationFault => "segmentation_fault",
            Reason::Abort => "abort",
            Reason::Crash => "crash",
            Reason::Signal => "signal",
        }
    }
}

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
    let status = exit.status;
    let signal = (status & 0x7f) as i32;
    let core_dumped = status & 0x80 != 0;
    if signal == 0 {
        return Death {
            reason: if exit.oom_killed {
                Reason::OomKill
            } else {
                Reason::NormalExit
            },
            exit_code: Some(((status >> 8) & 0xff) as i32),
            signal: None,
            core_dumped,
            killer: None,
        };
    }
    let reason = if exit.oom_killed {
        Reason::OomKill
    } else {
        match signal {
            libc::SIGSEGV => Reason::SegmentationFault,
            libc::SIGABRT => Reason::Abort,
            libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGSYS | libc::SIGTRAP => {
                Reason::Crash
            }
            _ => Reason::Signal,
        }
    };
    // The remembered signal explains the death only if it is the one that killed it.
    let killer = exit
        .killer
        .as_ref()
        .filter(|k| k.signal == signal || exit.oom_killed)
        .cloned();
    Death {
        reason,
        exit_code: None,
        signal: Some(signal),
        core_dumped,
        killer,
    }
}

/// The name of a signal (`SIGKILL`; `SIG40` for those without one).
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSTKFLT => "SIGSTKFLT",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        other => return format!("SIG{other}"),
    };
    name.to_owned()
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
