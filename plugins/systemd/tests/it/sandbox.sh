#!/usr/bin/env bash
# Runs a private `systemd --user` manager for the systemd plugin tests, without touching
# the rest of the machine.
#
# DANGER (shared/NOTES.md): a `systemd --user` started from a process that shares its
# cgroup with the rest of the machine moves EVERY process of that cgroup (PID 1 included)
# into its init.scope. So, before `exec systemd --user`, this script:
#   1. creates a fresh child cgroup NAME under its current cgroup in EVERY hierarchy of
#      /proc/self/cgroup (cgroup v1 controllers, name=systemd and the v2 unified tree),
#   2. moves itself into each of them,
#   3. re-reads /proc/self/cgroup and REFUSES (exit 97) unless every line now names
#      exactly the new child cgroup,
#   4. enters a private mount namespace (`unshare -m`), hides the host's /run/systemd
#      under a tmpfs, checks its cgroups once more, and only then execs systemd.
# XDG_RUNTIME_DIR, HOME and XDG_CONFIG_HOME must be private directories (set by the test).
#
# Usage:
#   sandbox.sh start NAME STATE_DIR    exec systemd --user in cgroup NAME; writes the
#                                      created cgroup directories to STATE_DIR/cgroups
#   sandbox.sh check NAME STATE_DIR    the same setup and checks, then prints its
#                                      /proc/self/cgroup instead of starting systemd
#   sandbox.sh cleanup STATE_DIR       kills every process in those cgroups, removes them
set -euo pipefail

fail() {
    echo "sandbox.sh: REFUSING: $*" >&2
    exit 97
}

# Prints "MOUNTPOINT" of the hierarchy of one /proc/self/cgroup line's controller list.
mount_of() {
    local id=$1 controllers=$2 target fstype options root
    while read -r target fstype options root; do
        [[ $root == / ]] || continue
        if [[ $id == 0 ]]; then
            [[ $fstype == cgroup2 ]] && { echo "$target"; return 0; }
            continue
        fi
        [[ $fstype == cgroup ]] || continue
        local all=1 c
        IFS=, read -ra wanted <<<"$controllers"
        for c in "${wanted[@]}"; do
            [[ ",$options," == *",$c,"* ]] || all=0
        done
        ((all)) && { echo "$target"; return 0; }
    done < <(findmnt -rn -o TARGET,FSTYPE,OPTIONS,FSROOT -t cgroup,cgroup2)
    return 1
}

# Succeeds when every line of /proc/$1/cgroup equals the line in file $2.
cgroups_are() {
    diff -q <(sort "/proc/$1/cgroup") <(sort "$2") >/dev/null
}

enter_own_cgroup() {
    local name=$1 state=$2 id controllers path mnt parent dir
    [[ $name =~ ^tapio-sdtest-[A-Za-z0-9_-]+$ ]] || fail "cgroup name must be tapio-sdtest-*: $name"
    mkdir -p "$state"
    : >"$state/cgroups"
    : >"$state/expected-cgroup"
    local lines=()
    mapfile -t lines </proc/self/cgroup
    ((${#lines[@]} > 0)) || fail "empty /proc/self/cgroup"
    for line in "${lines[@]}"; do
        IFS=: read -r id controllers path <<<"$line"
        mnt=$(mount_of "$id" "$controllers") || fail "no mount found for cgroup hierarchy '$line'"
        parent="$mnt${path%/}"
        dir="$parent/$name"
        [[ -d $parent ]] || fail "missing $parent"
        [[ ! -e $dir ]] || fail "$dir already exists (not fresh)"
        mkdir "$dir"
        echo "$dir" >>"$state/cgroups"
        if [[ -f $dir/cpuset.cpus && -z $(cat "$dir/cpuset.cpus") ]]; then
            cat "$parent/cpuset.cpus" >"$dir/cpuset.cpus"
            cat "$parent/cpuset.mems" >"$dir/cpuset.mems"
        fi
        echo "$id:$controllers:${path%/}/$name" >>"$state/expected-cgroup"
    done
    for dir in $(cat "$state/cgroups"); do
        echo $$ >"$dir/cgroup.procs"
    done
    cgroups_are $$ "$state/expected-cgroup" || {
        cat /proc/$$/cgroup >&2
        fail "this process is not in its own cgroup in every hierarchy"
    }
}

cmd=${1:-}
case "$cmd" in
start | check)
    name=$2 state=$3
    [[ -n ${XDG_RUNTIME_DIR:-} && -d $XDG_RUNTIME_DIR && $XDG_RUNTIME_DIR != /run/user/* ]] ||
        fail "XDG_RUNTIME_DIR must be a private existing directory"
    enter_own_cgroup "$name" "$state"
    export SANDBOX_EXPECTED="$state/expected-cgroup" SANDBOX_CMD=$cmd
    # shellcheck disable=SC2016
    exec unshare -m --propagation private bash -c '
        set -euo pipefail
        diff -q <(sort /proc/$$/cgroup) <(sort "$SANDBOX_EXPECTED") >/dev/null || {
            echo "sandbox.sh: REFUSING: cgroup changed before exec" >&2; exit 97; }
        mkdir -p /run/systemd
        mount -t tmpfs -o mode=755 tmpfs /run/systemd
        # systemd --user refuses to run unless the system "has been booted with systemd".
        mkdir /run/systemd/system
        if [[ $SANDBOX_CMD == check ]]; then
            cat /proc/$$/cgroup
            exit 0
        fi
        exec systemd --user --log-target=console --log-color=no
    '
    ;;
cleanup)
    state=$2
    [[ -f $state/cgroups ]] || exit 0
    mapfile -t dirs <"$state/cgroups"
    for dir in "${dirs[@]}"; do
        [[ $dir == /sys/fs/cgroup/* && ${dir##*/} == tapio-sdtest-* ]] || fail "not a sandbox cgroup: $dir"
    done
    for _ in $(seq 100); do
        pids=$(for dir in "${dirs[@]}"; do
            [[ -d $dir ]] && find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null
        done | sort -u)
        [[ -z $pids ]] && break
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null || true
        sleep 0.1
    done
    [[ -z ${pids:-} ]] || echo "sandbox.sh: processes still alive: $pids" >&2
    for dir in "${dirs[@]}"; do
        [[ -d $dir ]] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
        [[ -d $dir ]] && echo "sandbox.sh: cannot remove $dir" >&2
    done
    rm -f "$state/cgroups"
    exit 0
    ;;
*)
    echo "usage: sandbox.sh start|check NAME STATE_DIR | cleanup STATE_DIR" >&2
    exit 2
    ;;
esac
