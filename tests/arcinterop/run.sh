#!/usr/bin/env bash
# run.sh - ARC interop between arcrelay, dkimpy, Perl Mail::DKIM and rspamd.
#
# Usage: run.sh ARCRELAY_BINARY WORKDIR
#
# WORKDIR is wiped and rebuilt.  arc_harness.py build makes the keys, the
# zone, the chains (arcrelay seal, dkimpy arc_sign, and mixes of the two)
# and the tampered copies; then every case is verified by dkimpy (one
# Python process), Mail::DKIM::ARC::Verifier (one Perl process) and a
# private rspamd (tests/interop/rspamd.sh, fed by one Python process) in
# the background while arcrelay verify runs once per message in the
# foreground; arc_harness.py check compares.  Exit status 0 only if every
# check passed; the last line printed is "N passed, M failed".

set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 ARCRELAY_BINARY WORKDIR" >&2
    exit 2
fi

HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3               # Debian's, which has dkimpy
export PYTHONDONTWRITEBYTECODE=1  # keep the source tree clean
PERL=/usr/bin/perl
ARC=$1
WORK=$2

die_early() {
    echo "arcinterop: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

[ -x "$ARC" ] || die_early "arcrelay binary not found or not executable: $ARC"
"$PY" -c 'import dkim, nacl, cryptography' 2>/dev/null ||
    die_early "$PY lacks dkimpy/pynacl/cryptography (apt-get install python3-dkim python3-nacl python3-cryptography)"
# dkim.arc_sign needs the authres module (Debian python3-authres), which
# contrib/install-deps.sh does not list.  Install it when we may.
if ! "$PY" -c 'import authres' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "arcinterop: installing python3-authres (dkim.arc_sign needs it)" >&2
        { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
              python3-authres >/dev/null 2>&1 ||
          { apt-get update -qq >/dev/null 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
              python3-authres >/dev/null 2>&1; }; } || true
    fi
    "$PY" -c 'import authres' 2>/dev/null ||
        die_early "$PY lacks the authres module that dkim.arc_sign needs (apt-get install python3-authres)"
fi
"$PERL" -MMail::DKIM::ARC::Verifier -MNet::DNS -MJSON::PP -e 1 2>/dev/null ||
    die_early "Perl lacks Mail::DKIM::ARC or Net::DNS (apt-get install libmail-dkim-perl libnet-dns-perl)"
command -v rspamd >/dev/null || die_early "rspamd is not installed (apt-get install rspamd)"
# shellcheck source=../interop/rspamd.sh
. "$HERE/../interop/rspamd.sh"
trap rspamd_stop EXIT

rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
mkdir -p "$WORK/results/arcrelay"
# A private copy: a rebuild during the run must not change the binary
# under test half way.
cp "$ARC" "$WORK/arcrelay"
ARC=$WORK/arcrelay
NOW=$(date +%s)
echo "$NOW" > "$WORK/now.txt"
START=$SECONDS

# ---- build the keys, chains and tampered copies ---------------------------------
rc=0
"$PY" "$HERE/arc_harness.py" build "$WORK" --arcrelay "$ARC" --now "$NOW" \
    2> "$WORK/results/build.err" || rc=$?
if [ $rc -ne 0 ]; then
    echo "arcinterop: build step exited $rc; results/build.err says:" >&2
    tail -n 20 "$WORK/results/build.err" >&2 || true
fi
echo "build done ($((SECONDS - START))s)"

# ---- verify: dkimpy, Mail::DKIM and rspamd in the background, arcrelay in front ---
PY_PID=
PL_PID=
if [ -s "$WORK/lists/files.txt" ]; then
    rspamd_scan_bg "$WORK/rspamd" "$WORK/lists/rspamd.tsv" "$WORK/results/rspamd.jsonl" \
        "$WORK/zone.txt"
    "$PY" "$HERE/arc_harness.py" dkimpy "$WORK" \
        2> "$WORK/results/dkimpy.err" &
    PY_PID=$!
    "$PERL" "$HERE/arc_mdkim.pl" "$WORK/zone.json" "$WORK/lists/files.txt" \
        > "$WORK/results/mdkim.jsonl" 2> "$WORK/results/mdkim.err" &
    PL_PID=$!

    while IFS=$'\t' read -r id path; do
        r=$WORK/results/arcrelay/$id
        rc=0
        "$ARC" verify --dns-file "$WORK/zone.txt" --json "$path" > "$r.json" 2> "$r.err" || rc=$?
        echo "$rc" > "$r.rc"
    done < "$WORK/lists/arcrelay.tsv"
fi

if [ -n "$PY_PID" ]; then
    rc=0; wait "$PY_PID" || rc=$?
    [ $rc -eq 0 ] || echo "arcinterop: dkimpy driver exited $rc, see results/dkimpy.err" >&2
fi
if [ -n "$PL_PID" ]; then
    rc=0; wait "$PL_PID" || rc=$?
    [ $rc -eq 0 ] || echo "arcinterop: Mail::DKIM driver exited $rc, see results/mdkim.err" >&2
fi
rspamd_scan_wait arcinterop
echo "verification done ($((SECONDS - START))s)"

# ---- compare ------------------------------------------------------------------------
rc=0
"$PY" "$HERE/arc_harness.py" check "$WORK" || rc=$?
exit $rc
