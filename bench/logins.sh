#!/usr/bin/env bash
# Logins per second through the whole JIP/KAAS path: gateway redirect → simulated IdP →
# callback → authConfirmation over mutual TLS (loopback) → session → redirect.
# A benchmark, not a test. Usage: bash bench/logins.sh [concurrency] [seconds]
#   SMOKE=1 uses a debug build (bench/smoke runs it for a second so the script cannot rot).
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency=${1:-16}
seconds=${2:-10}
if [[ ${SMOKE:-0} == 1 ]]; then profile=debug build=(); else profile=release build=(--release); fi
cargo build "${build[@]}" --locked --quiet --features sim --bin aisgate --example login_load
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
gw=$(free_port); ops=$(free_port); login=$(free_port); ws=$(free_port)
target/$profile/aisgate demo --no-access-log --listen "127.0.0.1:$gw" --ops-listen "127.0.0.1:$ops" \
  --sim-login-listen "127.0.0.1:$login" --sim-ws-listen "127.0.0.1:$ws" >/dev/null 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null || true; wait $demo 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$ops/healthz" >/dev/null && break; sleep 0.1; done
echo "aisgate login benchmark ($(date -u +%FT%TZ), $(nproc) CPUs shared by the load tool, gateway and simulated IdP)"
target/$profile/examples/login_load "http://localhost:$gw" "$concurrency" "$seconds"
