#!/usr/bin/env bash
# API-mode SOAP benchmark (issue 11): in one run of `aisgate demo` on loopback,
#   1. authenticated SOAP calls/s through the API app /isoh/ with a cached bearer token of
#      the simulated EnviIAM (token and IČO decision both cached: no IdP or authorizer call),
#   2. the browser-session path: the same SOAP POST through the echo app with a session
#      cookie (an EnviIAM login) — the gateway's cheapest authenticated path, for comparison,
#   3. the cost of a cache miss, one request at a time (curl time_total, median of N):
#      a cached call, a new token (profile call at the IdP), a new IČO (authorizer call).
# Both loads go to in-process demo upstreams (the SOAP echo service and the echo app), so the
# comparison is the gateway's own work. Prints req/s, p50 and p99, and the medians.
#
# Usage: bash bench/soap.sh [AISGATE_BINARY]   (default: cargo build --release --features sim)
# Tunables: THREADS=2 CONNECTIONS=32 DURATION=10 WARMUP=2 N=20; SMOKE=1 runs 1 s each, N=3
# (bench/smoke). KEEP_TMP=1 keeps the temp dir.
# Needs: wrk, curl, openssl, python3.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
if [[ ${SMOKE:-0} == 1 ]]; then
    DURATION=1 WARMUP=1 N=3 CONNECTIONS=${CONNECTIONS:-8}
fi
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
N=${N:-20}
KEEP_TMP=${KEEP_TMP:-0}

log() { printf '%s\n' "$*" >&2; }
die() {
    log "soap.sh: ERROR: $*"
    exit 1
}
for tool in wrk curl openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "missing $tool (apt-get install -y wrk curl openssl python3)"
done

aisgate_bin=${1:-${AISGATE_BIN:-}}
if [[ -z $aisgate_bin ]]; then
    log "building aisgate: cargo build --release --features sim"
    cargo build --release --features sim --manifest-path "$repo/Cargo.toml" >&2 || die "cargo build failed"
    aisgate_bin="${CARGO_TARGET_DIR:-$repo/target}/release/aisgate"
fi
[[ -x $aisgate_bin ]] || die "aisgate binary '$aisgate_bin' is not executable"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aisgate-soap-bench.XXXXXX")
demo_pid=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $demo_pid ]]; then
        kill -TERM "$demo_pid" 2>/dev/null || true
        wait "$demo_pid" 2>/dev/null || true
    fi
    [[ $KEEP_TMP == 1 ]] && log "temp dir kept: $tmp" || rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r p_gw p_ops p_login p_ws < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')

TMPDIR="$tmp" "$aisgate_bin" demo --listen "127.0.0.1:$p_gw" --ops-listen "127.0.0.1:$p_ops" \
    --sim-login-listen "127.0.0.1:$p_login" --sim-ws-listen "127.0.0.1:$p_ws" --no-access-log >"$tmp/demo.out" 2>&1 &
demo_pid=$!
for ((i = 0; i < 200; i++)); do
    grep -q '^Call the SOAP app' "$tmp/demo.out" 2>/dev/null &&
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p_ops/readyz") == 200 ]] && break
    kill -0 "$demo_pid" 2>/dev/null || die "the demo exited: $(tail -n 20 "$tmp/demo.out")"
    sleep 0.1
done
gw="http://localhost:$p_gw"
resolve=(--resolve "localhost:$p_gw:127.0.0.1")
idp=$(sed -n 's/^ *Simulated EnviIAM: \([^ ]*\).*/\1/p' "$tmp/demo.out")
[[ -n $idp ]] || die "no EnviIAM simulator in the demo banner"

# A fresh access token of the simulated EnviIAM: authorization code + PKCE, as the demo prints.
token() {
    local v=bench-pkce-verifier-0123456789-0123456789-0123456789 c code redirect="$gw/.aisgate/callback/enviam"
    c=$(printf %s "$v" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=')
    code=$(curl -s -o /dev/null -w '%{redirect_url}' \
        "$idp/oauth2/authorize?response_type=code&client_id=isoh&scope=openid&state=s&code_challenge_method=S256&code_challenge=$c&redirect_uri=$redirect" |
        sed 's/.*[?&]code=\([^&]*\).*/\1/')
    curl -s "$idp/oauth2/token" -d grant_type=authorization_code -d client_id=isoh -d "code=$code" \
        -d "code_verifier=$v" --data-urlencode "redirect_uri=$redirect" | sed 's/.*"access_token":"\([^"]*\)".*/\1/'
}
envelope() {
    printf '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><PoskytniData xmlns="urn:aisgate:isoh"><Zadost><Ico>%s</Ico><Rok>2024</Rok></Zadost></PoskytniData></s:Body></s:Envelope>' "$1"
}
action='"urn:aisgate:isoh/IHlaseni/PoskytniData"'
# soap_call TOKEN ICO -> "<http code> <seconds>"
soap_call() {
    curl -s -o "$tmp/last.xml" -w '%{http_code} %{time_total}\n' "${resolve[@]}" "$gw/isoh/Hlaseni.svc" \
        -H "Authorization: Bearer $1" -H 'Content-Type: text/xml; charset=utf-8' -H "SOAPAction: $action" \
        --data "$(envelope "$2")"
}

bearer=$(token)
[[ -n $bearer ]] || die "no access token from the simulated EnviIAM"
read -r code _ < <(soap_call "$bearer" 7064)
[[ $code == 200 ]] && grep -q 'x-auth-subject-ico">00007064' "$tmp/last.xml" ||
    die "the SOAP app answered $code: $(head -c 400 "$tmp/last.xml")"

# Browser session by an EnviIAM login (redirects followed with a cookie jar).
curl -s -L -o /dev/null "${resolve[@]}" -c "$tmp/jar" -b "$tmp/jar" -H 'Accept: text/html' \
    "$gw/.aisgate/login?provider=enviam&return=%2F"
session=$(awk '$6 == "aisgate_session" { print $7 }' "$tmp/jar")
[[ -n $session ]] || die "no session cookie from the EnviIAM login"

lua() { # lua FILE HEADER-LINES...
    {
        printf 'wrk.method = "POST"\nwrk.body = [[%s]]\n' "$(envelope 7064)"
        printf 'wrk.headers["Content-Type"] = "text/xml; charset=utf-8"\n'
        printf 'wrk.headers["SOAPAction"] = [[%s]]\n' "$action"
        printf 'wrk.headers["Host"] = "localhost:%s"\n' "$p_gw"
        shift
        for h in "$@"; do printf '%s\n' "$h"; done
    } >"$1"
}
lua "$tmp/bearer.lua" "wrk.headers[\"Authorization\"] = \"Bearer $bearer\""
lua "$tmp/session.lua" "wrk.headers[\"Cookie\"] = \"aisgate_session=$session\""

to_ms() {
    awk -v v="$1" 'BEGIN { match(v, /^[0-9.]+/); n = substr(v, 1, RLENGTH); u = substr(v, RLENGTH + 1)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : 0; printf "%.3f", n * f }'
}
measure() { # measure NAME PATH LUA
    local out="$tmp/$1.wrk"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$3" "http://127.0.0.1:$p_gw$2" >/dev/null 2>&1
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$3" "http://127.0.0.1:$p_gw$2" >"$out" 2>&1 ||
        die "$1: wrk failed: $(cat "$out")"
    if grep -q 'Non-2xx' "$out"; then die "$1: non-2xx answers under load: $(cat "$out")"; fi
    printf '%-28s %10s req/s   p50 %8s ms   p99 %8s ms\n' "$1" "$(awk '/^Requests\/sec/ { print $2 }' "$out")" \
        "$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")" "$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
}
median_ms() { sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] * 1000 }'; }

echo "== aisgate SOAP API benchmark: $THREADS threads, $CONNECTIONS connections, ${DURATION}s each (loopback)"
echo
measure "soap, cached bearer token" /isoh/Hlaseni.svc "$tmp/bearer.lua"
measure "browser session (echo app)" / "$tmp/session.lua"

cached=() new_token=() new_ico=()
for ((i = 0; i < N; i++)); do
    read -r code t < <(soap_call "$bearer" 7064)
    [[ $code == 200 ]] || die "cached call: HTTP $code"
    cached+=("$t")
    fresh=$(token)
    read -r code t < <(soap_call "$fresh" 7064)
    [[ $code == 200 ]] || die "new token: HTTP $code"
    new_token+=("$t")
    # An IČO never asked before: the authorizer is called (and denies it: 403).
    read -r code t < <(soap_call "$bearer" $((10000000 + i)))
    [[ $code == 403 ]] || die "new IČO: HTTP $code (expected the authorizer's denial)"
    new_ico+=("$t")
done
echo "== one request at a time, median of $N (curl time_total)"
printf '%-28s %8s ms\n' "cached token + IČO" "$(printf '%s\n' "${cached[@]}" | median_ms)"
printf '%-28s %8s ms\n' "new token (profile call)" "$(printf '%s\n' "${new_token[@]}" | median_ms)"
printf '%-28s %8s ms\n' "new IČO (authorizer call)" "$(printf '%s\n' "${new_ico[@]}" | median_ms)"
