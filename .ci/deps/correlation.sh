#!/usr/bin/env bash
# What the correlation tests need: python3 (the live memory-cascade workload allocates with
# it). The BPF toolchain of the memory and container plugins comes from ebpf-more.sh.
# Idempotent: installs only what is missing.
set -euo pipefail
if ! command -v python3 >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3
fi
