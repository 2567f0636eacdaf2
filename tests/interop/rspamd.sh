# rspamd.sh - start and stop the private rspamd of one interop run.
# Sourced by tests/interop/run.sh and tests/arcinterop/run.sh (bash).
#
#   rspamd_start DIR ZONE...   write DIR/rspamd.conf (rspamd_driver.py conf)
#                              and start rspamd -f in the background; sets
#                              RSPAMD_PORT, RSPAMD_DNS_PORT and RSPAMD_PID.  Returns 1 with a
#                              message on stderr when rspamd is not installed
#                              or the configuration cannot be written.
#   rspamd_stop                stop it (TERM, then KILL after 5 s); safe to
#                              call twice, and from an EXIT trap.
#   rspamd_scan_bg DIR LIST OUT ZONE...
#                              rspamd_start, then `rspamd_driver.py scan` of
#                              LIST into OUT in the background (pid in
#                              RSPAMD_SCAN_PID); errors go to OUT.err.
#   rspamd_scan_wait WHO       wait for that scan, say on stderr when it
#                              failed (WHO prefixes the message), stop rspamd.
#
# Readiness is not waited for here: `rspamd_driver.py scan --pid` polls the
# worker's port, so the start-up overlaps with the other verifiers.  The
# scan step also serves RSPAMD_DNS_PORT, rspamd's only nameserver.
#
# The instance is the run's own: configuration, pid, log, caches and
# temporary files live under DIR, the worker listens on a free loopback
# port, and it runs as the calling user.  A system rspamd that the Debian
# package may have started (ports 11332-11334) is neither used nor touched.

RSPAMD_PID=
RSPAMD_PORT=
RSPAMD_DNS_PORT=
RSPAMD_SCAN_PID=
RSPAMD_SCAN_OUT=

rspamd_start() {
    local dir=$1
    shift
    local bin
    bin=$(command -v rspamd || true)
    [ -n "$bin" ] || { echo "rspamd: not installed (apt-get install rspamd)" >&2; return 1; }
    rm -rf "$dir"
    mkdir -p "$dir"
    local zones=()
    local z
    for z in "$@"; do zones+=(--zone "$z"); done
    local ports
    ports=$(/usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/rspamd_driver.py" conf \
                "$dir" "${zones[@]}" 2> "$dir/conf.err") || {
        echo "rspamd: cannot write its configuration: $(tail -n 3 "$dir/conf.err")" >&2
        return 1
    }
    read -r RSPAMD_PORT RSPAMD_DNS_PORT <<< "$ports"
    # -f: stay in the foreground so that $! is the main process.  -u/-g:
    # rspamd wants them when started as root (as in CI); a normal user runs
    # as itself.  --var: the compiled-in /var/lib/rspamd and /run/rspamd
    # must not be used.
    "$bin" -f -u "$(id -un)" -g "$(id -gn)" -c "$dir/rspamd.conf" \
        --var "DBDIR=$dir/db" --var "RUNDIR=$dir/run" --var "LOGDIR=$dir/log" \
        > "$dir/rspamd.out" 2>&1 < /dev/null &
    RSPAMD_PID=$!
    return 0
}

rspamd_stop() {
    [ -n "$RSPAMD_PID" ] || return 0
    local pid=$RSPAMD_PID
    RSPAMD_PID=
    kill -TERM "$pid" 2>/dev/null || return 0
    local _
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

rspamd_scan_bg() {
    local dir=$1 list=$2 out=$3
    shift 3
    RSPAMD_SCAN_OUT=$out
    rspamd_start "$dir" "$@" 2> "$out.err" || { cat "$out.err" >&2; return 0; }
    /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/rspamd_driver.py" scan \
        --port "$RSPAMD_PORT" --dns-port "$RSPAMD_DNS_PORT" --pid "$RSPAMD_PID" \
        --list "$list" --out "$out" 2>> "$out.err" &
    RSPAMD_SCAN_PID=$!
}

rspamd_scan_wait() {
    if [ -n "$RSPAMD_SCAN_PID" ]; then
        local rc=0
        wait "$RSPAMD_SCAN_PID" || rc=$?
        RSPAMD_SCAN_PID=
        [ $rc -eq 0 ] ||
            echo "$1: rspamd scan exited $rc, see $RSPAMD_SCAN_OUT.err and the rspamd log" >&2
    fi
    rspamd_stop
}
