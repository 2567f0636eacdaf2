#!/bin/sh
# install-deps.sh - install the Debian 12 packages arcrelay needs to build
# and to run its tests, but only those that are missing. Run as root.
set -eu

PKGS="build-essential cmake pkg-config libssl-dev openssl
libcriterion-dev python3 python3-dkim python3-nacl python3-cryptography
python3-yaml libmail-dkim-perl libnet-dns-perl
libevent-dev libunbound-dev libspf2-dev libpsl-dev publicsuffix unbound
python3-spf python3-authheaders python3-authres swaks
libmail-srs-perl mandoc opendkim rspamd"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The rspamd package enables a system service on ports 11332-11334 where
# an init system runs (in a container, policy-rc.d usually stops it from
# starting).  It is left alone: the interop tests start a private rspamd
# on free loopback ports with their own configuration and never use it.
