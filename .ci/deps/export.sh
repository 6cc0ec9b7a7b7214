#!/usr/bin/env bash
# Installs what the exporter tests (host/tests/it/export*) need. Idempotent.
#   apt:  nats-server (real NATS JetStream peer), python3-venv
#   pip:  grpcio + grpcio-tools (a Python gRPC server generated from host/proto at test
#         time), nats-py (JetStream pull consumer), opentelemetry-proto (OTLP receiver)
#         into the venv at ${TAPIO_CACHE:-$HOME/.cache/tapio}/venv
set -euo pipefail

missing=()
for pkg in nats-server python3-venv; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cache="${TAPIO_CACHE:-$HOME/.cache/tapio}"
venv="$cache/venv"
mkdir -p "$cache"
if [[ ! -x "$venv/bin/python" ]]; then
    py=/usr/bin/python3
    [[ -x $py ]] || py=python3
    "$py" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import grpc, grpc_tools.protoc, nats, opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc' 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check grpcio grpcio-tools nats-py opentelemetry-proto
fi
