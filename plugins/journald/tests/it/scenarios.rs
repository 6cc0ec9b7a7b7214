//! The collector on real journal files: every entry and field as journalctl shows it, live
//! appends, filters, restart-resume without loss or repeat, a full ring, an unreadable
//! source that appears later, and the collector contract.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value as Json};
use tapio_plugin_api::{HealthStatus, Severity};
use tapio_plugin_journald::JournaldCollector;
use tapio_plugin_testkit::{spec, Captured, Harness};

use crate::can_run;
use crate::journal::{journalctl, varied, LiveJournal, BOOT};

const WAIT: Duration = Duration::from_secs(20);

fn config(file: &Path, extra: serde_json::Value) -> String {
    let mut c = json!({
        "files": [file.display().to_string()],
        "start_at": "head",
        "poll_interval": "100ms",
        "fields": ["CODE_FILE"],
    });
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    c.to_string()
}

fn text<'a>(o: &'a Map<String, Json>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Json::as_str)
}

fn severity_of(priority: Option<&str>) -> Severity {
    match priority {
        Some("0" | "1" | "2") => Severity::Critical,
        Some("3") => Severity::Error,
        Some("4") => Severity::Warning,
        Some("5") => Severity::Low,
        Some("7") => Severity::Debug,
        _ => Severity::Info,
    }
}

/// Each event equals the journalctl entry at the same position, field by field.
fn assert_same_as_journalctl(events: &[Captured], want: &[Map<String, Json>]) {
    assert_eq!(events.len(), want.len(), "number of entries");
    for (i, (e, j)) in events.iter().zip(want).enumerate() {
        let ctx = format!("entry {i}: {e:#?} vs {j:#?}");
        assert_eq!(e.event_type, "journald.entry", "{ctx}");
        assert_eq!(e.str("journald.cursor"), text(j, "__CURSOR"), "{ctx}");
        assert_eq!(e.str("log.record.original"), text(j, "MESSAGE"), "{ctx}");
        assert_eq!(e.str("systemd.unit"), text(j, "_SYSTEMD_UNIT"), "{ctx}");
        assert_eq!(
            e.str("syslog.identifier"),
            text(j, "SYSLOG_IDENTIFIER"),
            "{ctx}"
        );
        assert_eq!(
            e.str("journald.field.CODE_FILE"),
            text(j, "CODE_FILE"),
            "{ctx}"
        );
        assert_eq!(e.str("host.boot_id"), text(j, "_BOOT_ID"), "{ctx}");
        assert_eq!(
            e.int("process.pid"),
            text(j, "_PID").map(|p| p.parse::<i128>().unwrap()),
            "{ctx}"
        );
        assert_eq!(e.pid.map(i128::from), e.int("process.pid"), "{ctx}");
        assert_eq!(
            e.int("journald.priority"),
            text(j, "PRIORITY").map(|p| p.parse::<i128>().unwrap()),
            "{ctx}"
        );
        assert_eq!(e.severity, severity_of(text(j, "PRIORITY")), "{ctx}");
        let realtime: u64 = text(j, "__REALTIME_TIMESTAMP").unwrap().parse().unwrap();
        assert_eq!(e.timestamp_ns, realtime * 1000, "{ctx}");
    }
}

#[test]
fn every_entry_and_field_matches_journalctl_including_live_appends() {
    if !can_run("every_entry_and_field_matches_journalctl_including_live_appends") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut live = LiveJournal::start(dir.path(), "all");
    live.append(&varied(0, 40));
    let mut h = Harness::<JournaldCollector>::create(&config(&live.file, json!({}))).unwrap();
    h.start().unwrap();
    h.wait_for(40, WAIT);
    // Follow mode: entries appended while it runs arrive too.
    live.append(&varied(40, 25));
    live.append(&varied(65, 15));
    let events = h.wait_for(80, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    let events = if h.events().len() > events.len() {
        h.events()
    } else {
        events
    };
    let want = journalctl(&live.file, &[]);
    assert_eq!(want.len(), 80);
    assert!(want.iter().all(|j| text(j, "_BOOT_ID") == Some(BOOT)));
    assert_same_as_journalctl(&events, &want);
    assert_eq!(h.health().status, HealthStatus::Healthy);
    assert_eq!(h.metric("entries_total"), Some(80.0));
    h.stop().unwrap();
}

#[test]
fn filters_by_unit_priority_and_match_as_journalctl_does() {
    if !can_run("filters_by_unit_priority_and_match_as_journalctl_does") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut live = LiveJournal::start(dir.path(), "filters");
    live.append(&varied(0, 120));
    let cases: [(serde_json::Value, Vec<&str>); 4] = [
        (
            json!({"units": ["a.service", "c.service"]}),
            vec!["_SYSTEMD_UNIT=a.service", "_SYSTEMD_UNIT=c.service"],
        ),
        (json!({"max_priority": "warning"}), vec!["-p", "warning"]),
        (
            json!({"matches": ["SYSLOG_IDENTIFIER=app"]}),
            vec!["SYSLOG_IDENTIFIER=app"],
        ),
        (
            json!({"units": ["b.service"], "max_priority": "5", "matches": ["SYSLOG_IDENTIFIER=db", "SYSLOG_IDENTIFIER=app"]}),
            vec![
                "_SYSTEMD_UNIT=b.service",
                "-p",
                "notice",
                "SYSLOG_IDENTIFIER=db",
                "SYSLOG_IDENTIFIER=app",
            ],
        ),
    ];
    for (filter, args) in cases {
        let want = journalctl(&live.file, &args);
        assert!(
            !want.is_empty() && want.len() < 120,
            "{args:?}: {} entries",
            want.len()
        );
        let mut h = Harness::<JournaldCollector>::create(&config(&live.file, filter)).unwrap();
        h.start().unwrap();
        h.wait_for(want.len(), WAIT);
        // Nothing more arrives: the filter excluded the rest.
        std::thread::sleep(Duration::from_millis(400));
        let events = h.events();
        assert_same_as_journalctl(&events, &want);
        h.stop().unwrap();
    }
}

#[test]
fn restart_mid_stream_resumes_exactly_after_the_persisted_cursor() {
    if !can_run("restart_mid_stream_resumes_exactly_after_the_persisted_cursor") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut live = LiveJournal::start(dir.path(), "resume");
    live.append(&varied(0, 30));
    let cfg = config(&live.file, json!({"batch_size": 7}));

    // First run: reads the 30, then entries keep arriving while it is stopped mid-stream.
    let mut first =
        Harness::<JournaldCollector>::create_with_state_dir(&cfg, state.clone()).unwrap();
    first.start().unwrap();
    first.wait_for(30, WAIT);
    let writer = std::thread::spawn(move || {
        for round in 0..10 {
            live.append(&varied(30 + round * 5, 5));
        }
        live
    });
    std::thread::sleep(Duration::from_millis(150));
    first.stop().unwrap();
    let seen_first = first.events();
    let mut live = writer.join().unwrap();
    // More entries while nothing runs.
    live.append(&varied(80, 20));
    let saved = std::fs::read_to_string(state.join("cursor")).unwrap();
    assert_eq!(
        Some(saved.as_str()),
        seen_first.last().unwrap().str("journald.cursor"),
        "the persisted cursor is the last emitted entry's"
    );

    // Second run: resumes after the cursor, even though start_at is `head`.
    let mut second =
        Harness::<JournaldCollector>::create_with_state_dir(&cfg, state.clone()).unwrap();
    second.start().unwrap();
    let want = journalctl(&live.file, &[]);
    assert_eq!(want.len(), 100);
    second.wait_for(want.len() - seen_first.len(), WAIT);
    std::thread::sleep(Duration::from_millis(400));
    let seen_second = second.events();
    second.stop().unwrap();
    eprintln!(
        "first run {} entries, second run {} entries",
        seen_first.len(),
        seen_second.len()
    );
    assert!(
        seen_first.len() > 30 || seen_second.len() > 70,
        "the stop was mid-stream"
    );
    let all: Vec<Captured> = seen_first.into_iter().chain(seen_second).collect();
    // No entry lost, none repeated, in journal order.
    assert_same_as_journalctl(&all, &want);
}

#[test]
fn a_full_ring_loses_nothing_the_refused_entries_come_again() {
    if !can_run("a_full_ring_loses_nothing_the_refused_entries_come_again") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut live = LiveJournal::start(dir.path(), "full");
    live.append(&varied(0, 50));
    let mut h = Harness::<JournaldCollector>::create(&config(&live.file, json!({"batch_size": 8})))
        .unwrap();
    h.limit_sink(13);
    h.start().unwrap();
    h.wait_for(13, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(h.events().len(), 13);
    assert!(h.dropped() > 0, "the sink refused entries");
    assert!(h.metric("refused_entries_total").unwrap() > 0.0);
    h.limit_sink(usize::MAX);
    let events = h.wait_for(50, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    assert_same_as_journalctl(&h.events(), &journalctl(&live.file, &[]));
    assert_eq!(events.len(), 50);
    h.stop().unwrap();
}

#[test]
fn a_missing_source_is_unhealthy_then_read_when_it_appears() {
    if !can_run("a_missing_source_is_unhealthy_then_read_when_it_appears") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("late.journal");
    let mut h =
        Harness::<JournaldCollector>::create(&config(&file, json!({"max_backoff": "500ms"})))
            .unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let health = h.health();
    assert_eq!(health.status, HealthStatus::Failed, "{health:?}");
    assert!(health.reason.contains("late.journal"), "{health:?}");
    assert!(h.metric("open_failures_total").unwrap() >= 2.0);
    let mut live = LiveJournal::start(dir.path(), "late");
    live.append(&varied(0, 10));
    let events = h.wait_for(10, WAIT);
    assert_eq!(h.health().status, HealthStatus::Healthy);
    assert_same_as_journalctl(&events, &journalctl(&live.file, &[]));
    h.stop().unwrap();
}

#[test]
fn reads_a_directory_of_journal_files() {
    if !can_run("reads_a_directory_of_journal_files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("journals");
    std::fs::create_dir(&journals).unwrap();
    let mut live = LiveJournal::start(&journals, "one");
    live.append(&varied(0, 12));
    let cfg = json!({
        "directory": journals.display().to_string(),
        "start_at": "head",
        "fields": ["CODE_FILE"],
    })
    .to_string();
    let mut h = Harness::<JournaldCollector>::create(&cfg).unwrap();
    h.start().unwrap();
    let events = h.wait_for(12, WAIT);
    assert_same_as_journalctl(&events, &journalctl(&live.file, &[]));
    h.stop().unwrap();
}

#[test]
fn without_follow_it_reads_to_the_end_and_stops_reading() {
    if !can_run("without_follow_it_reads_to_the_end_and_stops_reading") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut live = LiveJournal::start(dir.path(), "nofollow");
    live.append(&varied(0, 10));
    let mut h = Harness::<JournaldCollector>::create(&config(&live.file, json!({"follow": false})))
        .unwrap();
    h.start().unwrap();
    h.wait_for(10, WAIT);
    live.append(&varied(10, 5));
    std::thread::sleep(Duration::from_millis(600));
    let events = h.events();
    assert_same_as_journalctl(&events, &journalctl(&live.file, &[])[..10]);
    assert_eq!(h.health().status, HealthStatus::Healthy);
    h.stop().unwrap();
}

#[test]
fn meets_the_collector_contract() {
    if !can_run("meets_the_collector_contract") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut live = LiveJournal::start(dir.path(), "contract");
    live.append(&varied(0, 5));
    let events =
        spec::check::<JournaldCollector>(&config(&live.file, json!({})), Duration::from_secs(1))
            .unwrap();
    assert_eq!(events.len(), 5);
}

/// Whether a system journal file (`system*.journal`) exists under the default roots.
fn system_journal_files_exist() -> bool {
    fn walk(dir: &Path, depth: u32) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            (name.starts_with("system") && name.ends_with(".journal"))
                || (depth > 0 && p.is_dir() && walk(&p, depth - 1))
        })
    }
    ["/run/log/journal", "/var/log/journal"]
        .iter()
        .any(|d| walk(Path::new(d), 1))
}

#[test]
fn the_system_journal_is_the_default_source() {
    // The default config reads the system journal from its tail. Where journald keeps
    // files, that is healthy; where there are none (containers, this CI machine), the
    // health says so, degraded rather than failed, and names where it looked.
    let mut h = Harness::<JournaldCollector>::create("{}").unwrap();
    h.start().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let health = h.health();
    if system_journal_files_exist() {
        assert_eq!(health.status, HealthStatus::Healthy, "{health:?}");
    } else {
        assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
        assert!(health.reason.contains("/var/log/journal"), "{health:?}");
        assert!(h.events().is_empty());
    }
    h.stop().unwrap();
}

#[test]
fn bad_config_is_refused_with_every_problem() {
    let err = match Harness::<JournaldCollector>::create(
        &json!({"files": ["x.journal"], "directory": "/d", "max_priority": "loud", "matches": ["nope"]})
            .to_string(),
    ) {
        Ok(_) => panic!("bad config accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("either directory or files"), "{err}");
    assert!(err.contains("max_priority"), "{err}");
    assert!(err.contains("FIELD=value"), "{err}");
}
