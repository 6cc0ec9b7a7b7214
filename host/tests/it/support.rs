//! Test support: building plugins (workspace and third-party), a temporary plugins
//! directory, and a real `tapio-collector` process with its log, JSON Lines output and
//! metrics endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The cargo target directory these tests were built in.
pub fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_tapio-collector"));
    exe.parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/tapio-collector")
        .to_owned()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn cargo(args: &[&str], target: &Path, dir: &Path) {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .current_dir(dir)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the workspace test plugins once (debug) and returns the path of `lib<crate>.so`.
pub fn plugin_lib(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        cargo(
            &[
                "build",
                "-p",
                "tapio-plugin-example",
                "-p",
                "tapio-plugin-loadgen",
                "-p",
                "tapio-plugin-faulty",
            ],
            &target_dir(),
            &workspace_root(),
        )
    });
    let path = target_dir()
        .join("debug")
        .join(format!("libtapio_plugin_{name}.so"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The example plugin built in release mode (a realistic size for the reload test).
pub fn example_release_lib() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        cargo(
            &["build", "--release", "-p", "tapio-plugin-example"],
            &target_dir(),
            &workspace_root(),
        )
    });
    target_dir().join("release/libtapio_plugin_example.so")
}

/// Source of a third-party plugin: the example's code with another name and version, and
/// an attribute carrying the version so tests can tell builds apart.
pub fn third_party_source(name: &str, version: &str, extra_info: &str) -> String {
    let example =
        std::fs::read_to_string(workspace_root().join("plugins/example/src/lib.rs")).unwrap();
    example
        .replace(
            "PluginInfo::new(\"example\", \"Emits a heartbeat event every interval\")",
            &format!("PluginInfo::new(\"{name}\", \"Third-party test plugin\").version(\"{version}\"){extra_info}"),
        )
        .replace(
            "Attribute::str(\"heartbeat.message\", &message),",
            &format!("Attribute::str(\"heartbeat.message\", &message), Attribute::str(\"plugin.build\", \"{version}\"),"),
        )
}

/// Creates a plugin crate in a new temporary directory OUTSIDE the workspace, depending on
/// `plugin_api` (a path) only, builds it with cargo and returns the `.so` path. Builds share
/// `<target>/third-party` so dependencies compile once.
pub fn build_third_party(name: &str, version: &str, plugin_api: &Path) -> PathBuf {
    build_third_party_with(name, version, plugin_api, "")
}

/// Like [`build_third_party`], appending `extra_info` to the `PluginInfo` builder chain.
pub fn build_third_party_with(
    name: &str,
    version: &str,
    plugin_api: &Path,
    extra_info: &str,
) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix("tapio-third-party-")
        .tempdir()
        .unwrap()
        .keep();
    assert!(
        !dir.starts_with(workspace_root()),
        "must be outside the workspace"
    );
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = std::fs::read_to_string(workspace_root().join("plugins/example/Cargo.toml"))
        .unwrap()
        .replace(
            "name = \"tapio-plugin-example\"",
            &format!("name = \"{name}\""),
        )
        .replace(
            "tapio-plugin-api = { path = \"../../plugin-api\" }",
            &format!(
                "tapio-plugin-api = {{ path = {:?} }}",
                plugin_api.display().to_string()
            ),
        );
    assert!(
        manifest.contains(&plugin_api.display().to_string()),
        "the example's manifest changed shape"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    let source = third_party_source(name, version, extra_info);
    assert!(
        source.contains(&format!("\"{name}\"")),
        "the example's source changed shape"
    );
    std::fs::write(dir.join("src/lib.rs"), source).unwrap();
    let target = target_dir().join("third-party");
    cargo(&["build"], &target, &dir);
    let lib = target
        .join("debug")
        .join(format!("lib{}.so", name.replace('-', "_")));
    let out = dir.join(format!("{name}-{version}.so"));
    std::fs::copy(&lib, &out).unwrap();
    out
}

/// The real plugin-api crate of this workspace.
pub fn plugin_api_dir() -> PathBuf {
    workspace_root().join("plugin-api")
}

/// A copy of plugin-api with `patch` applied to `src/<file>`, for incompatible builds.
pub fn patched_plugin_api(tag: &str, file: &str, from: &str, to: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapio-plugin-api-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&plugin_api_dir(), &dir);
    let _ = std::fs::remove_dir_all(dir.join("testkit"));
    let path = dir.join("src").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} no longer contains {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    // Outside the workspace: inherited keys must be concrete.
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let manifest = manifest
        .replace("edition.workspace = true", "edition = \"2021\"")
        .replace("rust-version.workspace = true", "")
        .replace("license.workspace = true", "")
        .replace("repository.workspace = true", "")
        .replace("[lints]\nworkspace = true\n", "")
        .replace("abi_stable.workspace = true", "abi_stable = \"0.11.3\"")
        .replace(
            "serde.workspace = true",
            "serde = { version = \"1\", features = [\"derive\"] }",
        )
        .replace("serde_json.workspace = true", "serde_json = \"1\"")
        .replace("humantime.workspace = true", "humantime = \"2\"")
        .replace(
            "log.workspace = true",
            "log = { version = \"0.4\", features = [\"std\"] }",
        )
        .replace("tracing-core.workspace = true", "tracing-core = \"0.1\"");
    assert!(
        !manifest.contains(".workspace"),
        "plugin-api manifest inherits something new:\n{manifest}"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Installs `lib` into `dir` as `name` the way operators should: write a hidden temporary
/// file with mode 0644, then rename it over the target.
pub fn install(lib: &Path, dir: &Path, name: &str) {
    install_bytes(&std::fs::read(lib).unwrap(), dir, name, 0o644);
}

/// Installs raw bytes with `mode`, atomically.
pub fn install_bytes(bytes: &[u8], dir: &Path, name: &str, mode: u32) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` every 20 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `tapio-collector` on a temporary plugins directory.
pub struct Host {
    child: Option<Child>,
    /// Root of this host's temporary files (removed on drop).
    _root: tempfile::TempDir,
    /// The watched plugins directory.
    pub plugins: PathBuf,
    /// The config file.
    pub config: PathBuf,
    /// The `--jsonl` output.
    pub jsonl: PathBuf,
    /// `127.0.0.1:PORT` of the metrics endpoint.
    pub metrics_addr: String,
    log: Arc<Mutex<String>>,
}

/// How to start a [`Host`].
#[derive(Default)]
pub struct HostOptions {
    /// Extra YAML appended to the generated config (sections other than `plugins:`, `metrics:`).
    pub yaml: String,
    /// Extra YAML lines inside `plugins:` (indented by the caller with two spaces).
    pub plugins_yaml: String,
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Plugins installed before the host starts: (built library, file name).
    pub preinstalled: Vec<(PathBuf, String)>,
}

impl Host {
    /// Starts a host and waits until it is ready (`/readyz` answers 200).
    pub fn start(opts: HostOptions) -> Host {
        let root = tempfile::Builder::new()
            .prefix("tapio-host-test-")
            .tempdir()
            .unwrap();
        let plugins = root.path().join("plugins.d");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o755)).unwrap();
        for (lib, name) in &opts.preinstalled {
            install(lib, &plugins, name);
        }
        let port = free_port();
        let metrics_addr = format!("127.0.0.1:{port}");
        let config = root.path().join("config.yaml");
        let yaml = format!(
            "plugins:\n  dir: {plugins}\n  runtime_dir: {run}\n  state_dir: {state}\n  debounce: 100ms\n{extra_plugins}\nmetrics:\n  addr: {metrics_addr}\n{extra}\n",
            plugins = plugins.display(),
            run = root.path().join("run").display(),
            state = root.path().join("state").display(),
            extra_plugins = opts.plugins_yaml,
            extra = opts.yaml,
        );
        std::fs::write(&config, yaml).unwrap();
        let jsonl = root.path().join("events.jsonl");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapio-collector"));
        cmd.arg("--config")
            .arg(&config)
            .arg("--jsonl")
            .arg(&jsonl)
            .args(&opts.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tapio-collector");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let host = Host {
            child: Some(child),
            _root: root,
            plugins,
            config,
            jsonl,
            metrics_addr,
            log,
        };
        let ready = wait_for(Duration::from_secs(30), || {
            (host.http_get("/readyz").0 == 200).then_some(())
        });
        assert!(
            ready.is_some(),
            "host not ready within 30 s; log:\n{}",
            host.log()
        );
        host
    }

    /// The host's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Everything the host logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains every one of `needles` on one line.
    pub fn wait_log(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        wait_for(timeout, || {
            self.log()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_owned)
        })
    }

    /// Like [`wait_log`](Self::wait_log) but fails the test with the log when not found.
    pub fn expect_log(&self, needles: &[&str], timeout: Duration) -> String {
        self.wait_log(needles, timeout).unwrap_or_else(|| {
            panic!(
                "no log line with {needles:?} within {timeout:?}; log:\n{}",
                self.log()
            )
        })
    }

    /// Every event written to `--jsonl` so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let Ok(text) = std::fs::read_to_string(&self.jsonl) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Events of plugin `source`.
    pub fn events_of(&self, source: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["source"] == source)
            .collect()
    }

    /// Waits until `pred(events)` holds; returns the events.
    pub fn wait_events(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[serde_json::Value]) -> bool,
    ) -> Option<Vec<serde_json::Value>> {
        wait_for(timeout, || {
            let events = self.events();
            pred(&events).then_some(events)
        })
    }

    /// A plain HTTP/1.0 GET on the metrics endpoint: (status, body); status 0 when down.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        let Ok(mut stream) = TcpStream::connect(&self.metrics_addr) else {
            return (0, String::new());
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.metrics_addr);
        if stream.write_all(request.as_bytes()).is_err() {
            return (0, String::new());
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// The value of the Prometheus sample `name{labels}` (labels as written, e.g.
    /// `plugin="example"`; empty for none).
    pub fn metric(&self, name: &str, labels: &str) -> Option<f64> {
        let (_, body) = self.http_get("/metrics");
        // prometheus-client writes unlabeled samples of collectors as `name{} value`.
        let prefixes = if labels.is_empty() {
            vec![format!("{name} "), format!("{name}{{}} ")]
        } else {
            vec![format!("{name}{{{labels}}} ")]
        };
        body.lines()
            .find_map(|l| prefixes.iter().find_map(|p| l.strip_prefix(p.as_str())))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Waits until metric `name{labels}` satisfies `pred`.
    pub fn wait_metric(
        &self,
        name: &str,
        labels: &str,
        timeout: Duration,
        pred: impl Fn(f64) -> bool,
    ) -> f64 {
        wait_for(timeout, || self.metric(name, labels).filter(|v| pred(*v))).unwrap_or_else(|| {
            panic!(
                "metric {name}{{{labels}}} = {:?} did not reach the expected value within {timeout:?}; log:\n{}",
                self.metric(name, labels),
                self.log()
            )
        })
    }

    /// Sends `signal` to the host.
    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) on our child's pid.
        unsafe {
            libc::kill(self.pid() as i32, signal);
        }
    }

    /// Whether the host process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        self.signal(libc::SIGTERM);
        let child = self.child.as_mut().unwrap();
        let status = wait_for(timeout, || child.try_wait().ok().flatten())?;
        // Give the log reader a moment to collect the last lines.
        std::thread::sleep(Duration::from_millis(100));
        status.code()
    }

    /// Resident set size of the host in kB.
    pub fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
