//! The cgroup v2 root, where `cgroup_skb` programs attach to see every socket of the host:
//! found in `/proc/self/mountinfo` (`/sys/fs/cgroup` on unified hosts,
//! `/sys/fs/cgroup/unified` on hybrid ones), or mounted on demand at [`FALLBACK`] when no
//! cgroup2 file system is mounted (cgroup v1-only hosts: every process is then in the v2
//! root, so attaching there still sees every socket).

use std::path::{Path, PathBuf};

use crate::EbpfError;

/// Where the cgroup v2 root is mounted when the host has none mounted.
pub const FALLBACK: &str = "/run/tapio/cgroup2";

/// The mount point of the first `cgroup2` file system in a mountinfo text whose root is the
/// hierarchy's root (`/`).
pub fn find_in_mountinfo(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let mut fields = left.split_whitespace();
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        (fstype == "cgroup2" && root == "/").then(|| PathBuf::from(unescape(mount_point)))
    })
}

/// mountinfo escapes spaces, tabs, newlines and backslashes as octal (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let code = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 8).ok());
            if let Some(code) = code {
                out.push(code);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 root: the mounted one, else a fresh mount at [`FALLBACK`].
pub fn root() -> Result<PathBuf, EbpfError> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| EbpfError::Io {
            what: "reading /proc/self/mountinfo",
            source,
        })?;
    if let Some(path) = find_in_mountinfo(&mountinfo) {
        return Ok(path);
    }
    mount_fallback()
}

fn mount_fallback() -> Result<PathBuf, EbpfError> {
    let dir = Path::new(FALLBACK);
    std::fs::create_dir_all(dir).map_err(|source| EbpfError::Io {
        what: "creating /run/tapio/cgroup2",
        source,
    })?;
    let source = c"cgroup2";
    let target = c"/run/tapio/cgroup2";
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            source.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(EbpfError::Io {
            what: "mounting cgroup2 at /run/tapio/cgroup2",
            source: std::io::Error::last_os_error(),
        });
    }
    log::info!("mounted the cgroup v2 hierarchy at {FALLBACK}");
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_root_mount() {
        let hybrid = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
        assert_eq!(
            find_in_mountinfo(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        // A bind mount of a sub-cgroup is not the root.
        let nested = "40 1 0:27 /kubepods /mnt/x rw - cgroup2 cgroup2 rw\n\
                      41 1 0:27 / /mnt/my\\040root rw - cgroup2 cgroup2 rw";
        assert_eq!(
            find_in_mountinfo(nested),
            Some(PathBuf::from("/mnt/my root"))
        );
        assert_eq!(
            find_in_mountinfo("32 30 0:28 / /x rw - cgroup cgroup rw"),
            None
        );
    }
}
