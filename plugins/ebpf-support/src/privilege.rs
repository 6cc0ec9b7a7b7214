//! Capability checks: loading BPF programs needs `CAP_BPF` + `CAP_PERFMON` (kernel >= 5.8)
//! or `CAP_SYS_ADMIN`. Checked up front so the error names what is missing instead of a bare
//! `EPERM` from the first map creation.

use crate::EbpfError;

/// Capability numbers (`linux/capability.h`).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability set of this process, from `/proc/self/status`.
pub fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

/// Parses the `CapEff:` line of a `/proc/<pid>/status` text.
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// The capabilities missing from `effective` to load and attach tracing programs, by name.
pub fn missing_capabilities(effective: u64) -> Vec<&'static str> {
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Vec::new();
    }
    let mut missing = Vec::new();
    if !has(CAP_BPF) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    missing
}

/// The error for missing capabilities, naming them.
pub fn permission_error(missing: &[&str]) -> EbpfError {
    let list = if missing.is_empty() {
        "CAP_BPF and CAP_PERFMON".to_owned()
    } else {
        missing.join(" and ")
    };
    EbpfError::Permission {
        message: format!(
            "missing capability {list}: loading eBPF programs needs CAP_BPF and CAP_PERFMON \
             (or CAP_SYS_ADMIN); run tapio-collector as root or grant them \
             (systemd: AmbientCapabilities=CAP_BPF CAP_PERFMON)"
        ),
    }
}

/// Fails with a [`EbpfError::Permission`] when this process cannot load BPF programs.
pub fn check() -> Result<(), EbpfError> {
    match effective_capabilities() {
        Some(effective) => {
            let missing = missing_capabilities(effective);
            if missing.is_empty() {
                Ok(())
            } else {
                Err(permission_error(&missing))
            }
        }
        // No procfs: let the load itself decide (its EPERM is mapped to the same error).
        None => Ok(()),
    }
}

/// Whether an error from a BPF syscall is a permission error (EPERM / EACCES), anywhere in
/// its chain.
pub(crate) fn is_eperm(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
                return true;
            }
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name: x\n"), None);
    }

    #[test]
    fn names_missing_capabilities() {
        assert_eq!(missing_capabilities(0), vec!["CAP_BPF", "CAP_PERFMON"]);
        assert_eq!(missing_capabilities(1 << CAP_BPF), vec!["CAP_PERFMON"]);
        assert!(missing_capabilities((1 << CAP_BPF) | (1 << CAP_PERFMON)).is_empty());
        assert!(missing_capabilities(1 << CAP_SYS_ADMIN).is_empty());
        let message = permission_error(&["CAP_BPF"]).to_string();
        assert!(message.contains("missing capability CAP_BPF"), "{message}");
    }
}
