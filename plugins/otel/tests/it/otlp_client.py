"""Real OpenTelemetry Python SDK senders for the otel plugin's tests.

  sdk  --transport grpc|http --endpoint E --tag T [--gzip]
      Sends traces, logs and metrics with the SDK's own OTLP exporters, then prints what
      was sent (ids, names, counts) as JSON on stdout.
  raw  --endpoint E
      Sends hand-made gRPC requests with grpcio and the opentelemetry-proto messages:
      malformed bytes, an oversized message, spans with invalid ids; prints the answers.
"""
import argparse
import json
import os
import sys


def hexid(value, width):
    return format(value, "0{}x".format(width))


def sdk(args):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.metrics import Observation
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry._logs import SeverityNumber

    if args.transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression

        def kw(path):
            return {"endpoint": args.endpoint, "insecure": True}
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http import Compression

        def kw(path):
            return {"endpoint": args.endpoint.rstrip("/") + path}

    compression = Compression.Gzip if args.gzip else Compression.NoCompression
    pid = os.getpid()
    container = ("c0" * 32)
    resource = Resource.create({
        "service.name": "tapio-test-" + args.tag,
        "k8s.pod.name": "pod-" + args.tag,
        "k8s.namespace.name": "shop",
        "container.id": container,
        "process.pid": pid,
    })

    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(compression=compression, **kw("/v1/traces"))))
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(compression=compression, **kw("/v1/logs"))))
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(compression=compression, **kw("/v1/metrics")),
        export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)

    tracer = tracer_provider.get_tracer("tapio.test", "1.2.3")
    logger = logger_provider.get_logger("tapio.test.logs", "4.5.6")
    meter = meter_provider.get_meter("tapio.test.meter")

    sent = {"pid": pid, "container_id": container, "spans": [], "logs": [], "metrics": []}

    def record_span(span, kind):
        ctx = span.get_span_context()
        parent = span.parent.span_id if span.parent is not None else 0
        sent["spans"].append({
            "name": span.name,
            "kind": kind,
            "trace_id": hexid(ctx.trace_id, 32),
            "span_id": hexid(ctx.span_id, 16),
            "parent_span_id": hexid(parent, 16),
            "flags": int(ctx.trace_flags),
        })

    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER,
                                      attributes={"http.request.method": "POST", "order.items": 3}) as root:
        record_span(root, "server")
        for i in range(2):
            with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT,
                                              attributes={"db.system": "postgresql", "attempt": i}) as child:
                record_span(child, "client")
                if i == 1:
                    child.set_status(Status(StatusCode.ERROR, "deadlock detected"))
                    logger.emit(severity_number=SeverityNumber.ERROR, severity_text="ERROR",
                                body="query failed", attributes={"db.system": "postgresql"},
                                event_name="db.failure")
                    ctx = child.get_span_context()
                    sent["logs"].append({"body": "query failed", "severity": "error",
                                         "trace_id": hexid(ctx.trace_id, 32),
                                         "span_id": hexid(ctx.span_id, 16)})
    logger.emit(severity_number=SeverityNumber.WARN, severity_text="WARN",
                body="cache is cold", attributes={"cache.name": "products"})
    sent["logs"].append({"body": "cache is cold", "severity": "warning", "trace_id": None, "span_id": None})

    requests = meter.create_counter("tapio.test.requests", unit="1")
    requests.add(3, {"route": "/a"})
    requests.add(4, {"route": "/b"})
    latency = meter.create_histogram("tapio.test.latency", unit="ms")
    for v in (1.0, 2.0, 3.0, 40.0, 500.0):
        latency.record(v, {"route": "/a"})
    inflight = meter.create_up_down_counter("tapio.test.inflight")
    inflight.add(5)
    inflight.add(-2)
    meter.create_observable_gauge("tapio.test.temperature",
                                  callbacks=[lambda options: [Observation(21.5, {"room": "lab"})]])
    sent["metrics"] = [
        {"name": "tapio.test.requests", "type": "sum", "value": 3, "attr": ["route", "/a"]},
        {"name": "tapio.test.requests", "type": "sum", "value": 4, "attr": ["route", "/b"]},
        {"name": "tapio.test.latency", "type": "histogram", "count": 5, "sum": 546.0},
        {"name": "tapio.test.inflight", "type": "sum", "value": 3},
        {"name": "tapio.test.temperature", "type": "gauge", "value": 21.5, "attr": ["room", "lab"]},
    ]

    # shutdown flushes each pipeline exactly once (no periodic export happened).
    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()
    json.dump(sent, sys.stdout)


def raw(args):
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
    from opentelemetry.proto.trace.v1 import trace_pb2
    from opentelemetry.proto.resource.v1 import resource_pb2
    from opentelemetry.proto.common.v1 import common_pb2

    channel = grpc.insecure_channel(args.endpoint, options=[
        ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
    method = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    rawcall = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    results = {}

    def call_raw(name, payload):
        try:
            rawcall(payload, timeout=10)
            results[name] = {"code": "OK"}
        except grpc.RpcError as e:
            results[name] = {"code": e.code().name, "message": e.details()}

    call_raw("malformed", b"\x0a\xff\xff\xff\xff\x0f garbage")
    call_raw("oversized", b"\x00" * (args.oversize))

    def span(trace_id, span_id, name):
        return trace_pb2.Span(trace_id=trace_id, span_id=span_id, name=name,
                              start_time_unix_nano=1, end_time_unix_nano=2)

    request = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        resource=resource_pb2.Resource(attributes=[common_pb2.KeyValue(
            key="service.name", value=common_pb2.AnyValue(string_value="tapio-raw-" + args.tag))]),
        scope_spans=[trace_pb2.ScopeSpans(spans=[
            span(b"\x01" * 16, b"\x02" * 8, "valid-1"),
            span(b"\x01" * 4, b"\x03" * 8, "short-trace-id"),
            span(b"\x00" * 16, b"\x04" * 8, "zero-trace-id"),
            span(b"\x01" * 16, b"\x05" * 8, "valid-2"),
        ])])])
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    response = stub.Export(request, timeout=10)
    results["partial"] = {
        "has_partial_success": response.HasField("partial_success"),
        "rejected_spans": response.partial_success.rejected_spans,
        "error_message": response.partial_success.error_message,
    }
    json.dump(results, sys.stdout)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("sdk")
    s.add_argument("--transport", choices=["grpc", "http"], required=True)
    s.add_argument("--endpoint", required=True)
    s.add_argument("--tag", required=True)
    s.add_argument("--gzip", action="store_true")
    r = sub.add_parser("raw")
    r.add_argument("--endpoint", required=True)
    r.add_argument("--tag", required=True)
    r.add_argument("--oversize", type=int, required=True)
    args = p.parse_args()
    sdk(args) if args.mode == "sdk" else raw(args)


if __name__ == "__main__":
    main()
