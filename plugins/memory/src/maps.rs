//! `/proc/<pid>/maps`: which file a code address belongs to (for the caller of an
//! allocation: module + file offset, ready for `addr2line -e <module> <offset>`) and where
//! a process's C library is (for the uprobes).

/// One mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Start address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// Permissions (`r-xp`).
    pub perms: String,
    /// Offset in the file.
    pub offset: u64,
    /// File path (empty for anonymous mappings; `[heap]`, `[stack]`, ...).
    pub path: String,
}

/// Parses the text of a `/proc/<pid>/maps` file.
pub fn parse(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
            let _dev = fields.next()?;
            let _inode = fields.next()?;
            let path = fields.collect::<Vec<_>>().join(" ");
            let (start, end) = range.split_once('-')?;
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                perms: perms.to_owned(),
                offset,
                path,
            })
        })
        .collect()
}

/// The module and file offset of `addr`.
pub fn locate(maps: &[Mapping], addr: u64) -> Option<(&str, u64)> {
    maps.iter()
        .find(|m| m.start <= addr && addr < m.end)
        .map(|m| (m.path.as_str(), addr - m.start + m.offset))
}

/// The path of the C library a process maps (`libc.so.6`, `libc-2.31.so`, musl's
/// `ld-musl-x86_64.so.1`).
pub fn libc_path(maps: &[Mapping]) -> Option<&str> {
    maps.iter().map(|m| m.path.as_str()).find(|p| {
        let name = p.rsplit('/').next().unwrap_or("");
        name.starts_with("libc.so")
            || (name.starts_with("libc-") && name.ends_with(".so"))
            || name.starts_with("ld-musl-")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c4a00000-55d0c4a20000 r--p 00000000 fe:00 1234 /usr/bin/app
55d0c4a20000-55d0c4a80000 r-xp 00020000 fe:00 1234 /usr/bin/app
7f1e2a000000-7f1e2a028000 r--p 00000000 fe:00 99 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1e2a028000-7f1e2a1bd000 r-xp 00028000 fe:00 99 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd1000000-7ffd1021000 rw-p 00000000 00:00 0 [stack]
7f00000000-7f00001000 rw-p 00000000 00:00 0
";

    #[test]
    fn parses_and_locates() {
        let maps = parse(MAPS);
        assert_eq!(maps.len(), 6);
        assert_eq!(maps[5].path, "");
        assert_eq!(
            locate(&maps, 0x55d0c4a20010),
            Some(("/usr/bin/app", 0x20010))
        );
        assert_eq!(locate(&maps, 0x1), None);
        assert_eq!(
            libc_path(&maps),
            Some("/usr/lib/x86_64-linux-gnu/libc.so.6")
        );
        assert_eq!(
            libc_path(&parse("1-2 r-xp 0 0:0 0 /lib/ld-musl-x86_64.so.1\n")),
            Some("/lib/ld-musl-x86_64.so.1")
        );
        assert_eq!(
            libc_path(&parse("1-2 r-xp 0 0:0 0 /lib/libcrypto.so.3\n")),
            None
        );
    }
}
