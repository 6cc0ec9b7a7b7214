#!/usr/bin/env bash
# Installs what the network and dns collectors need to rebuild their BPF objects and run
# their tests: clang/llvm, libbpf-dev and the multiarch UAPI headers (compile
# bpf-objects/src/{network,dns}.bpf.c), dnsmasq (the real DNS server the dns tests start
# on 127.0.0.1 / ::1; the -base package has no system service), and iproute2 (`ip`: the
# retransmit test routes a black-hole address in a private network namespace), bash and
# python3 (the children the attribution tests run inside a fresh cgroup).
# Idempotent: installs only what is missing.
set -euo pipefail

need=()
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v llvm-strip >/dev/null 2>&1 || need+=(llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -f /usr/include/x86_64-linux-gnu/asm/types.h ] || need+=(linux-libc-dev)
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || need+=(iproute2)
command -v bash >/dev/null 2>&1 || need+=(bash)
command -v python3 >/dev/null 2>&1 || need+=(python3)

if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
