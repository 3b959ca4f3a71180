#!/bin/bash
# memory-tier.sh REGRESS ISOLATION TAP: the correctness tests again, with
# the shared memory tier on.  Issue 13: "every correctness test of the
# freshness and context issues also passes with the memory tier on".
# `make installcheck-memory-tier` runs it (as the postgres user, after
# make install; test/run-tests.sh does), with the lists of tests to run:
#   - the pg_regress files REGRESS and the isolation specs ISOLATION run
#     against a throwaway server set up with test/regress.conf and
#     test/memory-tier.conf.  Their output must be the expected one but
#     for the lines "DETAIL:  Served from the shared memory tier." that
#     cachier."verbose" adds under a hit served from memory;
#   - the TAP files TAP run with CACHIER_TEST_SHARED_CACHE set to the same
#     size: CachierTest.pm's cachier_node turns the tier on with it, and
#     records each node's memory-tier hits in tmp_check/memory_tier_hits
#     before the node stops or restarts;
#   - a run that never served from memory would prove nothing: each of the
#     three parts must have served hits from memory (cachier_memory's hits
#     on the throwaway server after each runner, and the TAP record).
# Environment (from the Makefile): bindir, pg_regress, pg_isolation_regress,
# make.
set -uo pipefail
regress=$1 isolation=$2 tap=$3
: "${bindir:?}" "${pg_regress:?}" "${pg_isolation_regress:?}" "${make:?}"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
if [ "$(id -u)" -eq 0 ]; then
	echo "memory-tier.sh: PostgreSQL's test tools do not run as root; run it as the postgres user (test/run-tests.sh does)" >&2
	exit 1
fi
size=$(sed -n "s/^cachier\.shared_cache_size = '\(.*\)'$/\1/p" test/memory-tier.conf)
detail='DETAIL:  Served from the shared memory tier.'
work=$top/tmp_memory
rm -rf "$work"
mkdir -p "$work"
status=0
# UTF8 and C.UTF-8 whatever the environment says, as the Makefile's runs
locale='--encoding=UTF8'

# ---------------------------------------------------------------- the server
port=54329						# (a socket in $work: no TCP, no clash)
"$bindir/initdb" -A trust --encoding=UTF8 --locale=C.UTF-8 -D "$work/data" >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log"; exit 1; }
cat test/regress.conf test/memory-tier.conf >>"$work/data/postgresql.conf"
printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %s\n" "$work" "$port" \
	>>"$work/data/postgresql.conf"
"$bindir/pg_ctl" -w -D "$work/data" -l "$work/server.log" start >/dev/null || { cat "$work/server.log"; exit 1; }
trap '"$bindir/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null' EXIT
psql() { "$bindir/psql" -XAtq -h "$work" -p "$port" -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql -c 'CREATE EXTENSION cachier' || exit 1

# The memory-tier hits of the server so far.  A backend adds its hits to
# the area's count at the latest when it exits, before it leaves
# pg_stat_activity: wait until the tests' backends are gone.
memory_hits() {
	local tries
	for tries in $(seq 600 -1 1); do
		[ "$(psql -c "SELECT count(*) FROM pg_stat_activity
		               WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")" = 0 ] && break
		[ "$tries" -gt 1 ] && sleep 0.1
	done
	psql -c 'SELECT hits FROM cachier_memory'
}

# Compare each test's output with its expected files (X.out, X_1.out ...)
# without the lines that say a hit came from memory; without an output,
# the runner's log says why.
compare() {
	local runner=$1 results=$2 expected=$3 log=$4
	shift 4
	local t out served e ok
	for t in "$@"; do
		out=$results/$t.out
		ok=
		if [ -f "$out" ]; then
			served=$(grep -cxF "$detail" "$out")
			for e in "$expected/$t.out" "$expected/$t"_[0-9].out; do
				[ -f "$e" ] || continue
				if grep -vxF "$detail" "$out" | diff -u "$e" - >"$work/diff.tmp"; then
					ok=1
					break
				fi
			done
		fi
		if [ -n "$ok" ]; then
			echo "test/memory-tier $runner $t ($served hits shown from memory) ... ok"
		elif [ -f "$out" ]; then
			{ echo "=== $runner $t (lines '$detail' left out)"; cat "$work/diff.tmp"; } >>"$diffs"
			echo "test/memory-tier $runner $t ... FAILED"
			status=1
		else
			{ echo "=== $runner $t: no output"; cat "$log"; } >>"$diffs"
			echo "test/memory-tier $runner $t ... FAILED"
			status=1
		fi
	done
}

# A part served hits from memory.
served() {
	local what=$1 hits=$2
	if [ "${hits:-0}" -gt 0 ] 2>/dev/null; then
		echo "test/memory-tier $what served $hits hits from memory ... ok"
	else
		echo "test/memory-tier $what served no hit from memory ... FAILED"
		status=1
	fi
}

diffs=$work/memory.diffs		# what compare found
: >"$diffs"
before=$(memory_hits)
before=${before:-0}
if [ -n "$regress" ]; then
	# (pg_regress itself fails on the lines from memory: the comparison is ours)
	# shellcheck disable=SC2086  # lists of test names
	"$pg_regress" --inputdir=. --outputdir="$work/regress" --bindir="$bindir" $locale \
		--host="$work" --port="$port" --dbname=contrib_regression $regress >"$work/regress.log" 2>&1
	# shellcheck disable=SC2086
	compare pg_regress "$work/regress/results" expected "$work/regress.log" $regress
	rm -f "$work/regress/regression.diffs"	# (pg_regress's, with those lines)
	after=$(memory_hits)
	after=${after:-0}
	served pg_regress $((after - before))
	before=$after
fi
if [ -n "$isolation" ]; then
	# shellcheck disable=SC2086
	"$pg_isolation_regress" --inputdir=test/isolation --outputdir="$work/isolation" --bindir="$bindir" $locale \
		--host="$work" --port="$port" --dbname=isolation_regression_cachier $isolation \
		>"$work/isolation.log" 2>&1
	# shellcheck disable=SC2086
	compare isolation "$work/isolation/results" test/isolation/expected "$work/isolation.log" $isolation
	rm -f "$work/isolation/regression.diffs"
	after=$(memory_hits)
	after=${after:-0}
	served isolation $((after - before))
fi
"$bindir/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null
trap - EXIT
if [ -s "$diffs" ]; then cat "$diffs"; fi

# ---------------------------------------------------------------- TAP
# (the randomized tests run for their full time in the run without the
# tier; here a shorter run keeps this part within a few minutes)
if [ -n "$tap" ]; then
	CACHIER_TEST_SHARED_CACHE=$size FRESH_RANDOM_SECONDS=15 CACHIER_CONTEXT_RANDOM_SECONDS=10 \
		"$make" -s installcheck TEMP_INSTANCE=1 REGRESS= ISOLATION= TAP_TESTS=1 PROVE_TESTS="$tap" ||
		status=1
	record=tmp_check/memory_tier_hits
	if [ -f "$record" ]; then
		# hits per test file, over its nodes and restarts
		awk '{ hits[$1] += $3 } END { for (f in hits) print f, hits[f] }' "$record" | sort |
			while read -r file hits; do echo "test/memory-tier TAP $file: $hits hits from memory"; done
	fi
	served TAP "$(awk '{ n += $3 } END { print n + 0 }' "$record" 2>/dev/null)"
fi
exit $status
