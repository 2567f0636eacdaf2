#!/bin/bash
# tests/diagnose/run.sh - `arcrelay diagnose` end to end: messages signed
# and sealed by arcrelay itself (keys from `arcrelay keygen`, records in a
# zone file), then broken in one way each; every case asserts the cause
# code, and the appended-line count where there is one.
# usage: run.sh ARCRELAY WORKDIR [json]
#   json: also check that every JSON output parses (/usr/bin/python3)
set -uo pipefail
A="$1"; W="$2"; JSONCHECK="${3:-}"
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 2
pass=0; fail=0
NOW=1700000100

check() {	# check NAME GOT WANT
	if [ "$2" == "$3" ]; then pass=$((pass + 1))
	else fail=$((fail + 1)); printf 'FAIL %s\n  got:  %s\n  want: %s\n' "$1" "$2" "$3"; fi
}
contains() {	# contains NAME HAYSTACK NEEDLE
	case "$2" in *"$3"*) pass=$((pass + 1)) ;;
	*) fail=$((fail + 1)); printf 'FAIL %s\n  got:  %s\n  want to contain: %s\n' "$1" "$2" "$3" ;; esac
}
status() { "$@" >/dev/null 2>&1; echo $?; }
# json FILE [ZONE] - the diagnosis as JSON (checked to parse when asked)
json() {
	local out
	out=$("$A" diagnose --json --dns-file "${2:-zone}" --now "$NOW" "$1")
	if [ "$JSONCHECK" == json ] && ! printf '%s' "$out" | /usr/bin/python3 -m json.tool >/dev/null 2>&1; then
		fail=$((fail + 1)); printf 'FAIL %s: output is not JSON\n  %s\n' "$1" "$out"
	fi
	printf '%s' "$out"
}
# field NAME - the first "NAME": value of the JSON on stdin
field() { grep -o "\"$1\":\\(\"[^\"]*\"\\|[0-9a-z]*\\)" | head -1 | sed 's/^"[^"]*"://; s/^"//; s/"$//'; }
cause() { json "$@" | field cause; }
sign() {	# sign IN OUT [args...]
	local in=$1 out=$2; shift 2
	"$A" sign --domain example.com --key rsa1.private --now 1700000000 "$@" "$in" > "$out"
}

# zl SELECTOR RECORD - a zone line, the record in strings of 200 octets
zl() {
	local r=$2 out="$1._domainkey.example.com. IN TXT (" i
	for ((i = 0; i < ${#r}; i += 200)); do out+=" \"${r:i:200}\""; done
	echo "$out )"
}

# --- keys and records
"$A" keygen --domain example.com --selector rsa1 --out . >/dev/null
"$A" keygen --domain example.com --selector ed1 --type ed25519 --out . >/dev/null
mkdir h1 h2
"$A" keygen --domain hop1.example --selector arc --out h1 >/dev/null
"$A" keygen --domain hop2.example --selector arc --out h2 >/dev/null
rec=$(grep -o '"[^"]*"' rsa1.txt | tr -d '"\n'); P=${rec#*p=}
edrec=$(grep -o '"[^"]*"' ed1.txt | tr -d '"\n')
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:512 -out short.pem 2>/dev/null
SP=$(openssl pkey -in short.pem -pubout -outform DER 2>/dev/null | base64 -w0)
{
	cat rsa1.txt ed1.txt h1/arc.txt h2/arc.txt
	zl revoked "v=DKIM1; k=rsa; p="
	zl testing "v=DKIM1; k=rsa; t=y; p=$P"
	zl ktype "v=DKIM1; k=ed25519; p=$P"
	zl edkey "$edrec"
	zl short "v=DKIM1; k=rsa; p=$SP"
	zl quote "v=DKIM1; k=rsa; p=${P:0:200}\\\" \\\"${P:200}"
	zl trunc "v=DKIM1; k=rsa; p=${P:0:200}"
	zl lost "v=DKIM1; k=rsa; p=${P:0:201}"
	zl hash "v=DKIM1; k=rsa; h=sha1; p=$P"
	zl service "v=DKIM1; k=rsa; s=other; p=$P"
	zl spf "v=spf1 -all"
	echo "down._domainkey.example.com. SERVFAIL"
} > zone

# --- messages
printf 'From: Alice <alice@example.com>\r\nTo: team@lists.example\r\nSubject: Re: Meeting notes\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello all,\r\nhere are the notes.\r\n\r\nAlice\r\n' > base.eml
printf 'From: Alice <alice@example.com>\r\nTo: team@lists.example\r\nSubject: Notes for the quarterly planning session of the infrastructure group\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nHello all,\r\n' > long.eml
sign base.eml rr.eml --selector rsa1
sign base.eml ss.eml --selector rsa1 --canon simple/simple
sign long.eml longss.eml --selector rsa1 --canon simple/simple
"$A" sign --domain example.com --selector ed1 --key ed1.private --now 1700000000 base.eml > ed.eml

# --- untouched messages pass
for m in rr ss longss ed; do check "untouched $m" "$(cause $m.eml)" pass; done
check "untouched: result" "$(json rr.eml | field result)" pass
check "untouched: text" "$("$A" diagnose --dns-file zone --now $NOW rr.eml | head -1 | sed 's/ b=.*:/:/')" \
	"DKIM-Signature d=example.com s=rsa1: pass (signature verified)"

# --- body
{ cat rr.eml; printf -- '-- \r\nteam mailing list: unsubscribe at https://lists.example/\r\n'; } > footer.eml
out=$(json footer.eml)
check "footer: cause" "$(echo "$out" | field cause)" body-appended
check "footer: lines" "$(echo "$out" | field appended_lines)" 2
check "footer: first line" "$(echo "$out" | field first_appended_line)" "-- "
# The empty line first is part of the matching prefix: canonicalization
# drops empty lines at the end, so it cannot be told from the signed body.
{ cat ss.eml; printf '\r\n_______________________________________________\r\nteam "list" \x01\r\nhttps://lists.example/\r\n'; } > footer2.eml
out=$(json footer2.eml)
check "footer simple: cause" "$(echo "$out" | field cause)" body-appended
check "footer simple: lines" "$(echo "$out" | field appended_lines)" 3
check "footer simple: first non-empty line" "$(echo "$out" | field first_appended_line)" "_______________________________________________"
contains "footer text" "$("$A" diagnose --dns-file zone --now $NOW footer2.eml)" "3 lines were appended after signing"
{ cat ss.eml; printf 'team "list" \x01 \xc3\xa9\r\n'; } > footer3.eml
contains "appended line escaped in text" "$("$A" diagnose --dns-file zone --now $NOW footer3.eml)" \
	'the first that is not empty: "team \"list\" \x01 \xc3\xa9"'
contains "appended line escaped in JSON" "$(json footer3.eml)" "\"first_appended_line\":\"team \\\"list\\\" \\u0001 $(printf '\xc3\xa9')\""
{ cat ss.eml; printf 'x%.0s' {1..200}; printf '\r\n'; } > longline.eml
check "footer: line cut at 80" "$(json longline.eml | field first_appended_line | wc -c)" 81
tr -d '\r' < footer.eml > footer-lf.eml
check "footer, LF-only file" "$(cause footer-lf.eml)" body-appended

sed 's/^here are the notes\.\r$/here are the notes.  \r/' ss.eml > trail.eml
check "trailing white space (simple)" "$(cause trail.eml)" body-whitespace
sed 's/^here are the notes\.\r$/here are\tthe notes.\r/' ss.eml > canon.eml
check "white space inside a line (simple)" "$(cause canon.eml)" body-canon
for m in ss rr; do
	awk 'b { sub(/\r$/, "") } { print } /^\r$/ { b = 1 }' $m.eml > lf-$m.eml
	check "CRLF -> LF in the body ($m)" "$(cause lf-$m.eml)" body-line-endings
done
# The signer hashed bare LFs, a later hop turned them into CRLF.
printf 'From: Alice <alice@example.com>\r\nSubject: bare\r\n\r\nline one\nline two\n' > bare.eml
sign bare.eml bare-s.eml --selector rsa1 --canon simple/simple
awk 'b { sub(/\r?$/, "\r") } { print } /^\r$/ { b = 1 }' bare-s.eml > bare-crlf.eml
check "bare LF -> CRLF" "$(cause bare-crlf.eml)" body-line-endings
sed 's/\r$/\r\r/' ss.eml | awk 'b { print; next } { sub(/\r\r$/, "\r"); print } /^\r$/ { b = 1 }' > crcrlf.eml
check "CR CR LF line ends" "$(cause crcrlf.eml)" body-line-endings
printf 'From: Alice <alice@example.com>\r\nSubject: sig\r\n\r\nHello\r\n-- \r\nAlice\r\n' > dash.eml
sign dash.eml dash-s.eml --selector rsa1 --canon simple/simple
sed 's/^-- \r$/--\r/' dash-s.eml > dash-cut.eml
check "signature separator stripped" "$(cause dash-cut.eml)" body-whitespace
sed 's/^here are/HERE are/' rr.eml > changed.eml
check "body changed" "$(cause changed.eml)" body-changed

# --- header
sed 's/^Subject: Re: Meeting/Subject: [team] Re: Meeting/' rr.eml > tag.eml
check "subject tag" "$(cause tag.eml)" header-subject-tag
contains "subject tag: detail" "$(json tag.eml )" 'the tag \"[team]\"'
sed 's/^Subject: Re: Meeting/Subject: Re: [team] Meeting/' ss.eml > tag2.eml
check "subject tag after Re: (simple)" "$(cause tag2.eml)" header-subject-tag
sed 's/^From: Alice <alice@example.com>/From: Alice via team <team@lists.example>\r\nX-Original-From: Alice <alice@example.com>/' rr.eml > from.eml
check "From rewritten" "$(cause from.eml)" header-from-rewritten
sign base.eml rt.eml --selector rsa1 --headers from:to:subject:date:reply-to
sed 's/^From: Alice <alice@example.com>/From: Alice via team <team@lists.example>\r\nReply-To: Alice <alice@example.com>\r\nX-Original-From: Alice <alice@example.com>/' rt.eml > from-rt.eml
check "From rewritten, Reply-To added" "$(cause from-rt.eml)" header-from-rewritten
contains "From rewritten, Reply-To added: detail" "$(json from-rt.eml )" "a Reply-To field was added"
sed 's/^\(Subject: .*\) \(infrastructure group\)\r$/\1\r\n \2\r/' longss.eml > refold.eml
check "re-folded (simple)" "$(cause refold.eml)" header-refolded
contains "re-folded: names the field" "$(json refold.eml )" "(Subject)"
sign long.eml longrr.eml --selector rsa1
sed 's/^\(Subject: .*\) \(infrastructure group\)\r$/\1\r\n \2\r/' longrr.eml > refold-r.eml
check "re-folded (relaxed) passes" "$(cause refold-r.eml)" pass
awk '/^\r$/ && !d { printf "Subject: second\r\n"; d = 1 } { print }' rr.eml > added.eml
out=$(json added.eml)
check "Subject added" "$(echo "$out" | field cause)" header-added
contains "Subject added: detail" "$(echo "$out" )" "2 Subject fields now, 1 signed"
{ printf 'Subject: on top\r\n'; cat rr.eml; } > added-top.eml
check "Subject added on top passes" "$(cause added-top.eml)" pass
sed 's/^To: team@/To: other@/' rr.eml > to.eml
check "header changed" "$(cause to.eml)" header-changed
contains "header changed: h=" "$(json to.eml )" "h=from:"
{ sed 's/^Subject: Re: Meeting/Subject: [team] Re: Meeting/' rr.eml; printf -- '-- \r\nteam\r\n'; } > list.eml
out=$(json list.eml)
check "list: body first" "$(echo "$out" | field cause)" body-appended
contains "list: header too" "$out" '"also":[{"cause":"header-subject-tag"'

# --- keys
for t in "nothere:key-missing" "revoked:key-revoked" "ktype:key-type" "edkey:key-type" \
    "quote:key-malformed" "trunc:key-malformed" "lost:key-malformed" "hash:key-hash" \
    "service:key-service" "spf:key-malformed" "down:key-dns"; do
	sel=${t%%:*}; want=${t#*:}
	sign base.eml k-$sel.eml --selector $sel
	check "key $sel" "$(cause k-$sel.eml)" "$want"
done
contains "key quote: repaired" "$(json k-quote.eml )" "without the quotes and spaces it is a valid 2048-bit rsa key"
contains "key truncated: DER" "$(json k-trunc.eml )" "is truncated: the key's DER says 294 octets"
contains "key lost characters" "$(json k-lost.eml )" "not a multiple of 4"
contains "key type: p= is rsa" "$(json k-ktype.eml )" "says k=ed25519 but p= holds an rsa key"
sign base.eml k-testing.eml --selector testing
check "key t=y, passing" "$(cause k-testing.eml)" key-testing
check "key t=y, passing: result" "$(json k-testing.eml | field result)" pass
sed 's/^here are/HERE are/' k-testing.eml > k-testing-bad.eml
out=$(json k-testing-bad.eml)
check "key t=y, failing: cause" "$(echo "$out" | field cause)" body-changed
check "key t=y, failing: testing" "$(echo "$out" | field testing)" true
# A 512-bit key: arcrelay refuses to sign with it, so openssl does.
bh=$(printf 'Hello\r\n' | openssl dgst -sha256 -binary | base64 -w0)
sv="v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=short; t=1700000000; h=from:subject; bh=$bh; b="
b=$(printf 'from:Alice <alice@example.com>\r\nsubject:test\r\ndkim-signature:%s' "$sv" |
	openssl dgst -sha256 -sign short.pem | base64 -w0)
printf 'DKIM-Signature: %s%s\r\nFrom: Alice <alice@example.com>\r\nSubject: test\r\n\r\nHello\r\n' "$sv" "$b" > k-short.eml
out=$(json k-short.eml)
check "key 512 bits" "$(echo "$out" | field cause)" key-too-short
check "key 512 bits: signature itself fine" "$(echo "$out" | grep -c '"also":\[\]')" 1

# --- time and signature
sign base.eml exp.eml --selector rsa1 --expire 50
check "expired" "$(cause exp.eml)" expired
"$A" sign --domain example.com --selector rsa1 --key rsa1.private --now 1800000000 base.eml > future.eml
check "future" "$(cause future.eml)" future
sed 's/^DKIM-Signature: v=1;/DKIM-Signature: v=2;/' rr.eml > badsig.eml
check "signature does not parse" "$(cause badsig.eml)" sig-malformed

# --- ARC: sealed at hop 1, modified, sealed at hop 2
seal() {	# seal HOP IN OUT [args]
	local hop=$1 in=$2 out=$3; shift 3
	"$A" seal --domain hop$hop.example --selector arc --key h$hop/arc.private \
		--authserv-id mx.hop$hop.example --dns-file zone --now $((1700000000 + 10 * hop)) \
		"$@" "$in" > "$out"
}
seal 1 rr.eml arc1.eml
{ cat arc1.eml; printf -- '-- \r\nfooter added between the hops\r\n'; } > arc1m.eml
seal 2 arc1m.eml arc2.eml
out=$(json arc2.eml)
check "arc: dkim cause" "$(echo "$out" | field cause)" body-appended
check "arc: broke after hop" "$(echo "$out" | sed 's/.*"broke_after_hop"://; s/}$//')" 1
check "arc: passed at hop" "$(echo "$out" | field passed_at_hop)" 1
check "arc: AMS results" "$(echo "$out" | grep -o '"ams":"[a-z]*"' | tr '\n' ' ')" '"ams":"fail" "ams":"pass" '
check "arc: recorded" "$(echo "$out" | grep -o '"recorded":\[{"result":"[a-z]*"' | tr '\n' ' ')" \
	'"recorded":[{"result":"pass" "recorded":[{"result":"fail" '
contains "arc: detail" "$(echo "$out" )" "AMS i=1 fails too, so the change happened after hop 1 (mx.hop1.example) sealed the message and before hop i=2"
check "arc: authserv-id" "$(echo "$out" | field authserv_id)" mx.hop1.example
contains "arc: text" "$("$A" diagnose --dns-file zone --now $NOW arc2.eml)" "broke after hop 1"
# A list that checked, then changed the message, then sealed it.
{ printf 'Authentication-Results: mx.hop1.example; dkim=pass header.d=example.com header.b=%s\r\n' \
	"$(json rr.eml | field b)"; sed 's/^Subject: Re: Meeting/Subject: [team] Re: Meeting/' rr.eml
  printf -- '-- \r\nteam\r\n'; } > list0.eml
seal 1 list0.eml list1.eml --use-authres
out=$(json list1.eml)
check "arc list: broke after hop" "$(echo "$out" | sed 's/.*"broke_after_hop"://; s/}$//')" 1
contains "arc list: detail" "$(echo "$out" )" "AMS i=1 still verifies, so the message is as hop 1 sealed it: the change was made at hop 1"
seal 1 rr.eml arc-ok.eml
check "arc untouched: cause" "$(cause arc-ok.eml)" pass
check "arc untouched: broke after hop" "$(json arc-ok.eml | sed 's/.*"broke_after_hop"://; s/}$//')" null

# --- exit statuses: 2 with one line on stderr
printf '' > empty.eml
printf 'From: a@example.com\r\n\r\nunsigned\r\n' > unsigned.eml
for t in "missing file:--dns-file zone nonexistent.eml" "empty file:--dns-file zone empty.eml" \
    "bad --now:--now yesterday --dns-file zone rr.eml" "bad zone:--dns-file rr.eml rr.eml" \
    "two files:--dns-file zone rr.eml rr.eml"; do
	name=${t%%:*}; args=${t#*:}
	# shellcheck disable=SC2086
	check "$name: exit" "$(status "$A" diagnose $args)" 2
	# shellcheck disable=SC2086
	check "$name: one stderr line" "$("$A" diagnose $args 2>&1 >/dev/null | wc -l)" 1
done
check "bad option: exit" "$(status "$A" diagnose --bogus rr.eml)" 2
check "unsigned: exit" "$(status "$A" diagnose --dns-file zone unsigned.eml)" 0
check "unsigned: text" "$("$A" diagnose --dns-file zone unsigned.eml)" "no DKIM signatures"
check "unsigned: json" "$(json unsigned.eml)" '{"signatures":[],"arc":[],"arc_chain":{"result":"none","reason":"no ARC sets"},"broke_after_hop":null}'
check "stdin" "$("$A" diagnose --json --dns-file zone --now $NOW - < footer.eml | field cause)" body-appended

printf '%d passed, %d failed\n' "$pass" "$fail"
[ "$fail" -eq 0 ]
