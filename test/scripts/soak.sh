#!/bin/bash
# soak.sh: a mixed load on a running server with cachier, checking that it
# can run for long without harm (issue 9, "Soak").
#
# Usage: soak.sh SECONDS  (connection from PGHOST, PGPORT, PGUSER,
#        PGDATABASE; the role must be a superuser; pgbench and psql on PATH)
#
# 8 pgbench clients run, weighted: hits of a memoized function over 1,000
# hot keys; misses that store (a function over an ever-growing key range);
# DDL churn with temporary tables (each one a pg_type change that every
# backend hears of); cachier_clear of single keys (invalidations); and
# stale hits of a next_time function (background refreshes), while the
# worker cleans a function with cleanup_stale every second.  Meanwhile it
# samples the private memory (RssAnon) of the pgbench backends and of the
# launcher every few seconds.  Afterwards a hits-only run checks how many
# transaction IDs hits use.
#
# It prints the figures and exits non-zero when: a client got an error, a
# backend's private memory grew by more than SOAK_MAX_GROWTH_KB (default
# 8192) between the first and the last sample, hits used more than a
# handful of XIDs, or the server log (SOAK_LOG, if given) shows a crash.
set -euo pipefail

duration=${1:?usage: soak.sh SECONDS}
max_growth_kb=${SOAK_MAX_GROWTH_KB:-8192}
clients=8
tmp=$(mktemp -d /tmp/cachier-soak.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

q() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS cachier;
DROP SCHEMA IF EXISTS soak CASCADE;
CREATE SCHEMA soak;
CREATE SEQUENCE soak.misses;
CREATE FUNCTION soak.hot(k int) RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN k * 2; END';
CREATE FUNCTION soak.cold(k bigint) RETURNS text LANGUAGE sql AS $$ SELECT md5(k::text) $$;
CREATE FUNCTION soak.fading(k int) RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN k + 1; END';
SELECT cachier_memoize('soak.hot(int)');
SELECT cachier_memoize('soak.cold(bigint)', stale_after => '2 seconds',
                       cleanup_stale => true, cleanup_interval => '1 second');
SELECT cachier_memoize('soak.fading(int)', stale_after => '1 second', next_time => true);
SELECT count(soak.hot_cached(i)) FROM generate_series(1, 1000) i;
SQL

cat >"$tmp/hits.sql" <<'SQL'
\set k random(1, 1000)
SELECT soak.hot_cached(:k);
SQL
cat >"$tmp/misses.sql" <<'SQL'
SELECT soak.cold_cached(nextval('soak.misses'));
SQL
cat >"$tmp/ddl.sql" <<'SQL'
CREATE TEMP TABLE IF NOT EXISTS churn (x int);
DROP TABLE churn;
SQL
cat >"$tmp/clear.sql" <<'SQL'
\set k random(1, 1000)
SELECT cachier_clear('soak.hot', :k);
SQL
cat >"$tmp/refresh.sql" <<'SQL'
\set k random(1, 50)
SELECT soak.fading_cached(:k);
SQL

# private memory of a process, kB
rss_anon() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

xid_before=$(q 'SELECT txid_current()')
PGAPPNAME=cachier-soak PGOPTIONS='-c log_statement=none' pgbench -n -c "$clients" -j 4 -T "$duration" \
	-f "$tmp/hits.sql@20" -f "$tmp/misses.sql@4" -f "$tmp/ddl.sql@2" \
	-f "$tmp/clear.sql@1" -f "$tmp/refresh.sql@2" >"$tmp/out" 2>"$tmp/err" &
bench=$!

# sample the pgbench backends and the launcher every few seconds
step=$(( duration / 10 )); [ "$step" -ge 1 ] || step=1
# wait (at most 20 s) until every client is connected
for _ in $(seq 1 200); do
	n=$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cachier-soak'")
	[ "$n" -ge "$clients" ] && break
	sleep 0.1
done
pids=$(q "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
           WHERE application_name = 'cachier-soak' OR backend_type = 'cachier launcher'")
[ "$(echo "$pids" | wc -w)" -gt "$clients" ] || { echo "soak: FAILED: the clients did not connect"; exit 1; }
: >"$tmp/samples"
while kill -0 "$bench" 2>/dev/null; do
	t=$(date +%s)
	for p in $pids; do echo "$t $p $(rss_anon "$p")" >>"$tmp/samples"; done
	sleep "$step"
done
bench_status=0
wait "$bench" || bench_status=$?
xid_after=$(q 'SELECT txid_current()')

processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$tmp/out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$tmp/out")
errors=$(grep -c -E 'ERROR|FATAL|aborted' "$tmp/err" || true)
stored=$(q "SELECT last_value FROM soak.misses")

# per process: first and last sample, and the slope in kB per minute
growth=$(awk '
	{ if (!($2 in first)) { first[$2] = $3; t0[$2] = $1 } last[$2] = $3; t1[$2] = $1 }
	END {
		worst = 0
		for (p in first) {
			g = last[p] - first[p]
			if (g > worst) worst = g
			dt = t1[p] - t0[p]
			slope = dt > 0 ? g * 60 / dt : 0
			printf "pid %s: %d kB -> %d kB (%+d kB, %+.0f kB/min)\n", p, first[p], last[p], g, slope
		}
		printf "WORST %d\n", worst
	}' "$tmp/samples")
worst=$(echo "$growth" | sed -n 's/^WORST //p')

# hits alone: how many transaction IDs do they use?
cat >"$tmp/only_hits.sql" <<'SQL'
\set k random(1, 1000)
SELECT soak.hot_cached(:k);
SQL
q 'SELECT count(soak.hot_cached(i)) FROM generate_series(1, 1000) i' >/dev/null
hx_before=$(q 'SELECT txid_current()')
pgbench -n -c 4 -j 2 -t 2000 -f "$tmp/only_hits.sql" >"$tmp/hits_out" 2>&1
hx_after=$(q 'SELECT txid_current()')
hit_xids=$(( hx_after - hx_before - 1 ))

echo "soak: ${duration} s, $clients clients: $processed transactions, ${failed:-0} failed, $errors client errors"
echo "soak: misses stored: $stored; transaction IDs used: $(( xid_after - xid_before )) (one per transaction that wrote: stores, temporary tables, clears)"
echo "soak: private memory of the pgbench backends and the launcher (first -> last sample):"
echo "$growth" | grep -v '^WORST' | sed 's/^/soak:   /'
echo "soak: 8,000 hits used $hit_xids transaction IDs (the background worker may use a few)"

status=0
if [ "$bench_status" -ne 0 ] || [ "${failed:-0}" != 0 ] || [ "$errors" -ne 0 ]; then
	echo "soak: FAILED: clients got errors"; sed -n '1,20p' "$tmp/err"; status=1
fi
if [ "${worst:-0}" -gt "$max_growth_kb" ]; then
	echo "soak: FAILED: a backend's private memory grew by $worst kB (limit $max_growth_kb kB)"; status=1
fi
if [ "$hit_xids" -gt 20 ]; then
	echo "soak: FAILED: hits used $hit_xids transaction IDs"; status=1
fi
if [ -n "${SOAK_LOG:-}" ] && grep -E 'terminated by signal|PANIC|TRAP:' "$SOAK_LOG"; then
	echo "soak: FAILED: the server log shows a crash"; status=1
fi
psql -X -q -c 'DROP SCHEMA soak CASCADE' >/dev/null 2>&1 || true
exit "$status"
