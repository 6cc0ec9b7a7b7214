//! The test workload: O_DIRECT writes, each followed by fsync, from one dedicated thread.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// What the workload did.
pub struct Run {
    /// The writing thread's id (the marker events are matched by).
    pub tid: u32,
    /// The file's name.
    pub file_name: String,
    /// The first sector (512 bytes, on the whole device) of each 4 KiB block of the file,
    /// from FIEMAP: where each O_DIRECT write must land.
    pub block_sectors: Vec<u64>,
}

/// `struct fiemap` with room for a few extents.
#[repr(C)]
struct Fiemap {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [FiemapExtent; 32],
}

/// `struct fiemap_extent`.
#[repr(C)]
#[derive(Clone, Copy)]
struct FiemapExtent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

/// `FS_IOC_FIEMAP` = `_IOWR('f', 11, struct fiemap)`.
const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
/// `FIEMAP_FLAG_SYNC`.
const FIEMAP_FLAG_SYNC: u32 = 1;

/// `/sys/class/block/<dev>/start`: the partition's first sector (0 for a whole disk).
fn partition_start(dev: u64) -> u64 {
    let path = format!(
        "/sys/dev/block/{}:{}/start",
        libc::major(dev),
        libc::minor(dev)
    );
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The device sector of each 4 KiB block of the open file `f` of `n` blocks.
fn block_sectors(f: &std::fs::File, n: usize) -> io::Result<Vec<u64>> {
    let mut map = Fiemap {
        start: 0,
        length: (n * 4096) as u64,
        flags: FIEMAP_FLAG_SYNC,
        mapped_extents: 0,
        extent_count: 32,
        reserved: 0,
        extents: [FiemapExtent {
            logical: 0,
            physical: 0,
            length: 0,
            reserved64: [0; 2],
            flags: 0,
            reserved: [0; 3],
        }; 32],
    };
    // SAFETY: `map` is a valid, writable struct fiemap with room for 32 extents.
    if unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_FIEMAP, &mut map) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let offset = partition_start(f.metadata()?.dev());
    let extents = &map.extents[..map.mapped_extents as usize];
    (0..n)
        .map(|i| {
            let logical = (i * 4096) as u64;
            extents
                .iter()
                .find(|e| e.logical <= logical && logical < e.logical + e.length)
                .map(|e| (e.physical + logical - e.logical) / 512 + offset)
                .ok_or_else(|| io::Error::other(format!("block {i} is not mapped")))
        })
        .collect()
}

/// `major:minor` of the block device holding `dir`, or `None` when it is not on one
/// (tmpfs, overlay without a block device).
pub fn block_device_of(dir: &Path) -> Option<String> {
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let id = format!("{major}:{minor}");
    Path::new("/sys/dev/block").join(&id).exists().then_some(id)
}

/// A 4 KiB-aligned buffer for O_DIRECT.
struct Aligned(*mut u8);

impl Aligned {
    fn new() -> Self {
        let layout = std::alloc::Layout::from_size_align(4096, 4096).unwrap();
        // SAFETY: non-zero size.
        Aligned(unsafe { std::alloc::alloc_zeroed(layout) })
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(4096, 4096).unwrap();
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(self.0, layout) };
    }
}

/// Allocates a file of `n` blocks in `dir` (so the O_DIRECT writes are plain overwrites),
/// then, on a new thread, writes each 4 KiB block with O_DIRECT and calls fsync after each.
pub fn direct_writes_with_fsync(dir: &Path, n: usize) -> io::Result<Run> {
    let file_name = format!("tapio-sio-{}.dat", std::process::id());
    let path = dir.join(&file_name);
    let block_sectors = {
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        f.set_len((n * 4096) as u64)?;
        // Real blocks, not a hole: fallocate, then persist the allocation.
        // SAFETY: valid fd, plain syscall.
        let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, (n * 4096) as libc::off_t) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // syncfs, not fsync: the fsync calls counted by the tests are the workload's.
        // SAFETY: valid fd.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        block_sectors(&f, n)?
    };
    let handle = std::thread::Builder::new()
        .name("tapio-sio-wr".into())
        .spawn(move || -> io::Result<u32> {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() } as u32;
            let f = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(&path)?;
            let buf = Aligned::new();
            for i in 0..n {
                // SAFETY: buf is 4096 valid bytes, aligned as O_DIRECT needs.
                let written = unsafe {
                    libc::pwrite(f.as_raw_fd(), buf.0.cast(), 4096, (i * 4096) as libc::off_t)
                };
                if written != 4096 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: valid fd.
                if unsafe { libc::fsync(f.as_raw_fd()) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(tid)
        })?;
    let tid = handle.join().expect("writer thread panicked")?;
    Ok(Run {
        tid,
        file_name,
        block_sectors,
    })
}
