//! One decoded OTLP request → events in the host's ring → the OTLP response, with
//! `partial_success` set when items were rejected (invalid ids, or dropped by a full ring).
//! Shared by both transports.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::convert::{self, Sink, Tally};
use crate::stats::{Signal, Stats, Transport};

/// Converts requests into events for `sink` and counts them.
pub struct Ingest<S: Sink> {
    sink: S,
    stats: Arc<Stats>,
}

/// Runs CPU work (conversion) and a possibly blocking emit without stalling the other
/// tasks of the multi-thread runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl<S: Sink> Ingest<S> {
    /// An ingester emitting into `sink`.
    pub fn new(sink: S, stats: Arc<Stats>) -> Self {
        Ingest { sink, stats }
    }

    fn run(&self, transport: Transport, signal: Signal, f: impl FnOnce(&S) -> Tally) -> Tally {
        let tally = blocking(|| f(&self.sink));
        self.stats.request(transport, signal, tally);
        tally
    }

    /// Spans.
    pub fn traces(
        &self,
        transport: Transport,
        request: &ExportTraceServiceRequest,
    ) -> ExportTraceServiceResponse {
        let tally = self.run(transport, Signal::Traces, |s| {
            convert::traces::convert(request, s)
        });
        ExportTraceServiceResponse {
            partial_success: (tally.rejected() > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: tally.rejected() as i64,
                error_message: tally.message(Signal::Traces.items()),
            }),
        }
    }

    /// Log records.
    pub fn logs(
        &self,
        transport: Transport,
        request: &ExportLogsServiceRequest,
    ) -> ExportLogsServiceResponse {
        let tally = self.run(transport, Signal::Logs, |s| {
            convert::logs::convert(request, s)
        });
        ExportLogsServiceResponse {
            partial_success: (tally.rejected() > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: tally.rejected() as i64,
                error_message: tally.message(Signal::Logs.items()),
            }),
        }
    }

    /// Metric data points.
    pub fn metrics(
        &self,
        transport: Transport,
        request: &ExportMetricsServiceRequest,
    ) -> ExportMetricsServiceResponse {
        let tally = self.run(transport, Signal::Metrics, |s| {
            convert::metrics::convert(request, s)
        });
        ExportMetricsServiceResponse {
            partial_success: (tally.rejected() > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: tally.rejected() as i64,
                error_message: tally.message(Signal::Metrics.items()),
            }),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
