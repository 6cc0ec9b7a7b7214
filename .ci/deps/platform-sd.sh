#!/usr/bin/env bash
# Installs what the systemd and journald plugin tests need. Idempotent: installs only what
# is missing.
#   apt: systemd (a real `systemd --user` manager for plugins/systemd tests), dbus and
#        dbus-user-session (its session bus, socket-activated by the manager),
#        util-linux (`unshare`), systemd-journal-remote (makes real journal files from
#        export-format text for plugins/journald tests; journalctl is the oracle),
#        libsystemd-dev + pkg-config (the journald plugin reads journals with libsystemd's
#        sd-journal through the `systemd` crate)
set -euo pipefail

missing=()
for pkg in systemd dbus dbus-user-session util-linux systemd-journal-remote libsystemd-dev pkg-config; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
