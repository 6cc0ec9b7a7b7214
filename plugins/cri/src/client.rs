//! Finding the runtime's CRI socket and connecting a gRPC client to it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::proto::runtime_service_client::RuntimeServiceClient;

/// Where containerd, CRI-O, k3s and cri-dockerd put their CRI sockets, tried in order.
pub const DEFAULT_SOCKETS: &[&str] = &[
    "/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/run/k3s/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/cri-dockerd.sock",
];

/// Errors reaching the runtime.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// No configured or standard socket exists.
    #[error("no CRI socket found (tried {tried})")]
    NoSocket {
        /// The paths tried.
        tried: String,
    },
    /// The socket exists but the connection failed.
    #[error("cannot connect to CRI socket {path}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// A CRI call failed.
    #[error("CRI {call} failed")]
    Call {
        /// The RPC name.
        call: &'static str,
        /// The gRPC status.
        #[source]
        source: tonic::Status,
    },
    /// The container event stream ended or broke.
    #[error("container event stream ended")]
    StreamEnded,
}

impl CriError {
    /// Wraps a failed call.
    pub fn call(call: &'static str) -> impl FnOnce(tonic::Status) -> CriError {
        move |source| CriError::Call { call, source }
    }
}

/// The socket to use: `configured` if set, else the first standard path that is a socket.
pub fn detect_socket(configured: &str) -> Result<PathBuf, CriError> {
    use std::os::unix::fs::FileTypeExt;
    let candidates: Vec<&str> = if configured.is_empty() {
        DEFAULT_SOCKETS.to_vec()
    } else {
        vec![configured.trim_start_matches("unix://")]
    };
    candidates
        .iter()
        .map(Path::new)
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket()))
        .map(Path::to_path_buf)
        .ok_or_else(|| CriError::NoSocket {
            tried: candidates.join(", "),
        })
}

/// Connects to the CRI runtime service on the unix socket `path`; every unary call gets
/// `timeout`.
pub async fn connect(
    path: &Path,
    timeout: Duration,
) -> Result<RuntimeServiceClient<Channel>, CriError> {
    let socket = path.to_path_buf();
    let channel = Endpoint::from_static("http://cri.invalid")
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|source| CriError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(RuntimeServiceClient::new(channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_reports_what_it_tried() {
        let err = detect_socket("/nonexistent/cri.sock").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no CRI socket found (tried /nonexistent/cri.sock)"
        );
    }

    #[test]
    fn detect_accepts_a_unix_url_and_refuses_regular_files() {
        let dir = std::env::temp_dir().join(format!("tapio-cri-detect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let found = detect_socket(&format!("unix://{}", sock.display())).unwrap();
        assert_eq!(found, sock);
        let file = dir.join("plain");
        std::fs::write(&file, b"").unwrap();
        assert!(detect_socket(file.to_str().unwrap()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
