#!/bin/bash
# tests/daemon/user.sh - a daemon started as root with [server] user runs
# as that user once it has bound its port and read its key, and still
# queues and delivers. Needs root (CI and the Quick start run as root);
# not being root is a failure, not a skip.
# usage: user.sh ARCRELAY WORKDIR
set -uo pipefail
A="$1"; W="$2"
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 2
pass=0; fail=0
check() { if [ "$2" == "$3" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); printf 'FAIL %s\n  got:  %s\n  want: %s\n' "$1" "$2" "$3"; fi; }

check "running as root" "$(id -u)" 0
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p keys out
"$A" keygen --domain relay.example --selector s1 --out keys >/dev/null
chmod 600 keys/s1.private
chown nobody out
cat > arcrelay.conf <<CONF
[server]
listen = 127.0.0.1:$port
spool = $W/spool
user = nobody
[signing]
domain = relay.example
selector = s1
key = $W/keys/s1.private
[delivery]
deliver = maildir:$W/out
[domain example.net]
CONF
"$A" serve --config arcrelay.conf > daemon.out 2> daemon.log &
pid=$!
trap 'kill $pid 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 50); do grep -q "event=started" daemon.log && break; sleep 0.1; done
check "started" "$(grep -c 'event=started' daemon.log)" 1
check "runs as nobody" "$(ps -o user= -p $pid | tr -d ' ')" nobody
check "spool owned by nobody" "$(stat -c %U spool/queue)" nobody
swaks --server 127.0.0.1:$port --from a@example.org --to b@example.net --body hi > swaks.out 2>&1
check "accepted" "$(grep -c '<- *250 2.0.0 Ok: queued' swaks.out)" 1
for _ in $(seq 50); do [ -n "$(ls out/new 2>/dev/null)" ] && break; sleep 0.1; done
check "delivered" "$(ls out/new | wc -l)" 1
kill -TERM $pid; wait $pid; check "SIGTERM exits 0" "$?" 0
trap - EXIT
printf '%d passed, %d failed\n' "$pass" "$fail"
[ "$fail" -eq 0 ]
