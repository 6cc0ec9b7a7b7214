//! errno names, the allow-list of the config and the severity class of each errno. Pure.

use tapio_plugin_api::Severity;

use crate::errno_table::NAMES;

/// Errnos above this are not tracked (`SYSERR_ERRNO_SLOTS` of the BPF program).
pub const MAX_ERRNO: u32 = 255;

/// The default allow-list.
pub const DEFAULT_ERRNOS: &[&str] = &[
    "ENOSPC",
    "ENOMEM",
    "ECONNREFUSED",
    "EIO",
    "EACCES",
    "EPERM",
    "ETIMEDOUT",
    "EMFILE",
    "EDQUOT",
];

/// The severity class of a failure (the BPF program's `errno_class` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Resources exhausted: ENOMEM, ENOSPC, EDQUOT.
    Critical = 1,
    /// I/O errors and descriptor exhaustion: EIO, EMFILE, ENFILE.
    Error = 2,
    /// Everything else (EACCES, EPERM, ECONNREFUSED, ETIMEDOUT, ...).
    Warning = 3,
}

impl Class {
    /// Every class, in `errno_class` order.
    pub const ALL: [Class; 3] = [Class::Critical, Class::Error, Class::Warning];

    /// The class of an errno.
    pub fn of(errno: u32) -> Class {
        match errno as i32 {
            libc::ENOMEM | libc::ENOSPC | libc::EDQUOT => Class::Critical,
            libc::EIO | libc::EMFILE | libc::ENFILE => Class::Error,
            _ => Class::Warning,
        }
    }

    /// From the value stored in the kernel (`None` for 0 or unknown values).
    pub fn from_raw(raw: u32) -> Option<Class> {
        Class::ALL.into_iter().find(|c| *c as u32 == raw)
    }

    /// The event severity.
    pub fn severity(self) -> Severity {
        match self {
            Class::Critical => Severity::Critical,
            Class::Error => Severity::Error,
            Class::Warning => Severity::Warning,
        }
    }

    /// Lowercase name (`critical`), for config keys and metric names.
    pub const fn as_str(self) -> &'static str {
        match self {
            Class::Critical => "critical",
            Class::Error => "error",
            Class::Warning => "warning",
        }
    }
}

/// The name of an errno (`ENOSPC`; `E<n>` for numbers without one).
pub fn name(errno: u32) -> String {
    match NAMES.get(errno as usize) {
        Some(name) if !name.is_empty() => (*name).to_owned(),
        _ => format!("E{errno}"),
    }
}

/// The number of an errno given by name (`ENOSPC`, case-insensitive, aliases included) or
/// by number (`28`).
pub fn number(text: &str) -> Option<u32> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u32>() {
        return (1..=MAX_ERRNO).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let upper = match upper.as_str() {
        "EWOULDBLOCK" => "EAGAIN",
        "EDEADLOCK" => "EDEADLK",
        "ENOTSUP" => "EOPNOTSUPP",
        other => other,
    };
    NAMES
        .iter()
        .position(|n| !n.is_empty() && *n == upper)
        .map(|i| i as u32)
}

/// Parses an allow-list; every unknown entry is listed in the error.
pub fn parse_allow_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<u32>, String> {
    let mut numbers = Vec::new();
    let mut unknown = Vec::new();
    for item in items {
        match number(item.as_ref()) {
            Some(n) => {
                if !numbers.contains(&n) {
                    numbers.push(n)
                }
            }
            None => unknown.push(format!("`{}`", item.as_ref())),
        }
    }
    if unknown.is_empty() {
        Ok(numbers)
    } else {
        Err(format!(
            "errnos: unknown errno {} (use names such as ENOSPC or numbers 1..={MAX_ERRNO})",
            unknown.join(", ")
        ))
    }
}

/// The `errno_class` table of the BPF program for an allow-list.
pub fn class_table(allowed: &[u32]) -> [u8; MAX_ERRNO as usize + 1] {
    let mut table = [0u8; MAX_ERRNO as usize + 1];
    for &errno in allowed {
        if errno <= MAX_ERRNO {
            table[errno as usize] = Class::of(errno) as u8;
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(name(28), "ENOSPC");
        assert_eq!(name(111), "ECONNREFUSED");
        assert_eq!(name(41), "E41");
        assert_eq!(number("enoent"), Some(2));
        assert_eq!(number("EWOULDBLOCK"), Some(11));
        assert_eq!(number("122"), Some(122));
        assert_eq!(number("EDQUOT"), Some(122));
        assert_eq!(number("0"), None);
        assert_eq!(number("ENOPE"), None);
    }

    #[test]
    fn default_list_and_classes() {
        let list = parse_allow_list(DEFAULT_ERRNOS).unwrap();
        assert_eq!(list.len(), 9);
        let table = class_table(&list);
        assert_eq!(table[libc::ENOSPC as usize], Class::Critical as u8);
        assert_eq!(table[libc::EIO as usize], Class::Error as u8);
        assert_eq!(table[libc::EPERM as usize], Class::Warning as u8);
        assert_eq!(table[libc::ENOENT as usize], 0);
        assert_eq!(Class::from_raw(1), Some(Class::Critical));
        assert_eq!(Class::from_raw(0), None);
    }

    #[test]
    fn unknown_errnos_are_all_listed() {
        let err = parse_allow_list(&["ENOSPC", "EFOO", "999"]).unwrap_err();
        assert!(err.contains("`EFOO`") && err.contains("`999`"), "{err}");
    }
}
