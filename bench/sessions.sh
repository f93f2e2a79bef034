#!/usr/bin/env bash
# Session memory (issue 13 items 1 and 3): bytes per idle session and the gateway's idle RSS.
# A benchmark, not a test: it prints figures and exits 0 whether the targets are met or not.
#
#   bash bench/sessions.sh                 # release build; 100000 sessions per protocol
#   SMOKE=1 bash bench/sessions.sh         # debug build, 2000 sessions per protocol (bench/smoke)
#   NO_BUILD=1 bash bench/sessions.sh      # the binaries already built
#   PROD_BIN=/path/to/aisgate bash bench/sessions.sh   # also: idle RSS of a production build (no `sim`)
#
# 1. In process (examples/session_memory): N sessions of each protocol (JIP/KAAS, NIA/SAML,
#    CAAIS/OIDC without and with an `upstream_bearer` app — `caais`, `caais-bearer` — made by
#    the providers' mapping code) in a memory store; bytes per session
#    from the store's accounting, a counting allocator and VmRSS; idle, in use, idle again.
# 2. Idle RSS after start, no traffic (VmRSS of /proc/PID/status): `aisgate demo` (gateway and
#    simulated IdPs in one process), and `aisgate run` alone with the demo's configuration (4
#    providers: JIP/KAAS, NIA/SAML, CAAIS-like and EnviIAM-like OIDC; 2 apps; the demo's
#    simulators serve its metadata and discovery).
# 3. The gateway's own accounting: 10 real JIP/KAAS logins through the demo's simulated IdP
#    (examples/login_load), each followed by one request; the gauges aisgate_active_sessions
#    and aisgate_session_store_bytes. Only 10: the demo's simulated IdP has one official and
#    `max_sessions_per_user` (default 20) ends older sessions of a user, so mass logins
#    through the demo cannot make mass sessions (part 1 does that through the store API).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${SMOKE:-0} == 1 ]]; then
  profile=debug build=() per_protocol=2000 settle=1
else
  profile=release build=(--release) per_protocol=${PER_PROTOCOL:-100000} settle=${SETTLE:-5}
fi
# NO_BUILD=1: use the binaries already in target/ (e.g. after a long release build).
if [[ ${NO_BUILD:-0} != 1 ]]; then
  cargo build "${build[@]}" --locked --quiet --features sim --bin aisgate --example login_load --example session_memory
fi
bin=target/$profile
echo "aisgate session memory ($(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $profile build)"

echo
echo "== in process: $per_protocol sessions per protocol (bytes per session)"
for protocol in kaas nia caais caais-bearer; do
  "$bin/examples/session_memory" "$protocol" "$per_protocol" | { [[ $protocol == kaas ]] && cat || tail -n +2; }
done
echo
echo "== breakdown of one session (bytes; the store's own bytes per session measured with $per_protocol bare sessions)"
"$bin/examples/session_memory" all "$per_protocol" breakdown

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
metric() { curl -sf "http://127.0.0.1:$ops/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

tmp=$(mktemp -d)
gw=$(free_port); ops=$(free_port); login=$(free_port); ws=$(free_port)
TMPDIR=$tmp "$bin/aisgate" demo --no-access-log --listen "127.0.0.1:$gw" --ops-listen "127.0.0.1:$ops" \
  --sim-login-listen "127.0.0.1:$login" --sim-ws-listen "127.0.0.1:$ws" >/dev/null 2>&1 &
demo=$!
run=
stop() {
  for pid in $run $demo; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap stop EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ops/healthz" >/dev/null && break; sleep 0.1; done
sleep "$settle"
idle_kb=$(rss_kb $demo)
echo
echo "== idle: aisgate demo (gateway + simulated IdPs, one process), no traffic"
echo "idle RSS: $((idle_kb / 1024)) MiB ($idle_kb kB), threads: $(threads $demo)"

# The gateway alone: the demo's configuration (keys, PKI, providers) on other ports.
stack=$(ls -d "$tmp"/aisgate-*)
cp -rp "$stack" "$tmp/gateway"
gw2=$(free_port); ops2=$(free_port)
sed -i -e "s|$stack|$tmp/gateway|g" -e "s|^listen = \[.*\]|listen = [\"127.0.0.1:$gw2\"]|" \
  -e "s|^public_base_url = .*|public_base_url = \"http://localhost:$gw2\"|" \
  -e "/^\[ops\]/,/^\[/ s|^listen = .*|listen = \"127.0.0.1:$ops2\"|" "$tmp/gateway/aisgate.toml"
"$bin/aisgate" run --config "$tmp/gateway/aisgate.toml" >"$tmp/run.log" 2>&1 &
run=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ops2/readyz" >/dev/null && break; sleep 0.1; done
if ! curl -sf "http://127.0.0.1:$ops2/readyz" >/dev/null; then echo "aisgate run did not get ready:" >&2; cat "$tmp/run.log" >&2; exit 1; fi
sleep "$settle"
run_kb=$(rss_kb $run)
idle_line() { echo "$(grep -E 'VmRSS|RssAnon|RssFile' "/proc/$1/status" | tr -s ' \t' ' ' | tr '\n' ' ')threads $(threads "$1")"; }
echo "RESULT: idle RSS of aisgate run (demo configuration, ready): $((run_kb / 1024)) MiB ($run_kb kB; $(awk '/^RssAnon:/ {print $2}' /proc/$run/status) kB anonymous, $(awk '/^RssFile:/ {print $2}' /proc/$run/status) kB file-backed), threads: $(threads $run) (target: <= 20 MiB)"
# restart_lazy BIN: `BIN run` in place of the running one, with mimalloc's first arena committed
# lazily (as deploy/aisgate.service and the Dockerfile run it), ready and settled.
restart_lazy() {
  kill "$run"; wait "$run" 2>/dev/null || true
  MIMALLOC_ARENA_EAGER_COMMIT=0 "$1" run --config "$tmp/gateway/aisgate.toml" >"$tmp/run.log" 2>&1 &
  run=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ops2/readyz" >/dev/null && break; sleep 0.1; done
  sleep "$settle"
}
restart_lazy "$bin/aisgate"
echo "RESULT: idle with MIMALLOC_ARENA_EAGER_COMMIT=0 (the systemd unit's setting): $(idle_line $run)"
# The production build (no simulators: `cargo build --release --bin aisgate`, copied aside) with the
# same configuration and setting: fewer binary pages than the sim-featured build above.
if [[ -n ${PROD_BIN:-} ]]; then
  restart_lazy "$PROD_BIN"
  echo "RESULT: idle, production build $PROD_BIN, MIMALLOC_ARENA_EAGER_COMMIT=0: $(idle_line $run)"
fi

echo
echo "== the gateway's accounting: 10 real JIP/KAAS logins, each followed by one request"
"$bin/examples/login_load" "http://localhost:$gw" 2 60 10 1
count=$(metric aisgate_active_sessions)
bytes=$(metric aisgate_session_store_bytes)
if [[ -z $count || $count == 0 || -z $bytes ]]; then echo "no sessions counted: measurement invalid" >&2; exit 1; fi
echo "sessions: $count; aisgate_session_store_bytes $bytes = $((bytes / count)) bytes per session (index and entry overhead included)"
