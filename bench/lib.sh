# Shared by the bench scripts (sourced, not run).

# stop_pids SECONDS PID...: TERM every PID, give each up to SECONDS to exit, then KILL and reap it.
stop_pids() {
    local grace=$1 pid i
    shift
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        for ((i = 0; i < grace * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# The helpers below expect the sourcing script to define `log` and `die`, a temp dir in `tmp`
# and an array `pids` (every process started here is appended to it, for stop_pids).

# free_ports N: prints N distinct free loopback TCP ports on one line (bound together, so they differ).
free_ports() {
    python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

# aisgate_binary PROFILE [BINARY]: prints BINARY if given, else builds aisgate with the simulators
# the demo needs (`cargo build --features sim`, PROFILE release or debug) and prints its path.
aisgate_binary() {
    local profile=$1 bin=${2:-} flag=
    if [[ -z $bin ]]; then
        command -v cargo >/dev/null 2>&1 || die "no aisgate binary given and cargo not found"
        [[ $profile == release ]] && flag=--release
        log "building aisgate: cargo build $flag --features sim --bin aisgate --manifest-path $repo/Cargo.toml"
        # shellcheck disable=SC2086 # $flag is empty or one word
        cargo build $flag --features sim --bin aisgate --manifest-path "$repo/Cargo.toml" >&2 || die "cargo build failed"
        bin="${CARGO_TARGET_DIR:-$repo/target}/$profile/aisgate"
    fi
    [[ -x $bin ]] || die "aisgate binary '$bin' does not exist or is not executable"
    printf '%s\n' "$bin"
}

# wait_http URL PID WHAT LOGFILE: waits until URL answers (any HTTP status) while PID lives,
# up to $startup_secs (default 20) seconds.
wait_http() {
    local url=$1 pid=$2 what=$3 logfile=$4 i
    for ((i = 0; i < ${startup_secs:-20} * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "--- $logfile ---"
            tail -n 30 "$logfile" >&2 || true
            die "$what exited during startup"
        fi
        if curl -s -o /dev/null --max-time 1 "$url"; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$logfile" >&2 || true
    die "$what did not answer on $url within ${startup_secs:-20} s"
}

# start_nginx NAME TEMPLATE [PREFIX...]: one nginx instance with TEMPLATE rendered into
# $tmp/NAME.conf (@DIR@, @UPSTREAM_PORT@, @STATUS_PORT@, @PROXY_PORT@ from $tmp, $p_up, $p_status,
# $p_nginx), in the foreground behind the optional command PREFIX (e.g. valgrind ...). The system
# nginx config is never read or touched. With nginx_single=1 it runs as one process (no master,
# one worker): what a profiler or strace can follow.
start_nginx() {
    local name=$1 template=$2 g='daemon off;'
    shift 2
    mkdir -p "$tmp/$name-tmp"
    sed -e "s|@DIR@|$tmp|g" -e "s|@UPSTREAM_PORT@|$p_up|g" -e "s|@STATUS_PORT@|$p_status|g" \
        -e "s|@PROXY_PORT@|$p_nginx|g" "$template" >"$tmp/$name.conf"
    if [[ ${nginx_single:-0} == 1 ]]; then
        sed -i 's/^worker_processes .*;/worker_processes 1;/' "$tmp/$name.conf"
        g='daemon off; master_process off;'
    fi
    nginx -t -q -p "$tmp" -e "$tmp/$name-error.log" -c "$tmp/$name.conf" -g "$g" >"$tmp/$name.out" 2>&1 ||
        {
            cat "$tmp/$name.out" >&2
            die "nginx rejected $tmp/$name.conf"
        }
    "$@" nginx -p "$tmp" -e "$tmp/$name-error.log" -c "$tmp/$name.conf" -g "$g" >>"$tmp/$name.out" 2>&1 &
    pids+=($!)
}

# start_aisgate NAME GW_PORT OPS_PORT LOGIN_PORT WS_PORT [DEMO ARGS...]: `$aisgate_bin demo` in
# front of the upstream on $p_up, behind the command prefix in the array `launcher` if set (e.g.
# valgrind ...); waits until it is ready. TMPDIR points into $tmp/NAME so the demo's generated
# config, keys and certificates go away with the temp dir.
start_aisgate() {
    local name=$1 gw_port=$2 ops_port=$3 login_port=$4 ws_port=$5 pid i
    shift 5
    mkdir -p "$tmp/$name"
    TMPDIR="$tmp/$name" ${launcher[@]+"${launcher[@]}"} "$aisgate_bin" demo \
        --listen "127.0.0.1:$gw_port" --ops-listen "127.0.0.1:$ops_port" \
        --sim-login-listen "127.0.0.1:$login_port" --sim-ws-listen "127.0.0.1:$ws_port" \
        --upstream "http://127.0.0.1:$p_up" --no-access-log "$@" >"$tmp/$name.out" 2>&1 &
    pids+=($!)
    pid=${pids[-1]}
    wait_http "http://127.0.0.1:$ops_port/healthz" "$pid" "$name" "$tmp/$name.out"
    for ((i = 0; i < ${startup_secs:-10} * 10; i++)); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$ops_port/readyz") == 200 ]] && break
        sleep 0.1
    done
}

# Log in through the simulated JIP/KAAS IdP to get a session cookie. The gateway's public
# URL is http://localhost:PORT; --resolve pins localhost to 127.0.0.1.
header() { # header NAME < response-head
    tr -d '\r' | awk -v name="$1" 'BEGIN { IGNORECASE = 1; n = tolower(name) ":" }
        tolower(substr($0, 1, length(n))) == n { sub(/^[^:]*:[ \t]*/, ""); print; exit }'
}
status_of() { tr -d '\r' | awk 'NR == 1 { print $2; exit }'; }

# login_at GW_PORT LOGIN_PORT: prints the session cookie's value. Each step may take up to
# $login_secs (default 10) seconds.
login_at() {
    local gw="http://localhost:$1" login_port=$2 jar="$tmp/cookies.$1.txt" head1 head2 head3 login_url callback_url session
    local resolve=(--resolve "localhost:$1:127.0.0.1")
    # The demo offers several providers (GET / shows the chooser): follow its JIP/KAAS link.
    head1=$(curl -sS --max-time "${login_secs:-10}" -o /dev/null -D - "${resolve[@]}" -c "$jar" -b "$jar" -H 'Accept: text/html' \
        "$gw/.aisgate/login?return=%2F&provider=jip") ||
        die "login step 1: request failed"
    login_url=$(header Location <<<"$head1")
    [[ $(status_of <<<"$head1") == 30[1237] && $login_url == "http://127.0.0.1:$login_port/as/login?"* ]] ||
        die "login step 1: expected a redirect to the simulated IdP, got:"$'\n'"$head1"
    head2=$(curl -sS --max-time "${login_secs:-10}" -o /dev/null -D - -c "$jar" -b "$jar" -d user=0 "$login_url") ||
        die "login step 2: request failed"
    callback_url=$(header Location <<<"$head2")
    [[ $(status_of <<<"$head2") == 30[1237] && $callback_url == "$gw/.aisgate/callback/jip?"* ]] ||
        die "login step 2: expected a redirect to the gateway callback, got:"$'\n'"$head2"
    head3=$(curl -sS --max-time "${login_secs:-10}" -o /dev/null -D - "${resolve[@]}" -c "$jar" -b "$jar" "$callback_url") ||
        die "login step 3: request failed"
    session=$(tr -d '\r' <<<"$head3" | sed -n 's/^[Ss]et-[Cc]ookie: *aisgate_session=\([^;]*\).*/\1/p' | head -n 1)
    [[ $(status_of <<<"$head3") == 30[1237] && -n $session ]] ||
        die "login step 3: expected a redirect setting aisgate_session, got:"$'\n'"$head3"
    printf '%s\n' "$session"
}

# setup_tmp PREFIX: a fresh temp dir in `tmp` (kept with KEEP_TMP=1), an empty `pids`, and traps
# that on exit stop `child_pid` (a helper the script waits for, such as wrk) and every process in
# `pids`, then remove the temp dir.
setup_tmp() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    pids=()
    child_pid=
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n ${child_pid:-} ]] && kill -TERM "$child_pid" 2>/dev/null
    stop_pids 10 "${pids[@]}"
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        log "temp dir kept: $tmp"
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
