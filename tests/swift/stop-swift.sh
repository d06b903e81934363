#!/usr/bin/env bash
# Stop the Swift that start-swift.sh started in $SWIFT_STATE_DIR; SWIFT_WIPE=1 also deletes its state.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[[ -d "$STATE" ]] || exit 0

# Only PIDs from our pid files whose command line names our state dir: a stale pid file
# must never make us kill an unrelated process that reused the number.
ours() {
    local pid=$1
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$STATE/"
}

pids=()
for pidfile in "$STATE"/run/*.pid; do
    [[ -e "$pidfile" ]] || continue
    pid=$(<"$pidfile")
    if [[ "$pid" =~ ^[0-9]+$ ]] && ours "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
    fi
    rm -f "$pidfile"
done

# SIGTERM stops a server in a few ms; SIGKILL only what is still there after 5 s.
for _ in $(seq 50); do
    alive=()
    for pid in "${pids[@]+"${pids[@]}"}"; do
        if ours "$pid"; then alive+=("$pid"); fi
    done
    [[ ${#alive[@]} -eq 0 ]] && break
    sleep 0.1
done
for pid in "${alive[@]+"${alive[@]}"}"; do
    if ours "$pid"; then
        echo "stop-swift: pid $pid ignored SIGTERM, killing" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
done

if [[ "${SWIFT_WIPE:-0}" == 1 ]]; then
    if [[ -e "$STATE_MARK" || -z "$(ls -A "$STATE")" ]]; then
        rm -rf "$STATE"
    else
        echo "stop-swift: $STATE is not a Swift state dir of ours; not wiping it" >&2
        exit 1
    fi
fi
