#!/usr/bin/env bash
# Builds the Debian package: stages the release build, every installable plugin and the
# rule files (packaging/stage.sh into $CARGO_TARGET_DIR/release/tapio-stage), then runs
# cargo-deb on the metadata of host/Cargo.toml without rebuilding.
#
# Usage: packaging/deb/build.sh [OUTPUT_DIR]      prints the path of the .deb last
# Env:   TAPIO_DEB_VERSION (e.g. 0.1.0-2) overrides the package version (upgrade tests).
#        TAPIO_PROFILE=debug packages debug builds (the tests' default: a release build of
#        every plugin takes long on CI machines); release is the default.
# Needs: cargo-deb (`cargo install --locked cargo-deb`, see .ci/deps/ship.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
out="${1:-$target/debian}"
mkdir -p "$out"
TAPIO_PROFILE="${TAPIO_PROFILE:-release}" packaging/stage.sh "$target/release/tapio-stage" >&2
version_args=()
[ -n "${TAPIO_DEB_VERSION:-}" ] && version_args=(--deb-version "$TAPIO_DEB_VERSION")
cargo deb -p tapio-collector --no-build "${version_args[@]}" --output "$out" >&2
ls -t "$out"/tapio-collector_*.deb | head -n 1
