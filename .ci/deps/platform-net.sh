#!/usr/bin/env bash
# Installs what the etcd and otel plugin tests need. Idempotent: installs only what is missing.
#   apt:  etcd-server etcd-client (real etcd 3.4 for plugins/etcd tests)
#   pip:  OpenTelemetry Python SDK + OTLP exporters (gRPC and HTTP) into a venv under
#         ${TAPIO_CACHE:-$HOME/.cache/tapio}/venv (real senders for plugins/otel tests)
set -euo pipefail

missing=()
for pkg in etcd-server etcd-client python3-venv; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian package enables and starts an etcd service on the default ports; the tests
# start their own on random ports, so a running system etcd is harmless but not needed.

cache="${TAPIO_CACHE:-$HOME/.cache/tapio}"
venv="$cache/venv"
mkdir -p "$cache"
if [[ ! -x "$venv/bin/python" ]]; then
    # Debian's python3 (apt python3-venv): a stable interpreter independent of pyenv shims.
    py=/usr/bin/python3
    [[ -x $py ]] || py=python3
    "$py" -m venv "$venv"
fi
want=(opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http)
if ! "$venv/bin/python" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http, grpc' 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${want[@]}"
fi
