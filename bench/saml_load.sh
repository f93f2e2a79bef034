#!/usr/bin/env bash
# Proxied-request latency during a SAML login load (issue 13 item 4; target: proxied p99 during
# 500 SAML logins/s <= 2x its idle value). The measuring program is examples/saml_load.rs: the
# gateway (real listen::serve, login CPU pool), a simulated NIA and the two clients in one
# process on loopback. Genuine logins are prepared untimed, then POSTed to the ACS open loop at
# RATE/s while a probe sends authenticated `GET /` at PROBE_RATE/s; see bench/README.md.
#
# This script adds the upstream and an idle reference: nginx (bench/nginx-upstream.conf.template)
# is the upstream of the gateway, and a second nginx (bench/nginx-proxy.conf.template) proxies
# to it, so the probe measures nginx's idle p99 in the same run. Without nginx the example's
# built-in echo upstream is used and the reference is skipped.
#
# Usage: bash bench/saml_load.sh
# Environment:
#   SMOKE=1       a second or two: 20 logins/s, dev build (bench/smoke runs this)
#   PROFILE       cargo profile (default: release; dev with SMOKE=1)
#   RATES="500"   logins/s, a list measured in turn (e.g. RATES="500 300 200")
#   DURATION=8 IDLE_SECS=5 PROBE_RATE=200 LOGIN_WORKERS LOGIN_QUEUE   passed to the example
#   NGINX=0       skip nginx (the built-in echo upstream, no reference)
# Prints one `RESULT saml_load: …` line per rate. Exit status 0 when the measurement ran (the
# PASS/FAIL in the result line is informational).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
PATH="$PATH:/usr/sbin:/sbin"
SMOKE=${SMOKE:-0}
if [[ $SMOKE == 1 ]]; then
    PROFILE=${PROFILE:-dev}
else
    PROFILE=${PROFILE:-release}
fi
NGINX=${NGINX:-1}

log() { printf '%s\n' "$*" >&2; }
die() {
    log "saml_load.sh: ERROR: $*"
    exit 1
}

# shellcheck source=bench/lib.sh
source "$here/lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aisgate-saml-load.XXXXXX")
pids=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pids 5 "${pids[@]}"
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts nginx with `template` rendered into the temp dir; waits until `url` answers.
start_nginx() {
    local name=$1 template=$2 url=$3 i
    mkdir -p "$tmp/$name-tmp"
    sed -e "s|@DIR@|$tmp|g" -e "s|@UPSTREAM_PORT@|$p_up|g" -e "s|@STATUS_PORT@|$p_status|g" \
        -e "s|@PROXY_PORT@|$p_proxy|g" "$template" >"$tmp/$name.conf"
    nginx -p "$tmp" -e "$tmp/$name-error.log" -c "$tmp/$name.conf" -g 'daemon off;' >"$tmp/$name.out" 2>&1 &
    pids+=($!)
    for ((i = 0; i < 100; i++)); do
        curl -s -o /dev/null --max-time 1 "$url" && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    cat "$tmp/$name.out" "$tmp/$name-error.log" >&2 2>/dev/null || true
    die "nginx ($name) did not start"
}

if [[ $NGINX == 1 ]] && command -v nginx >/dev/null && command -v curl >/dev/null && command -v python3 >/dev/null; then
    read -r p_up p_status p_proxy < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
')
    start_nginx upstream "$here/nginx-upstream.conf.template" "http://127.0.0.1:$p_up/"
    start_nginx proxy "$here/nginx-proxy.conf.template" "http://127.0.0.1:$p_proxy/"
    export UPSTREAM="http://127.0.0.1:$p_up" NGINX_URL="http://127.0.0.1:$p_proxy/"
    log "saml_load.sh: nginx upstream on :$p_up, nginx proxy_pass reference on :$p_proxy"
else
    log "saml_load.sh: no nginx (or NGINX=0): built-in echo upstream, no nginx reference"
fi

log "saml_load.sh: measuring $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "$repo") (profile $PROFILE)"
cd "$repo"
SMOKE=$SMOKE cargo run --quiet --locked --profile "$PROFILE" --example saml_load
