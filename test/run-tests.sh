#!/bin/bash
# The whole test suite: pg_regress (sql/, expected/), isolation specs
# (test/isolation) and TAP tests (test/t), each on throwaway clusters; the
# correctness tests again with the shared memory tier on; the
# README's application examples through real drivers (test/py); a build
# without hiredis (make WITH_REDIS=0); META.json against cachier.control.
# Usage on Debian 12, as root or with sudo:  test/run-tests.sh
# Installs missing packages, builds and installs cachier, runs everything
# and exits non-zero when any test fails.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# The same locale on every machine (CI's may have no LANG at all); the
# test clusters also ask for UTF8 and C.UTF-8 themselves.
export LANG=C.UTF-8
unset LC_ALL LC_CTYPE LC_COLLATE
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
# pg_regress, isolation and TAP tests one after the other, so that a failure
# in one runner does not hide the results of the next
: >"$log"
for part in "ISOLATION= TAP_TESTS=" "REGRESS= TAP_TESTS=" "REGRESS= ISOLATION="; do
	# shellcheck disable=SC2086  # $part is several make arguments
	as_postgres make -C "$work" installcheck TEMP_INSTANCE=1 $part PROVE_FLAGS="--timer" 2>&1 |
		tee -a "$log" || status=$?
done

# The correctness tests again with the shared memory tier on (issue 13),
# checking that it served hits meanwhile (test/scripts/memory-tier.sh), on
# a second copy of the tree so that the logs of the runs above stay.
memwork=$(mktemp -d /tmp/cachier-test-memory.XXXXXX)
cp -a "$top/." "$memwork/"
$SUDO chown -R postgres: "$memwork"
as_postgres make -C "$memwork" installcheck-memory-tier PROVE_FLAGS="--timer" 2>&1 |
	tee -a "$log" || status=$?

# The README's examples through psycopg 3, psycopg2, SQLAlchemy and pgbench.
as_postgres env PG_CONFIG="$(command -v pg_config)" "$work/test/py/run.sh" 2>&1 |
	tee -a "$log" || status=$?

# A build without hiredis compiles, links no hiredis and refers to no Redis
# symbol (a scratch copy: the installed build is untouched).
norepo=$(mktemp -d /tmp/cachier-noredis.XXXXXX)
cp -a "$top/." "$norepo/"
if make -s -C "$norepo" clean >/dev/null && make -s -C "$norepo" WITH_REDIS=0 >"$norepo/build.log" 2>&1 &&
	! ldd "$norepo/cachier.so" | grep -q hiredis &&
	! nm -u "$norepo/cachier.so" | grep -qi redis; then
	echo "test/build WITH_REDIS=0 ... ok" | tee -a "$log"
else
	cat "$norepo/build.log"
	echo "test/build WITH_REDIS=0 ... FAILED" | tee -a "$log"
fi
rm -rf "$norepo"

# The files of src/ depend on each other without cycles (issue 12's review).
if /usr/bin/python3 "$top/test/scripts/check-layout.py" "$top" >"$work/layout.log" 2>&1; then
	echo "test/layout no dependency cycles between src/ files ... ok" | tee -a "$log"
else
	cat "$work/layout.log"
	echo "test/layout no dependency cycles between src/ files ... FAILED" | tee -a "$log"
fi

# PGXN's META.json names the version that cachier.control installs (PGXN
# wants three parts: control's 0.5 is META's 0.5.0).
control=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$top/cachier.control")
semver=$control
case "$semver" in *.*.*) ;; *.*) semver=$semver.0 ;; esac
meta=$(python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print(m["version"], m["provides"]["cachier"]["version"])' "$top/META.json")
if [ -n "$control" ] && [ "$meta" = "$semver $semver" ]; then
	echo "test/package META.json version $control ... ok" | tee -a "$log"
else
	echo "META.json says '$meta', cachier.control '$control'"
	echo "test/package META.json version ... FAILED" | tee -a "$log"
fi

# On failure, the logs of the TAP files that failed, then the regression
# diffs last, next to the summary, where a truncated CI log still shows them.
if [ "$status" -ne 0 ]; then
	for t in $(sed -nE 's#.*test/t/(\S+)\.pl \.+ (Dubious|Failed).*#\1#p' "$log" | sort -u); do
		for f in $(find "$work/tmp_check/log" "$memwork/tmp_check/log" -name "regress_log_$t" 2>/dev/null); do
			echo "=== $f (last 60 lines)"; tail -n 60 "$f"
		done
	done
	for f in $(find "$work" "$memwork" \( -name regression.diffs -o -name memory.diffs \) -size +0); do
		echo "=== $f (first 200 lines)"; head -n 200 "$f"
	done
fi

# One summary line over all three runners.
passed=$(grep -cE '\.\.\. ok|test/t/\S+\.pl \.+ ok' "$log" || true)
failed=$(grep -cE '\.\.\. FAILED|test/t/\S+\.pl \.+ (Dubious|Failed)' "$log" || true)
echo "cachier: $passed passed, $failed failed"
if [ "$status" -eq 0 ] && [ "$failed" -ne 0 ]; then status=1; fi
exit "$status"
