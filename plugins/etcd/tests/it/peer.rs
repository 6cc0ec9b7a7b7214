//! A real etcd member process for tests: random loopback ports, a temporary data dir, and
//! a guard that kills it on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the tests cannot run here, if they cannot.
pub fn missing_tools() -> Option<String> {
    for (tool, arg) in [("etcd", "--version"), ("etcdctl", "version")] {
        let found = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

/// A free loopback port (bound then released; the member binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// TLS files of a member: server cert/key, and the CA that client certs must chain to.
#[derive(Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// How to start one member.
#[derive(Clone)]
pub struct MemberSpec {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    /// `name=peer_url,...` of the whole cluster.
    pub initial_cluster: String,
    pub data_dir: PathBuf,
    pub tls: Option<ServerTls>,
}

impl MemberSpec {
    /// A single-member cluster in `dir`.
    pub fn single(dir: &Path, tls: Option<ServerTls>) -> Self {
        let peer_port = free_port();
        MemberSpec {
            name: "m0".into(),
            client_port: free_port(),
            peer_port,
            initial_cluster: format!("m0=http://127.0.0.1:{peer_port}"),
            data_dir: dir.join("m0"),
            tls,
        }
    }

    /// The client URL.
    pub fn client_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }
}

/// A running member; killed on drop.
pub struct Member {
    pub spec: MemberSpec,
    child: Option<Child>,
}

impl Member {
    /// Starts the member (does not wait for it to serve).
    pub fn spawn(spec: MemberSpec) -> Member {
        let mut m = Member { spec, child: None };
        m.start();
        m
    }

    /// Starts (again) with the same data dir and ports.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "member already running");
        let s = &self.spec;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(s.data_dir.with_extension("log"))
            .expect("etcd log file");
        let mut cmd = Command::new("etcd");
        cmd.args(["--name", &s.name])
            .arg("--data-dir")
            .arg(&s.data_dir)
            .args(["--listen-client-urls", &s.client_url()])
            .args(["--advertise-client-urls", &s.client_url()])
            .args([
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{}", s.peer_port),
            ])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{}", s.peer_port),
            ])
            .args(["--initial-cluster", &s.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "tapio-test"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        if let Some(tls) = &s.tls {
            cmd.arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key)
                .arg("--trusted-ca-file")
                .arg(&tls.client_ca)
                .arg("--client-cert-auth");
        }
        self.child = Some(cmd.spawn().expect("cannot start etcd"));
    }

    /// Kills the member (SIGKILL: a crash, as an unreachable member looks to clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `etcdctl` against this member; returns stdout.
    pub fn etcdctl(&self, args: &[&str], certs: Option<&ClientFiles>) -> String {
        let mut cmd = Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.spec.client_url()))
            .args(["--dial-timeout=1s", "--command-timeout=3s"]);
        if let Some(c) = certs {
            cmd.arg(format!("--cacert={}", c.ca.display()))
                .arg(format!("--cert={}", c.cert.display()))
                .arg(format!("--key={}", c.key.display()));
        }
        let out = cmd.args(args).output().expect("cannot run etcdctl");
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until `etcdctl endpoint health` succeeds.
    pub fn wait_healthy(&self, certs: Option<&ClientFiles>, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let mut cmd = Command::new("etcdctl");
            cmd.env("ETCDCTL_API", "3")
                .arg(format!("--endpoints={}", self.spec.client_url()))
                .args([
                    "--dial-timeout=500ms",
                    "--command-timeout=1s",
                    "endpoint",
                    "health",
                ]);
            if let Some(c) = certs {
                cmd.arg(format!("--cacert={}", c.ca.display()))
                    .arg(format!("--cert={}", c.cert.display()))
                    .arg(format!("--key={}", c.key.display()));
            }
            let ok = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.spec.data_dir.with_extension("log"))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!(
                    "etcd {} not healthy within {timeout:?}; log tail:\n{}",
                    self.spec.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The member id (hex, as etcd's `etcd_server_id` label shows it) and DB size from
    /// `etcdctl endpoint status`.
    pub fn status(&self, certs: Option<&ClientFiles>) -> (String, u64) {
        let out = self.etcdctl(&["endpoint", "status", "-w", "json"], certs);
        let v: serde_json::Value = serde_json::from_str(&out).expect("etcdctl json");
        let status = &v[0]["Status"];
        let id = status["header"]["member_id"].as_u64().expect("member_id");
        (
            format!("{id:x}"),
            status["dbSize"].as_u64().expect("dbSize"),
        )
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Client-side TLS files for etcdctl and the collector.
#[derive(Clone)]
pub struct ClientFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}
