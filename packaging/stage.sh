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
#
# Used by the Debian package (packaging/deb/build.sh) and by the container image
# (packaging/container/Dockerfile runs exactly this script in its build stage).
#
# Usage: packaging/stage.sh DESTDIR
# Env:   CARGO_TARGET_DIR (honoured), TAPIO_PROFILE=release|debug (default release).
set -euo pipefail

dest="${1:?usage: packaging/stage.sh DESTDIR}"
cd "$(dirname "$0")/.."
profile="${TAPIO_PROFILE:-release}"
target="${CARGO_TARGET_DIR:-$PWD/target}"

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
echo "staged $(ls "$dest/usr/lib/tapio/plugins.d" | wc -l) plugin(s) and $(ls "$dest/usr/share/tapio/rules" | grep -c '\.ya\?ml$' || true) rule file(s) in $dest"
