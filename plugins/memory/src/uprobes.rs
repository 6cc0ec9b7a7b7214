//! Attaching the allocation uprobes to the C library of each configured process.

use std::collections::HashSet;
use std::num::NonZeroU32;

use tapio_ebpf_support::aya::programs::{uprobe::UProbeScope, UProbe};
use tapio_ebpf_support::aya::Ebpf;

use crate::maps;

/// (program, C library symbol) pairs.
pub const PROBES: &[(&str, &str)] = &[
    ("malloc_enter", "malloc"),
    ("malloc_exit", "malloc"),
    ("calloc_enter", "calloc"),
    ("calloc_exit", "calloc"),
    ("realloc_enter", "realloc"),
    ("realloc_exit", "realloc"),
    ("free_enter", "free"),
    ("mmap_enter", "mmap"),
    ("mmap_exit", "mmap"),
    ("munmap_enter", "munmap"),
];

/// Why a process's allocations cannot be tracked.
#[derive(Debug, thiserror::Error)]
pub enum UprobeError {
    /// The process does not exist or its maps are unreadable.
    #[error("cannot read /proc/{pid}/maps")]
    Maps {
        /// The pid.
        pid: u32,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It maps no C library (static binary, or not a C-runtime process).
    #[error("process {pid} maps no C library")]
    NoLibc {
        /// The pid.
        pid: u32,
    },
    /// pid 0 is not a process.
    #[error("pid 0 is not a process")]
    ZeroPid,
    /// A program missing from the object.
    #[error("program {0} is not in the memory BPF object")]
    MissingProgram(&'static str),
    /// Loading or attaching failed.
    #[error("cannot attach {program} to {symbol} in {target}")]
    Attach {
        /// Program.
        program: &'static str,
        /// Symbol.
        symbol: &'static str,
        /// The library.
        target: String,
        /// aya's error.
        #[source]
        source: Box<tapio_ebpf_support::aya::programs::ProgramError>,
    },
}

/// Loads (once) and attaches every allocation probe to `pid`'s C library.
pub fn attach(
    ebpf: &mut Ebpf,
    pid: u32,
    loaded: &mut HashSet<&'static str>,
) -> Result<(), UprobeError> {
    let scope = NonZeroU32::new(pid).ok_or(UprobeError::ZeroPid)?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|source| UprobeError::Maps { pid, source })?;
    let mapped = maps::parse(&text);
    let libc = maps::libc_path(&mapped).ok_or(UprobeError::NoLibc { pid })?;
    // Through the process's root, so that a container's own C library is the one probed.
    let target = format!("/proc/{pid}/root{libc}");
    for &(program, symbol) in PROBES {
        let probe: &mut UProbe = ebpf
            .program_mut(program)
            .ok_or(UprobeError::MissingProgram(program))?
            .try_into()
            .map_err(|e| UprobeError::Attach {
                program,
                symbol,
                target: target.clone(),
                source: Box::new(e),
            })?;
        let fail = |e| UprobeError::Attach {
            program,
            symbol,
            target: target.clone(),
            source: Box::new(e),
        };
        if loaded.insert(program) {
            probe.load().map_err(fail)?;
        }
        probe
            .attach(symbol, &target, UProbeScope::OneProcess(scope))
            .map_err(|e| UprobeError::Attach {
                program,
                symbol,
                target: target.clone(),
                source: Box::new(e),
            })?;
    }
    Ok(())
}
