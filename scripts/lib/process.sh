# shellcheck shell=bash
# Process and port helpers shared by scripts/stack and scripts/test-stack.
# Sourced, not executed. Needs: ss (iproute2), /proc.

# pid_is_alive PID: true when PID names a live process (not a zombie).
pid_is_alive() {
    local pid=$1 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/stat ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# pid_runs_binary PID PATH: true when PID is alive and executes PATH (a rebuilt binary
# shows as "PATH (deleted)", which still counts).
pid_runs_binary() {
    local pid=$1 binary=$2 exe
    pid_is_alive "$pid" || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ $exe == "$binary" || $exe == "$binary (deleted)" ]]
}

# port_listener_pids PORT: pids with a TCP socket listening on PORT, one a line.
port_listener_pids() {
    ss -Hltnp "sport = :$1" 2>/dev/null | { grep -o 'pid=[0-9]*' || true; } | cut -d= -f2 | sort -u
}

# port_is_listening PORT: true when something listens on TCP PORT.
port_is_listening() {
    [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
}

# describe_pid PID: "pid N (user U): command line", for messages.
describe_pid() {
    local pid=$1 user cmd
    user=$(ps -o user= -p "$pid" 2>/dev/null | tr -d ' ') || true
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160) || true
    printf 'pid %s (user %s): %s' "$pid" "${user:-?}" "${cmd:-?}"
}

# wait_until SECONDS COMMAND...: runs COMMAND every half second until it succeeds
# or SECONDS pass; returns its last status.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# terminate_pid PID [GRACE]: SIGTERM, wait up to GRACE seconds (default 15), then SIGKILL.
terminate_pid() {
    local pid=$1 grace=${2:-15}
    pid_is_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until "$grace" eval "! pid_is_alive $pid"; then
        echo "  pid $pid did not exit within ${grace}s of SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait_until 5 eval "! pid_is_alive $pid" || return 1
    fi
}
