//! OTLP/HTTP with binary protobuf: `POST /v1/traces`, `/v1/logs`, `/v1/metrics`.
//!
//! Answers as the OTLP specification says: 200 with the `Export*ServiceResponse` (with
//! `partial_success` when items were rejected); on failure a 4xx whose body is a protobuf
//! `google.rpc.Status`: 400 for undecodable protobuf or gzip, 413 for a body over
//! `max_request_bytes` (checked on `Content-Length`, while reading, and after gzip
//! decompression), 415 for another content type (OTLP/JSON is not supported) or content
//! encoding, 404 / 405 for other paths and methods.

use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use prost::Message;

use crate::convert::Sink;
use crate::ingest::Ingest;
use crate::stats::{Refusal, Transport};

const PROTOBUF: &str = "application/x-protobuf";

/// `google.rpc.Status`, the body of every OTLP/HTTP error response.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code` value.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `google.rpc.Code` values used here.
mod code {
    pub(super) const INVALID_ARGUMENT: i32 = 3;
    pub(super) const NOT_FOUND: i32 = 5;
    pub(super) const RESOURCE_EXHAUSTED: i32 = 8;
    pub(super) const UNIMPLEMENTED: i32 = 12;
}

/// A refused request: HTTP status, `google.rpc` code, why (for the counters), message.
struct Failure(StatusCode, i32, Refusal, String);

fn protobuf_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, PROTOBUF)], body).into_response()
}

struct AppState<S: Sink> {
    ingest: Arc<Ingest<S>>,
    max_request_bytes: usize,
}

/// The router of the three endpoints.
pub fn router<S: Sink + Send + Sync + 'static>(
    ingest: Arc<Ingest<S>>,
    max_request_bytes: usize,
) -> Router {
    let state = Arc::new(AppState {
        ingest,
        max_request_bytes,
    });
    let not_found = {
        let state = Arc::clone(&state);
        move || async move {
            fail(
                &state,
                Failure(
                    StatusCode::NOT_FOUND,
                    code::NOT_FOUND,
                    Refusal::NotFound,
                    "unknown path: OTLP/HTTP accepts POST /v1/traces, /v1/logs and /v1/metrics"
                        .into(),
                ),
            )
        }
    };
    let not_allowed = {
        let state = Arc::clone(&state);
        move || async move {
            fail(
                &state,
                Failure(
                    StatusCode::METHOD_NOT_ALLOWED,
                    code::UNIMPLEMENTED,
                    Refusal::NotFound,
                    "OTLP/HTTP accepts only POST".into(),
                ),
            )
        }
    };
    Router::new()
        .route("/v1/traces", post(traces::<S>))
        .route("/v1/logs", post(logs::<S>))
        .route("/v1/metrics", post(metrics::<S>))
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .with_state(state)
}

fn fail<S: Sink>(state: &AppState<S>, Failure(status, code, why, message): Failure) -> Response {
    state.ingest.stats().refused(Transport::Http, why);
    let body = RpcStatus { code, message }.encode_to_vec();
    protobuf_response(status, body)
}

async fn traces<S: Sink + Send + Sync + 'static>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(&state, &headers, body, |ingest, req| {
        ingest.traces(Transport::Http, &req)
    })
    .await
}

async fn logs<S: Sink + Send + Sync + 'static>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(&state, &headers, body, |ingest, req| {
        ingest.logs(Transport::Http, &req)
    })
    .await
}

async fn metrics<S: Sink + Send + Sync + 'static>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(&state, &headers, body, |ingest, req| {
        ingest.metrics(Transport::Http, &req)
    })
    .await
}

async fn handle<S, Req, Resp>(
    state: &AppState<S>,
    headers: &HeaderMap,
    body: Body,
    export: impl FnOnce(&Ingest<S>, Req) -> Resp,
) -> Response
where
    S: Sink,
    Req: Message + Default,
    Resp: Message,
{
    let bytes = match read_body(headers, body, state.max_request_bytes).await {
        Ok(b) => b,
        Err(failure) => return fail(state, failure),
    };
    let request = match Req::decode(bytes.as_slice()) {
        Ok(r) => r,
        Err(e) => {
            return fail(
                state,
                Failure(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_ARGUMENT,
                    Refusal::Malformed,
                    format!("malformed OTLP protobuf: {e}"),
                ),
            )
        }
    };
    let response = export(&state.ingest, request);
    protobuf_response(StatusCode::OK, response.encode_to_vec())
}

/// The request body, checked and decompressed, at most `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, Failure> {
    let unsupported = |message: String| {
        Failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_ARGUMENT,
            Refusal::UnsupportedMediaType,
            message,
        )
    };
    let too_large = || {
        Failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::RESOURCE_EXHAUSTED,
            Refusal::TooLarge,
            format!("request body larger than the receiver's limit of {limit} bytes"),
        )
    };
    let content_type = header_text(headers, header::CONTENT_TYPE);
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case(PROTOBUF) {
        return Err(unsupported(format!(
            "content type {content_type:?} is not supported: send binary protobuf ({PROTOBUF}); OTLP/JSON is not supported"
        )));
    }
    let encoding = header_text(headers, header::CONTENT_ENCODING).to_ascii_lowercase();
    let gzip = match encoding.trim() {
        "" | "identity" => false,
        "gzip" => true,
        other => {
            return Err(unsupported(format!(
                "content encoding {other:?} is not supported (use gzip or none)"
            )))
        }
    };
    let declared = header_text(headers, header::CONTENT_LENGTH)
        .parse::<u64>()
        .ok();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let raw = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Err(e) => {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                code::INVALID_ARGUMENT,
                Refusal::Malformed,
                format!("cannot read the request body: {e}"),
            ))
        }
    };
    if !gzip {
        return Ok(raw.to_vec());
    }
    let mut out = Vec::new();
    let decoder = flate2::read::GzDecoder::new(raw.as_ref());
    match decoder.take(limit as u64 + 1).read_to_end(&mut out) {
        Ok(n) if n > limit => Err(too_large()),
        Ok(_) => Ok(out),
        Err(e) => Err(Failure(
            StatusCode::BAD_REQUEST,
            code::INVALID_ARGUMENT,
            Refusal::Malformed,
            format!("invalid gzip body: {e}"),
        )),
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}
