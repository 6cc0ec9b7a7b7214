//! HTTP(S) access to one etcd member: `GET /health` (timed) and `GET /metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use ureq::Agent;

use crate::config::Settings;
use crate::endpoint::Endpoint;

/// Largest `/metrics` body read (etcd's is about 150 KiB).
const MAX_METRICS_BYTES: u64 = 16 << 20;
/// Largest `/health` body read.
const MAX_HEALTH_BYTES: u64 = 64 << 10;

/// Errors building the client from the TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A TLS file could not be read.
    #[error("cannot read {field} {path:?}")]
    Read {
        /// Config field naming the file.
        field: &'static str,
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file is not valid PEM.
    #[error("{field} {path:?} is not valid PEM")]
    Pem {
        /// Config field naming the file.
        field: &'static str,
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: ureq::Error,
    },
    /// A TLS file holds none of what it should.
    #[error("{field} {path:?} contains no {what}")]
    Empty {
        /// Config field naming the file.
        field: &'static str,
        /// The path.
        path: String,
        /// What was expected (`certificate`, `private key`).
        what: &'static str,
    },
}

/// Why a request to a member failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No answer within the deadline.
    #[error("no answer from {url} within {timeout:?}")]
    Timeout {
        /// Requested URL.
        url: String,
        /// The deadline.
        timeout: Duration,
    },
    /// Connecting failed (refused, unreachable, name not found).
    #[error("cannot connect to {url}")]
    Connect {
        /// Requested URL.
        url: String,
        /// Why.
        #[source]
        source: ureq::Error,
    },
    /// The TLS handshake failed (unknown CA, client certificate refused, ...).
    #[error("tls handshake with {url} failed")]
    Tls {
        /// Requested URL.
        url: String,
        /// Why.
        #[source]
        source: ureq::Error,
    },
    /// The member answered with an unexpected status.
    #[error("{url} answered http {status}")]
    Status {
        /// Requested URL.
        url: String,
        /// HTTP status.
        status: u16,
    },
    /// The answer could not be read or understood.
    #[error("invalid answer from {url}: {detail}")]
    Invalid {
        /// Requested URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// Any other transport failure.
    #[error("request to {url} failed")]
    Transport {
        /// Requested URL.
        url: String,
        /// Why.
        #[source]
        source: ureq::Error,
    },
}

impl ProbeError {
    /// Short machine-readable class for the `error.type` attribute.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeError::Timeout { .. } => "timeout",
            ProbeError::Connect { .. } => "connection_failed",
            ProbeError::Tls { .. } => "tls",
            ProbeError::Status { .. } => "http_status",
            ProbeError::Invalid { .. } => "invalid_response",
            ProbeError::Transport { .. } => "transport",
        }
    }

    /// The message with its causes, on one line.
    pub fn full_message(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }

    fn from_ureq(url: &str, timeout: Duration, e: ureq::Error) -> Self {
        let url = url.to_owned();
        match e {
            ureq::Error::Timeout(_) => ProbeError::Timeout { url, timeout },
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                ProbeError::Connect { url, source: e }
            }
            ureq::Error::Io(ref io) if is_connect_error(io) => {
                ProbeError::Connect { url, source: e }
            }
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
                ProbeError::Tls { url, source: e }
            }
            ureq::Error::Io(ref io) if is_tls_alert(io) => ProbeError::Tls { url, source: e },
            _ => ProbeError::Transport { url, source: e },
        }
    }
}

fn is_connect_error(io: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        io.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | AddrNotAvailable
            | HostUnreachable
            | NetworkUnreachable
    )
}

/// rustls reports handshake failures as I/O errors wrapping a `rustls::Error`.
fn is_tls_alert(io: &std::io::Error) -> bool {
    io.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// What `/health` said.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReply {
    /// Time from sending the request to reading the whole answer.
    pub latency: Duration,
    /// `"health": "true"`.
    pub healthy: bool,
    /// etcd's reason when unhealthy (3.4.x sends one in some cases), or the HTTP status.
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct HealthBody {
    health: String,
    #[serde(default)]
    reason: Option<String>,
}

/// A client for one member.
pub struct Client {
    agent: Agent,
    endpoint: Endpoint,
    timeout: Duration,
}

/// Builds the TLS part of the agent config from the settings, reading the PEM files.
pub fn tls_config(settings: &Settings) -> Result<TlsConfig, TlsSetupError> {
    let mut tls = TlsConfig::builder().disable_verification(settings.insecure_skip_verify);
    if let Some(path) = &settings.ca_file {
        let certs = read_certs("ca_file", path)?;
        tls = tls.root_certs(RootCerts::Specific(Arc::new(certs)));
    }
    if let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) {
        let chain = read_certs("cert_file", cert)?;
        let key = read_key(key)?;
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(tls.build())
}

fn read_pem(field: &'static str, path: &str) -> Result<Vec<PemItem<'static>>, TlsSetupError> {
    let bytes = std::fs::read(path).map_err(|source| TlsSetupError::Read {
        field,
        path: path.to_owned(),
        source,
    })?;
    ureq::tls::parse_pem(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsSetupError::Pem {
            field,
            path: path.to_owned(),
            source,
        })
}

fn read_certs(field: &'static str, path: &str) -> Result<Vec<Certificate<'static>>, TlsSetupError> {
    let certs: Vec<_> = read_pem(field, path)?
        .into_iter()
        .filter_map(|item| match item {
            PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(TlsSetupError::Empty {
            field,
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn read_key(path: &str) -> Result<PrivateKey<'static>, TlsSetupError> {
    read_pem("key_file", path)?
        .into_iter()
        .find_map(|item| match item {
            PemItem::PrivateKey(k) => Some(k),
            _ => None,
        })
        .ok_or_else(|| TlsSetupError::Empty {
            field: "key_file",
            path: path.to_owned(),
            what: "private key",
        })
}

impl Client {
    /// A client for `endpoint` with a per-request `timeout`.
    pub fn new(endpoint: Endpoint, timeout: Duration, tls: TlsConfig) -> Self {
        let agent: Agent = Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .tls_config(tls)
            .user_agent(concat!("tapio-plugin-etcd/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(1)
            .build()
            .into();
        Client {
            agent,
            endpoint,
            timeout,
        }
    }

    /// The endpoint this client polls.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `GET /health`, timed.
    pub fn health(&self) -> Result<HealthReply, ProbeError> {
        let url = self.endpoint.join("/health");
        let started = Instant::now();
        let (status, body) = self.get(&url, MAX_HEALTH_BYTES)?;
        let latency = started.elapsed();
        // etcd answers 200 when healthy and 503 with the same JSON shape when not.
        let parsed: HealthBody = match serde_json::from_str(&body) {
            Ok(b) => b,
            Err(_) if status != 200 => return Err(ProbeError::Status { url, status }),
            Err(e) => {
                return Err(ProbeError::Invalid {
                    url,
                    detail: format!("health body is not etcd's JSON: {e}"),
                })
            }
        };
        let healthy = parsed.health == "true" && status == 200;
        let reason = parsed
            .reason
            .filter(|r| !r.is_empty())
            .or_else(|| (!healthy).then(|| format!("http {status}, health {:?}", parsed.health)));
        Ok(HealthReply {
            latency,
            healthy,
            reason: if healthy { None } else { reason },
        })
    }

    /// `GET /metrics`, the body as text.
    pub fn metrics(&self) -> Result<String, ProbeError> {
        let url = self.endpoint.join("/metrics");
        let (status, body) = self.get(&url, MAX_METRICS_BYTES)?;
        if status != 200 {
            return Err(ProbeError::Status { url, status });
        }
        Ok(body)
    }

    fn get(&self, url: &str, limit: u64) -> Result<(u16, String), ProbeError> {
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| ProbeError::from_ureq(url, self.timeout, e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::Timeout(_) => ProbeError::Timeout {
                    url: url.to_owned(),
                    timeout: self.timeout,
                },
                other => ProbeError::Invalid {
                    url: url.to_owned(),
                    detail: other.to_string(),
                },
            })?;
        Ok((status, body))
    }
}
