# shellcheck shell=bash disable=SC2119,SC2046,SC2206  # numbers are split on purpose
# 40-worker.sh: the background worker (shared_preload_libraries), run by
# run.sh inside the cluster.
#
# Part 1, next_time stale hits.  bench.nt_fn takes about 0.5 ms (pg_sleep)
# and is memoized with stale_after => '1 hour', next_time => true.  Its
# entries are stored with cachier_precache (the function never runs in the
# session); "stale" sets of 1,000 keys are aged by one UPDATE of created_at,
# a "fresh" set of 1,000 keys is stored after it.  Each pass is one
# statement SELECT count(bench.nt_fn_cached(i)) over 1,000 keys, in its own
# transaction, timed with clock_timestamp().  Per round, with a new stale
# set each round and the refresh queue empty at its start:
#
#   fresh, worker idle       the fresh set
#   stale, 1st pass          the stale set: every call serves the stale
#                            value and queues a refresh of its key
#   3 x (fresh, refreshing   the fresh set, while the worker refreshes
#        stale, later pass)  the stale set again: its refreshes are queued
#                            or running, so a call only finds its key in
#                            the queue (the keys the worker has refreshed
#                            meanwhile are fresh hits: the stale_hits
#                            counter of cachier.stats() says how many)
#
# A fresh hit looks the key up and decodes the value.  A stale hit does the
# same, then checks the refresh queue: an exclusive LWLock over a linear
# scan of the 1,024-slot shared queue (for the key; for a free slot) and,
# when it queues, a wake-up of the launcher (SetLatch).  Goal: a stale hit
# within 1.5x of a fresh one.
#
# Part 2, cleanup under load.  bench.cl_fn gets 1,000,000 entries through
# its wrapper (misses that store, 100,000 per transaction) with
# stale_after => '1 second', so all are stale a second later; then VACUUM
# and CHECKPOINT.  8 pgbench clients call bench.hot_fn_cached(k) for random
# k among 10,000 fresh keys of another function, with --log.  First a
# baseline run, then a run of the same length during which
# cachier_configure(cl_fn, cleanup_stale => true, cleanup_interval =>
# '1 second') makes the worker delete the 1,000,000 entries (batches of
# 10,000 rows, each its own transaction).  A monitoring session polls
# pg_stat_activity every 50 ms: the cleanup starts at the query_start of
# the worker's "removing stale cache entries" and ends when the worker
# leaves it; count(*) of cl_fn's entries is checked before and after.
# Hits are compared by latency (pgbench, client side) between the baseline
# run and the transactions of the second run that started during the
# cleanup.  Goal: p99 within 2x of the baseline.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_tmp

rounds=7          # part 1: stale sets of 1,000 keys, one per round
later=3           # part 1: later passes per round
clients=8         # part 2
duration=25       # part 2: seconds of each pgbench run
hot_keys=10000    # part 2: fresh keys of bench.hot_fn
stale_rows=1000000

section_started=$(now_s)
header "Background worker: next_time stale hits; cleanup of $stale_rows stale entries under load"

if [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'cachier launcher'")" -eq 0 ]; then
	echo "no cachier launcher is running (shared_preload_libraries = '$(q 'SHOW shared_preload_libraries')'): skipped"
	exit 1
fi

# ---------------------------------------------------------------- part 1
echo
echo "Part 1: stale hits of a next_time function against fresh hits (1,000 keys per statement)"

sql <<SQL
CREATE FUNCTION bench.nt_fn(i int) RETURNS int LANGUAGE plpgsql AS
  'BEGIN PERFORM pg_sleep(0.0005); RETURN i * 2; END';
SELECT cachier_memoize('bench.nt_fn(int)', stale_after => '1 hour', next_time => true) \gset
-- stale sets: keys 1001..$((1000 + rounds * 1000)); key 999999 is kept for
-- part 2 (a stale hit that starts a worker); fresh set: keys 1..1000
SELECT count(cachier_precache('bench.nt_fn', i * 2, i))
  FROM generate_series(1001, $((1000 + rounds * 1000))) i \gset
SELECT cachier_precache('bench.nt_fn', 999999 * 2, 999999) \gset
UPDATE cachier.entries SET created_at = created_at - interval '1 day'
 WHERE function_id = 'bench.nt_fn(int)'::regprocedure;
SELECT count(cachier_precache('bench.nt_fn', i * 2, i)) FROM generate_series(1, 1000) i \gset
VACUUM cachier.entries;

CREATE TABLE bench.w40_passes (round int, ord int, kind text, ms float8,
                               stale_hits bigint, queued bigint);
CREATE TABLE bench.w40_rounds (round int, drained_s float8, done bigint, failed bigint);

CREATE FUNCTION bench.w40_counts(OUT stale_hits bigint, OUT queued bigint,
                                 OUT done bigint, OUT failed bigint)
LANGUAGE sql AS \$\$
  SELECT coalesce(sum(stale_hits), 0), coalesce(sum(refreshes_queued), 0),
         coalesce(sum(refreshes_done), 0), coalesce(sum(refreshes_failed), 0)
    FROM cachier.stats() WHERE function = 'bench.nt_fn(int)'::regprocedure
\$\$;

-- one timed statement over keys lo..lo+999, in its own transaction
CREATE PROCEDURE bench.w40_pass(r int, o int, kind text, lo int)
LANGUAGE plpgsql AS \$\$
DECLARE
    c0 record;
    c1 record;
    t0 timestamptz;
    t1 timestamptz;
BEGIN
    c0 := bench.w40_counts();
    t0 := clock_timestamp();
    PERFORM count(bench.nt_fn_cached(i)) FROM generate_series(lo, lo + 999) i;
    t1 := clock_timestamp();
    c1 := bench.w40_counts();
    INSERT INTO bench.w40_passes VALUES (r, o, kind, extract(epoch FROM t1 - t0) * 1000,
                                         c1.stale_hits - c0.stale_hits, c1.queued - c0.queued);
    COMMIT;
END
\$\$;

-- wait (at most 60 s) until every queued refresh is done or failed
CREATE FUNCTION bench.w40_drained() RETURNS boolean LANGUAGE sql AS
  'SELECT queued = done + failed FROM bench.w40_counts()';

CREATE PROCEDURE bench.w40_rounds(rounds int, later int)
LANGUAGE plpgsql AS \$\$
DECLARE
    t0 timestamptz;
    c record;
    lo int;
BEGIN
    FOR r IN 1..rounds LOOP
        lo := 1001 + (r - 1) * 1000;
        CALL bench.w40_pass(r, 1, 'fresh, worker idle', 1);
        t0 := clock_timestamp();
        CALL bench.w40_pass(r, 2, 'stale, 1st pass', lo);
        FOR j IN 1..later LOOP
            CALL bench.w40_pass(r, 3, 'fresh, refreshes running', 1);
            CALL bench.w40_pass(r, 4, 'stale, later pass', lo);
        END LOOP;
        WHILE NOT bench.w40_drained() AND clock_timestamp() < t0 + interval '60 s' LOOP
            PERFORM pg_sleep(0.02);
            COMMIT;
        END LOOP;
        c := bench.w40_counts();
        INSERT INTO bench.w40_rounds VALUES (r,
            CASE WHEN bench.w40_drained() THEN extract(epoch FROM clock_timestamp() - t0) END,
            c.done, c.failed);
        COMMIT;
    END LOOP;
END
\$\$;
SQL

echo "running $rounds rounds of 1 + 1 + $later x 2 passes (a new stale set per round; refreshes drained between rounds) ..."
sql -c "CALL bench.w40_rounds($rounds, $later)"

sql <<'SQL'
\echo
SELECT kind AS pass, count(*) AS passes,
       round((1000 * percentile_disc(0.5) WITHIN GROUP (ORDER BY ms / 1000))::numeric, 2) AS "median µs/call",
       round((1000 * min(ms / 1000))::numeric, 2) AS "min µs/call",
       sum(stale_hits) AS "stale hits", sum(queued) AS "refreshes queued",
       1000 * count(*) AS calls
  FROM bench.w40_passes GROUP BY kind ORDER BY min(ord);
SQL
read -r f_idle s_first f_run s_later < <(q "
	SELECT string_agg(round(m::numeric, 3)::text, ' ' ORDER BY o) FROM (
	  SELECT min(ord) AS o, 1000 * percentile_disc(0.5) WITHIN GROUP (ORDER BY ms / 1000) AS m
	    FROM bench.w40_passes GROUP BY kind) x")
read -r stale_later_frac < <(q "SELECT round(100.0 * sum(stale_hits) / (1000 * count(*)), 1) FROM bench.w40_passes WHERE ord = 4")
read -r drain_med drain_max nodrain done failed < <(q "
	SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY drained_s)::numeric, 2),
	       round(max(drained_s)::numeric, 2), count(*) - count(drained_s),
	       max(done), max(failed) FROM bench.w40_rounds" | tr '|' ' ')
r1=$(awk -v a="$s_first" -v b="$f_idle" 'BEGIN { printf "%.2f", a / b }')
r2=$(awk -v a="$s_later" -v b="$f_run" 'BEGIN { printf "%.2f", a / b }')
echo "stale 1st pass / fresh (worker idle):       $s_first / $f_idle µs = ${r1}x"
echo "stale later pass / fresh (refreshes running): $s_later / $f_run µs = ${r2}x  ($stale_later_frac% of the later-pass calls were stale hits)"
echo "refreshes: $done done, $failed failed; 1,000 refreshes (0.5 ms function) drained in a median of $drain_med s (max $drain_max s) after the 1st pass; rounds not drained within 60 s: $nodrain"
if awk -v a="$r1" -v b="$r2" 'BEGIN { exit !(a <= 1.5 && b <= 1.5) }'; then
	echo "goal (a stale hit within 1.5x of a fresh hit): met"
else
	echo "goal (a stale hit within 1.5x of a fresh hit): NOT MET"
fi
