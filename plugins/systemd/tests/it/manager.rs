//! A private `systemd --user` manager for one test, started through `sandbox.sh` (own
//! cgroup in every hierarchy, verified before exec; private mount namespace, tmpfs on
//! /run/systemd, private XDG_RUNTIME_DIR) and torn down completely on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The sandbox script, next to this file.
pub fn sandbox_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sandbox.sh")
}

/// A fresh cgroup name for this test process.
pub fn fresh_name() -> String {
    format!(
        "tapio-sdtest-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Directories of one manager: runtime dir, home, unit dir, sandbox state.
pub struct Dirs {
    _tmp: tempfile::TempDir,
    /// `XDG_RUNTIME_DIR` (the bus socket is `<runtime>/bus`).
    pub runtime: PathBuf,
    home: PathBuf,
    config: PathBuf,
}

impl Dirs {
    /// Fresh private directories.
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let runtime = tmp.path().join("rt");
        let home = tmp.path().join("home");
        let config = tmp.path().join("config");
        for d in [&runtime, &home, &config.join("systemd/user")] {
            std::fs::create_dir_all(d).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        Dirs {
            _tmp: tmp,
            runtime,
            home,
            config,
        }
    }

    /// The bus address the collector is given.
    pub fn bus_address(&self) -> String {
        format!("unix:path={}", self.runtime.join("bus").display())
    }

    /// Writes a unit file `name` with `text`.
    pub fn write_unit(&self, name: &str, text: &str) {
        std::fs::write(self.config.join("systemd/user").join(name), text).unwrap();
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("XDG_RUNTIME_DIR", &self.runtime)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.config)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("NOTIFY_SOCKET");
    }

    /// A command with this manager's environment.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        self.env(&mut cmd);
        cmd
    }
}

/// The running manager; dropping it kills everything in its cgroups and removes them.
pub struct UserManager {
    child: Child,
    state: PathBuf,
    /// Its cgroup name.
    pub name: String,
    log: PathBuf,
}

/// The cgroup paths of a process, one line per hierarchy.
fn cgroup_lines(pid: u32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

impl UserManager {
    /// Starts `systemd --user` for `dirs` and waits until it owns
    /// `org.freedesktop.systemd1` on `<runtime>/bus`.
    pub fn start(dirs: &Dirs) -> Self {
        let pid1_before = cgroup_lines(1);
        let name = fresh_name();
        let state = dirs.runtime.parent().unwrap().join(format!("state-{name}"));
        let log = dirs.runtime.parent().unwrap().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = dirs.command("bash");
        cmd.arg(sandbox_script())
            .arg("start")
            .arg(&name)
            .arg(&state)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = cmd.spawn().expect("cannot run bash sandbox.sh");
        let mut manager = UserManager {
            child,
            state,
            name,
            log,
        };
        manager.wait_ready(dirs, pid1_before);
        manager
    }

    /// The pid of `systemd --user` (the sandbox execs into it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, dirs: &Dirs, pid1_before: Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "systemd --user exited early ({status}); sandbox log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            // Tripwire: once it runs as systemd, the manager must be in its own cgroup
            // everywhere, and PID 1 must not have moved.
            let comm =
                std::fs::read_to_string(format!("/proc/{}/comm", self.pid())).unwrap_or_default();
            if comm.trim() == "systemd" {
                for line in cgroup_lines(self.pid()) {
                    assert!(
                        line.contains(&format!("/{}", self.name)),
                        "systemd --user is outside its sandbox cgroup: {line}"
                    );
                }
                assert_eq!(cgroup_lines(1), pid1_before, "PID 1 changed cgroup");
                if self.has_owner(dirs) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "systemd --user not on its bus within 30 s; log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn has_owner(&self, dirs: &Dirs) -> bool {
        if !dirs.runtime.join("bus").exists() {
            return false;
        }
        let out = dirs
            .command("busctl")
            .arg(format!("--address={}", dirs.bus_address()))
            .args([
                "call",
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "NameHasOwner",
                "s",
                "org.freedesktop.systemd1",
            ])
            .output();
        matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "b true")
    }

    /// Kills everything in the manager's cgroups and removes them.
    pub fn kill(&mut self) {
        let status = Command::new("bash")
            .arg(sandbox_script())
            .arg("cleanup")
            .arg(&self.state)
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "sandbox cleanup failed: {status:?}"
        );
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(sandbox_script())
            .arg("cleanup")
            .arg(&self.state)
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `systemctl --user ARGS` against the manager of `dirs`; panics on failure unless `ok_fail`.
pub fn systemctl(dirs: &Dirs, args: &[&str]) -> std::process::Output {
    dirs.command("systemctl")
        .arg("--user")
        .args(args)
        .output()
        .expect("cannot run systemctl")
}

/// `systemctl --user show -p PROP --value UNIT`.
pub fn show(dirs: &Dirs, unit: &str, prop: &str) -> String {
    let out = systemctl(dirs, &["show", "-p", prop, "--value", unit]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// An independent record of what systemd published: `busctl monitor` (a D-Bus monitor,
/// `BecomeMonitor`) captures every `PropertiesChanged` on the bus while the test runs.
pub struct BusMonitor {
    child: Child,
    out: PathBuf,
}

impl BusMonitor {
    /// Starts monitoring the bus of `dirs`.
    pub fn start(dirs: &Dirs) -> Self {
        let out = dirs.runtime.parent().unwrap().join("monitor.json");
        let file = std::fs::File::create(&out).unwrap();
        let child = dirs
            .command("busctl")
            .arg(format!("--address={}", dirs.bus_address()))
            .args([
                "monitor",
                "--json=short",
                "--match",
                "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'",
            ])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run busctl monitor");
        // busctl prints nothing when ready: give it a moment to become a monitor.
        std::thread::sleep(Duration::from_millis(500));
        BusMonitor { child, out }
    }

    /// Stops the monitor; per unit, the (ActiveState, SubState) sequence systemd published,
    /// consecutive repeats removed.
    pub fn finish(mut self) -> std::collections::BTreeMap<String, Vec<(String, String)>> {
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.out).unwrap();
        let mut states: std::collections::BTreeMap<String, Vec<(String, String)>> =
            Default::default();
        for line in text.lines() {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let path = msg["path"].as_str().unwrap_or_default();
            let Some(label) = path.strip_prefix("/org/freedesktop/systemd1/unit/") else {
                continue;
            };
            let data = &msg["payload"]["data"];
            if data[0] != "org.freedesktop.systemd1.Unit" {
                continue;
            }
            let (Some(active), Some(sub)) = (
                data[1]["ActiveState"]["data"].as_str(),
                data[1]["SubState"]["data"].as_str(),
            ) else {
                continue;
            };
            let unit = label.replace("_2d", "-").replace("_2e", ".");
            let seq = states.entry(unit).or_default();
            let state = (active.to_owned(), sub.to_owned());
            if seq.last() != Some(&state) {
                seq.push(state);
            }
        }
        states
    }
}

impl Drop for BusMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
