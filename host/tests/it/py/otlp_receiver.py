"""An OTLP receiver for the export tests: opentelemetry-proto messages served with grpcio
(logs and traces) and, with --http-port, OTLP/HTTP protobuf (/v1/logs, /v1/traces).

Appends one JSON line per log record ("kind": "log") and per span ("kind": "span") to
--out, with the resource attributes. --unavailable N answers the first N gRPC requests
UNAVAILABLE (the exporter must retry). --tls-cert/--tls-key serve both with TLS;
--client-ca also requires a client certificate signed by that CA (mutual TLS). Prints
"READY" once serving.
"""
import argparse
import gzip
import json
import ssl
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_rpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_rpc


def any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    x = getattr(v, kind)
    if kind == "bytes_value":
        return x.hex()
    if kind in ("array_value", "kvlist_value"):
        return str(x)
    return x


def attrs(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--unavailable", type=int, default=0)
    ap.add_argument("--tls-cert", help="serve TLS (gRPC and HTTP) with this certificate")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca", help="require client certificates signed by this CA")
    args = ap.parse_args()
    lock = threading.Lock()
    out = open(args.out, "a", buffering=1)
    state = {"unavailable": args.unavailable}

    def write(lines):
        with lock:
            if lines:
                out.write("\n".join(json.dumps(l) for l in lines) + "\n")

    def logs(req, via):
        lines = []
        for rl in req.resource_logs:
            res = attrs(rl.resource.attributes)
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    lines.append({
                        "kind": "log", "via": via, "resource": res, "scope": sl.scope.name,
                        "time": r.time_unix_nano, "severity_number": r.severity_number,
                        "severity_text": r.severity_text, "body": any_value(r.body),
                        "event_name": r.event_name, "attributes": attrs(r.attributes),
                        "trace_id": r.trace_id.hex(), "span_id": r.span_id.hex(),
                        "flags": r.flags,
                    })
        write(lines)

    def spans(req, via):
        lines = []
        for rs in req.resource_spans:
            res = attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    lines.append({
                        "kind": "span", "via": via, "resource": res, "name": s.name,
                        "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                        "attributes": attrs(s.attributes),
                        "links": [{"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex(),
                                   "attributes": attrs(l.attributes)} for l in s.links],
                    })
        write(lines)

    def refuse(context):
        with lock:
            if state["unavailable"] > 0:
                state["unavailable"] -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")

    class Logs(logs_rpc.LogsServiceServicer):
        def Export(self, request, context):
            refuse(context)
            logs(request, "grpc")
            return logs_pb.ExportLogsServiceResponse()

    class Traces(trace_rpc.TraceServiceServicer):
        def Export(self, request, context):
            refuse(context)
            spans(request, "grpc")
            return trace_pb.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         options=[("grpc.max_receive_message_length", 256 << 20)])
    logs_rpc.add_LogsServiceServicer_to_server(Logs(), server)
    trace_rpc.add_TraceServiceServicer_to_server(Traces(), server)
    if args.tls_cert:
        key = open(args.tls_key, "rb").read()
        cert = open(args.tls_cert, "rb").read()
        ca = open(args.client_ca, "rb").read() if args.client_ca else None
        creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                            require_client_auth=ca is not None)
        server.add_secure_port(f"127.0.0.1:{args.port}", creds)
    else:
        server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()

    if args.http_port:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/logs":
                    req = logs_pb.ExportLogsServiceRequest()
                    req.ParseFromString(body)
                    logs(req, "http")
                    resp = logs_pb.ExportLogsServiceResponse().SerializeToString()
                elif self.path == "/v1/traces":
                    req = trace_pb.ExportTraceServiceRequest()
                    req.ParseFromString(body)
                    spans(req, "http")
                    resp = trace_pb.ExportTraceServiceResponse().SerializeToString()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(resp)))
                self.end_headers()
                self.wfile.write(resp)

            def log_message(self, *a):
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", args.http_port), Handler)
        if args.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
            if args.client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(args.client_ca)
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()

    print("READY", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
