//! The independent oracle of the eBPF tests (feature `test-support`): a `bpftrace` script
//! run alongside the collector on the same workload, whose counts the test compares with
//! the collector's.
//!
//! The script must print `READY` from its `BEGIN` block (so the test starts the workload
//! only once every probe is attached) and keep its results in maps, which bpftrace prints
//! when it is interrupted (`@name: 12` or `@name[key]: 12`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

/// A running bpftrace; killed if dropped before [`Bpftrace::finish`].
pub struct Bpftrace {
    child: Child,
    /// `None` once READY was seen, then the rest of stdout at exit.
    lines: Receiver<Option<String>>,
    /// Everything bpftrace wrote to stderr so far (drained by a thread, so bpftrace never
    /// blocks on a full pipe).
    stderr: Arc<Mutex<String>>,
}

impl Bpftrace {
    /// Starts `bpftrace -e script` and waits (up to `timeout`) for its `READY` line.
    pub fn start(script: &str, timeout: Duration) -> Result<Self, String> {
        let mut child = Command::new("bpftrace")
            .args(["-e", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start bpftrace: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let stderr = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    stderr.lock().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let mut rest = String::new();
            let mut ready = false;
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if !ready && line.trim() == "READY" {
                    ready = true;
                    let _ = tx.send(None);
                } else {
                    rest.push_str(&line);
                }
                line.clear();
            }
            let _ = tx.send(Some(rest));
        });
        let mut oracle = Bpftrace {
            child,
            lines: rx,
            stderr,
        };
        match oracle.lines.recv_timeout(timeout) {
            Ok(None) => Ok(oracle),
            outcome => {
                let _ = oracle.child.kill();
                let _ = oracle.child.wait();
                Err(format!(
                    "bpftrace did not print READY ({outcome:?}): {}",
                    oracle.stderr.lock().trim()
                ))
            }
        }
    }

    /// The pid of the bpftrace process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Interrupts bpftrace (SIGINT: it prints its maps and exits) and returns the maps:
    /// `@name` -> value, `@name[key]` -> value.
    pub fn finish(mut self) -> Result<BTreeMap<String, i64>, String> {
        // On a loaded machine bpftrace can miss or be slow to act on one SIGINT: repeat it.
        let mut out = None;
        for _ in 0..4 {
            // SAFETY: plain syscall on our child.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
            match self.lines.recv_timeout(Duration::from_secs(15)) {
                Ok(Some(text)) => {
                    out = Some(text);
                    break;
                }
                Ok(None) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(e) => return Err(format!("bpftrace output lost: {e}")),
            }
        }
        let Some(out) = out else {
            return Err(format!(
                "bpftrace did not exit within 60 s of SIGINT: {}",
                self.stderr.lock().trim()
            ));
        };
        let _ = self.child.wait();
        Ok(parse_maps(&out))
    }
}

impl Drop for Bpftrace {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses the `@name: 12` / `@name[key]: 12` lines bpftrace prints for its maps.
pub fn parse_maps(out: &str) -> BTreeMap<String, i64> {
    out.lines()
        .filter(|l| l.starts_with('@'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(": ")?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_map_lines() {
        let maps = parse_maps("Attaching 2 probes...\n\n@execs: 12\n@err[2]: 5\nnoise\n");
        assert_eq!(maps.get("@execs"), Some(&12));
        assert_eq!(maps.get("@err[2]"), Some(&5));
        assert_eq!(maps.len(), 2);
    }
}
