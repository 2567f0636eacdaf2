#!/bin/bash
# crash.sh - kill -9 the daemon at random moments under load; every message
# that got a 250 must be delivered. The work is done by crash.py (see
# README.md); the last line is "N passed, M failed".
# usage: crash.sh ARCRELAY WORKDIR [crash.py options]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PYTHONDONTWRITEBYTECODE=1
if [ $# -lt 2 ]; then echo "usage: $0 ARCRELAY WORKDIR [options]" >&2; exit 2; fi
/usr/bin/python3 -c 'import dkim, authres' 2>/dev/null || {
	echo "crash: needs python3-dkim and python3-authres" >&2; echo "0 passed, 1 failed"; exit 1; }
[ -x /usr/sbin/unbound ] || { echo "crash: needs unbound" >&2; echo "0 passed, 1 failed"; exit 1; }
exec /usr/bin/python3 "$HERE/crash.py" "$@"
