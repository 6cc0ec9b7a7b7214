#!/usr/bin/env bash
# System packages for the k8s-tagged plugins (cri, kubeapi, kubelet) and their tests.
# Idempotent: installs only what is missing.
#   containerd, runc: the real CRI runtime the cri plugin's tests start (private root/socket).
#   busybox-static:   the static binary the cri tests pack into a local OCI image.
# The kubeapi and kubelet tests use in-test servers: no package (never install
# kubernetes-client here, it breaks apt).
set -euo pipefail

need=()
for pkg in containerd runc busybox-static; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        need+=("$pkg")
    fi
done
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
