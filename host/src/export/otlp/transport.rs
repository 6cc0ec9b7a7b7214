//! How one OTLP request travels: the gRPC channel or the HTTP/protobuf client (with TLS
//! when configured), one unary call, and what the answer means (success with rejected
//! records, retry, or refusal for good).

use std::io::Write;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::transport::{Channel, Endpoint};

use super::{OtlpSettings, NAME, TLS_FIELD};
use crate::export::config::OtlpProtocol;
use crate::export::shared::Shared;
use crate::export::{tls, ExportError};

/// One request to send, with the number of events it carries. Shared, so a retry needs no
/// copy.
#[derive(Clone)]
pub(super) enum Request {
    Logs(Shared<ExportLogsServiceRequest>, u64),
    Traces(Shared<ExportTraceServiceRequest>, u64),
}

impl Request {
    pub(super) fn events(&self) -> u64 {
        match self {
            Request::Logs(_, n) | Request::Traces(_, n) => *n,
        }
    }
}

/// Outcome of one attempt.
pub(super) enum Sent {
    /// Done; this many records were rejected by the peer (partial success).
    Ok(u64),
    /// Try again later.
    Retry(String),
    /// The peer refused it for good.
    Refused(String),
}

pub(super) type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

#[derive(Clone)]
pub(super) enum Transport {
    Grpc {
        channel: Channel,
        gzip: bool,
    },
    Http {
        client: Box<HttpClient>,
        base: String,
    },
}

impl Transport {
    pub(super) fn new(s: &OtlpSettings) -> Result<Self, ExportError> {
        match s.protocol {
            OtlpProtocol::Grpc => {
                // The channel is created lazily inside the exporter's runtime and reconnects
                // by itself; failures surface as UNAVAILABLE on the call.
                let endpoint = Endpoint::from_shared(s.endpoint.clone())
                    .map_err(|e| ExportError::Config {
                        exporter: NAME,
                        message: format!("export.otel_endpoint {:?}: {e}", s.endpoint),
                    })?
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(s.timeout)
                    .tcp_nodelay(true);
                let endpoint = match &s.tls {
                    Some(tls) => {
                        let host = endpoint.uri().host().unwrap_or("localhost").to_owned();
                        endpoint
                            .tls_config(tls::tonic_client(NAME, tls, TLS_FIELD, &host)?)
                            .map_err(|e| ExportError::Config {
                                exporter: NAME,
                                message: format!("{TLS_FIELD}: {e}"),
                            })?
                    }
                    None => endpoint,
                };
                Ok(Transport::Grpc {
                    channel: endpoint.connect_lazy(),
                    gzip: s.gzip,
                })
            }
            OtlpProtocol::Http => {
                let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
                connector.set_nodelay(true);
                connector.set_connect_timeout(Some(Duration::from_secs(5)));
                connector.enforce_http(false);
                let tls_config = match &s.tls {
                    Some(tls) => tls::rustls_client(NAME, tls, TLS_FIELD)?,
                    // Plain http://: the connector never starts a handshake.
                    None => rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| ExportError::Config {
                        exporter: NAME,
                        message: format!("TLS: {e}"),
                    })?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
                };
                let mut https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls_config)
                    .https_or_http();
                if let Some(domain) = s.tls.as_ref().and_then(|t| t.domain.clone()) {
                    let name =
                        rustls::pki_types::ServerName::try_from(domain.clone()).map_err(|e| {
                            ExportError::Config {
                                exporter: NAME,
                                message: format!("{TLS_FIELD}.domain {domain:?}: {e}"),
                            }
                        })?;
                    https = https.with_server_name_resolver(
                        hyper_rustls::FixedServerNameResolver::new(name),
                    );
                }
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build(https.enable_http1().wrap_connector(connector));
                Ok(Transport::Http {
                    client: Box::new(client),
                    base: s.endpoint.clone(),
                })
            }
        }
    }

    pub(super) async fn send(self, request: &Request, gzip: bool, timeout: Duration) -> Sent {
        match self {
            Transport::Grpc { channel, gzip } => {
                let result = match request {
                    Request::Logs(r, _) => unary::<_, ExportLogsServiceResponse>(
                        channel,
                        gzip,
                        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                        r.clone(),
                    )
                    .await
                    .map(|resp| rejected_logs(&resp)),
                    Request::Traces(r, _) => unary::<_, ExportTraceServiceResponse>(
                        channel,
                        gzip,
                        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                        r.clone(),
                    )
                    .await
                    .map(|resp| rejected_spans(&resp)),
                };
                match result {
                    Ok(rejected) => Sent::Ok(rejected),
                    Err(status) => {
                        // The source chain names the cause a transport error hides
                        // (refused connection, TLS alert, ...).
                        let text = format!(
                            "{:?}: {}",
                            status.code(),
                            crate::export::error_chain(&status)
                        );
                        use tonic::Code as C;
                        if is_transport_failure(&status) {
                            // The connection failed (refused, reset, TLS alert): tonic may
                            // label it Unknown or Cancelled; the endpoint never judged the
                            // request, so it is retried like UNAVAILABLE.
                            return Sent::Retry(text);
                        }
                        match status.code() {
                            C::Unavailable
                            | C::ResourceExhausted
                            | C::DeadlineExceeded
                            | C::Aborted
                            | C::Cancelled
                            | C::OutOfRange
                            | C::DataLoss => Sent::Retry(text),
                            _ => Sent::Refused(text),
                        }
                    }
                }
            }
            Transport::Http { client, base } => {
                let (path, body) = match request {
                    Request::Logs(r, _) => ("/v1/logs", r.encode_to_vec()),
                    Request::Traces(r, _) => ("/v1/traces", r.encode_to_vec()),
                };
                let mut builder = hyper::Request::post(format!("{base}{path}"))
                    .header("content-type", "application/x-protobuf");
                let body = if gzip {
                    builder = builder.header("content-encoding", "gzip");
                    let mut enc =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    let _ = enc.write_all(&body);
                    enc.finish().unwrap_or_default()
                } else {
                    body
                };
                let req = match builder.body(http_body_util::Full::new(bytes::Bytes::from(body))) {
                    Ok(r) => r,
                    Err(e) => return Sent::Refused(format!("bad request: {e}")),
                };
                let resp = match tokio::time::timeout(timeout, client.request(req)).await {
                    Err(_) => return Sent::Retry("timed out".into()),
                    Ok(Err(e)) => return Sent::Retry(crate::export::error_chain(&e)),
                    Ok(Ok(resp)) => resp,
                };
                let status = resp.status();
                use http_body_util::BodyExt;
                let body = match tokio::time::timeout(timeout, resp.into_body().collect()).await {
                    Ok(Ok(b)) => b.to_bytes(),
                    _ => bytes::Bytes::new(),
                };
                if status.is_success() {
                    let rejected = match request {
                        Request::Logs(..) => ExportLogsServiceResponse::decode(body)
                            .map(|r| rejected_logs(&r))
                            .unwrap_or(0),
                        Request::Traces(..) => ExportTraceServiceResponse::decode(body)
                            .map(|r| rejected_spans(&r))
                            .unwrap_or(0),
                    };
                    return Sent::Ok(rejected);
                }
                let text = format!("HTTP {status}");
                match status.as_u16() {
                    429 | 502 | 503 | 504 => Sent::Retry(text),
                    _ => Sent::Refused(text),
                }
            }
        }
    }
}

/// Whether `status` stands for a failed connection (a tonic transport or hyper error in
/// its source chain) rather than an answer of the endpoint.
pub(super) fn is_transport_failure(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::transport::Error>() || e.is::<hyper::Error>() || e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// One unary OTLP call with a shared request (what the generated clients do, without the
/// copy of the request they need).
pub(super) async fn unary<Req, Resp>(
    channel: Channel,
    gzip: bool,
    path: &'static str,
    request: Shared<Req>,
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Clone + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_encoding_message_size(usize::MAX)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    if gzip {
        grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("service not ready: {e}")))?;
    let codec = tonic_prost::ProstCodec::<Shared<Req>, Resp>::default();
    grpc.unary(
        tonic::Request::new(request),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        codec,
    )
    .await
    .map(tonic::Response::into_inner)
}

pub(super) fn rejected_logs(r: &ExportLogsServiceResponse) -> u64 {
    r.partial_success
        .as_ref()
        .map_or(0, |p| p.rejected_log_records.max(0) as u64)
}

pub(super) fn rejected_spans(r: &ExportTraceServiceResponse) -> u64 {
    r.partial_success
        .as_ref()
        .map_or(0, |p| p.rejected_spans.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_connection_is_retried_whatever_code_tonic_gives_it() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let status = tonic::Status::from_error(Box::new(io));
        assert_eq!(status.code(), tonic::Code::Unknown);
        assert!(is_transport_failure(&status));
        assert!(!is_transport_failure(&tonic::Status::invalid_argument(
            "bad request"
        )));
    }
}
