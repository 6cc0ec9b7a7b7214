#!/usr/bin/env bash
# Installs what the storage-io, cpu-starvation, memory and container collectors need to
# rebuild their BPF objects and run their tests: clang/llvm (compile bpf-objects/src),
# libbpf-dev (bpf_helpers.h), the multiarch kernel UAPI headers, bpftool (inspection), and
# coreutils (dd, sleep, true: the tests' workloads). Idempotent: installs only what is
# missing. Tracefs (fsync tracepoints) is mounted by the collectors on demand.
set -euo pipefail

need=()
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v llvm-strip >/dev/null 2>&1 || need+=(llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -f /usr/include/x86_64-linux-gnu/asm/types.h ] || need+=(linux-libc-dev)
command -v bpftool >/dev/null 2>&1 || need+=(bpftool)
for tool in dd sleep true; do
    command -v "$tool" >/dev/null 2>&1 || { need+=(coreutils); break; }
done

if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
