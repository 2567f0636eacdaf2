#!/bin/bash
# tests/daemon/user.sh - a daemon started as root with [server] user runs
# as that user once it has bound its port and read its key, and still
# queues and delivers. The maildirs it makes at start (a missing one under
# missing parents, the tmp/ new/ cur/ of one that exists) belong to that
# user; a root-owned maildir stops the start with one line, and a reload
# that names one is refused while the daemon keeps running. Needs root
# (CI and the Quick start run as root); not being root is a failure, not
# a skip.
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
chown nobody keys/s1.private     # SIGHUP re-reads it as nobody
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
[domain deep.example]
deliver = maildir:$W/deep/a/box
CONF
# A maildir root made and kept: the daemon must not take it over.
mkdir -m 0700 rootbox rootbox/tmp rootbox/new rootbox/cur
sed "s|^deliver = maildir:$W/out|deliver = maildir:$W/rootbox|" arcrelay.conf > rootbox.conf
"$A" serve --config rootbox.conf > rootbox.out 2> rootbox.log
check "root-owned maildir: start refused" "$?" 2
check "root-owned maildir: not started" "$(grep -c event=started rootbox.log)" 0
check "root-owned maildir: one line" "$(grep -c '^arcrelay serve:' rootbox.log)" 1
check "root-owned maildir: the line" "$(grep '^arcrelay serve:' rootbox.log)" \
  "arcrelay serve: user nobody cannot deliver to maildir:$W/rootbox: $W/rootbox is not searchable (owner root, mode 0700)"
check "root-owned maildir: left to root" "$(stat -c %U rootbox/new)" root
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
for d in out/tmp out/new out/cur deep deep/a deep/a/box deep/a/box/new; do
  check "$d made for nobody" "$(stat -c '%U %a' $d)" "nobody 700"
done
swaks --server 127.0.0.1:$port --from a@example.org --to c@deep.example --body hi > swaks2.out 2>&1
check "accepted for the new maildir" "$(grep -c '<- *250 2.0.0 Ok: queued' swaks2.out)" 1
for _ in $(seq 50); do [ -n "$(ls deep/a/box/new 2>/dev/null)" ] && break; sleep 0.1; done
check "delivered to the new maildir" "$(ls deep/a/box/new | wc -l)" 1
# A reload naming a maildir the user cannot write keeps the old rules.
cp arcrelay.conf arcrelay.conf.good
printf '[domain bad.example]\ndeliver = maildir:%s/rootbox\n' "$W" >> arcrelay.conf
kill -HUP $pid
for _ in $(seq 50); do grep -q "event=reload" daemon.log && break; sleep 0.1; done
check "reload refused" "$(grep -c "event=reload result=refused reason=\"user nobody cannot deliver to maildir:$W/rootbox: $W/rootbox is not searchable" daemon.log)" 1
swaks --server 127.0.0.1:$port --from a@example.org --to d@bad.example --body hi > swaks3.out 2>&1
check "old rules kept after the refused reload" "$(grep -c '<\*\* *550 5.7.1 relaying denied' swaks3.out)" 1
check "still running" "$(kill -0 $pid 2>/dev/null && echo yes)" yes
kill -TERM $pid; wait $pid; check "SIGTERM exits 0" "$?" 0
trap - EXIT
printf '%d passed, %d failed\n' "$pass" "$fail"
[ "$fail" -eq 0 ]
