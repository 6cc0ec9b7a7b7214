//! Test cgroups (feature `test-support`): a chain of directories a test creates, removed
//! (with any process left in them killed) when dropped, even when the test fails. Shared by
//! the process and container collectors' tests.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A chain of cgroup directories this test created (outermost first).
pub struct TestCgroup {
    dirs: Vec<PathBuf>,
}

impl TestCgroup {
    /// Creates `root/<components...>`, each level a new directory.
    pub fn create(root: &Path, components: &[&str]) -> io::Result<Self> {
        let mut cg = TestCgroup { dirs: Vec::new() };
        let mut dir = root.to_path_buf();
        for c in components {
            dir.push(c);
            std::fs::create_dir(&dir)?;
            cg.dirs.push(dir.clone());
        }
        Ok(cg)
    }

    /// The innermost directory.
    pub fn leaf(&self) -> &Path {
        self.dirs.last().expect("at least one level")
    }

    /// Writes `value` to the control file `name` of the innermost cgroup.
    pub fn set(&self, name: &str, value: &str) -> io::Result<()> {
        std::fs::write(self.leaf().join(name), value)
    }

    /// Makes `command` move itself into the innermost cgroup before it executes.
    pub fn spawn_into(&self, command: &mut Command) -> io::Result<std::process::Child> {
        let procs = CString::new(self.leaf().join("cgroup.procs").as_os_str().as_bytes())?;
        // SAFETY: the closure only calls async-signal-safe functions (open, write, close) on
        // memory prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                libc::close(fd);
                if ok {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
        command.spawn()
    }

    /// Kills what is left inside and removes every directory, innermost first.
    pub fn remove(&mut self) -> io::Result<()> {
        while let Some(dir) = self.dirs.last() {
            for pid in std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
            {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    // SAFETY: plain syscall.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            let mut result = std::fs::remove_dir(dir);
            for _ in 0..50 {
                if result.is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
                result = std::fs::remove_dir(dir);
            }
            result?;
            self.dirs.pop();
        }
        Ok(())
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("cannot remove test cgroup: {e}");
        }
    }
}
