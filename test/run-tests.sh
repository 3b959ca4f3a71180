#!/bin/bash
# The whole test suite: pg_regress (sql/, expected/), isolation specs
# (test/isolation) and TAP tests (test/t), each on throwaway clusters.
# Usage on Debian 12, as root or with sudo:  test/run-tests.sh
# Installs missing packages, builds and installs cachier, runs everything
# and exits non-zero when any test fails.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
$SUDO "$top/test/scripts/install-deps.sh"

cd "$top"
make -s clean >/dev/null
make -s
$SUDO make -s install >/dev/null

# PostgreSQL's test tools refuse to run as root: the postgres user runs
# them on a copy of the tree that it can write.
work=$(mktemp -d /tmp/cachier-test.XXXXXX)
cp -a "$top/." "$work/"
$SUDO chown -R postgres: "$work"
as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

log="$work/test-output.log"
status=0
as_postgres make -C "$work" installcheck TEMP_INSTANCE=1 PROVE_FLAGS="--timer" 2>&1 | tee "$log" || status=$?

if [ "$status" -ne 0 ]; then
	for f in $(find "$work" -name regression.diffs); do
		echo "=== $f"; cat "$f"
	done
	for f in $(find "$work/tmp_check/log" -name 'regress_log_*' 2>/dev/null); do
		echo "=== $f (last 60 lines)"; tail -n 60 "$f"
	done
fi

# One summary line over all three runners.
passed=$(grep -cE '\.\.\. ok|test/t/\S+\.pl \.+ ok' "$log" || true)
failed=$(grep -cE '\.\.\. FAILED|test/t/\S+\.pl \.+ (Dubious|Failed)' "$log" || true)
echo "cachier: $passed passed, $failed failed"
if [ "$status" -eq 0 ] && [ "$failed" -ne 0 ]; then status=1; fi
exit "$status"
