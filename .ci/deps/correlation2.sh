#!/usr/bin/env bash
# What the live correlation scenarios of host/tests/it/correlation_live.rs need. Idempotent.
#   - OTLP receiver (opentelemetry-proto + grpcio) of the group-as-trace check: export.sh
#   - OpenTelemetry Python SDK + OTLP exporter (the instrumented applications): platform-net.sh
#   - systemd --user, busctl, unshare, systemd-journal-remote, journalctl (the unit failure
#     scenario): platform-sd.sh
#   - python3 (the allocating workload), clang/bpf toolchain of the eBPF plugins: host.sh,
#     ebpf-*.sh
# Every one of those scripts is itself idempotent; this one runs the ones it depends on, so
# it also works when run alone.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for dep in export.sh platform-net.sh platform-sd.sh; do
    bash "$here/$dep"
done
