//! Workload processes: this test binary started again, running one test in "workload mode"
//! (the environment variable [`WORKLOAD_ENV`] names the mode). The parent talks to it over
//! stdin/stdout: the child prints `READY`, waits for a line, works, prints its result and
//! then waits for stdin to close. Killed when dropped.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Names the workload a re-run test performs.
pub const WORKLOAD_ENV: &str = "TAPIO_MEMORY_IT_WORKLOAD";

/// A running workload process.
pub struct Workload {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Workload {
    /// Starts test `test_name` of this binary in workload `mode`; returns once it is ready.
    pub fn start(test_name: &str, mode: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(WORKLOAD_ENV, mode)
            .env_remove("TAPIO_REQUIRE_ALL_TESTS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut w = Workload {
            child,
            stdin,
            stdout,
        };
        w.expect("READY");
        w
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Tells the child to go.
    pub fn go(&mut self) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Reads lines until one contains `prefix`; returns the rest of it.
    pub fn expect(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "workload ended before printing {prefix}");
            // libtest prints "test <name> ... " before the child's first line.
            if let Some(at) = line.find(prefix) {
                return line[at + prefix.len()..].trim().to_owned();
            }
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child side: prints READY, waits for "go".
pub fn child_wait_for_go() {
    println!("READY");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
}

/// The child side: waits until the parent closes stdin (or kills it).
pub fn child_wait_for_end() {
    let mut sink = String::new();
    while std::io::stdin()
        .read_line(&mut sink)
        .map(|n| n > 0)
        .unwrap_or(false)
    {}
}
