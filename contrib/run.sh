#!/bin/sh
# run.sh - build arcrelay and run its main job on the shipped sample: verify
# the DKIM signatures of the RFC 8463 example message against its keys.
set -eu
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/relay/arcrelay verify --dns-file tests/data/rfc8463.zone \
	--authserv-id arcrelay.example tests/data/rfc8463.eml
