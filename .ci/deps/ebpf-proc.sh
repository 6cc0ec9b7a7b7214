#!/usr/bin/env bash
# Installs what the process and syscall-errors collectors' tests and benchmarks need beyond
# .ci/deps/ebpf-more.sh: bpftrace (the independent oracle the tests compare exec and
# failed-syscall counts with, and the baseline of the kernel-side cost benchmarks),
# python3 (a real NULL-dereference segfault and abort(3) in the death-reason test), procps
# (kill(1), the marked killer), bash (/dev/tcp connect), util-linux (setpriv, for manual
# unprivileged runs) and coreutils (true, cat, dd: the workloads). Idempotent:
# installs only what is missing. bpftrace needs tracefs, which .ci/run mounts.
set -euo pipefail

need=()
command -v bpftrace >/dev/null 2>&1 || need+=(bpftrace)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
[ -x /usr/bin/python3 ] || need+=(python3)
[ -x /usr/bin/kill ] || need+=(procps)
[ -x /bin/bash ] || need+=(bash)
for tool in true sleep cat dd; do
    command -v "$tool" >/dev/null 2>&1 || { need+=(coreutils); break; }
done

if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
