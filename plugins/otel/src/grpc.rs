//! OTLP/gRPC: the three collector services on one tonic server.
//!
//! tonic answers two request errors with codes that OTLP clients misread: a message over
//! the size limit gets `OUT_OF_RANGE` (retryable in OTLP: the client would resend it
//! forever) and undecodable protobuf gets `INTERNAL`. A response layer rewrites them to
//! `RESOURCE_EXHAUSTED` (not retryable without RetryInfo) and `INVALID_ARGUMENT`, as the
//! OTLP specification asks; the handlers themselves never return either code.

use std::future::Future;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

use crate::convert::Sink;
use crate::ingest::Ingest;
use crate::stats::{Refusal, Stats, Transport};

/// The services' shared state.
pub struct Services<S: Sink>(Arc<Ingest<S>>);

impl<S: Sink> Clone for Services<S> {
    fn clone(&self) -> Self {
        Services(Arc::clone(&self.0))
    }
}

#[tonic::async_trait]
impl<S: Sink + Send + Sync + 'static> TraceService for Services<S> {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        Ok(Response::new(
            self.0.traces(Transport::Grpc, request.get_ref()),
        ))
    }
}

#[tonic::async_trait]
impl<S: Sink + Send + Sync + 'static> LogsService for Services<S> {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        Ok(Response::new(
            self.0.logs(Transport::Grpc, request.get_ref()),
        ))
    }
}

#[tonic::async_trait]
impl<S: Sink + Send + Sync + 'static> MetricsService for Services<S> {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        Ok(Response::new(
            self.0.metrics(Transport::Grpc, request.get_ref()),
        ))
    }
}

/// Rewrites tonic's transport-level request errors into OTLP's codes and counts them.
fn otlp_status<B>(
    stats: &Stats,
    mut response: tonic::codegen::http::Response<B>,
) -> tonic::codegen::http::Response<B> {
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    let replacement = match status.code() {
        Code::OutOfRange => Some((
            Refusal::TooLarge,
            Status::resource_exhausted(status.message().to_owned()),
        )),
        Code::ResourceExhausted => {
            stats.refused(Transport::Grpc, Refusal::TooLarge);
            None
        }
        Code::Internal => Some((
            Refusal::Malformed,
            Status::invalid_argument(format!("malformed OTLP request: {}", status.message())),
        )),
        Code::Unimplemented => {
            stats.refused(Transport::Grpc, Refusal::NotFound);
            None
        }
        _ => None,
    };
    if let Some((why, status)) = replacement {
        stats.refused(Transport::Grpc, why);
        let _ = status.add_header(response.headers_mut());
    }
    response
}

/// Serves the three services on `listener` until `shutdown` completes.
pub async fn serve<S: Sink + Send + Sync + 'static>(
    listener: tokio::net::TcpListener,
    ingest: Arc<Ingest<S>>,
    stats: Arc<Stats>,
    max_request_bytes: usize,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let services = Services(ingest);
    let layer = tower::util::MapResponseLayer::new(move |r| otlp_status(&stats, r));
    tonic::transport::Server::builder()
        .layer(layer)
        .add_service(
            TraceServiceServer::new(services.clone())
                .max_decoding_message_size(max_request_bytes)
                .accept_compressed(CompressionEncoding::Gzip),
        )
        .add_service(
            LogsServiceServer::new(services.clone())
                .max_decoding_message_size(max_request_bytes)
                .accept_compressed(CompressionEncoding::Gzip),
        )
        .add_service(
            MetricsServiceServer::new(services)
                .max_decoding_message_size(max_request_bytes)
                .accept_compressed(CompressionEncoding::Gzip),
        )
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
