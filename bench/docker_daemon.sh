#!/usr/bin/env bash
# A private Docker daemon for the benchmark: its own socket, data root, exec root, pid file,
# config file and containerd namespace, no bridge and no iptables, so it shares nothing with any
# other daemon on the machine and can have its build cache pruned at will.
#
#   docker_daemon.sh install       install Debian's docker.io when dockerd or /usr/bin/docker is missing
#   docker_daemon.sh start DIR     start a daemon whose state lives in DIR; prints DOCKER_HOST=...
#   docker_daemon.sh stop DIR      stop that daemon (only the one whose pid file is in DIR)
#   docker_daemon.sh status DIR    exit 0 when it is running
#
# DIR should have a short path: the daemon's and containerd's unix sockets live under it.
# Use the Debian client, /usr/bin/docker: a newer client elsewhere on PATH wants buildx for
# DOCKER_BUILDKIT=1 builds.
set -euo pipefail

DOCKERD=${DOCKERD:-dockerd}
DOCKER=${DOCKER:-/usr/bin/docker}
START_TIMEOUT=${START_TIMEOUT:-60}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}

die() { echo "docker_daemon.sh: $*" >&2; exit 1; }

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

cmd_install() {
    if command -v "$DOCKERD" >/dev/null 2>&1 && [ -x "$DOCKER" ]; then
        return 0
    fi
    local install=(apt-get install -y -o DPkg::Lock::Timeout=600 docker.io)
    # Without package lists, or with stale ones, the first attempt fails: refresh once and retry.
    if ! DEBIAN_FRONTEND=noninteractive sudo_if_needed "${install[@]}"; then
        sudo_if_needed apt-get update -o DPkg::Lock::Timeout=600
        DEBIAN_FRONTEND=noninteractive sudo_if_needed "${install[@]}"
    fi
    command -v "$DOCKERD" >/dev/null 2>&1 || die "docker.io installed but no dockerd on PATH"
}

paths() {
    [ -n "${1:-}" ] || die "missing DIR"
    mkdir -p "$1"
    DIR=$(cd "$1" && pwd)
    SOCK="$DIR/docker.sock"
    PIDFILE="$DIR/dockerd.pid"
    LOG="$DIR/dockerd.log"
}

# The pid in DIR's pid file, when that process is alive and is this DIR's dockerd.
our_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid=$(cat "$PIDFILE")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "unix://$SOCK" || return 1
    echo "$pid"
}

cmd_start() {
    paths "$1"
    if our_pid >/dev/null; then
        echo "DOCKER_HOST=unix://$SOCK"
        return 0
    fi
    [ ${#SOCK} -lt 90 ] || die "DIR path too long for unix sockets: $DIR"
    mkdir -p "$DIR/data" "$DIR/exec"
    # Its own config file: /etc/docker/daemon.json, if any, belongs to the machine's own daemon.
    # Its identity key goes in DIR too, not in /etc/docker.
    printf '{"deprecated-key-path": "%s/key.json"}\n' "$DIR" >"$DIR/daemon.json"
    rm -f "$SOCK" "$PIDFILE"
    local ns
    ns="studio-bench-$(printf %s "$DIR" | md5sum | cut -c1-12)"
    setsid "$DOCKERD" \
        --bridge=none --iptables=false \
        --data-root "$DIR/data" --exec-root "$DIR/exec" \
        --pidfile "$PIDFILE" -H "unix://$SOCK" \
        --config-file "$DIR/daemon.json" \
        --containerd-namespace "$ns" --containerd-plugins-namespace "$ns-plugins" \
        </dev/null >"$LOG" 2>&1 &
    local launched=$! waited=0
    until DOCKER_HOST="unix://$SOCK" "$DOCKER" version >/dev/null 2>&1; do
        if ! kill -0 "$launched" 2>/dev/null; then
            tail -n 30 "$LOG" >&2
            die "dockerd exited during start-up (log: $LOG)"
        fi
        if [ "$waited" -ge $((START_TIMEOUT * 10)) ]; then
            tail -n 30 "$LOG" >&2
            kill -TERM "$launched" 2>/dev/null || true
            die "dockerd did not answer within ${START_TIMEOUT}s (log: $LOG)"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    echo "DOCKER_HOST=unix://$SOCK"
}

cmd_stop() {
    paths "$1"
    local pid
    if pid=$(our_pid); then
        kill -TERM "$pid"
        local waited=0
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$waited" -ge $((STOP_TIMEOUT * 10)) ]; then
                echo "docker_daemon.sh: dockerd $pid still running after ${STOP_TIMEOUT}s, killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
    fi
    # dockerd stops the containerd it started; if it was killed, stop that containerd too.
    local cpidfile="$DIR/exec/containerd/containerd.pid"
    if [ -f "$cpidfile" ]; then
        local cpid
        cpid=$(cat "$cpidfile")
        if [ -n "$cpid" ] && [ -r "/proc/$cpid/cmdline" ] \
            && tr '\0' ' ' <"/proc/$cpid/cmdline" | grep -qF -- "$DIR/"; then
            kill -TERM "$cpid" 2>/dev/null || true
        fi
    fi
    # Leave no mount behind under DIR, so that the directory can be removed.
    local mnt
    awk -v dir="$DIR/" 'index($2, dir) == 1 { print $2 }' /proc/self/mounts | sort -r \
        | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

cmd_status() {
    paths "$1"
    our_pid >/dev/null
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start "${2:-}" ;;
    stop) cmd_stop "${2:-}" ;;
    status) cmd_status "${2:-}" ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
