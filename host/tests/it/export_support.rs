//! Support of the exporter tests: the Python venv of `.ci/deps/export.sh`, real peers
//! started as child processes, the loadgen plugin's config, comparison of events.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{wait_for, Host};

/// Not runnable here: says why; fails under `TAPIO_REQUIRE_ALL_TESTS=1`, else the caller
/// returns (skips).
pub fn cannot_run(why: &str) {
    let message = format!("SKIPPED: {why} (run .ci/deps/export.sh)");
    if std::env::var("TAPIO_REQUIRE_ALL_TESTS").as_deref() == Ok("1") {
        panic!("{message} (TAPIO_REQUIRE_ALL_TESTS=1)");
    }
    eprintln!("{message}");
}

/// The venv python with `module` importable, if any.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("TAPIO_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/tapio"));
    let python = cache.join("venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(python)
    } else {
        cannot_run(&format!("{} cannot import {module}", python.display()));
        None
    }
}

/// `host/tests/it/py/<name>`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/py")
        .join(name)
}

/// `host/proto`.
pub fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("proto")
}

/// A child process with its output collected; killed on drop.
pub struct Peer {
    child: Option<Child>,
    output: Arc<Mutex<String>>,
    name: String,
}

impl Peer {
    /// Starts `cmd`; waits until a line of its stdout or stderr contains `ready`.
    pub fn start(name: &str, mut cmd: Command, ready: &str) -> Peer {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = sink.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        let peer = Peer {
            child: Some(child),
            output,
            name: name.to_owned(),
        };
        let up = wait_for(Duration::from_secs(30), || {
            peer.output().contains(ready).then_some(())
        });
        assert!(up.is_some(), "{name} not ready; output:\n{}", peer.output());
        peer
    }

    /// Everything it printed.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and reap (within 10 s, else SIGKILL).
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            if wait_for(Duration::from_secs(10), || c.try_wait().ok().flatten()).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.child.is_some() && std::thread::panicking() {
            eprintln!("--- {} output ---\n{}", self.name, self.output());
        }
        self.kill();
    }
}

/// YAML enabling loadgen for exactly `events` events at `rate` per second.
pub fn loadgen_yaml(events: u64, rate: u64) -> String {
    format!(
        "collectors:\n  loadgen:\n    enabled: true\n    config:\n      rate: {rate}\n      batch_size: 50\n      threads: 1\n      attributes: 4\n      max_events: {events}\n"
    )
}

/// Reads a JSON Lines file (missing = empty).
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Ids of `events` (duplicates collapse).
pub fn ids(events: &[serde_json::Value]) -> HashSet<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The host's delivered loadgen events, by id, once `n` of them are there.
pub fn host_events(host: &Host, n: usize) -> HashMap<String, serde_json::Value> {
    let events = host
        .wait_events(Duration::from_secs(60), |e| {
            e.iter().filter(|e| e["source"] == "loadgen").count() >= n
        })
        .unwrap_or_else(|| panic!("loadgen did not deliver {n} events; log:\n{}", host.log()));
    events
        .into_iter()
        .filter(|e| e["source"] == "loadgen")
        .map(|e| (e["id"].as_str().unwrap().to_owned(), e))
        .collect()
}

/// A free port on 127.0.0.1.
pub fn port() -> u16 {
    crate::support::free_port()
}

/// Builds the correlation-contract fixture plugin (`fixtures/correlation.rs.txt`) as a
/// third-party crate outside the workspace; returns the `.so`.
pub fn correlation_fixture() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .to_owned();
            let dir = tempfile::Builder::new()
                .prefix("tapio-fixture-")
                .tempdir()
                .unwrap()
                .keep();
            std::fs::create_dir_all(dir.join("src")).unwrap();
            let manifest = std::fs::read_to_string(root.join("plugins/example/Cargo.toml"))
                .unwrap()
                .replace(
                    "name = \"tapio-plugin-example\"",
                    "name = \"tapio-fixture-correlation\"",
                )
                .replace(
                    "tapio-plugin-api = { path = \"../../plugin-api\" }",
                    &format!(
                        "tapio-plugin-api = {{ path = {:?} }}",
                        root.join("plugin-api").display().to_string()
                    ),
                );
            std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/correlation.rs.txt"),
                dir.join("src/lib.rs"),
            )
            .unwrap();
            let target = crate::support::target_dir().join("third-party");
            let out = Command::new(env!("CARGO"))
                .args(["build"])
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("RUSTFLAGS")
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "fixture build failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            target.join("debug/libtapio_fixture_correlation.so")
        })
        .clone()
}

/// A test CA with a server certificate (for 127.0.0.1 and localhost) and a client
/// certificate, as PEM files.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Makes a [`Pki`] in `dir` with rcgen.
pub fn pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tapio test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "tapio-collector");
    let client = client_params.signed_by(&client_key, &issuer).unwrap();
    let write = |name: &str, pem: String| {
        let p = dir.join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        server_cert: write("server.pem", server.pem()),
        server_key: write("server.key", server_key.serialize_pem()),
        client_cert: write("client.pem", client.pem()),
        client_key: write("client.key", client_key.serialize_pem()),
    }
}

impl Pki {
    /// The Python test servers' TLS flags: `--tls-cert`, `--tls-key`, and with `mutual`
    /// `--client-ca` (client certificates required).
    pub fn server_args(&self, mutual: bool) -> Vec<String> {
        let mut args = vec![
            "--tls-cert".to_owned(),
            self.server_cert.display().to_string(),
            "--tls-key".to_owned(),
            self.server_key.display().to_string(),
        ];
        if mutual {
            args.extend(["--client-ca".to_owned(), self.ca.display().to_string()]);
        }
        args
    }

    /// The `cert:` and `key:` lines of a TLS config section at `indent` spaces.
    pub fn client_yaml(&self, indent: usize) -> String {
        let pad = " ".repeat(indent);
        format!(
            "{pad}cert: {}\n{pad}key: {}\n",
            self.client_cert.display(),
            self.client_key.display()
        )
    }
}
