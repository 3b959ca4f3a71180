#!/bin/bash
# Installs the Debian 12 packages that cachier's build, demo and tests need,
# when they are missing.  Run as root (or with sudo).
set -euo pipefail

packages=(
	make gcc                     # build
	postgresql-15                # server, pg_regress, isolation tester, pgbench
	postgresql-server-dev-15     # PGXS, headers, TAP modules
	postgresql-common            # pg_virtualenv
	libhiredis-dev redis-server  # the Redis tier and its tests
	libipc-run-perl              # PostgreSQL::Test::Cluster
	perl procps util-linux       # prove, ps/pkill, runuser
	python3-psycopg python3-psycopg2 python3-sqlalchemy  # test/py: real drivers
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		SUDO=sudo
	else
		SUDO=
	fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts a cluster and redis-server on install; the tests use their
# own throwaway servers, so the packaged ones are not needed.
