//! HTTP(S) access to the kubelet's read-only endpoints with a bearer token or a client
//! certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::de::DeserializeOwned;

use crate::settings::Settings;

/// Errors talking to the kubelet.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// A configured file could not be read.
    #[error("cannot read {what} {path}")]
    ReadFile {
        /// What the file is for.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("no usable {what} in {path}")]
    Pem {
        /// What was expected.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// Neither a CA nor `insecure_skip_verify` for an https endpoint.
    #[error("no CA to verify the kubelet's certificate: {path} does not exist (set ca_file, or insecure_skip_verify: true)")]
    NoCa {
        /// The CA path tried.
        path: PathBuf,
    },
    /// The TLS configuration was refused.
    #[error("invalid TLS configuration")]
    Tls(#[source] rustls::Error),
    /// The endpoint is not a URL.
    #[error("invalid endpoint {endpoint:?}")]
    Endpoint {
        /// The configured text.
        endpoint: String,
        /// The cause.
        #[source]
        source: http::Error,
    },
    /// The request failed (connection refused, TLS handshake, ...).
    #[error("GET {url} failed")]
    Request {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// No answer in time.
    #[error("GET {url} timed out after {after:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The deadline.
        after: Duration,
    },
    /// The kubelet answered with an error status.
    #[error("GET {url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: http::StatusCode,
        /// The start of the body.
        body: String,
    },
    /// The body could not be read.
    #[error("reading the body of {url} failed")]
    Body {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: hyper::Error,
    },
    /// The body is not the expected JSON.
    #[error("cannot decode the answer of {url}")]
    Decode {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, KubeletError> {
    std::fs::read(path).map_err(|source| KubeletError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

/// A client for one kubelet.
#[derive(Debug, Clone)]
pub struct KubeletClient {
    base: String,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    token_file: Option<PathBuf>,
    timeout: Duration,
}

impl KubeletClient {
    /// Builds the client (reads the CA and client certificate now; the token before each
    /// request, as service account tokens rotate).
    pub fn new(s: &Settings) -> Result<Self, KubeletError> {
        let base = s.endpoint.trim_end_matches('/').to_owned();
        http::Uri::try_from(base.as_str()).map_err(|e| KubeletError::Endpoint {
            endpoint: s.endpoint.clone(),
            source: e.into(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(KubeletError::Tls)?;
        let https = base.starts_with("https://");
        let builder = if s.insecure_skip_verify || !https {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        } else {
            let ca_path = PathBuf::from(&s.ca_file);
            if !ca_path.exists() {
                return Err(KubeletError::NoCa { path: ca_path });
            }
            let pem = read("CA file", &ca_path)?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                roots.add(cert).map_err(KubeletError::Tls)?;
            }
            if roots.is_empty() {
                return Err(KubeletError::Pem {
                    what: "CA certificate",
                    path: ca_path,
                });
            }
            builder.with_root_certificates(roots)
        };
        let tls = if s.client_cert_file.is_empty() {
            builder.with_no_client_auth()
        } else {
            let cert_path = PathBuf::from(&s.client_cert_file);
            let key_path = PathBuf::from(&s.client_key_file);
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&read("client certificate", &cert_path)?)
                    .flatten()
                    .collect();
            if certs.is_empty() {
                return Err(KubeletError::Pem {
                    what: "client certificate",
                    path: cert_path,
                });
            }
            let key =
                PrivateKeyDer::from_pem_slice(&read("client key", &key_path)?).map_err(|_| {
                    KubeletError::Pem {
                        what: "private key",
                        path: key_path,
                    }
                })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(KubeletError::Tls)?
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let token_file = (!s.token_file.is_empty()).then(|| PathBuf::from(&s.token_file));
        Ok(KubeletClient {
            base,
            client,
            token_file,
            timeout: s.timeout,
        })
    }

    /// The bearer token, when the token file exists (a missing file means no token).
    fn token(&self) -> Result<Option<String>, KubeletError> {
        match &self.token_file {
            Some(p) if p.exists() => {
                let raw = read("token file", p)?;
                Ok(Some(String::from_utf8_lossy(&raw).trim().to_owned()).filter(|t| !t.is_empty()))
            }
            _ => Ok(None),
        }
    }

    /// GETs `path` and decodes its JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, KubeletError> {
        let url = format!("{}{path}", self.base);
        let mut request = http::Request::get(&url).header("accept", "application/json");
        if let Some(token) = self.token()? {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Empty::new())
            .map_err(|source| KubeletError::Endpoint {
                endpoint: url.clone(),
                source,
            })?;
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|source| KubeletError::Request {
                        url: url.clone(),
                        source,
                    })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|source| KubeletError::Body {
                    url: url.clone(),
                    source,
                })?
                .to_bytes();
            Ok::<_, KubeletError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| KubeletError::Timeout {
                url: url.clone(),
                after: self.timeout,
            })??;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_owned();
            return Err(KubeletError::Status {
                url,
                status,
                body: text,
            });
        }
        serde_json::from_slice(&body).map_err(|source| KubeletError::Decode { url, source })
    }
}

/// Accepts any server certificate (`insecure_skip_verify`); signatures are still checked
/// so that the handshake itself stays sound.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
