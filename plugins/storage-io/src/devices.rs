//! Device numbers to names: the kernel's dev_t (`major << 20 | minor`) to `vda`, `nvme0n1p1`
//! (from `/sys/dev/block/<major>:<minor>`), cached.

use std::collections::HashMap;
use std::path::PathBuf;

/// Major number of a kernel dev_t.
pub const fn major(dev: u32) -> u32 {
    dev >> 20
}

/// Minor number of a kernel dev_t.
pub const fn minor(dev: u32) -> u32 {
    dev & 0xfffff
}

/// `major:minor` of a kernel dev_t.
pub fn dev_id(dev: u32) -> String {
    format!("{}:{}", major(dev), minor(dev))
}

/// Resolves device names, caching them.
#[derive(Debug)]
pub struct DeviceNames {
    sys_dev_block: PathBuf,
    cache: HashMap<u32, String>,
}

impl Default for DeviceNames {
    fn default() -> Self {
        Self::new("/sys/dev/block")
    }
}

impl DeviceNames {
    /// Names read from `sys_dev_block` (normally `/sys/dev/block`).
    pub fn new(sys_dev_block: impl Into<PathBuf>) -> Self {
        DeviceNames {
            sys_dev_block: sys_dev_block.into(),
            cache: HashMap::new(),
        }
    }

    /// The device's name, or `major:minor` when it is not a block device (tmpfs, overlay).
    pub fn name(&mut self, dev: u32) -> &str {
        let dir = &self.sys_dev_block;
        self.cache.entry(dev).or_insert_with(|| {
            std::fs::read_link(dir.join(dev_id(dev)))
                .ok()
                .and_then(|target| target.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| dev_id(dev))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_sysfs_links_or_numbers() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            "../../devices/pci0000:00/virtio1/block/vda",
            dir.path().join("254:0"),
        )
        .unwrap();
        let mut names = DeviceNames::new(dir.path());
        assert_eq!(names.name(254 << 20), "vda");
        assert_eq!(names.name(45), "0:45");
        assert_eq!(dev_id((259 << 20) | 3), "259:3");
    }
}
