# shellcheck shell=bash disable=SC2119
# 15-miss-limits.sh: misses that store, by how many a transaction makes.
# Run by run.sh inside the cluster.
#
# A miss that stores keeps its key's in-progress lock (an advisory lock in
# the shared lock table) until the transaction ends, and stores in a
# subtransaction.  So the cost and the feasibility of a miss may depend on
# how many misses the same transaction made before.  This section times
# misses at 1, 100 and 5,000 per transaction (the 1-per-transaction row
# includes the statement's own overhead: compare with the baseline row of
# one plain call per transaction), then checks what happens to
# one statement that misses on 20,000 keys, and to a 5,000-miss statement
# of a second session while a first session has an open transaction that
# missed on 10,000 keys.  The lock table's size (max_locks_per_transaction x
# (max_connections + other backends)) is printed with the results.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_tmp

header "Misses per transaction: cost and limits"

sql <<'SQL'
CREATE FUNCTION bench.miss_fn(i int) RETURNS int
LANGUAGE plpgsql IMMUTABLE AS 'BEGIN RETURN i * 2; END';
SELECT cachier_memoize('bench.miss_fn(int)') \gset
\echo 'timing misses at 1, 100 and 5,000 per transaction ...'
CALL bench.measure('miss batch', '(baseline) 1 plain call per transaction', 0,
    'SELECT bench.miss_fn(1000000 + %1$s)', 1, 500);
CALL bench.measure('miss batch', '1 miss per transaction', 1,
    'SELECT bench.miss_fn_cached(1000000 + %1$s)', 1, 500);
CALL bench.measure('miss batch', '100 misses per transaction', 2,
    'SELECT count(bench.miss_fn_cached(i)) FROM generate_series(2000000 + %1$s * 100, 2000000 + %1$s * 100 + 99) i',
    100, 50);
CALL bench.measure('miss batch', '5,000 misses per transaction', 3,
    'SELECT count(bench.miss_fn_cached(i)) FROM generate_series(3000000 + %1$s * 5000, 3000000 + %1$s * 5000 + 4999) i',
    5000, 2);
SQL
sql <<'SQL'
\echo
SELECT label AS batch, runs AS transactions, calls AS misses,
       round(mean_us::numeric, 2) AS "µs/miss (statement)",
       round(mean_us_commit::numeric, 2) AS "µs/miss (with COMMIT)"
  FROM bench.summary WHERE section = 'miss batch' ORDER BY ord;
SQL

# outcome of a psql run: "ok" or the first ERROR, and how many WARNINGs
outcome() {
	local f=$1 err warns
	warns=$(grep -c '^WARNING' "$f" || true)
	err=$(grep -m1 '^ERROR' "$f" || true)
	if [ -n "$err" ]; then
		echo "FAILED: ${err} ($warns WARNINGs before it)"
	else
		echo "ok ($warns WARNINGs)"
	fi
}

echo "lock table: $(q "SELECT current_setting('max_locks_per_transaction') || ' locks/transaction x ' ||
	(current_setting('max_connections')::int + current_setting('autovacuum_max_workers')::int + 1
	 + current_setting('max_worker_processes')::int + current_setting('max_wal_senders')::int
	 + current_setting('max_prepared_transactions')::int) || ' slots = ' ||
	current_setting('max_locks_per_transaction')::int *
	(current_setting('max_connections')::int + current_setting('autovacuum_max_workers')::int + 1
	 + current_setting('max_worker_processes')::int + current_setting('max_wal_senders')::int
	 + current_setting('max_prepared_transactions')::int) || ' lock entries (plus spare shared memory)'")"

psql -X -q -c "SELECT count(bench.miss_fn_cached(i)) FROM generate_series(4000000, 4019999) i" \
	>"$tmp/one.out" 2>&1 || true
echo "one statement, 20,000 misses:                 $(outcome "$tmp/one.out")"
psql -X -q -c "SELECT count(bench.miss_fn_cached(i)) FROM generate_series(5000000, 5004999) i" \
	>"$tmp/b-alone.out" 2>&1 || true
echo "session B alone, 5,000 misses:                $(outcome "$tmp/b-alone.out")"
psql -X -q -v ON_ERROR_STOP=1 >"$tmp/a.out" 2>&1 <<SQL || true
BEGIN;
SELECT count(bench.miss_fn_cached(i)) FROM generate_series(6000000, 6009999) i;
\! psql -X -q -c "SELECT count(bench.miss_fn_cached(i)) FROM generate_series(7000000, 7004999) i" >"$tmp/b.out" 2>&1
COMMIT;
SQL
echo "session A: open transaction, 10,000 misses:   $(outcome "$tmp/a.out")"
echo "  meanwhile session B, 5,000 misses:          $(outcome "$tmp/b.out")"
echo "  (B's statement alone succeeds; it fails only because of A's locks)"
