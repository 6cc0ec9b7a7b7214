//! Helpers for the eBPF plugins' integration tests and benchmarks (feature `test-support`).
//!
//! - [`skip`]: a test that cannot run prints `skipping <test>: <why>, needs <what>` and
//!   returns, except under `TAPIO_REQUIRE_ALL_TESTS=1` (CI) where it fails.
//! - [`bpf_ready`], [`tool_ready`]: the usual preconditions, through [`skip`].
//! - [`serial`]: tests that count kernel events run one at a time.
//! - [`MarkedBinary`]: a uniquely named copy of a binary, so the events of a workload are
//!   recognisable among everything else the machine runs (its comm and path are unique).
//! - [`Unprivileged`]: re-runs one test of the current test binary as uid/gid 65534 with no
//!   capabilities, to check the plugin's unprivileged behaviour.
//! - [`run_in_new_cgroup`]: a bash script run as a child process inside a fresh cgroup v2
//!   cgroup, to check per-process and per-cgroup attribution.
//! - [`TestCgroup`]: cgroup directories a test creates and always removes.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::{Mutex, MutexGuard};

pub use crate::test_cgroup::TestCgroup;

/// The variable CI sets so that no test may skip.
pub const REQUIRE_ALL: &str = "TAPIO_REQUIRE_ALL_TESTS";

/// Set in the environment of a test re-run by [`Unprivileged`].
pub const UNPRIVILEGED_CHILD: &str = "TAPIO_TEST_UNPRIVILEGED_CHILD";

/// Whether every test must run (`TAPIO_REQUIRE_ALL_TESTS=1`).
pub fn require_all() -> bool {
    std::env::var(REQUIRE_ALL).is_ok_and(|v| v == "1")
}

/// Reports that `test` cannot run. Prints why and what it needs; panics instead when
/// [`require_all`] is set, so CI never skips silently.
pub fn skip(test: &str, why: &str, needs: &str) {
    let message = format!("skipping {test}: {why}, needs {needs}");
    if require_all() {
        panic!("{message} ({REQUIRE_ALL}=1 forbids skipping)");
    }
    eprintln!("{message}");
}

/// Whether BPF programs can be loaded here (capabilities, kernel BTF); reports a skip if not.
pub fn bpf_ready(test: &str) -> bool {
    if let Err(e) = crate::privilege::check() {
        skip(test, &e.to_string(), "root or CAP_BPF + CAP_PERFMON");
        return false;
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        skip(
            test,
            "no /sys/kernel/btf/vmlinux",
            "a kernel with CONFIG_DEBUG_INFO_BTF",
        );
        return false;
    }
    true
}

/// Whether `tool` is on PATH; reports a skip if not.
pub fn tool_ready(test: &str, tool: &str) -> bool {
    if which(tool).is_some() {
        return true;
    }
    skip(
        test,
        &format!("{tool} is not installed"),
        &format!("{tool} (.ci/deps/ebpf.sh)"),
    );
    false
}

/// The full path of `tool` on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Holds the lock that serializes tests counting kernel events (poison-tolerant: a failed
/// test does not fail the next ones).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
}

/// A marker unique to this process and call: `tp<pid><n>` (at most 15 bytes, so it is also a
/// complete `comm`).
pub fn unique_marker() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let marker = format!(
        "tp{}x{}",
        std::process::id() % 1_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    );
    marker.chars().take(15).collect()
}

/// A uniquely named copy of an executable in a fresh temporary directory.
pub struct MarkedBinary {
    dir: tempfile::TempDir,
    path: PathBuf,
    name: String,
}

impl MarkedBinary {
    /// Copies `source` (`/bin/true`) to `<tmp>/<unique marker>`, mode 0755.
    pub fn copy_of(source: impl AsRef<Path>) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("tapio-marker-").tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let name = unique_marker();
        let path = dir.path().join(&name);
        std::fs::copy(source.as_ref(), &path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(MarkedBinary { dir, path, name })
    }

    /// The copy's absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The marker: the file name, which is also the process `comm`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The temporary directory holding the copy.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the copy once with `args`, waits, returns its status.
    pub fn run(&self, args: &[&str]) -> std::io::Result<ExitStatus> {
        Command::new(&self.path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    }

    /// Runs the copy `n` times in sequence.
    pub fn run_n(&self, n: usize, args: &[&str]) -> std::io::Result<()> {
        for _ in 0..n {
            self.run(args)?;
        }
        Ok(())
    }
}

/// A child process killed (and reaped) when dropped, even when the test fails.
pub struct ChildGuard(pub std::process::Child);

impl ChildGuard {
    /// Spawns `command` under the guard.
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        command.spawn().map(ChildGuard)
    }
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP/UDP port on 127.0.0.1 (bound once, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Re-runs one test of the current test binary without privileges.
pub struct Unprivileged;

impl Unprivileged {
    /// Whether this process is such a re-run.
    pub fn is_child() -> bool {
        std::env::var_os(UNPRIVILEGED_CHILD).is_some()
    }

    /// Runs test `test_name` (its full path in the test binary, `unprivileged::reports...`)
    /// from a world-readable copy of the current executable, as uid/gid 65534 (nobody):
    /// changing uid away from 0 clears every capability. Returns its output.
    pub fn run(test_name: &str) -> std::io::Result<Output> {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let dir = tempfile::Builder::new().prefix("tapio-unpriv-").tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let exe = dir.path().join("test-binary");
        std::fs::copy(std::env::current_exe()?, &exe)?;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))?;
        Command::new(&exe)
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(UNPRIVILEGED_CHILD, "1")
            .env_remove(REQUIRE_ALL)
            .current_dir(dir.path())
            .uid(65534)
            .gid(65534)
            .stdin(Stdio::null())
            .output()
    }
}

/// The test every eBPF plugin has: started without privileges (re-run as nobody by
/// [`Unprivileged`]), plugin `C` reports failed health naming the missing capabilities
/// (CAP_BPF, CAP_PERFMON) and emits nothing; the host process never sees an error.
/// `test_name` is the calling test's path in its test binary.
pub fn assert_unprivileged_start_names_the_capability<C: tapio_plugin_api::Collector>(
    test_name: &str,
) {
    use tapio_plugin_api::HealthStatus;
    if Unprivileged::is_child() {
        let mut h = tapio_plugin_testkit::Harness::<C>::create("{}").unwrap();
        h.start().unwrap();
        let health = h.health();
        h.stop().unwrap();
        assert_eq!(health.status, HealthStatus::Failed, "{health:?}");
        assert!(health.reason.contains("CAP_BPF"), "{}", health.reason);
        assert!(h.events().is_empty(), "no synthetic events");
        println!("UNPRIVILEGED-OK {}", health.reason);
        return;
    }
    let _serial = serial();
    let out = Unprivileged::run(test_name).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("UNPRIVILEGED-OK"), "{stdout}");
    assert!(stdout.contains("CAP_PERFMON"), "{stdout}");
}

/// What [`run_in_new_cgroup`] ran.
#[derive(Debug)]
pub struct CgroupRun {
    /// The child's pid.
    pub pid: u32,
    /// The id of the cgroup it ran in (the v2 cgroup directory's inode number, what
    /// `bpf_get_current_cgroup_id` returns).
    pub cgroup_id: u64,
    /// Its exit status and output.
    pub output: Output,
}

/// Runs `bash -c script` as a child moved into a new cgroup under the cgroup v2 root
/// (`tapio-test-<marker>`) before the script starts; waits for it, then removes the cgroup.
pub fn run_in_new_cgroup(script: &str) -> std::io::Result<CgroupRun> {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let root = crate::cgroup2::root().map_err(std::io::Error::other)?;
    let dir = root.join(format!("tapio-test-{}", unique_marker()));
    std::fs::create_dir(&dir)?;
    let cgroup_id = std::fs::metadata(&dir)?.ino();
    let spawned = Command::new("bash")
        .arg("-c")
        .arg(format!("read -r go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
    };
    let pid = child.id();
    let moved = std::fs::write(dir.join("cgroup.procs"), pid.to_string())
        .and_then(|()| child.stdin.take().expect("piped stdin").write_all(b"go\n"));
    if let Err(e) = moved {
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir(&dir);
        return Err(e);
    }
    let output = child.wait_with_output();
    // The cgroup is empty once the child is reaped; rmdir may race with its release.
    for _ in 0..50 {
        if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(CgroupRun {
        pid,
        cgroup_id,
        output: output?,
    })
}
