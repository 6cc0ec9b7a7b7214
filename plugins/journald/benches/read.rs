//! Read throughput of the journald collector: a real journal file of 50,000 entries (made by
//! `systemd-journal-remote` from export text), read from the head with `follow: false`
//! through the testkit's in-process sink (which copies every event). Prints entries/s for
//! three runs and their median.
//!
//! `cargo bench -p tapio-plugin-journald --bench read`

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tapio_plugin_journald::JournaldCollector;
use tapio_plugin_testkit::Harness;

const N: usize = 50_000;
const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

fn main() {
    if !std::path::Path::new(JOURNAL_REMOTE).exists() {
        eprintln!("read bench: {JOURNAL_REMOTE} not found, needs apt systemd-journal-remote");
        std::process::exit(1);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.journal");
    let mut text = String::with_capacity(N * 200);
    let t0 = 1_700_000_000_000_000u64;
    for i in 0..N {
        text.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             MESSAGE=request {i} served in {} ms by worker {}\n_SYSTEMD_UNIT=app{}.service\n\
             PRIORITY={}\nSYSLOG_IDENTIFIER=app\n_PID={}\n\n",
            t0 + i as u64,
            1000 + i,
            i % 97,
            i % 8,
            i % 4,
            i % 8,
            1000 + i % 50
        ));
    }
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());

    let config = serde_json::json!({
        "files": [file.display().to_string()],
        "start_at": "head",
        "follow": false,
    })
    .to_string();
    let mut rates = Vec::new();
    for run in 1..=3 {
        let mut h = Harness::<JournaldCollector>::create(&config).unwrap();
        let started = Instant::now();
        h.start().unwrap();
        let got = h.wait_for(N, Duration::from_secs(300)).len();
        let took = started.elapsed();
        h.stop().unwrap();
        assert_eq!(got, N, "run {run} read {got} of {N}");
        let rate = N as f64 / took.as_secs_f64();
        println!("run {run}: {N} entries in {took:.2?}: {rate:.0} entries/s");
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("median: {:.0} entries/s", rates[1]);
}
