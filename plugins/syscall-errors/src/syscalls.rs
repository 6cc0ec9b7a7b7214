//! System call names (x86-64, and i386 for 32-bit tasks), the argument holding a path for
//! file syscalls (the BPF program's `path_arg` table) and a coarse category. Pure.

use crate::syscall_table::{I386, X86_64};

/// `SYSERR_COMPAT`: the key's syscall number is an i386 one.
pub const COMPAT: u32 = 0x8000_0000;

/// Syscall numbers covered by `path_arg` (`SYSERR_SYSCALL_SLOTS`).
pub const PATH_SLOTS: usize = 512;

/// x86-64 calls whose FIRST argument is a user path.
const PATH_FIRST: &[&str] = &[
    "open",
    "stat",
    "lstat",
    "access",
    "execve",
    "truncate",
    "chdir",
    "rename",
    "mkdir",
    "rmdir",
    "creat",
    "link",
    "unlink",
    "symlink",
    "readlink",
    "chmod",
    "chown",
    "lchown",
    "utime",
    "mknod",
    "uselib",
    "statfs",
    "pivot_root",
    "chroot",
    "acct",
    "umount2",
    "swapon",
    "swapoff",
    "setxattr",
    "lsetxattr",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
    "removexattr",
    "lremovexattr",
    "utimes",
    "symlinkat",
];

/// x86-64 calls whose SECOND argument is a user path (most `*at` calls).
const PATH_SECOND: &[&str] = &[
    "mount",
    "inotify_add_watch",
    "openat",
    "mkdirat",
    "mknodat",
    "fchownat",
    "futimesat",
    "newfstatat",
    "unlinkat",
    "renameat",
    "linkat",
    "readlinkat",
    "fchmodat",
    "faccessat",
    "utimensat",
    "name_to_handle_at",
    "renameat2",
    "execveat",
    "statx",
    "open_tree",
    "openat2",
    "faccessat2",
    "fchmodat2",
    "setxattrat",
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "open_tree_attr",
];

const NETWORK: &[&str] = &[
    "socket",
    "connect",
    "accept",
    "accept4",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "shutdown",
    "bind",
    "listen",
    "getsockname",
    "getpeername",
    "socketpair",
    "setsockopt",
    "getsockopt",
    "sendmmsg",
    "recvmmsg",
];

const MEMORY: &[&str] = &[
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "mremap",
    "msync",
    "mincore",
    "madvise",
    "mlock",
    "munlock",
    "mlockall",
    "munlockall",
    "mbind",
    "set_mempolicy",
    "get_mempolicy",
    "migrate_pages",
    "move_pages",
    "mlock2",
    "pkey_mprotect",
    "memfd_create",
    "mseal",
    "shmget",
    "shmat",
    "shmdt",
];

const PROCESS: &[&str] = &[
    "clone",
    "clone3",
    "fork",
    "vfork",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "kill",
    "tkill",
    "tgkill",
    "ptrace",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setns",
    "unshare",
    "prctl",
    "pidfd_open",
    "pidfd_send_signal",
    "sched_setaffinity",
    "sched_setscheduler",
    "setpriority",
    "prlimit64",
    "setrlimit",
    "capset",
];

const FILE_FD: &[&str] = &[
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "fsync",
    "fdatasync",
    "sync_file_range",
    "ftruncate",
    "fallocate",
    "sendfile",
    "copy_file_range",
    "splice",
    "tee",
    "getdents",
    "getdents64",
    "fstat",
    "fstatfs",
    "fchmod",
    "fchown",
    "flock",
    "fcntl",
    "dup",
    "dup2",
    "dup3",
    "close",
    "lseek",
    "ioctl",
    "pipe",
    "pipe2",
    "eventfd",
    "eventfd2",
    "inotify_init",
    "inotify_init1",
    "fanotify_init",
    "fanotify_mark",
    "io_submit",
    "io_uring_enter",
    "io_uring_setup",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "syncfs",
    "fsetxattr",
    "fgetxattr",
    "flistxattr",
    "fremovexattr",
    "fchdir",
    "quotactl",
];

/// A syscall as the record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syscall {
    /// Number within its table.
    pub nr: u32,
    /// Name (`syscall_<n>` when the table has none).
    pub name: String,
    /// An i386 call of a 32-bit task.
    pub compat: bool,
}

/// Resolves the `nr` of an aggregate key (with the compat flag).
pub fn resolve(key_nr: u32) -> Syscall {
    let compat = key_nr & COMPAT != 0;
    let nr = key_nr & !COMPAT;
    let table = if compat { I386 } else { X86_64 };
    let name = match table.get(nr as usize) {
        Some(name) if !name.is_empty() => (*name).to_owned(),
        _ => format!("syscall_{nr}"),
    };
    Syscall { nr, name, compat }
}

/// The x86-64 number of a named call.
pub fn number(name: &str) -> Option<u32> {
    X86_64.iter().position(|n| *n == name).map(|i| i as u32)
}

/// The `path_arg` table: 1 = first argument is a path, 2 = second.
pub fn path_arg_table() -> [u8; PATH_SLOTS] {
    let mut table = [0u8; PATH_SLOTS];
    for (names, arg) in [(PATH_FIRST, 1u8), (PATH_SECOND, 2u8)] {
        for name in names {
            if let Some(nr) = number(name) {
                table[nr as usize] = arg;
            }
        }
    }
    table
}

/// `syscall.category`: file, network, memory, process or other.
pub fn category(name: &str) -> &'static str {
    if PROCESS.contains(&name) {
        "process"
    } else if PATH_FIRST.contains(&name) || PATH_SECOND.contains(&name) || FILE_FD.contains(&name) {
        "file"
    } else if NETWORK.contains(&name) {
        "network"
    } else if MEMORY.contains(&name) {
        "memory"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names() {
        assert_eq!(resolve(257).name, "openat");
        assert_eq!(resolve(42).name, "connect");
        assert_eq!(resolve(0).name, "read");
        let compat = resolve(5 | COMPAT);
        assert_eq!((compat.name.as_str(), compat.compat), ("open", true));
        assert_eq!(resolve(999).name, "syscall_999");
        assert_eq!(resolve(467).name, "open_tree_attr");
    }

    #[test]
    fn path_arguments_and_categories() {
        let table = path_arg_table();
        assert_eq!(table[257], 2, "openat(dirfd, path, ...)");
        assert_eq!(table[2], 1, "open(path, ...)");
        assert_eq!(table[0], 0, "read has no path");
        assert_eq!(table[59], 1, "execve(path, ...)");
        // Every listed name exists in the table.
        for name in PATH_FIRST.iter().chain(PATH_SECOND) {
            assert!(number(name).is_some(), "{name}");
        }
        assert_eq!(category("openat"), "file");
        assert_eq!(category("connect"), "network");
        assert_eq!(category("mmap"), "memory");
        assert_eq!(category("execve"), "process");
        assert_eq!(category("futex"), "other");
    }
}
