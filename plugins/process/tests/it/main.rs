//! Integration tests of the process collector against the real kernel. Every workload is
//! recognisable among the machine's other processes: a uniquely named copy of a binary, or
//! the pids of children this test spawned. Tests run serially; each skips (or fails under
//! `TAPIO_REQUIRE_ALL_TESTS=1`) when BPF, bpftrace or a memory cgroup is unavailable.

mod cgroups;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use tapio_ebpf_support::oracle::Bpftrace;
use tapio_ebpf_support::test_support::{
    assert_unprivileged_start_names_the_capability, bpf_ready, serial, skip, tool_ready,
    ChildGuard, MarkedBinary,
};
use tapio_plugin_api::{HealthStatus, Severity};
use tapio_plugin_process::ProcessCollector;
use tapio_plugin_testkit::{spec, Captured, Harness, Value};

fn started(config: &str) -> Harness<ProcessCollector> {
    let mut h = Harness::<ProcessCollector>::create(config).unwrap();
    h.start().unwrap();
    for _ in 0..100 {
        if h.health().status == HealthStatus::Healthy {
            return h;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("collector not healthy: {:?}", h.health());
}

fn of_type<'a>(events: &'a [Captured], kind: &str, pid: u32) -> Vec<&'a Captured> {
    events
        .iter()
        .filter(|e| e.event_type == kind && e.pid == Some(pid))
        .collect()
}

fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn quiet(command: &mut Command) -> &mut Command {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

#[test]
fn collector_contract() {
    let _serial = serial();
    if !bpf_ready("collector_contract") {
        return;
    }
    spec::check::<ProcessCollector>("{}", Duration::from_millis(300)).unwrap();
}

/// N execs of a uniquely named copy of /bin/true: exactly N exec events with the right
/// parent, path, argv and uid, N exits with normal_exit, and bpftrace counts the same N.
#[test]
fn execs_of_a_marked_binary_match_bpftrace() {
    let _serial = serial();
    const TEST: &str = "execs_of_a_marked_binary_match_bpftrace";
    if !bpf_ready(TEST) || !tool_ready(TEST, "bpftrace") {
        return;
    }
    const N: usize = 200;
    let marker = MarkedBinary::copy_of("/bin/true").unwrap();
    let path = marker.path().to_str().unwrap().to_owned();
    let script = format!(
        r#"BEGIN {{ printf("READY\n"); }}
        tracepoint:sched:sched_process_exec /str(args->filename) == "{path}"/ {{ @execs = count(); }}"#
    );
    let oracle = match Bpftrace::start(&script, Duration::from_secs(20)) {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    };
    let h = started("{}");
    marker.run_n(N, &["first-arg", "second arg"]).unwrap();
    let events = h.wait_until(Duration::from_secs(10), |events| {
        events
            .iter()
            .filter(|e| {
                e.event_type == "kernel.process.exit"
                    && e.str("process.executable.name") == Some(marker.name())
            })
            .count()
            >= N
    });
    let oracle = oracle.finish().unwrap();
    let mut h = h;
    h.stop().unwrap();

    let execs: Vec<&Captured> = events
        .iter()
        .filter(|e| {
            e.event_type == "kernel.process.exec" && e.str("process.executable.path") == Some(&path)
        })
        .collect();
    assert_eq!(execs.len(), N, "exec events of {path}");
    assert_eq!(
        oracle.get("@execs"),
        Some(&(N as i64)),
        "bpftrace: {oracle:?}"
    );
    let me = u64::from(std::process::id());
    let args = serde_json::to_string(&[path.as_str(), "first-arg", "second arg"]).unwrap();
    for e in &execs {
        assert_eq!(e.int("process.parent_pid"), Some(i128::from(me)), "{e:?}");
        assert_eq!(e.str("process.executable.name"), Some(marker.name()));
        assert_eq!(e.str("process.command_args"), Some(args.as_str()));
        assert_eq!(
            e.attr("process.command_args.truncated"),
            Some(&Value::Bool(false))
        );
        assert_eq!(e.int("process.user.id"), Some(0));
        assert_eq!(e.int("process.pid").map(|p| p as u32), e.pid);
        assert!(e.cgroup_id.is_some());
    }
    for e in &execs {
        let pid = e.pid.unwrap();
        let exits = of_type(&events, "kernel.process.exit", pid);
        assert_eq!(exits.len(), 1, "exit of {pid}: {exits:#?}");
        let x = exits[0];
        assert_eq!(x.str("process.death_reason"), Some("normal_exit"));
        assert_eq!(x.int("process.exit.code"), Some(0));
        assert_eq!(x.severity, Severity::Info);
        assert_eq!(x.int("process.parent_pid"), Some(i128::from(me)));
        let lifetime = x.int("process.lifetime_ns").unwrap();
        assert!(lifetime > 0 && lifetime < 10_000_000_000, "{lifetime}");
    }
    let stats = h.collector().kernel_stats().unwrap();
    assert_eq!(stats.produced, stats.delivered + stats.dropped, "{stats:?}");
}

/// argv longer than the 256 bytes the kernel copies: the event keeps the first bytes
/// (whole leading arguments, the cut one partially) and says it was truncated.
#[test]
fn long_argv_is_truncated() {
    let _serial = serial();
    if !bpf_ready("long_argv_is_truncated") {
        return;
    }
    let h = started("{}");
    let marker = MarkedBinary::copy_of("/bin/true").unwrap();
    let long = "x".repeat(400);
    marker.run(&["short", &long]).unwrap();
    let path = marker.path().to_str().unwrap().to_owned();
    let mut h = h;
    let events = h.wait_until(Duration::from_secs(5), |events| {
        events.iter().any(|e| {
            e.event_type == "kernel.process.exec" && e.str("process.executable.path") == Some(&path)
        })
    });
    h.stop().unwrap();
    let e = events
        .iter()
        .find(|e| {
            e.event_type == "kernel.process.exec" && e.str("process.executable.path") == Some(&path)
        })
        .expect("exec event");
    assert_eq!(
        e.attr("process.command_args.truncated"),
        Some(&Value::Bool(true))
    );
    let args: Vec<String> = serde_json::from_str(e.str("process.command_args").unwrap()).unwrap();
    assert_eq!(args.len(), 3, "{args:?}");
    assert_eq!(
        (args[0].as_str(), args[1].as_str()),
        (path.as_str(), "short")
    );
    // 256 bytes in all: path, NUL, "short", NUL, then the cut argument.
    assert_eq!(args[2].len(), 256 - (path.len() + 1) - ("short".len() + 1));
    assert!(args[2].chars().all(|c| c == 'x'));
}

/// Exit codes, signals and death reasons of real deaths: exit 3, a real SIGSEGV (NULL
/// dereference), abort(3), SIGBUS, and SIGTERM from a marked copy of kill(1) (the killer).
#[test]
fn death_reasons_and_killers() {
    let _serial = serial();
    const TEST: &str = "death_reasons_and_killers";
    if !bpf_ready(TEST) {
        return;
    }
    let h = started("{}");
    let run = |command: &mut Command| -> u32 {
        let mut child = quiet(command).spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let exit3 = run(Command::new("sh").args(["-c", "exit 3"]));
    let segv = run(Command::new(python()).args(["-c", "import ctypes; ctypes.string_at(0)"]));
    let abort = run(Command::new(python()).args(["-c", "import os; os.abort()"]));
    let bus = run(Command::new("sh").args(["-c", "kill -BUS $$"]));
    let mut victim = ChildGuard::spawn(quiet(Command::new("sleep").arg("60"))).unwrap();
    let victim_pid = victim.pid();
    std::thread::sleep(Duration::from_millis(50));
    let kill = MarkedBinary::copy_of("/usr/bin/kill").unwrap();
    let mut killer = quiet(Command::new(kill.path()).args(["-TERM", &victim_pid.to_string()]))
        .spawn()
        .unwrap();
    let killer_pid = killer.id();
    assert!(killer.wait().unwrap().success());
    assert_eq!(victim.0.wait().unwrap().signal(), Some(libc::SIGTERM));

    let pids = [exit3, segv, abort, bus, victim_pid];
    let mut h = h;
    let events = h.wait_until(Duration::from_secs(10), |events| {
        pids.iter()
            .all(|&p| !of_type(events, "kernel.process.exit", p).is_empty())
    });
    h.stop().unwrap();
    let exit_of = |pid: u32| -> &Captured {
        let exits = of_type(&events, "kernel.process.exit", pid);
        assert_eq!(exits.len(), 1, "exit of {pid}");
        exits[0]
    };

    let e = exit_of(exit3);
    assert_eq!(e.str("process.death_reason"), Some("normal_exit"));
    assert_eq!(e.int("process.exit.code"), Some(3));
    assert_eq!(e.severity, Severity::Warning);
    assert_eq!(e.attr("process.killer.pid"), None);

    let e = exit_of(segv);
    assert_eq!(
        e.str("process.death_reason"),
        Some("segmentation_fault"),
        "{e:?}"
    );
    assert_eq!(e.int("process.exit.signal"), Some(11));
    assert_eq!(e.severity, Severity::Error);
    // The kernel raised it on the faulting process itself.
    assert_eq!(e.int("process.killer.pid"), Some(i128::from(segv)));
    assert_eq!(e.attr("process.killer.kernel"), Some(&Value::Bool(true)));

    let e = exit_of(abort);
    assert_eq!(e.str("process.death_reason"), Some("abort"), "{e:?}");
    assert_eq!(e.int("process.exit.signal"), Some(6));
    assert_eq!(e.int("process.killer.pid"), Some(i128::from(abort)));
    assert_eq!(e.attr("process.killer.kernel"), Some(&Value::Bool(false)));

    let e = exit_of(bus);
    assert_eq!(e.str("process.death_reason"), Some("crash"), "{e:?}");
    assert_eq!(e.str("process.exit.signal.name"), Some("SIGBUS"));

    let e = exit_of(victim_pid);
    assert_eq!(e.str("process.death_reason"), Some("signal"), "{e:?}");
    assert_eq!(e.int("process.exit.signal"), Some(15));
    assert_eq!(e.int("process.killer.pid"), Some(i128::from(killer_pid)));
    assert_eq!(e.str("process.killer.executable.name"), Some(kill.name()));
    assert_eq!(e.str("process.executable.name"), Some("sleep"));
    assert_eq!(e.severity, Severity::Warning);

    // The signal itself, with sender and target.
    let signals = of_type(&events, "kernel.process.signal", victim_pid);
    assert_eq!(signals.len(), 1, "{signals:#?}");
    let s = signals[0];
    assert_eq!(s.int("process.signal.number"), Some(15));
    assert_eq!(s.str("process.signal.name"), Some("SIGTERM"));
    assert_eq!(
        s.int("process.signal.sender.pid"),
        Some(i128::from(killer_pid))
    );
    assert_eq!(
        s.str("process.signal.sender.executable.name"),
        Some(kill.name())
    );
    assert_eq!(s.str("process.executable.name"), Some("sleep"));
    assert_eq!(s.attr("process.signal.group"), Some(&Value::Bool(true)));
    // A segfault produces a kernel-generated signal event too.
    let segv_signal = of_type(&events, "kernel.process.signal", segv);
    assert_eq!(segv_signal.len(), 1, "{segv_signal:#?}");
    assert_eq!(
        segv_signal[0].attr("process.signal.kernel"),
        Some(&Value::Bool(true))
    );
    // A clean exit produced none.
    assert!(of_type(&events, "kernel.process.signal", exit3).is_empty());
}

/// A process in a memory-limited cgroup is OOM-killed: kernel.memory.oom_kill, then its
/// exit with death reason oom_kill.
#[test]
fn oom_kill_gives_oom_event_and_death_reason() {
    let _serial = serial();
    const TEST: &str = "oom_kill_gives_oom_event_and_death_reason";
    if !bpf_ready(TEST) {
        return;
    }
    let Some((root, limit_file)) = cgroups::memory_hierarchy() else {
        skip(
            TEST,
            "no memory controller is mounted",
            "cgroup v1 memory or v2 with memory",
        );
        return;
    };
    let h = started("{}");
    let name = format!("tapio-proc-oom-{}", std::process::id());
    let mut cg = cgroups::TestCgroup::create(&root, &[&name]).unwrap();
    cg.set(limit_file, &(32u64 << 20).to_string()).unwrap();
    // dd reads 512 MiB of zeros into one buffer: every page is charged to the 32 MiB cgroup.
    let mut child = cg
        .spawn_into(quiet(Command::new("dd").args([
            "if=/dev/zero",
            "of=/dev/null",
            "bs=512M",
            "count=1",
        ])))
        .unwrap();
    let pid = child.id();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "dd was not OOM-killed"
    );
    cg.remove().unwrap();

    let mut h = h;
    let events = h.wait_until(Duration::from_secs(10), |events| {
        !of_type(events, "kernel.process.exit", pid).is_empty()
    });
    h.stop().unwrap();
    let ooms = of_type(&events, "kernel.memory.oom_kill", pid);
    assert_eq!(ooms.len(), 1, "{ooms:#?}");
    let oom = ooms[0];
    assert_eq!(oom.severity, Severity::Critical);
    assert_eq!(oom.str("process.executable.name"), Some("dd"));
    assert_eq!(oom.int("process.user.id"), Some(0));
    // dd's own allocation (page fault) invoked the OOM killer.
    assert_eq!(oom.int("oom.trigger.pid"), Some(i128::from(pid)));
    assert!(oom.int("oom.memcg.id").unwrap() > 0);
    let exits = of_type(&events, "kernel.process.exit", pid);
    assert_eq!(exits.len(), 1);
    let exit = exits[0];
    assert_eq!(
        exit.str("process.death_reason"),
        Some("oom_kill"),
        "{exit:?}"
    );
    assert_eq!(exit.int("process.exit.signal"), Some(9));
    assert_eq!(exit.attr("process.exit.code"), None);
    assert_eq!(exit.int("process.killer.pid"), Some(i128::from(pid)));
    assert_eq!(exit.severity, Severity::Error);
}

/// A flood of execs into a one-page ring read twice a second: records are dropped in the
/// kernel and counted exactly (produced == delivered + dropped after stop).
#[test]
fn overload_drops_are_counted_exactly() {
    let _serial = serial();
    if !bpf_ready("overload_drops_are_counted_exactly") {
        return;
    }
    let h =
        started(r#"{"ring_buffer_bytes":4096,"wakeup_bytes":1073741824,"poll_interval":"500ms"}"#);
    let marker = MarkedBinary::copy_of("/bin/true").unwrap();
    marker.run_n(300, &[]).unwrap();
    let mut h = h;
    h.stop().unwrap();
    let stats = h.collector().kernel_stats().unwrap();
    assert!(
        stats.dropped > 0,
        "the flood did not overflow the ring: {stats:?}"
    );
    assert!(stats.delivered > 0, "{stats:?}");
    assert_eq!(stats.produced, stats.delivered + stats.dropped, "{stats:?}");
    assert_eq!(
        h.metric("kernel_dropped_events_total"),
        Some(stats.dropped as f64)
    );
    assert_eq!(h.metric("record_decode_errors_total"), Some(0.0));
    // Every delivered record became an event.
    let built: f64 = [
        "exec_events_total",
        "exit_events_total",
        "signal_events_total",
        "oom_kill_events_total",
    ]
    .iter()
    .map(|m| h.metric(m).unwrap())
    .sum();
    assert_eq!(built, stats.delivered as f64);
}

#[test]
fn unprivileged_reports_missing_capability() {
    assert_unprivileged_start_names_the_capability::<ProcessCollector>(
        "unprivileged_reports_missing_capability",
    );
}
