#!/usr/bin/env bash
# run.sh - DKIM interop between arcrelay, dkimpy, Perl Mail::DKIM, OpenDKIM
# and rspamd.
#
# Usage: run.sh ARCRELAY_BINARY WORKDIR
#        run.sh --no-arcrelay WORKDIR   (dkimpy <-> Mail::DKIM only, keys
#                                        from openssl; for harness work)
#
# WORKDIR is wiped and rebuilt.  The run: keys from `arcrelay keygen`, a
# generated corpus, the corpus signed by arcrelay and by dkimpy, tampered
# and footer-appended copies, every case verified by all of them, then
# harness.py check compares.  Exit status 0 only if every check passed;
# the last line printed is "N passed, M failed".
#
# dkimpy, Mail::DKIM and OpenDKIM each run as one process over the whole
# case list (OpenDKIM verifies only: its test mode does not sign), rspamd
# as one private daemon scanning them all; arcrelay runs once per message.

set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 ARCRELAY_BINARY|--no-arcrelay WORKDIR" >&2
    exit 2
fi

HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3          # Debian's, which has dkimpy (python3-dkim)
export PYTHONDONTWRITEBYTECODE=1   # keep the source tree clean
PERL=/usr/bin/perl
ARC=$1
WORK=$2
DOMAIN=example.com
RSA_SEL=rsa2048              # the selector names harness.py expects
ED_SEL=ed25519

die_early() {
    # Nothing can be compared; still end with the summary line ctest greps.
    echo "interop: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

NO_ARC=0
if [ "$ARC" = "--no-arcrelay" ]; then
    NO_ARC=1
elif [ ! -x "$ARC" ]; then
    die_early "arcrelay binary not found or not executable: $ARC"
fi

"$PY" -c 'import dkim, nacl, cryptography' 2>/dev/null ||
    die_early "$PY lacks dkimpy/pynacl/cryptography (apt-get install python3-dkim python3-nacl python3-cryptography)"
"$PERL" -MMail::DKIM::Verifier -MNet::DNS -MJSON::PP -e 1 2>/dev/null ||
    die_early "Perl lacks Mail::DKIM or Net::DNS (apt-get install libmail-dkim-perl)"
ODK=/usr/sbin/opendkim
[ -x "$ODK" ] || die_early "OpenDKIM is not installed (apt-get install opendkim)"
if [ $NO_ARC -eq 0 ]; then
    command -v rspamd >/dev/null || die_early "rspamd is not installed (apt-get install rspamd)"
fi
# shellcheck source=rspamd.sh
. "$HERE/rspamd.sh"
trap rspamd_stop EXIT

rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
mkdir -p "$WORK"/keys "$WORK"/signed-arc "$WORK"/signed-arc-lf "$WORK"/signed-arc-stdin \
         "$WORK"/signed-py "$WORK"/results/sign "$WORK"/results/sign-lf \
         "$WORK"/results/sign-stdin "$WORK"/results/arcrelay
NOW=$(date +%s)
echo "$NOW" > "$WORK/now.txt"
if [ $NO_ARC -eq 0 ]; then
    # Run a private copy: a rebuild during the run must not change the
    # binary under test half way.
    cp "$ARC" "$WORK/arcrelay"
    ARC=$WORK/arcrelay
fi
START=$SECONDS

# ---- keys and zone -------------------------------------------------------------
if [ $NO_ARC -eq 1 ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$WORK/keys/$RSA_SEL.private" 2>/dev/null
    openssl genpkey -algorithm ed25519 -out "$WORK/keys/$ED_SEL.private"
    "$PY" "$HERE/dkimpy_driver.py" mkzone --domain $DOMAIN \
        --rsa-key "$WORK/keys/$RSA_SEL.private" --rsa-selector $RSA_SEL \
        --ed-key "$WORK/keys/$ED_SEL.private" --ed-selector $ED_SEL > "$WORK/zone.txt"
else
    "$ARC" keygen --domain $DOMAIN --selector $RSA_SEL --type rsa --bits 2048 \
        --out "$WORK/keys" > "$WORK/results/keygen-rsa.out" 2>&1 ||
        die_early "arcrelay keygen rsa failed: $(head -c 500 "$WORK/results/keygen-rsa.out")"
    "$ARC" keygen --domain $DOMAIN --selector $ED_SEL --type ed25519 \
        --out "$WORK/keys" > "$WORK/results/keygen-ed.out" 2>&1 ||
        die_early "arcrelay keygen ed25519 failed: $(head -c 500 "$WORK/results/keygen-ed.out")"
    for s in $RSA_SEL $ED_SEL; do
        [ -s "$WORK/keys/$s.private" ] && [ -s "$WORK/keys/$s.txt" ] ||
            die_early "arcrelay keygen did not write keys/$s.private and keys/$s.txt"
    done
    cat "$WORK/keys/$RSA_SEL.txt" "$WORK/keys/$ED_SEL.txt" > "$WORK/zone.txt"
fi

# ---- corpus ----------------------------------------------------------------------
"$PY" "$HERE/gen_corpus.py" "$WORK/corpus"
mkdir -p "$WORK/corpus-lf"
"$PY" "$HERE/harness.py" sign-plan "$WORK" --now "$NOW" > "$WORK/sign-plan.tsv"

# ---- arcrelay signs ----------------------------------------------------------------
if [ $NO_ARC -eq 0 ]; then
    while IFS=$'\t' read -r -a f; do
        src=${f[0]}
        out=$WORK/${f[1]}
        name=$(basename "$out")
        case "$out" in
            */signed-arc-lf/*) res=$WORK/results/sign-lf/$name ;;
            */signed-arc-stdin/*) res=$WORK/results/sign-stdin/$name ;;
            *) res=$WORK/results/sign/$name ;;
        esac
        rc=0
        case "$src" in
            stdin:*) "$ARC" sign "${f[@]:2}" - < "${src#stdin:}" > "$out" 2> "$res.err" || rc=$? ;;
            *) "$ARC" sign "${f[@]:2}" "$src" > "$out" 2> "$res.err" || rc=$? ;;
        esac
        echo "$rc" > "$res.rc"
        [ "$rc" -eq 0 ] || rm -f "$out"
    done < "$WORK/sign-plan.tsv"
    echo "arcrelay sign done ($((SECONDS - START))s)"
fi

# ---- dkimpy signs ----------------------------------------------------------------
"$PY" "$HERE/dkimpy_driver.py" sign --manifest "$WORK/corpus/manifest.json" \
    --corpus "$WORK/corpus" --out "$WORK/signed-py" --domain $DOMAIN \
    --rsa-key "$WORK/keys/$RSA_SEL.private" --rsa-selector $RSA_SEL \
    --ed-key "$WORK/keys/$ED_SEL.private" --ed-selector $ED_SEL \
    > "$WORK/results/dkimpy-sign.jsonl" 2> "$WORK/results/dkimpy-sign.err" ||
    echo "interop: dkimpy signing driver failed, see results/dkimpy-sign.err" >&2

# ---- derive the cases --------------------------------------------------------------
PREP_FLAGS=()
[ $NO_ARC -eq 1 ] && PREP_FLAGS=(--no-arcrelay)
"$PY" "$HERE/harness.py" prepare "$WORK" "${PREP_FLAGS[@]}"

# ---- verify: dkimpy, Mail::DKIM, OpenDKIM and rspamd in the background, arcrelay in front
if command -v rspamd >/dev/null; then
    rspamd_scan_bg "$WORK/rspamd" "$WORK/lists/rspamd.txt" "$WORK/results/rspamd.jsonl" \
        "$WORK/zone.txt"
fi
"$PY" "$HERE/dkimpy_driver.py" verify --zone "$WORK/zone.txt" --list "$WORK/lists/dkimpy.txt" \
    > "$WORK/results/dkimpy.jsonl" 2> "$WORK/results/dkimpy.err" &
PY_PID=$!
"$PERL" "$HERE/mdkim_driver.pl" "$WORK/zone.txt" "$WORK/lists/mdkim.txt" \
    > "$WORK/results/mdkim.jsonl" 2> "$WORK/results/mdkim.err" &
PL_PID=$!
"$PY" "$HERE/opendkim_driver.py" --opendkim "$ODK" --zone "$WORK/zone.txt" \
    --list "$WORK/lists/opendkim.txt" --work "$WORK" \
    > "$WORK/results/opendkim.jsonl" 2> "$WORK/results/opendkim.err" &
OD_PID=$!

if [ $NO_ARC -eq 0 ]; then
    while IFS=$'\t' read -r id path; do
        r=$WORK/results/arcrelay/$id
        rc=0
        case "$path" in
            stdin:*) "$ARC" verify --dns-file "$WORK/zone.txt" --json - < "${path#stdin:}" \
                         > "$r.json" 2> "$r.err" || rc=$? ;;
            *) "$ARC" verify --dns-file "$WORK/zone.txt" --json "$path" \
                   > "$r.json" 2> "$r.err" || rc=$? ;;
        esac
        echo "$rc" > "$r.rc"
    done < "$WORK/lists/arcrelay.txt"
fi

rc=0; wait $PY_PID || rc=$?
[ $rc -eq 0 ] || echo "interop: dkimpy verify driver exited $rc, see results/dkimpy.err" >&2
rc=0; wait $PL_PID || rc=$?
[ $rc -eq 0 ] || echo "interop: Mail::DKIM driver exited $rc, see results/mdkim.err" >&2
rc=0; wait $OD_PID || rc=$?
[ $rc -eq 0 ] || echo "interop: OpenDKIM driver exited $rc, see results/opendkim.err" >&2
rspamd_scan_wait interop
echo "verification done ($((SECONDS - START))s)"

# ---- compare -----------------------------------------------------------------------
CHECK_FLAGS=()
[ $NO_ARC -eq 1 ] && CHECK_FLAGS=(--no-arcrelay)
rc=0
"$PY" "$HERE/harness.py" check "$WORK" "${CHECK_FLAGS[@]}" || rc=$?
exit $rc
