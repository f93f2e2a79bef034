#!/usr/bin/env bash
# Session memory (issue 13 items 1 and 3): bytes per idle session and the gateway's idle RSS.
# A benchmark, not a test: it prints figures and exits 0 whether the targets are met or not.
#
#   bash bench/sessions.sh                 # release build; 100000 sessions per protocol
#   SMOKE=1 bash bench/sessions.sh         # debug build, 2000 sessions per protocol (bench/smoke)
#   NO_BUILD=1 bash bench/sessions.sh      # the binaries already built
#   PROD_BIN=/path/to/aisgate bash bench/sessions.sh   # idle RSS of this binary instead
#   IDLE_RUNS=5 SETTLE=5                   # idle-RSS starts per configuration, seconds to settle
#
# 1. In process (examples/session_memory): N sessions of each protocol (JIP/KAAS, NIA/SAML,
#    CAAIS/OIDC without and with an `upstream_bearer` app — `caais`, `caais-bearer` — made by
#    the providers' mapping code) in a memory store; bytes per session
#    from the store's accounting, a counting allocator and VmRSS; idle, in use, idle again.
# 2. Idle RSS after start, no traffic (VmRSS of /proc/PID/status): `aisgate demo` (gateway and
#    simulated IdPs in one process, once), then the production build (no `sim` feature: the
#    packaging profile, `cargo build --profile dist --bin aisgate`, target/dist/aisgate) run
#    as deploy/aisgate.service and the Dockerfile run it (MIMALLOC_ARENA_EAGER_COMMIT=0),
#    IDLE_RUNS fresh starts (default 5) of each of two configurations, min / median / max:
#    the demo's (4 providers: JIP/KAAS, NIA/SAML, CAAIS-like and EnviIAM-like OIDC; 2 apps)
#    and a production-shaped one (NIA + CAAIS, one app, JSON logs with access log, identity
#    token key from a file). The demo's simulators serve metadata and discovery; each start
#    is measured once ready (/readyz 200) and SETTLE seconds later. The first start of each
#    prints bench/rss_breakdown.py: resident kB per mapping and the executable's per ELF
#    section. SMOKE: the debug `sim` binary stands in for the production one, 2 starts.
# 3. The gateway's own accounting: 10 real JIP/KAAS logins through the demo's simulated IdP
#    (examples/login_load), each followed by one request; the gauges aisgate_active_sessions
#    and aisgate_session_store_bytes. Only 10: the demo's simulated IdP has one official and
#    `max_sessions_per_user` (default 20) ends older sessions of a user, so mass logins
#    through the demo cannot make mass sessions (part 1 does that through the store API).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${SMOKE:-0} == 1 ]]; then
  profile=debug build=() per_protocol=2000 settle=1 idle_runs=${IDLE_RUNS:-2}
else
  profile=release build=(--release) per_protocol=${PER_PROTOCOL:-100000} settle=${SETTLE:-5} idle_runs=${IDLE_RUNS:-5}
fi
# NO_BUILD=1: use the binaries already in target/ (e.g. after a long release build).
if [[ ${NO_BUILD:-0} != 1 ]]; then
  cargo build "${build[@]}" --locked --quiet --features sim --bin aisgate --example login_load --example session_memory
  # The production binary has its own profile (and directory): building it does not replace
  # the `sim` one above, which the demo needs.
  if [[ ${SMOKE:-0} != 1 && -z ${PROD_BIN:-} ]]; then
    cargo build --profile dist --locked --quiet --bin aisgate
  fi
fi
bin=target/$profile
if [[ ${SMOKE:-0} == 1 ]]; then prod_bin=${PROD_BIN:-$bin/aisgate}; else prod_bin=${PROD_BIN:-target/dist/aisgate}; fi
if [[ -n ${PROD_BIN:-} ]]; then what=$PROD_BIN; elif [[ ${SMOKE:-0} == 1 ]]; then what="the debug sim build (smoke)"; else what="the production build"; fi
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
# Production-shaped: the demo's NIA and CAAIS providers only, one app, JSON logs with the
# access log, the identity token's ES256 key from a file (not an ephemeral one).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/gateway/token-es256.pem" 2>/dev/null
python3 - "$tmp/gateway" <<'EOF'
import re, sys
d = sys.argv[1]
text = open(f"{d}/aisgate.toml").read()
head, *blocks = re.split(r"(?m)^(?=\[\[provider\]\]|\[\[app\]\]|\[authorizer\])", text)
providers = [b for b in blocks if b.startswith("[[provider]]") and re.search(r'(?m)^name = "(nia|caais)"$', b)]
apps = [b for b in blocks if b.startswith("[[app]]") and re.search(r'(?m)^name = "echo"$', b)]
if len(providers) != 2 or len(apps) != 1:
    sys.exit("the demo's configuration changed: no NIA + CAAIS providers and echo app to keep")
app = re.sub(r"(?m)^providers = .*$", 'providers = ["nia", "caais"]', apps[0])
head = re.sub(r"(?m)^access_log = false$", 'format = "json"\naccess_log = true', head)
head, n = re.subn(r"(?m)^dangerous\.ephemeral_key = true$", f'key_file = "{d}/token-es256.pem"', head)
if n != 1:
    sys.exit("the demo's configuration changed: no ephemeral identity-token key to replace")
open(f"{d}/production.toml", "w").write(head + "".join(providers) + app)
EOF
"$prod_bin" check --config "$tmp/gateway/production.toml" >/dev/null

idle_line() { echo "$(grep -E 'VmRSS|RssAnon|RssFile' "/proc/$1/status" | tr -s ' \t' ' ' | tr '\n' ' ')threads $(threads "$1")"; }
# start_idle BIN CONFIG [ENV...]: `BIN run` with CONFIG (ops on $ops2), ready and settled; its PID in $run.
# BIN's pages are dropped from the page cache first (posix_fadvise DONTNEED on that file only), so
# every start reads it from disk as after a boot: how many binary pages a start maps depends on
# how the cached ones got there (a just-written file, as the linker, cp or strip leave it, maps
# ~1 MiB more: bench/README.md, "Idle RSS of the production build").
start_idle() {
  local bin=$1 config=$2
  shift 2
  python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$bin"
  env "$@" "$bin" run --config "$config" >"$tmp/run.log" 2>&1 &
  run=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ops2/readyz" >/dev/null && break; sleep 0.1; done
  if ! curl -sf "http://127.0.0.1:$ops2/readyz" >/dev/null; then echo "aisgate run did not get ready:" >&2; cat "$tmp/run.log" >&2; exit 1; fi
  sleep "$settle"
}
stop_run() { kill "$run"; wait "$run" 2>/dev/null || true; run=; }
# idle_rss NAME CONFIG: $idle_runs fresh starts of the production binary as the systemd unit and
# the Dockerfile run it (mimalloc's first arena committed lazily); VmRSS min / median / max.
idle_rss() {
  local name=$1 config=$2 r kb=()
  echo
  echo "== idle: $prod_bin run, $name configuration, MIMALLOC_ARENA_EAGER_COMMIT=0, $idle_runs starts"
  for r in $(seq "$idle_runs"); do
    start_idle "$prod_bin" "$config" MIMALLOC_ARENA_EAGER_COMMIT=0
    echo "start $r: $(idle_line $run)"
    kb+=("$(rss_kb $run)")
    if [[ $r == 1 ]]; then python3 bench/rss_breakdown.py "$run"; fi
    stop_run
  done
  printf '%s\n' "${kb[@]}" | sort -n | awk -v name="$name" -v what="$what" '{ v[NR] = $1 } END {
    printf "RESULT: idle RSS of %s, %s configuration: min %.1f / median %.1f / max %.1f MiB (%d / %d / %d kB, %d starts; target: <= 20 MiB)\n",
      what, name, v[1] / 1024, v[int((NR + 1) / 2)] / 1024, v[NR] / 1024, v[1], v[int((NR + 1) / 2)], v[NR], NR }'
}
idle_rss demo "$tmp/gateway/aisgate.toml"
idle_rss production-shaped "$tmp/gateway/production.toml"
# For reference: mimalloc's default (the first arena committed eagerly), once.
start_idle "$prod_bin" "$tmp/gateway/aisgate.toml"
echo "mimalloc default (eager arena commit), demo configuration: $(idle_line $run)"
stop_run

echo
echo "== the gateway's accounting: 10 real JIP/KAAS logins, each followed by one request"
"$bin/examples/login_load" "http://localhost:$gw" 2 60 10 1
count=$(metric aisgate_active_sessions)
bytes=$(metric aisgate_session_store_bytes)
if [[ -z $count || $count == 0 || -z $bytes ]]; then echo "no sessions counted: measurement invalid" >&2; exit 1; fi
echo "sessions: $count; aisgate_session_store_bytes $bytes = $((bytes / count)) bytes per session (index and entry overhead included)"
