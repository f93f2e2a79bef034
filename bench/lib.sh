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
