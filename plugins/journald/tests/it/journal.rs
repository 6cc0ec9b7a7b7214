//! Real journal files for the tests: `systemd-journal-remote --output=F.journal FIFO` turns
//! export-format text written to a FIFO into journal entries, live; `journalctl --file F -o
//! json` is the oracle.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// The journal-remote binary.
pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// The boot id of every test entry.
pub const BOOT: &str = "0123456789abcdef0123456789abcdef";

/// One entry's fields (without the timestamps and boot id the writer adds).
pub type Fields = Vec<(&'static str, String)>;

/// An entry with the usual fields; `None` leaves a field out.
pub fn entry(
    message: &str,
    unit: Option<&str>,
    priority: Option<u8>,
    identifier: Option<&str>,
    pid: Option<u32>,
) -> Fields {
    let mut f = vec![("MESSAGE", message.to_owned())];
    if let Some(u) = unit {
        f.push(("_SYSTEMD_UNIT", u.to_owned()));
    }
    if let Some(p) = priority {
        f.push(("PRIORITY", p.to_string()));
    }
    if let Some(i) = identifier {
        f.push(("SYSLOG_IDENTIFIER", i.to_owned()));
    }
    if let Some(p) = pid {
        f.push(("_PID", p.to_string()));
    }
    f
}

/// A varied set of `n` entries numbered from `first`: units a/b/c.service and none,
/// priorities 0-7 and none, identifiers app/db and none, unicode text, an extra field.
pub fn varied(first: usize, n: usize) -> Vec<Fields> {
    (first..first + n)
        .map(|i| {
            let unit = ["a.service", "b.service", "c.service", ""][i % 4];
            let prio = if i % 9 == 8 {
                None
            } else {
                Some((i % 8) as u8)
            };
            let ident = ["app", "db", ""][i % 3];
            let mut f = entry(
                &format!("entry {i}: ünïcødé ✓ with spaces = and equals"),
                (!unit.is_empty()).then_some(unit),
                prio,
                (!ident.is_empty()).then_some(ident),
                Some(1000 + i as u32),
            );
            if i % 2 == 0 {
                f.push(("CODE_FILE", format!("src/file{i}.rs")));
            }
            f
        })
        .collect()
}

/// A journal file fed live through a FIFO.
pub struct LiveJournal {
    /// The journal file.
    pub file: PathBuf,
    fifo: Option<std::fs::File>,
    child: Child,
    monotonic: u64,
}

fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

impl LiveJournal {
    /// Starts `systemd-journal-remote` writing `dir/name.journal` from a FIFO.
    pub fn start(dir: &Path, name: &str) -> Self {
        let file = dir.join(format!("{name}.journal"));
        let fifo_path = dir.join(format!("{name}.fifo"));
        let status = Command::new("mkfifo").arg(&fifo_path).status().unwrap();
        assert!(status.success(), "mkfifo failed");
        let child = Command::new(JOURNAL_REMOTE)
            .arg(format!("--output={}", file.display()))
            .arg(&fifo_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run systemd-journal-remote");
        // Opening the write end waits for journal-remote to open the read end.
        let fifo = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo_path)
            .unwrap();
        LiveJournal {
            file,
            fifo: Some(fifo),
            child,
            monotonic: 1_000,
        }
    }

    /// Appends `entries` and waits until journalctl sees them all.
    pub fn append(&mut self, entries: &[Fields]) {
        let before = journalctl(&self.file, &[]).len();
        let mut text = String::new();
        for fields in entries {
            self.monotonic += 1_000;
            text.push_str(&format!(
                "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={BOOT}\n",
                now_usec(),
                self.monotonic
            ));
            for (k, v) in fields {
                assert!(!v.contains('\n'), "export text values are single-line");
                text.push_str(&format!("{k}={v}\n"));
            }
            text.push('\n');
        }
        let fifo = self.fifo.as_mut().unwrap();
        fifo.write_all(text.as_bytes()).unwrap();
        fifo.flush().unwrap();
        self.wait_for(before + entries.len());
    }

    /// Waits until the file holds `n` entries.
    pub fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.file.exists() && journalctl(&self.file, &[]).len() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "journal never reached {n} entries"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LiveJournal {
    fn drop(&mut self) {
        self.fifo.take();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `journalctl --file FILE -o json ARGS`: one object per entry, in journal order.
pub fn journalctl(file: &Path, args: &[&str]) -> Vec<Map<String, Value>> {
    let out = Command::new("journalctl")
        .arg("--file")
        .arg(file)
        .args(["-o", "json", "--no-pager"])
        .args(args)
        .output()
        .expect("cannot run journalctl");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Map<String, Value>>(l).unwrap())
        .collect()
}
