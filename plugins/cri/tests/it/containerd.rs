//! A private containerd (own root, state, socket; host-network pods only; no CNI) started
//! by a test, with a locally built busybox image imported, and a small CRI driver that
//! plays the kubelet's part. Everything is killed and removed on drop, even on failure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tapio_plugin_cri::client::connect;
use tapio_plugin_cri::proto::runtime_service_client::RuntimeServiceClient;
use tapio_plugin_cri::proto::*;
use tonic::transport::Channel;

/// The image the test imports (also the pod sandbox image: its command sleeps).
pub const IMAGE: &str = "docker.io/library/tapio-busybox:test";

const BUSYBOX: &str = "/bin/busybox";

/// What is missing to run containerd here, if anything.
pub fn missing_requirement() -> Option<(String, &'static str)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some((
            "not root".into(),
            "root (containerd and runc create namespaces and cgroups)",
        ));
    }
    for tool in ["containerd", "containerd-shim-runc-v2", "runc", "ctr"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Some((
                format!("{tool} not found"),
                "apt packages containerd and runc (.ci/deps/platform-k8s.sh)",
            ));
        }
    }
    if !crate::oci::is_static_elf(Path::new(BUSYBOX)) {
        return Some((
            format!("{BUSYBOX} is not a static binary"),
            "apt package busybox-static",
        ));
    }
    None
}

/// A running private containerd.
pub struct Containerd {
    dir: PathBuf,
    config: PathBuf,
    /// Its CRI socket.
    pub socket: PathBuf,
    child: Option<Child>,
}

impl Containerd {
    /// Starts containerd in a fresh temporary directory and imports [`IMAGE`].
    pub fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("tapio-ctd-")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni-bin"
    conf_dir = "{d}/cni-conf"
"#,
                d = dir.display()
            ),
        )
        .unwrap();
        let mut c = Containerd {
            dir,
            config,
            socket,
            child: None,
        };
        c.spawn();
        let image = c.dir.join("busybox-oci.tar");
        crate::oci::write_busybox_image(Path::new(BUSYBOX), IMAGE, &image);
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&c.socket)
            .args([
                "--namespace",
                "k8s.io",
                "images",
                "import",
                "--snapshotter",
                "native",
            ])
            .arg(&image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctr import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let rt = runtime();
        loop {
            let ready = rt.block_on(async {
                let mut client = connect(&self.socket, Duration::from_secs(2)).await.ok()?;
                client.version(VersionRequest::default()).await.ok()
            });
            if ready.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "containerd not ready after 20 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// containerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// Kills containerd abruptly (its shims keep running, as after a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts containerd again on the same root, state and socket.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A CRI driver connected to this containerd.
    pub fn driver(&self) -> Driver {
        let rt = runtime();
        let client = rt
            .block_on(connect(&self.socket, Duration::from_secs(10)))
            .unwrap();
        Driver {
            rt,
            client,
            log_dir: self.dir.join("pods"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Remove whatever the test left, so that runc tears its containers down.
            let rt = runtime();
            if let Ok(client) = rt.block_on(connect(&self.socket, Duration::from_secs(2))) {
                let log_dir = self.dir.join("pods");
                Driver {
                    rt,
                    client,
                    log_dir,
                }
                .remove_everything();
            }
        }
        self.kill();
        let marker = self.dir.to_string_lossy().into_owned();
        // Shims this containerd started carry its socket path on their command line.
        for pid in pids_with_cmdline(&marker) {
            // SAFETY: plain kill(2) of a process this test started (through containerd).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pids_with_cmdline(marker: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let c = std::ffi::CString::new(p).unwrap();
        // SAFETY: umount2 with a valid C string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Plays the kubelet: creates pods and containers through the CRI.
pub struct Driver {
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
    log_dir: PathBuf,
}

/// The identity of a test pod.
#[derive(Debug, Clone)]
pub struct PodRef {
    /// Pod name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: String,
}

impl PodRef {
    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            ("io.kubernetes.pod.name".to_owned(), self.name.clone()),
            (
                "io.kubernetes.pod.namespace".to_owned(),
                self.namespace.clone(),
            ),
            ("io.kubernetes.pod.uid".to_owned(), self.uid.clone()),
        ])
    }

    fn sandbox_config(&self, log_dir: &Path) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: self.name.clone(),
                uid: self.uid.clone(),
                namespace: self.namespace.clone(),
                attempt: 0,
            }),
            log_directory: log_dir.join(&self.uid).to_string_lossy().into_owned(),
            labels: self.labels(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Node as i32,
                        pid: NamespaceMode::Pod as i32,
                        ipc: NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

impl Driver {
    /// Runs a host-network pod sandbox; returns its id.
    pub fn run_pod(&mut self, pod: &PodRef) -> String {
        std::fs::create_dir_all(self.log_dir.join(&pod.uid)).unwrap();
        let config = pod.sandbox_config(&self.log_dir);
        self.rt
            .block_on(self.client.run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            }))
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id
    }

    /// Creates and starts container `name` running `sh -c script`; returns its id.
    pub fn run_container(
        &mut self,
        sandbox: &str,
        pod: &PodRef,
        name: &str,
        script: &str,
    ) -> String {
        let mut labels = pod.labels();
        labels.insert("io.kubernetes.container.name".into(), name.into());
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: IMAGE.into(),
                ..Default::default()
            }),
            command: vec!["/bin/sh".into()],
            args: vec!["-c".into(), script.into()],
            labels,
            log_path: format!("{name}.log"),
            ..Default::default()
        };
        let id = self
            .rt
            .block_on(self.client.create_container(CreateContainerRequest {
                pod_sandbox_id: sandbox.into(),
                config: Some(config),
                sandbox_config: Some(pod.sandbox_config(&self.log_dir)),
            }))
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        self.rt
            .block_on(self.client.start_container(StartContainerRequest {
                container_id: id.clone(),
            }))
            .expect("StartContainer");
        id
    }

    /// Waits until the container exited; returns its status.
    pub fn wait_exited(&mut self, id: &str, timeout: Duration) -> ContainerStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self
                .rt
                .block_on(self.client.container_status(ContainerStatusRequest {
                    container_id: id.into(),
                    verbose: false,
                }))
                .expect("ContainerStatus")
                .into_inner()
                .status
                .expect("status");
            if status.state == ContainerState::ContainerExited as i32 {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} still {:?}",
                status.state
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Removes a container.
    pub fn remove_container(&mut self, id: &str) {
        self.rt
            .block_on(self.client.remove_container(RemoveContainerRequest {
                container_id: id.into(),
            }))
            .expect("RemoveContainer");
    }

    /// Stops, then removes a sandbox.
    pub fn stop_pod(&mut self, id: &str) {
        self.rt
            .block_on(self.client.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            }))
            .expect("StopPodSandbox");
    }

    /// Removes a stopped sandbox.
    pub fn remove_pod(&mut self, id: &str) {
        self.rt
            .block_on(self.client.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            }))
            .expect("RemovePodSandbox");
    }

    /// Best effort: stops and removes every sandbox (and so every container).
    pub fn remove_everything(mut self) {
        let Ok(list) = self.rt.block_on(
            self.client
                .list_pod_sandbox(ListPodSandboxRequest::default()),
        ) else {
            return;
        };
        for pod in list.into_inner().items {
            let id = pod.id;
            let _ = self
                .rt
                .block_on(self.client.stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                }));
            let _ = self.rt.block_on(
                self.client
                    .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id }),
            );
        }
    }
}
