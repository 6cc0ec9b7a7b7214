"""A Tapio server for the export tests, generated from host/proto with grpcio-tools.

Implements tapio.v1.CollectorService/StreamEvents with grpcio. Every batch received is
appended to --out as JSON lines (one per event: the event's fields plus "seq", the batch
sequence, "recv" the arrival time and "outcome": "acked", "retry" or "rejected").
Prints "READY <port>" on stdout once serving.

Modes (--mode):
  ack        ack every batch (processed = len)
  flow       first send FlowControl(--eps, --batch, --interval-ms), then ack
  errors     answer the first --errors batches with a retryable Error (retry_after 200 ms),
             reject batch number --reject (1-based, counted after the retries) for good,
             ack the rest
  malformed  first an Ack for an unknown sequence and an empty message, then acks whose
             counts do not match for the first batch, then normal acks
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc


def generate(proto_dir):
    out = tempfile.mkdtemp(prefix="tapio-pyproto-")
    subprocess.check_call([
        sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir,
        "--python_out", out, "--grpc_python_out", out,
        "tapio/v1/event.proto", "tapio/v1/collector.proto",
    ])
    sys.path.insert(0, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("--mode", default="ack")
    ap.add_argument("--eps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--interval-ms", type=int, default=0)
    ap.add_argument("--errors", type=int, default=0)
    ap.add_argument("--reject", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca", help="require client certificates signed by this CA")
    args = ap.parse_args()
    generate(args.proto)
    from tapio.v1 import collector_pb2 as pb
    from tapio.v1 import collector_pb2_grpc as rpc
    from tapio.v1 import event_pb2 as ev

    lock = threading.Lock()
    out = open(args.out, "a", buffering=1)
    state = {"batches": 0, "errors_left": args.errors, "malformed_done": False}

    def attr_value(a):
        kind = a.WhichOneof("value")
        v = getattr(a, kind) if kind else None
        return v.hex() if isinstance(v, bytes) else v

    def record(batch, outcome):
        now = time.time()
        lines = []
        for e in batch.events:
            d = {
                "id": e.id, "timestamp_ns": e.timestamp_ns, "type": e.type,
                "source": e.source, "severity": ev.Severity.Name(e.severity),
                "host": e.host,
                "attributes": {a.key: attr_value(a) for a in e.attributes},
                "seq": batch.sequence, "recv": now, "outcome": outcome,
            }
            for f in ("pid", "tid", "cgroup_id", "container_id"):
                if e.HasField(f):
                    d[f] = getattr(e, f)
            if e.HasField("trace"):
                d["trace_id"] = e.trace.trace_id.hex()
                d["span_id"] = e.trace.span_id.hex()
                if e.trace.parent_span_id:
                    d["parent_span_id"] = e.trace.parent_span_id.hex()
            lines.append(json.dumps(d))
        with lock:
            if lines:
                out.write("\n".join(lines) + "\n")

    class Servicer(rpc.CollectorServiceServicer):
        def StreamEvents(self, request_iterator, context):
            if args.mode == "flow":
                yield pb.ServerMessage(flow_control=pb.FlowControl(
                    max_events_per_second=args.eps, max_batch_size=args.batch,
                    batch_interval_ms=args.interval_ms))
            for msg in request_iterator:
                kind = msg.WhichOneof("message")
                if kind == "hello":
                    print("HELLO", msg.hello.node, flush=True)
                    continue
                if kind != "batch":
                    continue
                b = msg.batch
                n = len(b.events)
                if args.mode == "errors":
                    with lock:
                        retry = state["errors_left"] > 0
                        if retry:
                            state["errors_left"] -= 1
                        else:
                            state["batches"] += 1
                        number = state["batches"]
                    if retry:
                        record(b, "retry")
                        yield pb.ServerMessage(error=pb.Error(
                            sequence=b.sequence, message="overloaded, try again",
                            retryable=True, retry_after_ms=200))
                        return
                    if number == args.reject:
                        record(b, "rejected")
                        yield pb.ServerMessage(error=pb.Error(
                            sequence=b.sequence, message="schema violation",
                            retryable=False))
                        continue
                if args.mode == "malformed":
                    with lock:
                        first = not state["malformed_done"]
                        state["malformed_done"] = True
                    if first:
                        yield pb.ServerMessage(ack=pb.Ack(sequence=987654321, processed=1))
                        yield pb.ServerMessage()
                        record(b, "acked")
                        yield pb.ServerMessage(ack=pb.Ack(sequence=b.sequence, processed=n + 5))
                        continue
                record(b, "acked")
                yield pb.ServerMessage(ack=pb.Ack(sequence=b.sequence, processed=n))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         options=[("grpc.max_receive_message_length", 256 << 20)])
    rpc.add_CollectorServiceServicer_to_server(Servicer(), server)
    addr = f"127.0.0.1:{args.port}"
    if args.tls_cert:
        key = open(args.tls_key, "rb").read()
        cert = open(args.tls_cert, "rb").read()
        ca = open(args.client_ca, "rb").read() if args.client_ca else None
        creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                            require_client_auth=ca is not None)
        server.add_secure_port(addr, creds)
    else:
        server.add_insecure_port(addr)
    server.start()
    print("READY", args.port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
