#!/bin/bash
# The main job: install what is missing, build and install cachier, start
# a throwaway PostgreSQL 15 cluster with it and run a short demo.
# Usage on Debian 12, as root or with sudo:  test/demo.sh
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
$SUDO "$top/test/scripts/install-deps.sh"
make -s -C "$top"
$SUDO make -s -C "$top" install >/dev/null

# pg_virtualenv creates a temporary cluster, runs the command against it
# and removes the cluster afterwards.
$SUDO pg_virtualenv -t -o shared_preload_libraries=cachier \
	psql -X -v ON_ERROR_STOP=1 -f "$top/test/demo.sql"
