# shellcheck shell=bash disable=SC2119
# 30-stale-load.sh: a steady load on a memoized function whose entries go
# stale every 2 seconds (issue 3, second part).  Run by run.sh inside the
# cluster.
#
# 16 pgbench clients call bench.load_fn_cached(k) for random k in 0..999
# for 20 s.  load_fn takes about 5 ms (pg_sleep), counts its executions with
# a sequence and logs each execution's key and start time.  An entry is
# recomputed only when it is older than stale_after, so with single flight
# a key is computed at most duration / stale_after + 1 times, and two
# computations of one key start at least stale_after apart.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_tmp

clients=16
duration=20
keys=1000
shelf_s=2
fn_sleep=0.005

header "Issue 3b: $clients clients, $keys keys, stale_after = '$shelf_s seconds', ${duration} s"

sql <<SQL
CREATE SEQUENCE bench.load_runs;
CREATE TABLE bench.load_log (k int, started timestamptz);
CREATE FUNCTION bench.load_fn(k int) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM nextval('bench.load_runs');
    INSERT INTO bench.load_log VALUES (k, clock_timestamp());
    PERFORM pg_sleep($fn_sleep);
    RETURN k + 1;
END
\$\$;
SELECT cachier_memoize('bench.load_fn(int)', stale_after => '$shelf_s seconds') \gset
SQL

cat >"$tmp/load.sql" <<SQL
\set k random(0, $((keys - 1)))
SELECT bench.load_fn_cached(:k);
SQL

echo "running pgbench -c $clients -j 2 -T $duration (function: pg_sleep($fn_sleep) + nextval + a log row) ..."
t0=$(now_s)
rc=0
pgbench -n -c "$clients" -j 2 -T "$duration" -f "$tmp/load.sql" >"$tmp/pgbench.out" 2>"$tmp/pgbench.err" || rc=$?
t1=$(now_s)
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')

field() { grep -m1 -Eo "$1" "$tmp/pgbench.out" | grep -Eo '[0-9.]+' | head -1 || true; }
tps=$(field 'tps = [0-9.]+' | awk '{ printf "%.0f", $1 }')
done_tx=$(field 'actually processed: [0-9]+')
failed=$(field 'number of failed transactions: [0-9]+')
lat=$(field 'latency average = [0-9.]+')
errors=$(grep -Ec 'ERROR|FATAL|aborted' "$tmp/pgbench.err" || true)
warnings=$(grep -c 'WARNING' "$tmp/pgbench.err" || true)

runs=$(q "SELECT last_value FROM bench.load_runs")
read -r touched max_per_key min_gap keys_over entries < <(q "
	WITH g AS (
	    SELECT k, started - lag(started) OVER (PARTITION BY k ORDER BY started) AS gap
	      FROM bench.load_log)
	SELECT (SELECT count(DISTINCT k) FROM bench.load_log),
	       (SELECT max(n) FROM (SELECT count(*) n FROM bench.load_log GROUP BY k) x),
	       coalesce(round(extract(epoch FROM (SELECT min(gap) FROM g))::numeric * 1000, 1), -1),
	       (SELECT count(*) FROM (SELECT k FROM bench.load_log GROUP BY k
	                               HAVING count(*) > floor($elapsed / $shelf_s) + 1) x),
	       (SELECT count(*) FROM cachier.entries WHERE fn_id = cachier.fn_id('bench.load_fn(int)'))" | tr '|' ' ')
bound=$(awk -v k="$keys" -v d="$elapsed" -v s="$shelf_s" 'BEGIN { printf "%d", k * (d / s + 1) }')
per_key_bound=$(awk -v d="$elapsed" -v s="$shelf_s" 'BEGIN { printf "%d", int(d / s) + 1 }')

echo "elapsed:                 $elapsed s (pgbench -T $duration, plus connecting)"
echo "transactions:            ${done_tx:-?}  tps ${tps:-?}  latency avg ${lat:-?} ms"
echo "failed transactions:     ${failed:-?}; errors/aborted clients: $errors; WARNINGs: $warnings; pgbench rc=$rc"
echo "function executions:     $runs  (bound: $keys keys x ($elapsed s / $shelf_s s + 1) = $bound)"
awk -v r="$runs" -v b="$bound" -v t="${done_tx:-0}" 'BEGIN {
	printf "                         %.1f%% of the bound; %.2f%% of the calls computed\n", 100 * r / b, (t > 0 ? 100 * r / t : 0) }'
echo "per key:                 $touched keys computed, at most $max_per_key times each (bound $per_key_bound); keys over the bound: $keys_over"
echo "closest two computations of one key: $min_gap ms apart (expected about $((shelf_s * 1000)) ms or more: the"
echo "                         log time is taken inside the function, a little after cachier's created_at)"
echo "entries stored:          $entries"
if [ "$runs" -le "$bound" ] && [ "$keys_over" -eq 0 ] && [ "$errors" -eq 0 ] && [ "${failed:-1}" -eq 0 ]; then
	echo "goal (no errors, at most one computation per key per shelf life): met"
else
	echo "goal (no errors, at most one computation per key per shelf life): NOT MET"
fi
if [ "$rc" -ne 0 ] || [ "$errors" -ne 0 ] || [ "$warnings" -ne 0 ]; then
	echo "pgbench stderr (first lines):"
	sed 's/^/  /' "$tmp/pgbench.err" | head -20
fi
