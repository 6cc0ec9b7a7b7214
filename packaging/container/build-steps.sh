#!/usr/bin/env bash
# The build stage of packaging/container/Dockerfile, runnable outside Docker (and tested by
# packaging/tests: the image build cannot run on machines without a Docker engine).
#
# Lays out the image's root filesystem under ROOTFS: the files of packaging/stage.sh, plus
# the runtime directories a non-root user (65532, distroless "nonroot") can write:
#   /run/tapio/plugins   content-addressed copies of loaded plugins (plugins.runtime_dir)
#   /var/lib/tapio       plugin state (plugins.state_dir)
#
# Usage: packaging/container/build-steps.sh ROOTFS
set -euo pipefail
rootfs="${1:?usage: build-steps.sh ROOTFS}"
cd "$(dirname "$0")/../.."
packaging/stage.sh "$rootfs"
install -d -m 0750 "$rootfs/run/tapio/plugins" "$rootfs/var/lib/tapio"
# Owned by the distroless nonroot user so `--user 65532` works; root (the default) can
# write them anyway. chown needs root: skipped (and said) otherwise.
if [ "$(id -u)" = 0 ]; then
    chown -R 65532:65532 "$rootfs/run/tapio" "$rootfs/var/lib/tapio"
else
    echo "build-steps.sh: not root, /run/tapio and /var/lib/tapio stay owned by $(id -u)" >&2
fi
