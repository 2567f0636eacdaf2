#!/bin/bash
# tests/cli/run.sh - the CLI contract: exit statuses, exact output
# spellings, byte preservation, and failure reasons seen end to end.
# usage: run.sh ARCRELAY DATADIR WORKDIR
set -uo pipefail
A="$1"; DATA="$2"; W="$3"
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 2
pass=0; fail=0

check() {	# check NAME GOT WANT
	if [ "$2" == "$3" ]; then pass=$((pass + 1))
	else fail=$((fail + 1)); printf 'FAIL %s\n  got:  %s\n  want: %s\n' "$1" "$2" "$3"; fi
}
contains() {	# contains NAME HAYSTACK NEEDLE
	case "$2" in *"$3"*) pass=$((pass + 1)) ;;
	*) fail=$((fail + 1)); printf 'FAIL %s\n  got:  %s\n  want to contain: %s\n' "$1" "$2" "$3" ;; esac
}
status() { "$@" >/dev/null 2>&1; echo $?; }

# --- the RFC 8463 example verifies, in both output forms
out=$("$A" verify --dns-file "$DATA/rfc8463.zone" --authserv-id mx.example "$DATA/rfc8463.eml")
contains "rfc8463 A-R dmarc" "$out" "dmarc=none (no DMARC policy record for football.example.com"
out=$(echo "$out" | head -4)
check "rfc8463 A-R" "$out" "Authentication-Results: mx.example;
	dkim=pass (signature verified) header.d=football.example.com header.s=brisbane header.b=\"/gCrinpc\";
	dkim=pass (signature verified) header.d=football.example.com header.s=test header.b=F45dVWDf;
	arc=none (no ARC sets);"
out=$("$A" verify --json --dns-file "$DATA/rfc8463.zone" < "$DATA/rfc8463.eml")
contains "rfc8463 json spf" "$out" '"spf":{"result":"none","reason":"not evaluated: no envelope'
out=${out%%,\"spf\":*}}
check "rfc8463 json" "$out" '{"dkim":[{"result":"pass","reason":"signature verified","d":"football.example.com","s":"brisbane","a":"ed25519-sha256","b":"/gCrinpc"},{"result":"pass","reason":"signature verified","d":"football.example.com","s":"test","a":"rsa-sha256","b":"F45dVWDf"}],"arc":{"result":"none","instances":0,"oldest_pass":0,"reason":"no ARC sets"}}'

# --- exit statuses: 2 with one line on stderr for bad usage or input
printf '' > empty.eml
head -c 65536 /dev/urandom > junk.bin
{ printf 'Subject: '; head -c 10000000 /dev/zero | tr '\0' a; printf '\r\n\r\nx\r\n'; } > longline.eml
printf 'From: a@example.com\r\n\r\nno signature\r\n' > unsigned.eml
for t in "no command::" "unknown command:bogus:" "verify bad option:verify --bogus:" \
    "verify missing file:verify --dns-file $DATA/rfc8463.zone nonexistent.eml:" \
    "verify empty file:verify --dns-file $DATA/rfc8463.zone empty.eml:" \
    "verify binary junk:verify --dns-file $DATA/rfc8463.zone junk.bin:" \
    "verify 10MB line:verify --dns-file $DATA/rfc8463.zone longline.eml:" \
    "verify bad --now:verify --now yesterday --dns-file $DATA/rfc8463.zone unsigned.eml:" \
    "verify bad zone:verify --dns-file junk.bin unsigned.eml:" \
    "sign no key:sign --domain example.com --selector s unsigned.eml:" \
    "sign bad key file:sign --domain example.com --selector s --key junk.bin unsigned.eml:" \
    "keygen short bits:keygen --domain example.com --selector s --bits 512:"; do
	name=${t%%:*}; rest=${t#*:}; args=${rest%:}
	# shellcheck disable=SC2086
	check "$name: exit" "$(status "$A" $args)" 2
	# shellcheck disable=SC2086
	lines=$("$A" $args 2>&1 >/dev/null | wc -l)
	[ "$name" == "no command" ] || [ "$name" == "unknown command" ] || [ "$name" == "verify bad option" ] ||
		check "$name: one stderr line" "$lines" 1
done
check "unsigned message: exit 0" "$(status "$A" verify --dns-file "$DATA/rfc8463.zone" unsigned.eml)" 0
out=$("$A" verify --dns-file "$DATA/rfc8463.zone" --authserv-id x unsigned.eml | head -3)
check "unsigned message: dkim=none" "$out" "Authentication-Results: x;
	dkim=none (no signatures);
	arc=none (no ARC sets);"
out=$("$A" verify --json --dns-file "$DATA/rfc8463.zone" unsigned.eml)
out=${out%%,\"spf\":*}}
check "unsigned message: json" "$out" '{"dkim":[],"arc":{"result":"none","instances":0,"oldest_pass":0,"reason":"no ARC sets"}}'

# --- keygen: private key mode 0600, TXT strings of at most 255 bytes, no overwrite
"$A" keygen --domain example.com --selector rsa1 --out . >/dev/null
"$A" keygen --domain example.com --selector ed1 --type ed25519 --out . >/dev/null
check "keygen mode" "$(stat -c %a rsa1.private)" 600
longest=$(grep -o '"[^"]*"' rsa1.txt | awk '{ if (length($0) - 2 > m) m = length($0) - 2 } END { print m }')
[ "$longest" -le 255 ] && check "keygen strings <= 255" ok ok || check "keygen strings <= 255" "$longest" "<=255"
contains "keygen record" "$(cat ed1.txt)" 'ed1._domainkey.example.com. IN TXT'
check "keygen refuses overwrite" "$(status "$A" keygen --domain example.com --selector rsa1 --out .)" 2
cat rsa1.txt ed1.txt > zone
printf 'revoked._domainkey.example.com. IN TXT "v=DKIM1; k=rsa; p="\n' >> zone
printf 'broken._domainkey.example.com. IN TXT "v=DKIM1; k=rsa; p=!!!"\n' >> zone
printf 'down._domainkey.example.com. SERVFAIL\n' >> zone
cp rsa1.private revoked.private; cp rsa1.private broken.private; cp rsa1.private down.private

# --- sign: bytes unchanged, CRLF and LF-only
printf 'From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: test\r\n\r\nHello\r\n' > crlf.eml
tr -d '\r' < crlf.eml > lf.eml
"$A" sign --domain example.com --selector rsa1 --key rsa1.private crlf.eml > crlf.signed
check "sign keeps CRLF bytes" "$(awk 'f||!/^(DKIM-Signature:| )/{f=1} f' crlf.signed | cmp - crlf.eml && echo same)" same
"$A" sign --domain example.com --selector ed1 --key ed1.private lf.eml > lf.signed
check "sign keeps LF bytes" "$(awk 'f||!/^(DKIM-Signature:| )/{f=1} f' lf.signed | cmp - lf.eml && echo same)" same
check "LF output has no CR" "$(grep -c $'\r' lf.signed)" 0
dkimpart() { sed 's/,"arc":{.*//'; }
check "signed CRLF verifies" "$("$A" verify --json --dns-file zone crlf.signed | dkimpart | grep -o '"result":"[a-z]*"')" '"result":"pass"'
check "signed LF verifies" "$("$A" verify --json --dns-file zone lf.signed | dkimpart | grep -o '"result":"[a-z]*"')" '"result":"pass"'
maxcol=$(awk '{ sub(/\r$/, ""); if (length($0) > m) m = length($0) } END { print m }' <(sed -n '/^DKIM-Signature/,/^[^ D]/p' crlf.signed | head -n -1))
[ "$maxcol" -le 78 ] && check "folded at 78" ok ok || check "folded at 78" "$maxcol" "<=78"

# --- each failure reason end to end
dkimpart() { sed 's/,"arc":{.*//'; }
reason() { "$A" verify --json --now "${2:-$(date +%s)}" --dns-file zone "$1" | dkimpart | sed 's/.*"reason":"\([^"]*\)".*/\1/'; }
sed 's/^Hello/Hellp/' crlf.signed > body.eml
check "reason body hash" "$(reason body.eml)" "body hash did not verify"
sed 's/^Subject: test/Subject: tost/' crlf.signed > hdr.eml
check "reason signature" "$(reason hdr.eml)" "signature did not verify"
for sel in revoked broken down; do
	"$A" sign --domain example.com --selector $sel --key $sel.private crlf.eml > $sel.eml
done
"$A" sign --domain example.org --selector rsa1 --key rsa1.private crlf.eml > nokey.eml
check "reason revoked" "$(reason revoked.eml)" "key revoked"
contains "reason bad key record" "$(reason broken.eml)" "bad key record syntax"
check "reason DNS" "$(reason down.eml)" "DNS temporary failure"
check "reason no key" "$(reason nokey.eml)" "no key for signature"
"$A" sign --domain example.com --selector rsa1 --key rsa1.private --now 1000000000 --expire 3600 crlf.eml > exp.eml
check "reason expired" "$(reason exp.eml 1000007200)" "signature expired"
check "not yet expired" "$(reason exp.eml 1000000100)" "signature verified"
check "reason future" "$(reason exp.eml 999990000)" "signature from the future"

# --- testkey: each problem named, exit 1 when there are problems
tk() { "$A" testkey --domain example.com --selector "$1" --key "$2" --dns-file zone; }
check "testkey ok" "$(tk rsa1 rsa1.private >/dev/null; echo $?)" 0
contains "testkey ok line" "$(tk ed1 ed1.private)" "ok: ed25519 key, 256 bits"
check "testkey mismatch exit" "$(tk rsa1 ed1.private >/dev/null; echo $?)" 1
contains "testkey mismatch" "$(tk rsa1 ed1.private)" "the record is k=rsa but the private key is ed25519"
"$A" keygen --domain example.com --selector other --out . >/dev/null
contains "testkey wrong key" "$(tk rsa1 other.private)" "does not match the private key"
contains "testkey revoked" "$(tk revoked rsa1.private)" "key revoked"
contains "testkey missing" "$(tk nothere rsa1.private)" "no record (NXDOMAIN)"
contains "testkey syntax" "$(tk broken rsa1.private)" "bad key record syntax"

# --- serve --check: reads everything, writes nothing, says what is wrong
mkdir chk && cd chk || exit 2
check "check default: exit" "$(status "$A" serve --check)" 0
contains "check default: key to make" "$("$A" serve --check)" "not made yet: serve makes it on first start"
check "check default: nothing written" "$(ls -A)" ""
cp ../rsa1.private ../rsa1.txt .
cat > good.conf <<'CONF'
[server]
listen = 127.0.0.1:2599
hostname = relay.example.com
spool = ./spool
[delivery]
deliver = maildir:./box
[signing]
domain = example.com
selector = rsa1
key = ./rsa1.private
CONF
out=$("$A" serve --check --config good.conf)
check "check good: exit" "$(status "$A" serve --check --config good.conf)" 0
contains "check good: record as keygen wrote it" "$out" "$(cat rsa1.txt)"
contains "check good: verdict" "$out" "configuration OK"
check "check good: no spool, no maildir made" "$(ls -d spool box 2>/dev/null)" ""
touch notadir
sed 's|maildir:./box|maildir:./notadir|' good.conf > badbox.conf
check "check maildir: exit" "$(status "$A" serve --check --config badbox.conf)" 1
check "check maildir: the problem" "$("$A" serve --check --config badbox.conf 2>&1 >/dev/null)" \
	"arcrelay serve: maildir ./notadir: not a directory"
printf '[server]\nuser = no-such-user-here\n' > user.conf
check "check user: the problem" "$("$A" serve --check --config user.conf 2>&1 >/dev/null)" \
	"arcrelay serve: no such user: no-such-user-here"
printf '[server]\nbogus = 1\n' > syntax.conf
check "check refused file: exit" "$(status "$A" serve --check --config syntax.conf)" 2
check "check refused file: the line" "$("$A" serve --check --config syntax.conf 2>&1)" \
	"arcrelay serve: syntax.conf:2: unknown key bogus in [server]"
check "check: still nothing written" "$(ls -d spool box var 2>/dev/null)" ""
cd ..

# --- queue: a read-only listing, peer text escaped, usage errors exit 2
mkdir -p sp/queue
check "queue empty" "$("$A" queue --spool sp; echo "rc=$?")" "queue is empty
rc=0"
check "queue empty json" "$("$A" queue --spool sp --json | sed 's/"now":[0-9]*/"now":N/')" \
	'{"spool":"sp","now":N,"messages":[],"corrupt":[],"total":{"messages":0,"recipients_pending":0,"bytes":0}}'
env='arcrelay-envelope 1
id 0661A1D0216954000001AAAAAAAA
first-seen 1700000000
bounce 0
sender =ev%1Bil@x.test
rcpts 2
rcpt pending 2 4000000000 =b%0A@y.test =451%204.0.0%20no%07
rcpt delivered 1 0 =c\@y.test =250%20ok
'
{ printf '%s' "$env"; printf 'sha256 %s\n' "$(printf '%s' "$env" | sha256sum | cut -d' ' -f1)"; } \
	> sp/queue/0661A1D0216954000001AAAAAAAA.env
printf 'x\r\n' > sp/queue/0661A1D0216954000001AAAAAAAA.msg
printf 'junk\n' > sp/queue/ZZZ1.env
printf 'y\r\n' > sp/queue/ZZZ1.msg
before=$(ls -lR --time-style=full-iso sp)
out=$("$A" queue --spool sp); rc=$?
check "queue listing exit" "$rc" 0
check "queue listing" "$(echo "$out" | sed 's/ age=[0-9dhms]* / age=A /; s/next=in [0-9dhms]* /next=in N /')" \
"0661A1D0216954000001AAAAAAAA size=3 age=A from=<ev\x1Bil@x.test>
  to=<b\x0A@y.test> state=pending attempts=2 next=in N (2096-10-02T07:06:40Z)
    reply: 451 4.0.0 no\x07
  to=<c\\\\@y.test> state=delivered attempts=1
    reply: 250 ok
ZZZ1.env corrupt: truncated: no sha256 line at the end (left in place)

1 message, 1 recipient pending, 1 KB, 1 corrupt entry"
check "queue listing changes nothing" "$(ls -lR --time-style=full-iso sp)" "$before"
out=$("$A" queue --spool sp --json)
check "queue json parses" "$(printf '%s' "$out" | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
m = j["messages"][0]
print(m["sender"] == "ev\x1bil@x.test", [r["address"] for r in m["recipients"]],
      m["recipients"][0]["last_reply"], j["corrupt"], j["total"])')" \
	"True ['b\n@y.test', 'c\\\\@y.test'] 451 4.0.0 no"$'\a'" [{'entry': 'ZZZ1.env', 'reason': 'truncated: no sha256 line at the end'}] {'messages': 1, 'recipients_pending': 1, 'bytes': 3}"
for t in "bad option:queue --bogus" "missing spool:queue --spool nowhere" \
    "pid without flush:queue --pid 1" "flush and json:queue --flush --json" \
    "bad pid:queue --flush --pid 12x" "pid and config:queue --flush --pid 1 --spool sp" \
    "no pid file:queue --flush --spool sp" "pid 1 is not arcrelay:queue --flush --pid 1" \
    "extra argument:queue --spool sp extra"; do
	name=${t%%:*}; args=${t#*:}
	# shellcheck disable=SC2086
	check "queue $name: exit" "$(status "$A" $args)" 2
	# shellcheck disable=SC2086
	lines=$("$A" $args 2>&1 >/dev/null | wc -l)
	[ "$name" == "bad option" ] || check "queue $name: one stderr line" "$lines" 1
done
check "queue on a missing spool creates nothing" "$(ls -d nowhere 2>&1 >/dev/null | wc -l)" 1

# --- serve: an MX that resolves to the address serve listens on, under
# another name, is the relay itself (the mail bounces as a loop, not
# handed back to it)
mkdir self && cd self || exit 2
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'loop.test. MX 10 other-name.example.\nother-name.example. A 127.0.0.1\n' > zone
printf '[server]\nlisten = 127.0.0.1:%s\nhostname = relay.example\nspool = ./spool\n[dns]\nrecords = ./zone\n[delivery]\ndeliver = mx\n[domain loop.test]\n' \
	"$port" > self.conf
"$A" serve --config self.conf > serve.log 2>&1 &
spid=$!
/usr/bin/python3 - "$port" <<'PY'
import smtplib, sys, time
for _ in range(100):
    try:
        s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
        break
    except OSError:
        time.sleep(0.05)
s.sendmail("", ["x@loop.test"], b"From: a@b.example\r\nTo: x@loop.test\r\n"
           b"Subject: t\r\nMessage-ID: <self@b.example>\r\n"
           b"Date: Wed, 02 Dec 2026 12:00:00 +0000\r\n\r\nhi\r\n")
s.quit()
PY
for _ in $(seq 100); do grep -q 'status=bounced' serve.log && break; sleep 0.1; done
kill "$spid"; wait "$spid"
contains "serve: an MX at its own listening address loops back" "$(grep 'to=<x@loop.test>' serve.log)" \
	'status=bounced relay=none delay=0s reply="mail for loop.test loops back to this relay'
cd ..

printf '%d passed, %d failed\n' "$pass" "$fail"
[ "$fail" -eq 0 ]
