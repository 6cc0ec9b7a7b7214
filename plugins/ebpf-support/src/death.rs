//! Why a process died, from its wait status (`task_struct.exit_code`) and whether the OOM
//! killer chose it: the `process.death_reason` / `process.exit.reason` values shared by the
//! process and container collectors. Pure.

/// The death of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Death {
    /// `process.exit.reason`.
    pub reason: Reason,
    /// Exit status when it exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// Whether it dumped core.
    pub core_dumped: bool,
}

/// The reasons of the earlier implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// It exited (any status).
    NormalExit,
    /// Killed by the OOM killer.
    OomKill,
    /// SIGSEGV.
    SegmentationFault,
    /// SIGABRT.
    Abort,
    /// SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGTRAP: a crash.
    Crash,
    /// Any other signal.
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

/// Classifies a wait status (`task_struct.exit_code`).
pub fn classify(status: u32, oom_killed: bool) -> Death {
    let signal = (status & 0x7f) as i32;
    let core_dumped = status & 0x80 != 0;
    let exit_code = ((status >> 8) & 0xff) as i32;
    if signal == 0 {
        return Death {
            reason: if oom_killed {
                Reason::OomKill
            } else {
                Reason::NormalExit
            },
            exit_code: Some(exit_code),
            signal: None,
            core_dumped,
        };
    }
    let reason = if oom_killed {
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
    Death {
        reason,
        exit_code: None,
        signal: Some(signal),
        core_dumped,
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

    #[test]
    fn classifies_statuses() {
        assert_eq!(classify(0, false).reason, Reason::NormalExit);
        let d = classify(3 << 8, false);
        assert_eq!(
            (d.reason, d.exit_code, d.signal),
            (Reason::NormalExit, Some(3), None)
        );
        let d = classify(9, true);
        assert_eq!((d.reason, d.signal), (Reason::OomKill, Some(9)));
        assert_eq!(classify(9, false).reason, Reason::Signal);
        let d = classify(11 | 0x80, false);
        assert_eq!((d.reason, d.core_dumped), (Reason::SegmentationFault, true));
        assert_eq!(classify(6, false).reason, Reason::Abort);
        assert_eq!(classify(7, false).reason, Reason::Crash);
        assert_eq!(classify(15, false).reason, Reason::Signal);
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(40), "SIG40");
    }
}
