//! In-test servers for collectors whose real peer cannot run on a test machine (the
//! Kubernetes API server, the kubelet): a self-signed certificate authority with server and
//! client certificates, and an HTTP/1.1 server (plain or TLS) on `127.0.0.1` that runs a
//! handler per request on its own thread and runtime. Responses may stream
//! ([`channel_body`]), as watch responses do.
//!
//! For tests only (feature `testing`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The body type handlers return.
pub type Body = BoxBody<Bytes, Infallible>;

/// A complete body from bytes.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).boxed()
}

/// A JSON response with `status`.
pub fn json_response(status: u16, json: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(json))
        .expect("static response parts are valid")
}

/// A streaming body: every `Bytes` sent on the returned sender becomes one chunk; the
/// body ends when the sender is dropped.
pub fn channel_body() -> (mpsc::UnboundedSender<Bytes>, Body) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, ChannelBody(rx).boxed())
}

struct ChannelBody(mpsc::UnboundedReceiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

/// A test certificate authority and the certificates it signed, as PEM.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate (what clients trust).
    pub ca_pem: String,
    /// Server certificate for `127.0.0.1` and `localhost`.
    pub server_cert_pem: String,
    /// Its private key.
    pub server_key_pem: String,
    /// A client certificate (CN `tapio-test-client`).
    pub client_cert_pem: String,
    /// Its private key.
    pub client_key_pem: String,
}

impl TestPki {
    /// Generates a fresh CA, server and client certificate.
    pub fn generate() -> Result<Self, rcgen::Error> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tapio test CA");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "tapio-test-client");
        let client_cert = client_params.signed_by(&client_key, &issuer)?;

        Ok(TestPki {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    /// A rustls server config with the server certificate; when `require_client_cert`,
    /// clients must present a certificate signed by the CA.
    pub fn server_config(&self, require_client_cert: bool) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions");
        let certs = vec![
            CertificateDer::from_pem_slice(self.server_cert_pem.as_bytes())
                .expect("generated PEM parses"),
        ];
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes())
            .expect("generated PEM parses");
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("CA PEM"))
                .expect("CA certificate is valid");
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .expect("generated certificate and key match");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync,
>;

/// An HTTP/1.1 server on `127.0.0.1`, running on its own thread until dropped or stopped.
pub struct TestServer {
    addr: SocketAddr,
    cancel: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on a free port; `tls` = `None` serves plain HTTP.
    pub fn start<H, Fut>(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: H,
    ) -> std::io::Result<Self>
    where
        H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), tls, handler)
    }

    /// Starts a server on `addr` (to restart one on the port a stopped server had).
    pub fn start_on<H, Fut>(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: H,
    ) -> std::io::Result<Self>
    where
        H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("test server runtime");
                rt.block_on(serve(addr, tls, handler, token, ready_tx));
                rt.shutdown_background();
            })?;
        let addr = ready_rx
            .blocking_recv()
            .map_err(|_| std::io::Error::other("test server thread died"))??;
        Ok(TestServer {
            addr,
            cancel,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every open connection (streams end abruptly) and joins.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

async fn serve(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Handler,
    cancel: CancellationToken,
    ready: oneshot::Sender<std::io::Result<SocketAddr>>,
) {
    let bound = (|| {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(128)?;
        let local = listener.local_addr()?;
        Ok((listener, local))
    })();
    let listener = match bound {
        Ok((listener, local)) => {
            let _ = ready.send(Ok(local));
            listener
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(_) => continue,
            },
        };
        let handler = Arc::clone(&handler);
        let acceptor = acceptor.clone();
        let conn_cancel = cancel.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let fut = handler(req);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => {
                    let Ok(tls_stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let conn = http.serve_connection(TokioIo::new(tls_stream), service);
                    tokio::select! {
                        _ = conn_cancel.cancelled() => {}
                        _ = conn => {}
                    }
                }
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn_cancel.cancelled() => {}
                        _ = conn => {}
                    }
                }
            }
        });
    }
}
