#!/bin/sh
# smtpload_smoke.sh SMTPLOAD WORKDIR - smtpload send into smtpload sink:
# 20 messages over 4 sessions all counted, one in 7 kept byte for byte
# (--keep), SIGTERM ends the sink with 0, and sending to the closed port counts 20 errors instead of crashing.
set -u
load=$1
work=$2
rm -rf "$work" && mkdir -p "$work/pool" || exit 1
cd "$work" || exit 1
fail() { echo "FAIL: $*"; kill "$sink" 2>/dev/null; exit 1; }

# Ready to send: dot-stuffed, ending in CRLF "." CRLF.
printf 'Subject: one\r\n\r\nplain\r\n.\r\n' >pool/1.eml
printf 'Subject: two\r\n\r\n..a stuffed dot\r\n..\r\nend\r\n.\r\n' >pool/2.eml
printf 'Subject: three\r\n\r\n.\r\n' >pool/3.eml

mkdir kept
"$load" sink --port 0 --count-file count --keep kept --keep-every 7 >sink.out 2>sink.err &
sink=$!
i=0
while [ ! -f count ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -f count ] || fail "the sink did not start: $(cat sink.err)"
port=$(sed -n 's/^listening //p' sink.out)
[ -n "$port" ] || fail "no port in sink.out"

out=$("$load" send --port "$port" --clients 4 --messages 20 --pool pool)
rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "send exited $rc"
case "$out" in
*"ok=20 errors=0 "*) ;;
*) fail "want ok=20 errors=0, got: $out" ;;
esac
i=0
while [ "$(cat count)" != 20 ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i + 1)); done
[ "$(cat count)" = 20 ] || fail "sink count: got $(cat count), want 20"
kept=$(ls kept | sort -n | tr '\n' ' ')
[ "$kept" = "1.eml 8.eml 15.eml " ] || fail "kept: got '$kept', want '1.eml 8.eml 15.eml '"
for f in kept/*.eml; do
	cmp -s "$f" pool/1.eml || cmp -s "$f" pool/2.eml || cmp -s "$f" pool/3.eml ||
	    fail "$f is none of the pool's messages: $(od -c "$f" | head -5)"
done

kill -TERM "$sink"
wait "$sink"
rc=$?
[ $rc -eq 0 ] || fail "the sink exited $rc after SIGTERM, want 0"

out=$("$load" send --port "$port" --clients 4 --messages 20 --pool pool 2>send.err)
rc=$?
echo "$out"
[ $rc -eq 1 ] || fail "send to a closed port exited $rc, want 1"
case "$out" in
*"ok=0 errors=20 "*) ;;
*) fail "closed port: want ok=0 errors=20, got: $out" ;;
esac
echo "smtpload smoke: passed"
