//! Integration tests of the systemd collector against a real `systemd --user` manager and
//! its D-Bus session bus (apt `systemd`, `dbus`, `dbus-user-session`), each started by the
//! test in its own cgroup (see `sandbox.sh`: the script refuses to start systemd unless it
//! verified that), and killed with its cgroups at the end even when a test fails.

mod manager;
mod sandbox;
mod scenarios;

use std::sync::Mutex;

/// One manager at a time: they are cheap but the machine is shared.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the serial lock, surviving a previous test's panic.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// What is missing to run a real manager here, if anything.
fn missing() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (creating cgroups and mount namespaces needs root)".into());
    }
    for tool in [
        "systemd",
        "systemctl",
        "busctl",
        "dbus-daemon",
        "unshare",
        "findmnt",
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
            .unwrap_or(false);
        if !found {
            return Some(format!("`{tool}` not found"));
        }
    }
    if !std::path::Path::new("/usr/lib/systemd/user/dbus.socket").exists() {
        return Some("no user dbus.socket unit (apt dbus-user-session)".into());
    }
    None
}

/// Whether `test` can run. When it cannot, prints `skipping <test>: <why>, needs <what>`
/// and returns false, or panics when `TAPIO_REQUIRE_ALL_TESTS=1` (CI).
fn can_run(test: &str) -> bool {
    match missing() {
        None => true,
        Some(why) => {
            let message = format!(
                "skipping {test}: {why}, needs root and apt systemd dbus dbus-user-session util-linux (.ci/deps/platform-sd.sh)"
            );
            if std::env::var("TAPIO_REQUIRE_ALL_TESTS").as_deref() == Ok("1") {
                panic!("{message} (TAPIO_REQUIRE_ALL_TESTS=1 forbids skipping)");
            }
            eprintln!("{message}");
            false
        }
    }
}
