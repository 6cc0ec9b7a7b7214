//! An in-test CRI runtime that implements `GetContainerEvents` (the runtimes that do,
//! containerd >= 1.7 and CRI-O, cannot be installed here; containerd 1.6 can and is
//! tested in `lifecycle`). It serves the real CRI gRPC API, generated from the same
//! `api.proto`, on a unix socket; the test sets its containers and pushes events.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use futures::Stream;
use tapio_plugin_cri::proto::runtime_service_server::{RuntimeService, RuntimeServiceServer};
use tapio_plugin_cri::proto::*;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

type EventStream =
    Pin<Box<dyn Stream<Item = Result<ContainerEventResponse, Status>> + Send + 'static>>;
type EventTx = mpsc::UnboundedSender<Result<ContainerEventResponse, Status>>;

#[derive(Default)]
struct State {
    pods: Vec<PodSandbox>,
    containers: Vec<Container>,
    statuses: HashMap<String, ContainerStatus>,
    subscribers: Vec<EventTx>,
}

#[derive(Clone, Default)]
struct Service(Arc<Mutex<State>>);

#[tonic::async_trait]
impl RuntimeService for Service {
    async fn version(
        &self,
        _: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "streaming-test-runtime".into(),
            runtime_version: "1.0.0".into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn list_pod_sandbox(
        &self,
        _: Request<ListPodSandboxRequest>,
    ) -> Result<Response<ListPodSandboxResponse>, Status> {
        Ok(Response::new(ListPodSandboxResponse {
            items: self.0.lock().unwrap().pods.clone(),
        }))
    }

    async fn list_containers(
        &self,
        _: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        Ok(Response::new(ListContainersResponse {
            containers: self.0.lock().unwrap().containers.clone(),
        }))
    }

    async fn container_status(
        &self,
        r: Request<ContainerStatusRequest>,
    ) -> Result<Response<ContainerStatusResponse>, Status> {
        let id = r.into_inner().container_id;
        let status = self.0.lock().unwrap().statuses.get(&id).cloned();
        match status {
            Some(s) => Ok(Response::new(ContainerStatusResponse {
                status: Some(s),
                info: HashMap::new(),
            })),
            None => Err(Status::not_found(format!("container {id} not found"))),
        }
    }

    async fn get_container_events(
        &self,
        _: Request<GetEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.0.lock().unwrap().subscribers.push(tx);
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// The running runtime; stops on drop.
pub struct StreamingRuntime {
    state: Arc<Mutex<State>>,
    /// Its socket.
    pub socket: PathBuf,
    dir: tempfile::TempDir,
    cancel: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl StreamingRuntime {
    /// Starts serving with one ready sandbox `s1` of pod `shop/web-0`.
    pub fn start() -> StreamingRuntime {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("cri.sock");
        let state = Arc::new(Mutex::new(State::default()));
        state.lock().unwrap().pods.push(PodSandbox {
            id: "s1".into(),
            metadata: Some(PodSandboxMetadata {
                name: "web-0".into(),
                uid: "uid-web-0".into(),
                namespace: "shop".into(),
                attempt: 0,
            }),
            state: PodSandboxState::SandboxReady as i32,
            created_at: now() - 5_000_000_000,
            ..Default::default()
        });
        let mut rt = StreamingRuntime {
            state,
            socket,
            dir,
            cancel: None,
            thread: None,
        };
        rt.serve();
        rt
    }

    fn serve(&mut self) {
        let service = Service(Arc::clone(&self.state));
        let listener = std::os::unix::net::UnixListener::bind(&self.socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.cancel = Some(tx);
        self.thread = Some(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::UnixListener::from_std(listener).unwrap();
                let incoming = futures::stream::unfold(listener, |l| async move {
                    let conn = l.accept().await.map(|(s, _)| s);
                    Some((conn, l))
                });
                tonic::transport::Server::builder()
                    .add_service(RuntimeServiceServer::new(service))
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        }));
    }

    /// Stops serving: event streams end, the socket disappears.
    pub fn stop(&mut self) {
        self.state.lock().unwrap().subscribers.clear();
        if let Some(c) = self.cancel.take() {
            let _ = c.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Serves again on the same socket with the same state.
    pub fn restart(&mut self) {
        self.stop();
        self.serve();
    }

    /// Sets container `id` of sandbox `s1` to `state`, with `status` details.
    pub fn set_container(&self, id: &str, state: ContainerState, status: ContainerStatus) {
        let mut s = self.state.lock().unwrap();
        let container = Container {
            id: id.into(),
            pod_sandbox_id: "s1".into(),
            metadata: Some(ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: "registry.example/app:1".into(),
                ..Default::default()
            }),
            image_ref: "sha256:0123".into(),
            state: state as i32,
            created_at: status.created_at,
            ..Default::default()
        };
        s.containers.retain(|c| c.id != id);
        s.containers.push(container);
        s.statuses.insert(
            id.into(),
            ContainerStatus {
                id: id.into(),
                state: state as i32,
                ..status
            },
        );
    }

    /// Sends a container event to every open stream.
    pub fn push_event(&self, id: &str, kind: ContainerEventType) {
        let event = ContainerEventResponse {
            container_id: id.into(),
            container_event_type: kind as i32,
            created_at: now(),
            ..Default::default()
        };
        self.state
            .lock()
            .unwrap()
            .subscribers
            .retain(|s| s.send(Ok(event.clone())).is_ok());
    }

    /// Open event streams.
    pub fn subscribers(&self) -> usize {
        let mut s = self.state.lock().unwrap();
        s.subscribers.retain(|t| !t.is_closed());
        s.subscribers.len()
    }

    /// The socket's directory (kept alive with the runtime).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for StreamingRuntime {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Now, ns since the epoch.
pub fn now() -> i64 {
    tapio_plugin_api::now_unix_nanos() as i64
}
