//! Integration tests of the syscall-errors collector against the real kernel. Workloads
//! are uniquely named copies of `cat` and `bash` (their comm is the marker) failing on
//! paths that do not exist or connecting to a closed port. Tests run serially; each skips
//! (or fails under `TAPIO_REQUIRE_ALL_TESTS=1`) when BPF or bpftrace is unavailable.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tapio_ebpf_support::oracle::Bpftrace;
use tapio_ebpf_support::test_support::{
    assert_unprivileged_start_names_the_capability, bpf_ready, free_port, serial, tool_ready,
    MarkedBinary,
};
use tapio_plugin_api::{HealthStatus, Severity};
use tapio_plugin_syscall_errors::SyscallErrors;
use tapio_plugin_testkit::{spec, Captured, Harness};

fn started(config: &str) -> Harness<SyscallErrors> {
    let mut h = Harness::<SyscallErrors>::create(config).unwrap();
    h.start().unwrap();
    for _ in 0..100 {
        if h.health().status == HealthStatus::Healthy {
            return h;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("collector not healthy: {:?}", h.health());
}

/// Runs the marked binary with `args`, no environment (no locale files), and returns its pid.
fn run(marker: &MarkedBinary, args: &[String]) -> u32 {
    let mut child = Command::new(marker.path())
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn of_comm<'a>(events: &'a [Captured], comm: &str) -> Vec<&'a Captured> {
    events
        .iter()
        .filter(|e| {
            e.event_type == "kernel.syscall.error" && e.str("process.executable.name") == Some(comm)
        })
        .collect()
}

/// (syscall id, errno) -> failures, summed over the given events.
fn by_call(events: &[&Captured]) -> BTreeMap<(i128, i128), i128> {
    let mut sums = BTreeMap::new();
    for e in events {
        let key = (e.int("syscall.id").unwrap(), e.int("error.errno").unwrap());
        *sums.entry(key).or_insert(0) += e.int("syscall.error.count").unwrap();
    }
    sums
}

fn missing_paths(marker: &MarkedBinary, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("/nonexistent-{}/f{i}", marker.name()))
        .collect()
}

/// After stop, every allow-listed failure the kernel saw is accounted for exactly: in a
/// reported aggregate, rate limited, or lost to a full map.
fn assert_accounted(h: &Harness<SyscallErrors>) {
    let metric = |name: &str| h.metric(name).unwrap() as u64;
    let seen = metric("failures_seen_total");
    let reported = metric("failures_reported_total");
    let limited = metric("rate_limited_total");
    let full = metric("aggregate_map_full_total");
    assert!(seen > 0);
    assert_eq!(
        seen,
        reported + limited + full,
        "seen {seen} != reported {reported} + rate limited {limited} + map full {full}"
    );
    assert_eq!(h.metric("map_errors_total"), Some(0.0));
}

#[test]
fn collector_contract() {
    let _serial = serial();
    if !bpf_ready("collector_contract") {
        return;
    }
    spec::check::<SyscallErrors>("{}", Duration::from_millis(300)).unwrap();
}

/// N failed openat calls of one process give ONE aggregate of count N with the path and
/// the syscall name; every (syscall, errno) count of the marked processes equals bpftrace's.
#[test]
fn failed_openat_aggregate_matches_bpftrace() {
    let _serial = serial();
    const TEST: &str = "failed_openat_aggregate_matches_bpftrace";
    if !bpf_ready(TEST) || !tool_ready(TEST, "bpftrace") {
        return;
    }
    const N: usize = 500;
    const RUNS: usize = 3;
    let marker = MarkedBinary::copy_of("/bin/cat").unwrap();
    let script = format!(
        r#"BEGIN {{ printf("READY\n"); }}
        tracepoint:raw_syscalls:sys_exit /comm == "{}" && args->ret == -2/ {{ @fail[args->id] = count(); }}"#,
        marker.name()
    );
    let oracle = Bpftrace::start(&script, Duration::from_secs(20)).unwrap();
    // A report interval longer than the test: the final drain at stop reports everything,
    // so each process's failures form exactly one aggregate. No rate limit: the machine's
    // other processes must not use up the budget of the marked ones.
    let mut h = started(r#"{"errnos":["ENOENT"],"report_interval":"60s","rate_limit_warning":0}"#);
    let paths = missing_paths(&marker, N);
    let pids: Vec<u32> = (0..RUNS).map(|_| run(&marker, &paths)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let oracle = oracle.finish().unwrap();
    h.stop().unwrap();
    let events = h.events();
    let ours = of_comm(&events, marker.name());

    let openat = 257;
    for &pid in &pids {
        let aggs: Vec<&&Captured> = ours
            .iter()
            .filter(|e| e.pid == Some(pid) && e.str("syscall.name") == Some("openat"))
            .collect();
        assert_eq!(aggs.len(), 1, "one aggregate for {pid}: {aggs:#?}");
        let a = aggs[0];
        assert_eq!(a.int("syscall.error.count"), Some(N as i128));
        assert_eq!(a.int("syscall.id"), Some(openat));
        assert_eq!(a.str("error.name"), Some("ENOENT"));
        assert_eq!(a.int("error.errno"), Some(2));
        assert_eq!(a.str("file.path"), Some(paths[0].as_str()));
        assert_eq!(a.str("syscall.category"), Some("file"));
        assert_eq!(a.severity, Severity::Warning);
        assert!(a.cgroup_id.is_some());
    }
    // The oracle: every failing syscall of the marked processes, same counts.
    let theirs: BTreeMap<(i128, i128), i128> = oracle
        .iter()
        .filter_map(|(k, v)| {
            let id = k.strip_prefix("@fail[")?.strip_suffix(']')?.parse().ok()?;
            Some(((id, 2), i128::from(*v)))
        })
        .collect();
    assert_eq!(by_call(&ours), theirs, "ours vs bpftrace");
    assert_accounted(&h);
    assert_eq!(theirs.get(&(openat, 2)), Some(&((N * RUNS) as i128)));
}

/// With the default allow-list ENOENT is ignored in the kernel, ECONNREFUSED is reported.
#[test]
fn errno_allow_list_is_respected() {
    let _serial = serial();
    if !bpf_ready("errno_allow_list_is_respected") {
        return;
    }
    let mut h = started(r#"{"report_interval":"60s","rate_limit_warning":0}"#);
    let marker = MarkedBinary::copy_of("/bin/bash").unwrap();
    let port = free_port();
    let script = format!(
        "exec 3</nonexistent-{}/x; echo > /dev/tcp/127.0.0.1/{port}; exit 0",
        marker.name()
    );
    let pid = run(&marker, &["-c".to_owned(), script]);
    h.stop().unwrap();
    let events = h.events();
    let ours: Vec<&Captured> = of_comm(&events, marker.name())
        .into_iter()
        .filter(|e| e.pid == Some(pid))
        .collect();
    assert!(
        ours.iter().all(|e| e.str("error.name") != Some("ENOENT")),
        "ENOENT is not in the default list: {ours:#?}"
    );
    let refused: Vec<&&Captured> = ours
        .iter()
        .filter(|e| e.str("error.name") == Some("ECONNREFUSED"))
        .collect();
    assert_eq!(refused.len(), 1, "{ours:#?}");
    assert_eq!(refused[0].str("syscall.name"), Some("connect"));
    assert_eq!(refused[0].str("syscall.category"), Some("network"));
    assert_eq!(refused[0].int("syscall.error.count"), Some(1));
    assert_eq!(refused[0].attr("file.path"), None);
}

/// Aggregates are reported every report interval while the collector runs.
#[test]
fn aggregates_are_reported_each_interval() {
    let _serial = serial();
    if !bpf_ready("aggregates_are_reported_each_interval") {
        return;
    }
    let mut h =
        started(r#"{"errnos":["ENOENT"],"report_interval":"200ms","rate_limit_warning":0}"#);
    let marker = MarkedBinary::copy_of("/bin/cat").unwrap();
    let pid = run(&marker, &missing_paths(&marker, 3));
    let events = h.wait_until(Duration::from_secs(5), |events| {
        events
            .iter()
            .any(|e| e.pid == Some(pid) && e.str("syscall.name") == Some("openat"))
    });
    h.stop().unwrap();
    let a = events
        .iter()
        .find(|e| e.pid == Some(pid) && e.str("syscall.name") == Some("openat"))
        .expect("reported before stop");
    assert_eq!(a.int("syscall.error.count"), Some(3));
}

/// A rate limit of 3 new warning aggregates per second: of 20 marked processes (40 new
/// aggregates: access + openat each) at most 3 per elapsed second are reported, the rest
/// is counted as rate limited.
#[test]
fn rate_limit_caps_new_aggregates() {
    let _serial = serial();
    if !bpf_ready("rate_limit_caps_new_aggregates") {
        return;
    }
    const LIMIT: i128 = 3;
    let started_at = Instant::now();
    let mut h = started(r#"{"errnos":["ENOENT"],"report_interval":"60s","rate_limit_warning":3}"#);
    let marker = MarkedBinary::copy_of("/bin/cat").unwrap();
    let paths = missing_paths(&marker, 1);
    let pids: Vec<u32> = (0..20).map(|_| run(&marker, &paths)).collect();
    h.stop().unwrap();
    let seconds = started_at.elapsed().as_secs() as i128 + 2;
    let events = h.events();
    let warnings = events
        .iter()
        .filter(|e| e.severity == Severity::Warning)
        .count() as i128;
    // Every aggregate of the machine, ours or not, went through the same budget.
    assert!(
        warnings <= LIMIT * seconds,
        "{warnings} aggregates in {seconds} windows"
    );
    let ours = of_comm(&events, marker.name()).len() as i128;
    eprintln!("rate limit: {warnings} warning aggregates in {seconds} windows, ours {ours}");
    let limited = h.metric("rate_limited_warning_total").unwrap() as i128;
    assert!(
        limited >= 40 - ours,
        "limited {limited}, ours reported {ours}"
    );
    assert_eq!(
        h.metric("rate_limited_total").map(|v| v as i128),
        Some(limited),
        "only the warning class was limited"
    );
    assert!(pids.len() == 20);
    assert_accounted(&h);
    // Whatever was reported is exact: one openat failure per process.
    for e in of_comm(&events, marker.name()) {
        assert_eq!(e.int("syscall.error.count"), Some(1), "{e:?}");
    }
}

/// More new aggregates than the kernel map holds: the failures that found it full are
/// counted (`aggregate_map_full_total`), the reported ones stay exact.
#[test]
fn full_aggregate_map_is_counted() {
    let _serial = serial();
    const TEST: &str = "full_aggregate_map_is_counted";
    if !bpf_ready(TEST) || !tool_ready(TEST, "bpftrace") {
        return;
    }
    let marker = MarkedBinary::copy_of("/bin/cat").unwrap();
    let script = format!(
        r#"BEGIN {{ printf("READY\n"); }}
        tracepoint:raw_syscalls:sys_exit /comm == "{}" && args->ret == -2/ {{ @fail = count(); }}"#,
        marker.name()
    );
    let oracle = Bpftrace::start(&script, Duration::from_secs(20)).unwrap();
    let mut h = started(
        r#"{"errnos":["ENOENT"],"report_interval":"60s","max_aggregates":16,"rate_limit_warning":0}"#,
    );
    let paths = missing_paths(&marker, 1);
    for _ in 0..40 {
        run(&marker, &paths);
    }
    std::thread::sleep(Duration::from_millis(100));
    let total = oracle.finish().unwrap()["@fail"] as i128;
    h.stop().unwrap();
    let events = h.events();
    let reported: i128 = of_comm(&events, marker.name())
        .iter()
        .map(|e| e.int("syscall.error.count").unwrap())
        .sum();
    let full = h.metric("aggregate_map_full_total").unwrap() as i128;
    eprintln!("map full: bpftrace {total}, reported {reported}, lost {full}");
    assert_eq!(total, 80, "bpftrace: 2 failures per process");
    assert!(reported < total, "the map held them all: {reported}");
    assert!(full > 0);
    assert!(
        reported + full >= total,
        "reported {reported} + lost {full} < {total}"
    );
    assert!(
        events.len() <= 16,
        "{} aggregates in a 16-entry map",
        events.len()
    );
    assert_accounted(&h);
}

#[test]
fn unprivileged_reports_missing_capability() {
    assert_unprivileged_start_names_the_capability::<SyscallErrors>(
        "unprivileged_reports_missing_capability",
    );
}
