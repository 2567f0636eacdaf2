#!/bin/bash
# tests/dns/run.sh - the resolver and the CLI against a real DNS server:
# Debian's unbound, started here on a loopback port with a test zone and
# stopped on exit, plus a UDP/TCP port that never answers.
# usage: run.sh ARCRELAY DNS_TEST WORKDIR
set -uo pipefail
A="$1"; T="$2"; W="$3"
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 2
pass=0; fail=0
check() { if [ "$2" == "$3" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); printf 'FAIL %s\n  got:  %s\n  want: %s\n' "$1" "$2" "$3"; fi; }

UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
silent=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$A" keygen --domain example.com --selector live --out . >/dev/null
# The published record as unbound local-data: one TXT, several strings.
strings=$(sed -n 's/^ *\("[^"]*"\).*/\1/p' live.txt | tr '\n' ' ')
cat > unbound.conf <<CONF
server:
	interface: 127.0.0.1
	port: $port
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "$W"
	pidfile: "$W/unbound.pid"
	use-syslog: no
	logfile: "$W/unbound.log"
	verbosity: 1
	access-control: 127.0.0.0/8 allow
	do-ip6: no
	module-config: "iterator"
	# Whole TLDs are answered here, so a Tree Walk up to _dmarc.com gets
	# NXDOMAIN rather than a recursion this sandbox cannot make.
	local-zone: "com." static
	local-zone: "org." static
	local-zone: "example.com." static
	local-data: 'sel._domainkey.example.com. 300 IN TXT "v=DKIM1; k=rsa; " "p=AAAABBBB" "CCCCDDDD"'
	local-data: 'live._domainkey.example.com. 300 IN TXT $strings'
	local-data: 'example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"'
	local-data: '_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"'
	local-data: 'example.com. 300 IN MX 10 mx.example.com.'
	local-data: 'mx.example.com. 300 IN A 192.0.2.25'
	local-data: 'mx.example.com. 300 IN AAAA 2001:db8::25'
	local-data: 'mail.example.com. 300 IN A 192.0.2.80'
	local-zone: "example.org." static
	local-data: 'example.org. 300 IN TXT "v=spf1 a:mail.example.com -all"'
	local-data: '_dmarc.example.org. 300 IN TXT "v=DMARC1; p=quarantine; adkim=r"'
remote-control:
	control-enable: no
CONF
"$UNBOUND" -d -c unbound.conf > unbound.out 2>&1 &
ub=$!
# A port that takes queries and never answers (UDP and TCP).
/usr/bin/python3 - "$silent" > /dev/null 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", port))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", port)); t.listen(16)
t.settimeout(0.2); u.settimeout(0.2)
end = time.time() + 300
while time.time() < end:
    for s in (u, t):
        try:
            s.recv(512) if s is u else s.accept()
        except Exception:
            pass
PY
sil=$!
trap 'kill $ub $sil 2>/dev/null; wait 2>/dev/null' EXIT

for _ in $(seq 50); do grep -q "start of service" unbound.log 2>/dev/null && break; sleep 0.1; done
check "unbound started" "$(grep -c 'start of service' unbound.log 2>/dev/null)" 1

# The resolver API: threads, async on libevent, the silent server.
out=$("$T" "$port" "$silent"); echo "$out" | grep FAIL
got=$(echo "$out" | tail -1)
case "$got" in *" 0 failed") check "dns_test" ok ok ;; *) check "dns_test" "$got" "N passed, 0 failed" ;; esac

# The CLI through the resolver: a signature whose key lives in the server.
printf 'From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n' > m.eml
"$A" sign --domain example.com --selector live --key live.private m.eml > s.eml
res() { "$A" verify --json --resolver "$1" s.eml | sed 's/,"arc":{.*//; s/.*"reason":"\([^"]*\)".*/\1/'; }
check "verify through unbound" "$(res 127.0.0.1@$port)" "signature verified"
"$A" sign --domain example.com --selector absent --key live.private m.eml > s.eml
check "no key through unbound" "$(res 127.0.0.1@$port)" "no key for signature"
"$A" sign --domain example.com --selector live --key live.private m.eml > s.eml
start=$(date +%s)
check "silent server" "$(res 127.0.0.1@$silent)" "DNS temporary failure"
took=$(( $(date +%s) - start ))
# Two lookups wait out the 5 s timeout, no more: the DKIM key, then DMARC's
# first (DMARC has a budget of its own, so that a sender who stalls the
# key lookups cannot turn a spoof's fail into temperror).
[ "$took" -le 13 ] && check "silent server within two timeouts" ok ok || check "silent server within two timeouts" "${took}s" "<= 13s"
# SPF and DMARC through the server: the From domain is a subdomain whose
# organizational domain publishes the policy (the Tree Walk finds it).
printf 'From: a@news.example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n' > o.eml
"$A" sign --domain example.com --selector live --key live.private o.eml > so.eml
j=$("$A" verify --json --resolver 127.0.0.1@$port --ip 192.0.2.9 --helo mx.example.com --mail-from a@example.com so.eml)
field() { echo "$j" | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
check "spf pass through unbound" "$(field "['spf']['result']")" pass
check "spf mechanism" "$(field "['spf']['mechanism']")" "ip4:192.0.2.0/24"
check "dmarc pass via the org domain" "$(field "['dmarc']['result']")/$(field "['dmarc']['aligned_by']")/$(field "['dmarc']['policy']")" "pass/dkim/reject"
j=$("$A" verify --json --resolver 127.0.0.1@$port --ip 198.51.100.7 --helo x.example.org --mail-from a@example.org so.eml)
check "spf fail (a: mechanism)" "$(field "['spf']['result']")" fail
j=$("$A" verify --json --resolver 127.0.0.1@$port --ip 192.0.2.80 --helo x.example.org --mail-from a@example.org so.eml)
check "spf pass (a: mechanism)" "$(field "['spf']['result']")" pass
j=$("$A" verify --json --resolver 127.0.0.1@$silent --ip 192.0.2.9 --helo mx.example.com --mail-from a@example.com so.eml)
check "spf temperror on a silent server" "$(field "['spf']['result']")" temperror
check "dmarc temperror on a silent server" "$(field "['dmarc']['result']")" temperror
check "testkey through unbound" "$("$A" testkey --domain example.com --selector live --key live.private --resolver 127.0.0.1@$port | tail -1)" "ok: rsa key, 2048 bits"
check "bad resolver is a usage error" "$("$A" verify --resolver not-an-ip s.eml >/dev/null 2>&1; echo $?)" 2

printf '%d passed, %d failed\n' "$pass" "$fail"
[ "$fail" -eq 0 ]
