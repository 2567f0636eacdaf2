#!/bin/bash
# run.sh - mailing lists, forwards and SRS through the daemon (lists.py).
# usage: run.sh ARCRELAY WORKDIR [SRS_TOOL]
# The last line printed is "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1
if [ $# -lt 2 ]; then echo "usage: $0 ARCRELAY WORKDIR [SRS_TOOL]" >&2; exit 2; fi
missing=""
"$PY" -c 'import dkim, authres' 2>/dev/null || missing="$missing python3-dkim python3-authres"
/usr/bin/perl -MMail::DKIM::ARC::Verifier -MNet::DNS -MJSON::PP -e 1 2>/dev/null ||
	missing="$missing libmail-dkim-perl libnet-dns-perl"
[ -x /usr/sbin/unbound ] || missing="$missing unbound"
if [ -n "$missing" ]; then
	echo "lists: missing Debian packages:$missing" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
exec "$PY" "$HERE/lists.py" "$@"
