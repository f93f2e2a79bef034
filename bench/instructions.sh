#!/usr/bin/env bash
# Work per proxied request, counted (not timed): user-space instructions (callgrind) and
# syscalls (strace) for one authenticated keep-alive `GET /` through
#   1. aisgate (demo mode, simulated JIP/KAAS login, memory store),
#   2. nginx proxy_pass (bench/nginx-proxy.conf.template, one process),
# both in front of the same nginx upstream (bench/nginx-upstream.conf.template, 200 "ok\n").
# The counts do not depend on the machine's load (same binary + same requests -> same count),
# so they are the A/B figure on a shared machine; bench/proxy.sh gives the wall clock.
#
# Per target, two runs of a fresh process (strace would count valgrind's own syscalls):
#   syscalls:     the process alone; log in (aisgate), WARMUP requests, then `strace -c -f -p PID`
#                 (every thread) around REQUESTS requests; calls / REQUESTS.
#   instructions: the process under `valgrind --tool=callgrind --instr-atstart=no`; log in,
#                 WARMUP requests, `callgrind_control -i on` + `-z`, REQUESTS requests,
#                 `callgrind_control -d`; the dump's total Ir / REQUESTS (all threads, including
#                 whatever background timers run in that window).
# The client (python3, outside both) sends the requests one after another on one keep-alive
# connection and checks that each answer is the upstream's 200 "ok\n" (so a 302 to the login
# page or an error page fails the run). For aisgate it then lists the top TOP functions by
# inclusive instructions per request (callgrind_annotate --inclusive=yes).
#
# Usage: bash bench/instructions.sh [AISGATE_BINARY]
#   The binary may also be given as AISGATE_BIN=...; with neither, the script runs
#   `cargo build --release --features sim --bin aisgate` (SMOKE=1: a debug build) and uses it.
#   For function names in the profile the release binary needs symbols (the default release
#   profile keeps them); CARGO_PROFILE_RELEASE_DEBUG=line-tables-only adds file names.
# Tunables (environment): REQUESTS=2000 WARMUP=300 TOP=25 TARGETS="aisgate nginx"
#   KEEP_TMP=1 keeps the temp dir (configs, logs, callgrind dumps, strace summaries).
#   SMOKE=1 (bench/smoke): a debug build, REQUESTS=20 WARMUP=5 TOP=5; proves the script runs
#   end to end, the figures mean nothing.
# Prints one `RESULT <target>: ...` line per target, then the aisgate/nginx ratio.
# Needs: valgrind (callgrind_control, callgrind_annotate), strace, nginx, curl, python3
# (Debian: apt-get install -y valgrind strace nginx curl python3); `strace -p` needs the right to
# trace the processes this script starts (root, or kernel.yama.ptrace_scope 0).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
PATH="$PATH:/usr/sbin:/sbin"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
SMOKE=${SMOKE:-0}
if [[ $SMOKE == 1 ]]; then
    REQUESTS=${REQUESTS:-20} WARMUP=${WARMUP:-5} TOP=${TOP:-5} profile=debug
else
    REQUESTS=${REQUESTS:-2000} WARMUP=${WARMUP:-300} TOP=${TOP:-25} profile=release
fi
TARGETS=${TARGETS:-aisgate nginx}
KEEP_TMP=${KEEP_TMP:-0}

log() { printf '%s\n' "$*" >&2; }
die() {
    log "instructions.sh: ERROR: $*"
    exit 1
}

for v in REQUESTS WARMUP TOP; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for t in $TARGETS; do
    [[ $t == aisgate || $t == nginx ]] || die "TARGETS: unknown target '$t' (aisgate, nginx)"
done

missing=()
for tool in valgrind callgrind_control callgrind_annotate strace nginx curl python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    log "instructions.sh: missing: ${missing[*]}"
    log "install them with:  sudo apt-get install -y valgrind strace nginx curl python3"
    exit 2
fi

# shellcheck source=bench/lib.sh
source "$here/lib.sh"
aisgate_bin=
if [[ " $TARGETS " == *" aisgate "* ]]; then
    aisgate_bin=$(aisgate_binary "$profile" "${1:-${AISGATE_BIN:-}}")
fi

setup_tmp aisgate-instructions

read -r p_up p_status p_nginx p_gw p_ops p_login p_ws < <(free_ports 7)
[[ -n ${p_ws:-} ]] || die "could not get free ports"

start_nginx upstream "$here/nginx-upstream.conf.template"
wait_http "http://127.0.0.1:$p_up/" "${pids[-1]}" "upstream nginx" "$tmp/upstream-error.log"

# The client: one keep-alive connection; reads a count per line on stdin, sends that many
# requests one after another, checks each answer, prints "ok N" (or "error ...", and exits).
cat >"$tmp/client.py" <<'PY'
import socket, sys

port, host, cookie = int(sys.argv[1]), sys.argv[2], sys.argv[3]
request = f"GET / HTTP/1.1\r\nHost: {host}\r\n{cookie}\r\n\r\n".encode()
conn = socket.create_connection(("127.0.0.1", port))
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = b""

def fail(why):
    print("error " + why, flush=True)
    sys.exit(1)

def one():
    global buf
    conn.sendall(request)
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            fail("connection closed before a response head")
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        if name.strip().lower() == "transfer-encoding":
            fail("unexpected transfer-encoding: " + value.strip())
    if length is None:
        fail("no content-length in: " + lines[0])
    while len(buf) < length:
        data = conn.recv(65536)
        if not data:
            fail("connection closed in the body")
        buf += data
    body, buf = buf[:length], buf[length:]
    if not lines[0].startswith("HTTP/1.1 200 ") or body != b"ok\n":
        fail(f"expected the upstream's 200 'ok', got {lines[0]!r} body {body[:200]!r}")

for line in sys.stdin:
    n = int(line)
    for _ in range(n):
        one()
    print(f"ok {n}", flush=True)
PY

# client_start PORT HOST COOKIE-HEADER-LINE / client_run N (waits for the N answers).
client_start() {
    coproc CLIENT { exec python3 "$tmp/client.py" "$@"; }
    child_pid=$CLIENT_PID
}
client_run() {
    local answer
    printf '%s\n' "$1" >&"${CLIENT[1]}"
    read -r answer <&"${CLIENT[0]}" || answer="error: the client exited"
    [[ $answer == "ok $1" ]] || die "client: $answer"
}
client_stop() {
    eval "exec ${CLIENT[1]}>&-"
    wait "$child_pid" 2>/dev/null || true
    child_pid=
}

# strace_window PID OUT: `strace -c -f` on every thread of PID around REQUESTS requests.
strace_window() {
    local pid=$1 out=$2 spid threads i
    threads=$(ls "/proc/$pid/task" | wc -l)
    strace -c -f -p "$pid" -o "$out" 2>"$out.err" &
    spid=$!
    for ((i = 0; i < 100; i++)); do
        # strace 6: "Process PID attached with N threads"; older ones: one "attached" line per thread.
        grep -q " attached with $threads threads" "$out.err" 2>/dev/null && break
        (($(grep -c ' attached' "$out.err" 2>/dev/null || true) >= threads)) && break
        kill -0 "$spid" 2>/dev/null || die "strace exited: $(cat "$out.err")"
        sleep 0.1
    done
    ((i < 100)) || die "strace did not attach to the $threads threads of $pid: $(cat "$out.err")"
    client_run "$REQUESTS"
    kill -INT "$spid"
    wait "$spid" || true
    [[ -s $out ]] || die "strace wrote no summary: $(cat "$out.err")"
}

# callgrind_window NAME PID: instrumentation on, counters zeroed, REQUESTS requests, dump; the
# dump's file name into dump_of[NAME].
callgrind_window() {
    local name=$1 pid=$2 prefix="$tmp/vgdb-$1" dump i
    callgrind_control --vgdb-prefix="$prefix" -i on "$pid" >>"$tmp/callgrind_control.log" 2>&1 ||
        die "callgrind_control -i on failed: $(tail -n 5 "$tmp/callgrind_control.log")"
    callgrind_control --vgdb-prefix="$prefix" -z "$pid" >>"$tmp/callgrind_control.log" 2>&1 ||
        die "callgrind_control -z failed: $(tail -n 5 "$tmp/callgrind_control.log")"
    client_run "$REQUESTS"
    callgrind_control --vgdb-prefix="$prefix" -d "$pid" >>"$tmp/callgrind_control.log" 2>&1 ||
        die "callgrind_control -d failed: $(tail -n 5 "$tmp/callgrind_control.log")"
    for ((i = 0; i < 300; i++)); do
        dump=$(ls -t "$tmp/callgrind.$name.out".* 2>/dev/null | head -n 1 || true)
        [[ -n $dump ]] && grep -q '^totals:' "$dump" && break
        sleep 0.1
    done
    [[ -n $dump ]] && grep -q '^totals:' "$dump" || die "no callgrind dump for $pid"
    dump_of[$name]=$dump
}

# start_target NAME MODE (plain|callgrind): starts the target, logs in, starts the client and warms
# up; sets target_pid.
start_target() {
    local name=$1 mode=$2 cookie host port
    local valgrind=(valgrind --tool=callgrind --instr-atstart=no --vgdb-prefix="$tmp/vgdb-$name"
        --callgrind-out-file="$tmp/callgrind.$name.out")
    if [[ $name == aisgate ]]; then
        launcher=()
        [[ $mode == plain ]] || launcher=("${valgrind[@]}")
        startup_secs=120 start_aisgate "aisgate-$mode" "$p_gw" "$p_ops" "$p_login" "$p_ws"
        cookie="Cookie: aisgate_session=$(login_secs=120 login_at "$p_gw" "$p_login")"
        same_cookie=$cookie
        port=$p_gw
    else
        if [[ $mode == plain ]]; then
            nginx_single=1 start_nginx proxy "$here/nginx-proxy.conf.template"
        else
            nginx_single=1 start_nginx proxy "$here/nginx-proxy.conf.template" "${valgrind[@]}"
        fi
        startup_secs=120 wait_http "http://127.0.0.1:$p_nginx/" "${pids[-1]}" "proxy nginx" "$tmp/proxy.out"
        # The same header as aisgate gets (nginx forwards it): its session cookie when aisgate ran.
        cookie=$same_cookie
        port=$p_nginx
    fi
    target_pid=${pids[-1]}
    host="localhost:$port"
    client_start "$port" "$host" "$cookie"
    client_run "$WARMUP"
}
stop_target() {
    client_stop
    stop_pids 30 "$target_pid"
    unset 'pids[-1]'
}

declare -A instr calls calls_list dump_of
same_cookie="Cookie: aisgate_session=$(head -c 160 /dev/zero | tr '\0' A)"
for name in $TARGETS; do
    log "[$name] syscalls: $WARMUP warm-up requests, then strace -c -f over $REQUESTS"
    start_target "$name" plain
    strace_window "$target_pid" "$tmp/strace.$name"
    stop_target
    # strace -c: "% time seconds usecs/call calls [errors] syscall"; the total line last.
    calls[$name]=$(awk '$NF == "total" { print $4 }' "$tmp/strace.$name")
    calls_list[$name]=$(awk -v n="$REQUESTS" '$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 {
            c = $4 / n; if (c >= 0.005) s = s sprintf(" %s %.2f", $NF, c); else o += $4 }
        END { if (o) s = s sprintf(" other %.3f", o / n); print substr(s, 2) }' "$tmp/strace.$name")

    log "[$name] instructions: under callgrind, $WARMUP warm-up requests, then $REQUESTS counted"
    start_target "$name" callgrind
    callgrind_window "$name" "$target_pid"
    stop_target
    instr[$name]=$(awk '/^totals:/ { print $2; exit }' "${dump_of[$name]}")
    [[ ${instr[$name]} =~ ^[0-9]+$ ]] || die "$name: no total in ${dump_of[$name]}"
done

per() { awk -v a="$1" -v n="$2" 'BEGIN { printf "%.0f", a / n }'; }

echo
echo "aisgate instructions and syscalls per proxied request  ($(date -u '+%Y-%m-%d %H:%M:%SZ'), $(nproc) CPUs)"
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')
[[ -n $(git -C "$repo" status --porcelain 2>/dev/null) ]] && rev="$rev+dirty"
echo "$(valgrind --version), strace $(strace -V | awk 'NR == 1 { print $NF }'), $(nginx -v 2>&1 | sed 's/^nginx version: //')"
[[ -z $aisgate_bin ]] || echo "aisgate: $aisgate_bin (repo HEAD $rev; the binary may be older)"
echo "one keep-alive connection, authenticated GET / -> 200 \"ok\\n\"; $WARMUP warm-up, $REQUESTS counted requests per run"
if [[ " $TARGETS " == *" aisgate "* ]]; then
    echo
    echo "aisgate: top $TOP functions by inclusive instructions per request (callgrind_annotate --inclusive=yes)"
    # Lines "  1,234,567 (12.34%)  file:function [object]" (valgrind 3.19) or without the
    # percentage; shown without "???:" (no file known) and the object. awk reads to the end
    # (no early exit: pipefail would take callgrind_annotate's SIGPIPE for a failure).
    callgrind_annotate --inclusive=yes "${dump_of[aisgate]}" |
        awk -v n="$REQUESTS" -v top="$TOP" '
            /^-+$/ { dashes++; next }
            dashes >= 3 && $1 ~ /^[0-9][0-9,]*$/ && shown < top {
                ir = $1; gsub(/,/, "", ir); $1 = ""
                sub(/^ *(\([^)]*\))? */, ""); sub(/^\?\?\?:/, ""); sub(/ \[[^]]*\]$/, "")
                printf "%10.0f  %s\n", ir / n, substr($0, 1, 160)
                shown++
            }'
fi
echo
for name in $TARGETS; do
    echo "RESULT $name: $(per "${instr[$name]}" "$REQUESTS") instructions per request (callgrind), $(awk -v a="${calls[$name]}" -v n="$REQUESTS" 'BEGIN { printf "%.2f", a / n }') syscalls per request (strace: ${calls_list[$name]})"
done
if [[ " $TARGETS " == *" aisgate "* && " $TARGETS " == *" nginx "* ]]; then
    echo "aisgate / nginx: $(awk -v a="${instr[aisgate]}" -v b="${instr[nginx]}" 'BEGIN { printf "%.2f", a / b }')x instructions$( [[ $SMOKE == 1 ]] && echo ' (SMOKE: debug build, figures mean nothing)'); load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
fi
exit 0
