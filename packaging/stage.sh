#!/usr/bin/env bash
# Builds the collector and lays out the files every package ships under DESTDIR, as they
# sit on a node:
#
#   DESTDIR/usr/bin/tapio-collector
#   DESTDIR/usr/lib/tapio/plugins.d/<name>.so   every installable plugin (crates with
#                                               `[package.metadata.tapio] install = true`,
#                                               found by `cargo xtask install-plugins`)
#   DESTDIR/usr/share/tapio/rules/              built-in correlation rules (packaging/rules/*.yaml)
#   DESTDIR/etc/tapio/config.yaml               packaging/config/config.yaml
#   DESTDIR/etc/tapio/rules.d/                  the operator's own rules (empty)
#   DESTDIR/usr/share/doc/tapio-collector/THIRD-PARTY-LICENSES
#                                               the licence of every third-party crate built
#                                               in, with its text (cargo-about, configured by
#                                               packaging/about.toml; cached per Cargo.lock)
#
# Used by the Debian package (packaging/deb/build.sh) and by the container image
# (packaging/container/Dockerfile runs exactly this script in its build stage).
#
# Usage: packaging/stage.sh DESTDIR
# Env:   CARGO_TARGET_DIR (honoured), TAPIO_PROFILE=release|debug (default release).
# Needs: cargo-about (`cargo install --locked cargo-about --features cli`, see
#        .ci/deps/ship.sh).
set -euo pipefail

dest="${1:?usage: packaging/stage.sh DESTDIR}"
cd "$(dirname "$0")/.."
profile="${TAPIO_PROFILE:-release}"
target="${CARGO_TARGET_DIR:-$PWD/target}"

if ! cargo about --version >/dev/null 2>&1; then
    echo "stage.sh: cargo-about is missing; it writes the third-party licence notices every package ships. Install it: cargo install --locked cargo-about --features cli" >&2
    exit 2
fi

case "$profile" in
    release) cargo build --release --locked -p tapio-collector; plugin_flags=() ;;
    debug) cargo build --locked -p tapio-collector; plugin_flags=(--debug) ;;
    *) echo "stage.sh: TAPIO_PROFILE must be release or debug, not $profile" >&2; exit 2 ;;
esac

mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
rm -rf "$dest/usr/lib/tapio/plugins.d" "$dest/usr/share/tapio/rules"
install -d -m 0755 "$dest/usr/bin" "$dest/usr/lib/tapio/plugins.d" \
    "$dest/usr/share/tapio/rules" "$dest/etc/tapio" "$dest/etc/tapio/rules.d"

install -m 0755 "$target/$profile/tapio-collector" "$dest/usr/bin/tapio-collector"
cargo xtask install-plugins "${plugin_flags[@]}" --dir "$dest/usr/lib/tapio/plugins.d"
chmod 0644 "$dest"/usr/lib/tapio/plugins.d/*.so
# Debug info stays in the build tree (release keeps line tables for backtraces); the
# dynamic symbols the host looks up are untouched.
if command -v strip >/dev/null; then
    strip --strip-debug "$dest/usr/bin/tapio-collector" "$dest"/usr/lib/tapio/plugins.d/*.so
fi

# Built-in correlation rules, when the tree has any; the README says where they come from.
shopt -s nullglob
for rule in packaging/rules/*.yaml packaging/rules/*.yml; do
    install -m 0644 "$rule" "$dest/usr/share/tapio/rules/"
done
install -m 0644 packaging/rules/README.md "$dest/usr/share/tapio/rules/README.md"

install -m 0644 packaging/config/config.yaml "$dest/etc/tapio/config.yaml"

# Third-party licence notices. Generating them scans every crate's sources (about a
# minute), so the result is kept per Cargo.lock and cargo-about configuration.
notices_key="$(cat Cargo.lock packaging/about.toml packaging/about.hbs | sha256sum | cut -c1-16)"
notices="$target/third-party-licenses/$notices_key.txt"
if [ ! -s "$notices" ]; then
    mkdir -p "$target/third-party-licenses"
    # Every crate's sources on disk (a build fetches only this platform's), then offline:
    # licence texts from the crates' own files, no network lookups.
    cargo fetch --locked
    cargo about generate --offline --locked --workspace -c packaging/about.toml \
        packaging/about.hbs -o "$notices.tmp"
    mv "$notices.tmp" "$notices"
fi
install -d -m 0755 "$dest/usr/share/doc/tapio-collector"
install -m 0644 "$notices" "$dest/usr/share/doc/tapio-collector/THIRD-PARTY-LICENSES"
echo "staged $(ls "$dest/usr/lib/tapio/plugins.d" | wc -l) plugin(s) and $(ls "$dest/usr/share/tapio/rules" | grep -c '\.ya\?ml$' || true) rule file(s) in $dest"
