//! Metric data points → `otel.metric` events (one per point), with the trace context of
//! the point's first exemplar that has one.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Exemplar, Metric,
};
use tapio_plugin_api::{Severity, TraceContext};

use super::{span_id, time_or, trace_id, Batch, ResourceCtx, ScopeCtx, Sink, Tally, Val};

/// Event type of a metric data point.
pub const METRIC: &str = "otel.metric";

/// Converts and emits every data point of `request`.
pub fn convert<S: Sink + ?Sized>(request: &ExportMetricsServiceRequest, sink: &S) -> Tally {
    let mut batch = Batch::new(sink);
    for rm in &request.resource_metrics {
        let resource = ResourceCtx::of(rm.resource.as_ref());
        for sm in &rm.scope_metrics {
            let scope = ScopeCtx::of(sm.scope.as_ref());
            for metric in &sm.metrics {
                points(&mut batch, &resource, &scope, metric);
            }
        }
    }
    batch.done()
}

/// Data points in one OTLP request (what `rejected_data_points` counts).
pub fn count_points(request: &ExportMetricsServiceRequest) -> u64 {
    request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        } as u64)
        .sum()
}

fn exemplar_trace(exemplars: &[Exemplar]) -> Option<TraceContext> {
    exemplars.iter().find_map(|e| {
        Some(TraceContext {
            trace_id: trace_id(&e.trace_id)?,
            span_id: span_id(&e.span_id)?,
            parent_span_id: [0; 8],
            flags: 0,
        })
    })
}

fn temporality(t: i32) -> &'static str {
    match AggregationTemporality::try_from(t) {
        Ok(AggregationTemporality::Delta) => "delta",
        Ok(AggregationTemporality::Cumulative) => "cumulative",
        _ => "unspecified",
    }
}

fn json<T: serde::Serialize>(value: &T) -> Val<'static> {
    Val::Owned(serde_json::to_string(value).unwrap_or_default())
}

/// Common start of a point's event.
#[expect(
    clippy::too_many_arguments,
    reason = "every field of a data point header, passed once"
)]
fn begin<'r, S: Sink + ?Sized>(
    batch: &mut Batch<'r, '_, S>,
    resource: &ResourceCtx<'r>,
    scope: &ScopeCtx<'r>,
    metric: &'r Metric,
    kind: &'static str,
    time: u64,
    start: u64,
    exemplars: &[Exemplar],
) {
    batch.begin(time_or(time, 0), METRIC, Severity::Info, resource, scope);
    if let Some(t) = exemplar_trace(exemplars) {
        batch.trace(t);
    }
    batch.attr("metric.name", Val::Str(&metric.name));
    batch.attr("metric.type", Val::Str(kind));
    batch.str_nonempty("metric.unit", &metric.unit);
    batch.str_nonempty("metric.description", &metric.description);
    if start != 0 {
        batch.attr("metric.start_time_unix_nano", Val::UInt(start));
    }
}

fn end<'r, S: Sink + ?Sized>(batch: &mut Batch<'r, '_, S>, attributes: &'r [KeyValue]) {
    batch.attributes(attributes);
    batch.finish();
}

fn points<'r, S: Sink + ?Sized>(
    batch: &mut Batch<'r, '_, S>,
    resource: &ResourceCtx<'r>,
    scope: &ScopeCtx<'r>,
    metric: &'r Metric,
) {
    let number = |batch: &mut Batch<'r, '_, S>, v: &Option<number_data_point::Value>| match v {
        Some(number_data_point::Value::AsInt(i)) => batch.attr("metric.value", Val::Int(*i)),
        Some(number_data_point::Value::AsDouble(d)) => batch.attr("metric.value", Val::Float(*d)),
        None => {}
    };
    match &metric.data {
        Some(Data::Gauge(g)) => {
            for p in &g.data_points {
                begin(
                    batch,
                    resource,
                    scope,
                    metric,
                    "gauge",
                    p.time_unix_nano,
                    p.start_time_unix_nano,
                    &p.exemplars,
                );
                number(batch, &p.value);
                end(batch, &p.attributes);
            }
        }
        Some(Data::Sum(s)) => {
            for p in &s.data_points {
                begin(
                    batch,
                    resource,
                    scope,
                    metric,
                    "sum",
                    p.time_unix_nano,
                    p.start_time_unix_nano,
                    &p.exemplars,
                );
                number(batch, &p.value);
                batch.attr("metric.monotonic", Val::Bool(s.is_monotonic));
                batch.attr(
                    "metric.temporality",
                    Val::Str(temporality(s.aggregation_temporality)),
                );
                end(batch, &p.attributes);
            }
        }
        Some(Data::Histogram(h)) => {
            for p in &h.data_points {
                begin(
                    batch,
                    resource,
                    scope,
                    metric,
                    "histogram",
                    p.time_unix_nano,
                    p.start_time_unix_nano,
                    &p.exemplars,
                );
                batch.attr("metric.count", Val::UInt(p.count));
                if let Some(sum) = p.sum {
                    batch.attr("metric.sum", Val::Float(sum));
                }
                if let Some(min) = p.min {
                    batch.attr("metric.min", Val::Float(min));
                }
                if let Some(max) = p.max {
                    batch.attr("metric.max", Val::Float(max));
                }
                batch.attr("metric.bucket_counts", json(&p.bucket_counts));
                batch.attr("metric.explicit_bounds", json(&p.explicit_bounds));
                batch.attr(
                    "metric.temporality",
                    Val::Str(temporality(h.aggregation_temporality)),
                );
                end(batch, &p.attributes);
            }
        }
        Some(Data::ExponentialHistogram(h)) => {
            for p in &h.data_points {
                begin(
                    batch,
                    resource,
                    scope,
                    metric,
                    "exponential_histogram",
                    p.time_unix_nano,
                    p.start_time_unix_nano,
                    &p.exemplars,
                );
                batch.attr("metric.count", Val::UInt(p.count));
                if let Some(sum) = p.sum {
                    batch.attr("metric.sum", Val::Float(sum));
                }
                if let Some(min) = p.min {
                    batch.attr("metric.min", Val::Float(min));
                }
                if let Some(max) = p.max {
                    batch.attr("metric.max", Val::Float(max));
                }
                batch.attr("metric.scale", Val::Int(p.scale.into()));
                batch.attr("metric.zero_count", Val::UInt(p.zero_count));
                for (key, buckets) in [
                    ("metric.positive", &p.positive),
                    ("metric.negative", &p.negative),
                ] {
                    if let Some(b) = buckets {
                        let value = serde_json::json!({"offset": b.offset, "bucket_counts": b.bucket_counts});
                        batch.attr(key, Val::Owned(value.to_string()));
                    }
                }
                batch.attr(
                    "metric.temporality",
                    Val::Str(temporality(h.aggregation_temporality)),
                );
                end(batch, &p.attributes);
            }
        }
        Some(Data::Summary(s)) => {
            for p in &s.data_points {
                begin(
                    batch,
                    resource,
                    scope,
                    metric,
                    "summary",
                    p.time_unix_nano,
                    p.start_time_unix_nano,
                    &[],
                );
                batch.attr("metric.count", Val::UInt(p.count));
                batch.attr("metric.sum", Val::Float(p.sum));
                let quantiles: Vec<[f64; 2]> = p
                    .quantile_values
                    .iter()
                    .map(|q| [q.quantile, q.value])
                    .collect();
                batch.attr("metric.quantiles", json(&quantiles));
                end(batch, &p.attributes);
            }
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_sink::TestSink;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn one_event_per_point_with_values() {
        let sum = Metric {
            name: "requests".into(),
            unit: "1".into(),
            data: Some(Data::Sum(Sum {
                data_points: vec![
                    NumberDataPoint {
                        time_unix_nano: 5,
                        value: Some(number_data_point::Value::AsInt(3)),
                        exemplars: vec![Exemplar {
                            trace_id: vec![7; 16],
                            span_id: vec![6; 8],
                            ..Default::default()
                        }],
                        ..Default::default()
                    },
                    NumberDataPoint {
                        time_unix_nano: 6,
                        value: Some(number_data_point::Value::AsInt(4)),
                        ..Default::default()
                    },
                ],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let gauge = Metric {
            name: "temp".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: 7,
                    value: Some(number_data_point::Value::AsDouble(21.5)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let hist = Metric {
            name: "latency".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: 8,
                    count: 3,
                    sum: Some(6.0),
                    bucket_counts: vec![1, 2, 0],
                    explicit_bounds: vec![1.0, 5.0],
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            })),
            ..Default::default()
        };
        let req = request(vec![sum, gauge, hist]);
        assert_eq!(count_points(&req), 4);
        let sink = TestSink::default();
        assert_eq!(convert(&req, &sink).accepted, 4);
        let got = sink.got.borrow();
        assert_eq!(got[0].attr("metric.value"), Some("3"));
        assert_eq!(got[0].attr("metric.monotonic"), Some("true"));
        assert_eq!(got[0].attr("metric.temporality"), Some("cumulative"));
        assert_eq!(got[0].trace.unwrap().trace_id, [7; 16]);
        assert_eq!(got[1].trace, None);
        assert_eq!(got[2].attr("metric.value"), Some("21.5"));
        assert_eq!(got[2].attr("metric.type"), Some("gauge"));
        assert_eq!(got[3].attr("metric.bucket_counts"), Some("[1,2,0]"));
        assert_eq!(got[3].attr("metric.explicit_bounds"), Some("[1.0,5.0]"));
        assert_eq!(got[3].timestamp_ns, 8);
    }
}
