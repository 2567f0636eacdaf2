#!/bin/bash
# e2e.sh - the daemon end to end: unbound, the sink, `arcrelay serve`,
# swaks and smtplib as clients, dkimpy and Mail::DKIM as judges.
# usage: e2e.sh ARCRELAY WORKDIR [--harness-only]
# The work is done by e2e.py (see README.md); the last line printed is
# "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1
if [ $# -lt 2 ]; then echo "usage: $0 ARCRELAY WORKDIR [--harness-only]" >&2; exit 2; fi
missing=""
"$PY" -c 'import dkim, authres' 2>/dev/null || missing="$missing python3-dkim python3-authres"
/usr/bin/perl -MMail::DKIM::ARC::Verifier -MNet::DNS -MJSON::PP -e 1 2>/dev/null ||
	missing="$missing libmail-dkim-perl libnet-dns-perl"
command -v swaks >/dev/null || missing="$missing swaks"
[ -x /usr/sbin/unbound ] || missing="$missing unbound"
if [ -n "$missing" ]; then
	echo "e2e: missing Debian packages:$missing" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
exec "$PY" "$HERE/e2e.py" "$@"
