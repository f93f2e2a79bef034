#!/usr/bin/env bash
# Hostile-ACS benchmark (issue 15 item 1): CPU per request of a ~190 KB SAML Response with
# ~150 ds:Signature and EncryptedKey copies, and the latency of normal proxied requests on
# the same gateway while 50 such Responses arrive. The measuring program is the example
# examples/hostile_acs.rs (gateway, simulated NIA and upstream in one process, loopback).
#
# Usage: bash bench/hostile_acs.sh [CHECKOUT]
#   CHECKOUT: the source tree to measure (default: this repository). The example is copied
#   into it when missing, so an older commit can be measured the same way:
#     git worktree add /tmp/aisgate-old 43995d2 && bash bench/hostile_acs.sh /tmp/aisgate-old
# Environment:
#   SMOKE=1     a second or two: small Response, 4 in the burst, dev build (CI runs this)
#   PROFILE     cargo profile (default: release; dev with SMOKE=1)
#   BURST=50 SEQ_SECS=5 SIZE_KB=190 SIGNATURES=150   passed to the example
#   CARGO_TARGET_DIR   shared target dir (reuses compiled dependencies between checkouts)
# Exit status: 0 when the measurement ran (it prints figures, it does not judge them).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
checkout=$(cd "${1:-$repo}" && pwd)
SMOKE=${SMOKE:-0}
if [[ $SMOKE == 1 ]]; then
    PROFILE=${PROFILE:-dev}
else
    PROFILE=${PROFILE:-release}
fi

if [[ ! -f $checkout/examples/hostile_acs.rs ]]; then
    mkdir -p "$checkout/examples"
    cp "$repo/examples/hostile_acs.rs" "$checkout/examples/hostile_acs.rs"
    echo "hostile_acs.sh: copied examples/hostile_acs.rs into $checkout" >&2
fi

echo "hostile_acs.sh: measuring $(git -C "$checkout" rev-parse --short HEAD 2>/dev/null || echo "$checkout") (profile $PROFILE)" >&2
cd "$checkout"
SMOKE=$SMOKE cargo run --quiet --locked --profile "$PROFILE" --example hostile_acs
