#!/bin/sh
# run.sh - build arcrelay and run its main job: the relay daemon with the
# embedded default configuration. It listens on 127.0.0.1:2525, accepts
# any recipient from loopback clients, and delivers every message, with
# its ARC set and DKIM signature, into the maildir ./var/outbox. On first
# start it makes a signing key under ./var/keys and prints the DNS record
# to publish. Stop it with Ctrl-C (or SIGTERM).
#
# Try it from another terminal:
#   swaks --server 127.0.0.1:2525 --to you@example.net --from me@example.org
set -eu
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec ./build/relay/arcrelay serve "$@"
