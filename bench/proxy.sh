#!/usr/bin/env bash
# Proxy hot-path benchmark: an authenticated GET load (wrk) against
#   1. the upstream directly,
#   2. nginx proxy_pass to it,
#   3. aisgate (demo mode, simulated JIP/KAAS login) to it,
# in one run on this machine, loopback only. Prints req/s, p50 and p99 for each, the
# ratios against nginx, and a PASS/FAIL line for the targets
#   aisgate req/s >= 0.95 x nginx   and   aisgate p99 <= 1.1 x nginx.
# PASS/FAIL is informational: the exit status is 0 unless something failed to run.
#
# Usage: bash bench/proxy.sh [AISGATE_BINARY]
#   The binary may also be given as AISGATE_BIN=...; with neither, the script runs
#   `cargo build --release --features sim` (the demo needs the simulators) and uses the result.
# Tunables (environment): THREADS=2 CONNECTIONS=64 DURATION=15 WARMUP=3 ROUNDS=1
#   ROUNDS>1 repeats the three measurements and reports the median per target.
#   KEEP_TMP=1 keeps the temp dir (configs, logs, raw wrk output) for inspection;
#   VERBOSE=1 prints the raw wrk output of every measured run.
#   AISGATE_DEMO_ARGS="--session-store redis://127.0.0.1:6379" runs the gateway with the
#   Redis session store (compare with a run without it).
#   REDIS_URL=redis://127.0.0.1:6379 adds a fourth target in the same run: a second aisgate
#   (same binary, same demo) with --session-store REDIS_URL, measured in every round right
#   after the memory-store aisgate, and reports its throughput against it (target >= 0.85)
#   in the RESULT line, with the Redis commands per proxied request (INFO commandstats
#   around each measured run; needs redis-cli; other clients of that Redis would count too).
#   REDIS=1 does the same against a private redis-server the script starts on a free
#   loopback port (no persistence) and stops at the end: the unattended way to run it.
# Needs: wrk, nginx, curl, python3 (Debian: apt-get install -y wrk nginx curl python3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
PATH="$PATH:/usr/sbin:/sbin"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-1}
KEEP_TMP=${KEEP_TMP:-0}
VERBOSE=${VERBOSE:-0}

log() { printf '%s\n' "$*" >&2; }
die() {
    log "proxy.sh: ERROR: $*"
    exit 1
}

for v in THREADS CONNECTIONS DURATION WARMUP ROUNDS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
((DURATION <= 600 && WARMUP <= 60 && ROUNDS <= 10)) || die "DURATION <= 600, WARMUP <= 60 and ROUNDS <= 10, please"

missing=()
tools=(wrk nginx curl python3)
if [[ ${REDIS:-0} == 1 ]]; then tools+=(redis-server redis-cli); fi
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    log "proxy.sh: missing: ${missing[*]}"
    log "install them with:  sudo apt-get install -y wrk nginx curl python3$( ((${REDIS:-0} == 1)) && echo ' redis-server')"
    exit 2
fi

# ---------------------------------------------------------------------------------------
# Temp dir and cleanup: every process we start is recorded in `pids` and stopped on exit.
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
aisgate_bin=$(aisgate_binary release "${1:-${AISGATE_BIN:-}}")
setup_tmp aisgate-bench

read -r p_up p_status p_nginx p_gw p_ops p_login p_ws r_gw r_ops r_login r_ws p_redis < <(free_ports 12)
[[ -n ${p_redis:-} ]] || die "could not get free ports"

# REDIS=1: a private redis-server for the Redis-store gateway (loopback, no persistence).
if [[ ${REDIS:-0} == 1 ]]; then
    [[ -z ${REDIS_URL:-} ]] || die "set REDIS=1 or REDIS_URL, not both"
    mkdir -p "$tmp/redis"
    redis-server --bind 127.0.0.1 --port "$p_redis" --save "" --appendonly no --dir "$tmp/redis" \
        >"$tmp/redis.out" 2>&1 &
    pids+=($!)
    REDIS_URL="redis://127.0.0.1:$p_redis"
    for ((i = 0; i < 100; i++)); do
        [[ $(redis-cli -u "$REDIS_URL" ping 2>/dev/null) == PONG ]] && break
        kill -0 "${pids[-1]}" 2>/dev/null || die "redis-server exited: $(tail -n 5 "$tmp/redis.out")"
        sleep 0.1
    done
fi

# ---------------------------------------------------------------------------------------
# nginx: upstream (fixed 200 "ok\n") and proxy_pass baseline, each its own instance (lib.sh).
start_nginx upstream "$here/nginx-upstream.conf.template"
wait_http "http://127.0.0.1:$p_up/" "${pids[-1]}" "upstream nginx" "$tmp/upstream-error.log"
start_nginx proxy "$here/nginx-proxy.conf.template"
wait_http "http://127.0.0.1:$p_nginx/" "${pids[-1]}" "proxy nginx" "$tmp/proxy-error.log"

# ---------------------------------------------------------------------------------------
# aisgate in demo mode in front of the same upstream (lib.sh).
# AISGATE_DEMO_ARGS is split into words on purpose (several flags).
# shellcheck disable=SC2086
start_aisgate aisgate "$p_gw" "$p_ops" "$p_login" "$p_ws" ${AISGATE_DEMO_ARGS:-}
if [[ -n ${REDIS_URL:-} ]]; then
    # shellcheck disable=SC2086
    start_aisgate aisgate-redis "$r_gw" "$r_ops" "$r_login" "$r_ws" ${AISGATE_DEMO_ARGS:-} --session-store "$REDIS_URL"
fi

# ---------------------------------------------------------------------------------------

# The same headers go to every target; only the gateways check the cookie (each its own).
# A gateway is addressed as 127.0.0.1 with Host: localhost:PORT (its public_base_url host).
declare -A cookie
cookie[aisgate]="Cookie: aisgate_session=$(login_at "$p_gw" "$p_login")"
cookie[upstream]=${cookie[aisgate]}
cookie[nginx]=${cookie[aisgate]}
names=(upstream nginx aisgate)
declare -A url host
url[upstream]="http://127.0.0.1:$p_up/"
url[nginx]="http://127.0.0.1:$p_nginx/"
url[aisgate]="http://127.0.0.1:$p_gw/"
host[upstream]="localhost:$p_up"
host[nginx]="localhost:$p_nginx"
host[aisgate]="localhost:$p_gw"
if [[ -n ${REDIS_URL:-} ]]; then
    names+=(aisgate-redis)
    cookie[aisgate-redis]="Cookie: aisgate_session=$(login_at "$r_gw" "$r_login")"
    url[aisgate-redis]="http://127.0.0.1:$r_gw/"
    host[aisgate-redis]="localhost:$r_gw"
fi

# Before any load: every target must answer the exact request wrk will send with 200 and
# the upstream's body. For aisgate that proves the cookie authenticates (no 302 to login).
check_target() {
    local name=$1 out code body
    out=$(curl -sS --max-time 5 -H "${cookie[$name]}" -H "Host: ${host[$name]}" -w '\n%{http_code}' "${url[$name]}") ||
        die "$name: request failed"
    code=${out##*$'\n'}
    body=${out%$'\n'*}
    body=${body%$'\n'}
    [[ $code == 200 && $body == ok ]] ||
        die "$name: authenticated GET ${url[$name]} returned HTTP $code (expected 200 'ok' from the upstream); body: $(head -c 300 <<<"$body")"
}
for name in "${names[@]}"; do check_target "$name"; done

upstream_requests() {
    curl -sS --max-time 5 "http://127.0.0.1:$p_status/" | awk 'NR == 3 { print $3 }'
}

# wrk latency "1.23ms" / "870.00us" / "1.02s" / "1.50m" -> milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (!match(v, /^[0-9.]+/)) { print "nan"; exit }
        n = substr(v, 1, RLENGTH); u = substr(v, RLENGTH + 1)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : (u == "h") ? 3600000 : -1
        if (f < 0) print "nan"; else printf "%.3f", n * f
    }'
}

# wrk in the background + wait, so that a signal interrupts the run at once.
run_wrk() {
    local rc=0
    wrk "$@" &
    child_pid=$!
    wait "$child_pid" || rc=$?
    child_pid=
    return "$rc"
}

failures=0
declare -A rps p50 p99 errs reqs

# Redis mode: per-command call counts (`INFO commandstats`, "name calls" lines, INFO itself
# left out) around each measured run of the Redis-store gateway.
redis_cli=
if [[ -n ${REDIS_URL:-} ]] && command -v redis-cli >/dev/null 2>&1; then redis_cli=redis-cli; fi
redis_calls() {
    "$redis_cli" -u "$REDIS_URL" INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1 \2/p' | grep -v '^info ' | LC_ALL=C sort
}
# run NAME ROUND: warm-up, then the measured run; results into rps/p50/p99/errs[NAME,ROUND].
run() {
    local name=$1 r=$2 out="$tmp/$1.$2.wrk" before after total sock non2xx delta
    local hdrs=(-H "${cookie[$name]}" -H "Host: ${host[$name]}")
    log "[$name, round $r] warm-up ${WARMUP}s, then ${DURATION}s measured"
    run_wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "${hdrs[@]}" "${url[$name]}" >"$tmp/$name.$r.warmup" 2>&1 ||
        die "$name: wrk warm-up failed: $(cat "$tmp/$name.$r.warmup")"
    [[ $name != aisgate-redis || -z $redis_cli ]] || redis_calls >"$tmp/$name.$r.cmd-before"
    before=$(upstream_requests)
    run_wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "${hdrs[@]}" "${url[$name]}" >"$out" 2>&1 ||
        die "$name: wrk failed: $(cat "$out")"
    after=$(upstream_requests)
    [[ $name != aisgate-redis || -z $redis_cli ]] || redis_calls >"$tmp/$name.$r.cmd-after"
    if [[ $VERBOSE == 1 ]]; then cat "$out" >&2; fi

    rps[$name,$r]=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50[$name,$r]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99[$name,$r]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    total=$(awk '/ requests in / { print $1 }' "$out")
    reqs[$name,$r]=${total:-0}
    sock=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    errs[$name,$r]=$((${sock:-0} + ${non2xx:-0}))
    if [[ -z ${rps[$name,$r]} || ${p99[$name,$r]} == nan || -z $total || $total == 0 ]]; then
        cat "$out" >&2
        die "$name: could not parse wrk output"
    fi
    # Every request wrk counted must have reached the upstream: a gateway answering 302
    # (or any error page of its own) would show here, since wrk counts 3xx as success.
    delta=$((after - before - 1))
    if ((delta < total * 99 / 100)); then
        log "proxy.sh: ERROR: $name: wrk completed $total requests but the upstream saw only $delta"
        failures=$((failures + 1))
    fi
    if ((errs[$name,$r] > 0)); then
        log "proxy.sh: WARNING: $name: ${sock:-0} socket errors, ${non2xx:-0} non-2xx/3xx responses"
        if ((${non2xx:-0} > 0)); then failures=$((failures + 1)); fi
    fi
    return 0
}

for ((r = 1; r <= ROUNDS; r++)); do
    for name in "${names[@]}"; do run "$name" "$r"; done
done
# The sessions must still be valid after the load.
check_target aisgate
[[ -z ${REDIS_URL:-} ]] || check_target aisgate-redis

median() { tr ' ' '\n' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A m_rps m_p50 m_p99 m_err
for name in "${names[@]}"; do
    a=() b=() c=() e=0
    for ((r = 1; r <= ROUNDS; r++)); do
        a+=("${rps[$name,$r]}")
        b+=("${p50[$name,$r]}")
        c+=("${p99[$name,$r]}")
        e=$((e + errs[$name,$r]))
    done
    m_rps[$name]=$(median <<<"${a[*]}")
    m_p50[$name]=$(median <<<"${b[*]}")
    m_p99[$name]=$(median <<<"${c[*]}")
    m_err[$name]=$e
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }'; }

nginx_v=$({ nginx -v 2>&1 || true; } | sed 's/^nginx version: //')
wrk_v=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 { print $2 }')
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')
[[ -n $(git -C "$repo" status --porcelain 2>/dev/null) ]] && rev="$rev+dirty"

echo
echo "aisgate proxy hot-path benchmark  ($(date -u '+%Y-%m-%d %H:%M:%SZ'), $(nproc) CPUs, shared by wrk, nginx and aisgate)"
echo "wrk $wrk_v: -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency after a ${WARMUP}s warm-up; rounds: $ROUNDS$( ((ROUNDS > 1)) && echo ' (median shown)')"
echo "nginx: $nginx_v; aisgate: $aisgate_bin (repo HEAD $rev; the binary may be older); authenticated GET / -> 200 \"ok\\n\""
echo
if ((ROUNDS > 1)); then
    for ((r = 1; r <= ROUNDS; r++)); do
        printf 'round %d:' "$r"
        for name in "${names[@]}"; do
            printf '  %s %.0f req/s p99 %.3f ms;' "$name" "${rps[$name,$r]}" "${p99[$name,$r]}"
        done
        echo
    done
    echo
fi
printf '%-13s %12s %10s %10s %15s %13s %8s\n' target 'req/s' 'p50 ms' 'p99 ms' 'req/s vs nginx' 'p99 vs nginx' errors
for name in "${names[@]}"; do
    printf '%-13s %12.0f %10.3f %10.3f %14sx %12sx %8d\n' "$name" "${m_rps[$name]}" "${m_p50[$name]}" "${m_p99[$name]}" \
        "$(ratio "${m_rps[$name]}" "${m_rps[nginx]}")" "$(ratio "${m_p99[$name]}" "${m_p99[nginx]}")" "${m_err[$name]}"
done
echo

tput_ratio=$(ratio "${m_rps[aisgate]}" "${m_rps[nginx]}")
p99_ratio=$(ratio "${m_p99[aisgate]}" "${m_p99[nginx]}")
tput_ok=$(awk -v x="$tput_ratio" 'BEGIN { print (x >= 0.95) ? "PASS" : "FAIL" }')
p99_ok=$(awk -v x="$p99_ratio" 'BEGIN { print (x <= 1.10) ? "PASS" : "FAIL" }')
overall=PASS
[[ $tput_ok == PASS && $p99_ok == PASS ]] || overall=FAIL
echo "targets: throughput aisgate/nginx = ${tput_ratio}x (>= 0.95: $tput_ok); p99 aisgate/nginx = ${p99_ratio}x (<= 1.10: $p99_ok)"
if [[ -n ${REDIS_URL:-} ]]; then
    redis_ratio=$(ratio "${m_rps[aisgate-redis]}" "${m_rps[aisgate]}")
    redis_ok=$(awk -v x="$redis_ratio" 'BEGIN { print (x >= 0.85) ? "PASS" : "FAIL" }')
    echo "redis store: throughput aisgate-redis/aisgate (memory store) = ${redis_ratio}x (>= 0.85: $redis_ok); p99 ${m_p99[aisgate-redis]} vs ${m_p99[aisgate]} ms"
    if [[ -n $redis_cli ]]; then
        # Summed over the measured runs: each command's calls per request wrk completed.
        n=0
        for ((r = 1; r <= ROUNDS; r++)); do n=$((n + reqs[aisgate-redis,$r])); done
        for ((r = 1; r <= ROUNDS; r++)); do
            LC_ALL=C join -a 2 -e 0 -o 0,1.2,2.2 "$tmp/aisgate-redis.$r.cmd-before" "$tmp/aisgate-redis.$r.cmd-after"
        done | awk -v n="$n" '{ d[$1] += $3 - $2 } END {
            for (c in d) if (d[c] > 0) { t += d[c]; s = s sprintf(" %s %d", c, d[c]) }
            printf "redis commands during the measured runs: %d for %d requests = %.5f per request (%s)\n", t, n, (n ? t / n : 0), s ? substr(s, 2) : "none"
        }'
    fi
fi
redis_result=
if [[ -n ${REDIS_URL:-} ]]; then
    redis_result="; redis store ${redis_ratio}x of memory (>= 0.85: $redis_ok)"
fi
echo "RESULT: $overall (informational)$redis_result; load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"

if ((failures > 0)); then
    die "$failures measurement problem(s) above; the figures are not trustworthy"
fi
exit 0
