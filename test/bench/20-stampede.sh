# shellcheck shell=bash disable=SC2119,SC2046,SC2206,SC2183  # numbers are split on purpose
# 20-stampede.sh: 64 sessions call one cold key of a 200 ms function at
# once (issue 3, first part).  Run by run.sh inside the cluster.
#
# pgbench -c N -t 1 connects all N sessions first and then starts them
# together; each sends SELECT bench.slow_cached(<key>) once.  The function
# counts its executions with a sequence and logs when it ran, so we know
# how often it ran and when it returned in the computing session.
#
# Per round: executions (goal: 1), the function's own time, the spread of
# the sessions' start times, their latencies (pgbench, client side) and,
# per session, how long after the function returned in the computing
# session that session had its answer ("after fn": includes the computer's
# COMMIT, the waiters' wake-up and their lookup).  Goal: p99 of "after fn"
# <= 10 ms.  With 64 sessions the nearest-rank p99 is the slowest session.
#
# For scale, the same is done with 16 and 32 sessions, and with no cachier
# at all: N sessions blocked on one advisory lock (pg_advisory_xact_lock_
# shared) that another session releases; "after fn" is then measured from
# the release.  That is the least that waking N sessions costs here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_tmp

rounds=3

header "Issue 3a: stampede (64 sessions, one cold key, 200 ms function)"

sql <<'SQL'
CREATE SEQUENCE bench.slow_runs;
CREATE TABLE bench.slow_log (k int, pid int, started timestamptz, finished timestamptz);
CREATE FUNCTION bench.slow(k int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    PERFORM nextval('bench.slow_runs');
    PERFORM pg_sleep(0.2);
    INSERT INTO bench.slow_log VALUES (k, pg_backend_pid(), t0, clock_timestamp());
    RETURN k * 10;
END
$$;
SELECT cachier_memoize('bench.slow(int)') \gset
-- the no-cachier reference: hold an advisory lock, return when releasing it
CREATE FUNCTION bench.hold(k int, secs float8) RETURNS float8 LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(k);
    PERFORM pg_sleep(secs);
    RETURN extract(epoch FROM clock_timestamp());
END
$$;
SQL

all_after=()
all_lat=()

# round LABEL SESSIONS KEY MODE: one stampede; MODE is cachier or lock
round() {
	local label=$1 n=$2 key=$3 mode=$4 log=$tmp/$1
	local rc=0 before runs fn_ms ref lat aft start_spread got failed errs
	if [ "$mode" = cachier ]; then
		echo "SELECT bench.slow_cached($key);" >"$tmp/script.sql"
		before=$(q "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM bench.slow_runs")
		pgbench -n -c "$n" -j 2 -t 1 -f "$tmp/script.sql" \
			--log --log-prefix="$log" >"$log.out" 2>&1 || rc=$?
		runs=$(( $(q "SELECT last_value FROM bench.slow_runs") - before ))
		read -r fn_ms ref < <(q "SELECT round(extract(epoch FROM finished - started)::numeric * 1000, 1),
		                                extract(epoch FROM finished)
		                           FROM bench.slow_log WHERE k = $key ORDER BY finished LIMIT 1" | tr '|' ' ')
	else
		echo "SELECT pg_advisory_xact_lock_shared($key);" >"$tmp/script.sql"
		q "SELECT bench.hold($key, 0.7)" >"$log.ref" &
		sleep 0.1
		pgbench -n -c "$n" -j 2 -t 1 -f "$tmp/script.sql" \
			--log --log-prefix="$log" >"$log.out" 2>&1 || rc=$?
		wait
		runs=-
		fn_ms=-
		ref=$(cat "$log.ref")
	fi
	# pgbench log: client_id tx_no latency_us script_no epoch_s epoch_us
	cat "$log".[0-9]* >"$log.all"
	lat=$(awk '{ printf "%.3f\n", $3 / 1000 }' "$log.all")
	aft=$(awk -v e="$ref" '{ printf "%.3f\n", ($5 + $6 / 1e6 - e) * 1000 }' "$log.all")
	start_spread=$(awk '{ s = $5 + $6 / 1e6 - $3 / 1e6; if (NR == 1 || s < lo) lo = s; if (NR == 1 || s > hi) hi = s }
	                    END { printf "%.1f", (hi - lo) * 1000 }' "$log.all")
	got=$(wc -l <"$log.all")
	failed=$(grep -Eo 'number of failed transactions: [0-9]+' "$log.out" | grep -Eo '[0-9]+$' || echo "?")
	errs=$(grep -Ec '(ERROR|WARNING|FATAL|aborted)' "$log.out" || true)
	printf '%-22s %4s %6s %6s | %6s %6s %6s | %6s %6s %6s %6s | %s\n' "$label" "$runs" "$fn_ms" "$start_spread" \
		$(echo "$lat" | stats | cut -d' ' -f2-4) $(echo "$aft" | stats | cut -d' ' -f1-4) \
		"$got/$n answered, failed=$failed, errors=$errs, rc=$rc"
	if [ "$mode" = cachier ] && [ "$n" -eq 64 ]; then
		all_after+=($aft)
		all_lat+=($lat)
	fi
	if [ "$rc" -ne 0 ] || [ "$errs" -ne 0 ]; then
		echo "  pgbench output:"
		grep -Ev '^ *$' "$log.out" | head -20 | sed 's/^/    /'
	fi
}

printf '%-22s %4s %6s %6s | %-20s | %-27s | %s\n' "" "" "" "" "   latency ms" "     after fn ms" ""
printf '%-22s %4s %6s %6s | %6s %6s %6s | %6s %6s %6s %6s | %s\n' \
	"round" runs "fn ms" start p50 p99 max min p50 p99 max results
for r in $(seq 1 "$rounds"); do
	round "64 sessions #$r" 64 $((1000 + r)) cachier
done
round "16 sessions" 16 2001 cachier
round "32 sessions" 32 2002 cachier
round "64, no cachier (lock)" 64 3001 lock
echo "(runs: executions of the function; start: spread of the sessions' start times, ms;"
echo " no cachier: 64 sessions wait for one advisory lock; 'after fn' counts from its release)"

total_runs=$(q "SELECT count(*) FROM bench.slow_log WHERE k BETWEEN 1001 AND 1000 + $rounds")
echo
echo "64-session rounds: $rounds x 64 sessions; function executions: $total_runs (goal: $rounds, one per round)"
set -- $(printf '%s\n' "${all_lat[@]}" | stats)
echo "  latency ms:           min $1  p50 $2  p99 $3  max $4  (n=$5; the function itself: 200 ms)"
set -- $(printf '%s\n' "${all_after[@]}" | stats)
echo "  answered after fn ms: min $1  p50 $2  p99 $3  max $4  (n=$5)"
if [ "$total_runs" -eq "$rounds" ] && awk -v p="$3" 'BEGIN { exit !(p <= 10) }'; then
	echo "  goal (runs once, p99 answered within 10 ms of the computer): met"
else
	echo "  goal (runs once, p99 answered within 10 ms of the computer): NOT MET"
fi
