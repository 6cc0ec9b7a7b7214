#!/usr/bin/env bash
# Packages the host's own tests need: systemd-analyze (unit verification).
set -euo pipefail
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
