#!/usr/bin/env bash
# Start a one-replica Swift on loopback for tests: the four stock servers, tempauth with
# Fernet tokens (no memcached), tempurl and s3api. Prints KEY=VALUE credentials on stdout
# and writes them to $STATE/env.sh. Everything else goes to stderr.
#
#   SWIFT_STATE_DIR  state (confs, rings, data, logs, pids); default /dev/shm/image_repo-swift-$USER
#   SWIFT_VENV       Swift's own venv, created on first use; default <repo>/.swift-venv
#   SWIFT_PROXY_PORT SWIFT_OBJECT_PORT SWIFT_CONTAINER_PORT SWIFT_ACCOUNT_PORT (8080 6010 6011 6012)
#   SWIFT_MEMCACHE   host:port of a memcached to use (optional; 2-3x faster requests)
#   SWIFT_ENCRYPTION 1: at-rest encryption (keymaster + encryption), so s3api takes SSE-S3
#                    (x-amz-server-side-encryption: AES256; never SSE-KMS). Off by default:
#                    it makes every listing several times slower (each entry is decrypted).
#   SWIFT_START_TIMEOUT  seconds to wait for readiness (30)
#   SWIFT_PYTHON     interpreter the venv is made from (python3); SWIFT_PIP_ARGS: extra pip args
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SWIFT_VENV=$(realpath -m "${SWIFT_VENV:-$SWIFT_REPO/.swift-venv}")
PROXY_PORT=${SWIFT_PROXY_PORT:-8080}
OBJECT_PORT=${SWIFT_OBJECT_PORT:-6010}
CONTAINER_PORT=${SWIFT_CONTAINER_PORT:-6011}
ACCOUNT_PORT=${SWIFT_ACCOUNT_PORT:-6012}
TIMEOUT=${SWIFT_START_TIMEOUT:-30}
CONSTRAINTS=$SWIFT_HERE/swift-constraints.txt
ETC=$STATE/etc RUN=$STATE/run LOG=$STATE/log DEVICES=$STATE/srv/node
AUTH_USER=test:tester AUTH_KEY=testing

log() { echo "start-swift: $*" >&2; }

# --- Swift's own venv: it pins eventlet, greenlet, lxml... which must not meet the app's.
ensure_venv() {
    local want have
    want=$(sha256sum "$CONSTRAINTS" | cut -c1-64)
    mkdir -p "$(dirname "$SWIFT_VENV")"
    # Several pytest-xdist workers may start at once: one builds, the others wait.
    # The lock lives outside the repo and survives the venv's rm -rf.
    exec 9>"${TMPDIR:-/tmp}/image_repo-swift-venv-$(echo "$SWIFT_VENV" | sha256sum | cut -c1-16).lock"
    flock 9
    have=$(cat "$SWIFT_VENV/.constraints-sha256" 2>/dev/null || true)
    if [[ "$have" != "$want" || ! -x "$SWIFT_VENV/bin/swift-proxy-server" ]]; then
        log "creating $SWIFT_VENV (first use: about 10 s)"
        rm -rf "$SWIFT_VENV"
        "${SWIFT_PYTHON:-python3}" -m venv "$SWIFT_VENV"
        # shellcheck disable=SC2086  # SWIFT_PIP_ARGS is a list of words
        "$SWIFT_VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
            -c "$CONSTRAINTS" ${SWIFT_PIP_ARGS:-} swift python-swiftclient >&2
        echo "$want" >"$SWIFT_VENV/.constraints-sha256"
    fi
    flock -u 9
    exec 9>&-
}

# --- State dir: confs are rewritten every start; rings, hash secrets, key and data are kept.
write_confs() {
    mkdir -p "$ETC" "$RUN" "$LOG" "$DEVICES/d1"
    touch "$STATE_MARK"
    local py=$SWIFT_VENV/bin/python
    if [[ ! -s "$ETC/swift.conf" ]]; then
        local prefix suffix
        prefix=$("$py" -c 'import secrets; print(secrets.token_hex(8))')
        suffix=$("$py" -c 'import secrets; print(secrets.token_hex(8))')
        cat >"$ETC/swift.conf" <<CONF
[swift-hash]
swift_hash_path_prefix = $prefix
swift_hash_path_suffix = $suffix

[storage-policy:0]
name = Policy-0
default = yes
CONF
    fi
    if [[ ! -s "$ETC/fernet.key" ]]; then
        "$py" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' >"$ETC/fernet.key"
    fi
    local encryption="" encryption_section=""
    if [[ "${SWIFT_ENCRYPTION:-0}" == 1 ]]; then
        if [[ ! -s "$ETC/encryption.key" ]]; then  # the keymaster's root secret: 32 random bytes, base64
            "$py" -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())' >"$ETC/encryption.key"
        fi
        # Swift wants them last, just before the final proxy-logging.
        encryption="keymaster encryption "
        encryption_section="[filter:keymaster]"$'\n'"use = egg:swift#keymaster"$'\n'"encryption_root_secret = $(<"$ETC/encryption.key")"
        encryption_section+=$'\n'"[filter:encryption]"$'\n'"use = egg:swift#encryption"
    fi

    local svc port
    for svc in account container object; do
        port_var=${svc^^}_PORT
        port=${!port_var}
        { default_section "$svc" "$port"
          cat <<CONF
[pipeline:main]
pipeline = healthcheck $svc-server

[app:$svc-server]
use = egg:swift#$svc

[filter:healthcheck]
use = egg:swift#healthcheck
CONF
        } >"$ETC/$svc-server.conf"
    done

    local cache_filter="" cache_section="" fernet=""
    if [[ -n "${SWIFT_MEMCACHE:-}" ]]; then
        cache_filter="cache "
        cache_section=$'[filter:cache]\nuse = egg:swift#memcache\nmemcache_servers = '"$SWIFT_MEMCACHE"
    else
        # No memcached: tempauth issues Fernet tokens, which need no token store (gotcha 2).
        fernet="fernet_key_k1 = $(<"$ETC/fernet.key")"$'\n'"active_fernet_key_id = k1"
    fi
    { default_section proxy "$PROXY_PORT"
      cat <<CONF
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging ${cache_filter}listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes symlink ${encryption}proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
# The account is created on its first container PUT.
account_autocreate = true
allow_account_management = true

[filter:tempurl]
use = egg:swift#tempurl
# sha1 keeps the 2016 server's 40-hex URLs working; it is deprecated, so pin it explicitly.
allowed_digests = sha1 sha256 sha512

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
# .admin (account owner) may set X-Account-Meta-Temp-URL-Key; tester3 may not.
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
user_test_tester3 = testing3
$fernet

$cache_section

$encryption_section

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
# Honour a client's X-Timestamp (as for container sync), so a test can make a write that
# is newer than the next one: the race where two PUTs of a key cross, made deterministic.
shunt_inbound_x_timestamp = false
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
[filter:symlink]
use = egg:swift#symlink
CONF
    } >"$ETC/proxy-server.conf"

    "$py" "$SWIFT_HERE/swift_setup.py" rings "$ETC" "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT"
}

default_section() {  # $1 service, $2 port
    cat <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
# Serve in the process itself: no fork, so no privilege drop to a 'swift' user.
workers = 0
user = $(id -un)
swift_dir = $ETC
devices = $DEVICES
mount_check = false
disable_fallocate = true
fallocate_reserve = 0
log_name = $1-server
log_level = INFO
# A taken port should fail the start in seconds (the fixture retries with other ports), not 30.
bind_timeout = 2

CONF
}

start_servers() {
    local svc pid
    for svc in "${SERVICES[@]}"; do
        # setsid: a Ctrl-C in the caller must not half-kill Swift; only stop-swift.sh stops it.
        # -v adds a stderr log handler: there is no /dev/log here, so syslog output is lost.
        setsid "$SWIFT_VENV/bin/swift-$svc-server" "$ETC/$svc-server.conf" -v \
            </dev/null >>"$LOG/$svc.log" 2>&1 &
        pid=$!
        echo "$pid" >"$RUN/$svc.pid"
    done
}

dump_logs() {
    local f
    for f in "$LOG"/*.log; do
        [[ -e "$f" ]] || continue
        echo "----- $f (last 40 lines)" >&2
        tail -n 40 "$f" >&2
    done
}

credentials() {  # $1 storage URL
    cat <<ENV
SWIFT_AUTH_URL=http://127.0.0.1:$PROXY_PORT/auth/v1.0
SWIFT_USER=$AUTH_USER
SWIFT_KEY=$AUTH_KEY
SWIFT_STORAGE_URL=$1
SWIFT_ACCOUNT=${1##*/}
SWIFT_S3_ENDPOINT=http://127.0.0.1:$PROXY_PORT
SWIFT_S3_ACCESS_KEY=$AUTH_USER
SWIFT_S3_SECRET_KEY=$AUTH_KEY
SWIFT_S3_REGION=us-east-1
SWIFT_STATE_DIR=$STATE
SWIFT_VENV=$SWIFT_VENV
ENV
}

main() {
    local t0=$EPOCHREALTIME ready storage_url
    ensure_venv
    # Restart cleanly if a previous run left servers in this state dir; the data stays.
    "$SWIFT_HERE/stop-swift.sh"
    write_confs
    start_servers
    if ! ready=$("$SWIFT_VENV/bin/python" "$SWIFT_HERE/swift_setup.py" wait "$STATE" \
            "http://127.0.0.1:$PROXY_PORT" "$AUTH_USER" "$AUTH_KEY" "$TIMEOUT" \
            "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" "$PROXY_PORT"); then
        log "Swift did not start; logs follow"
        dump_logs
        "$SWIFT_HERE/stop-swift.sh" || true
        exit 1
    fi
    storage_url=$("$SWIFT_VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["storage_url"])' <<<"$ready")
    credentials "$storage_url" | sed "s/^\([A-Z0-9_]*\)=\(.*\)$/export \1='\2'/" >"$STATE/env.sh"
    credentials "$storage_url"
    log "ready in $(awk "BEGIN {printf \"%.2f\", $EPOCHREALTIME - $t0}") s at http://127.0.0.1:$PROXY_PORT (state $STATE)"
}

main "$@"
