# shellcheck shell=bash disable=SC2119,SC2046,SC2206  # numbers are split on purpose
# 40-worker.sh: the background worker (shared_preload_libraries): stale hits
# of next_time functions, and a cleanup of 1,000,000 stale entries under
# load.  Run by run.sh inside the cluster.
#
# Part 1, next_time stale hits.  bench.nt_fn sleeps 0.5 ms and is memoized
# with stale_after => '1 hour', next_time => true.  Its entries are stored
# with cachier_precache (the function does not run in the session); the
# stale sets of 1,000 keys are aged by one UPDATE of created_at, the fresh
# set of 1,000 keys is stored after it.  A pass is one statement
# SELECT count(bench.nt_fn_cached(i)) over 1,000 keys in its own
# transaction, timed with clock_timestamp().  Per round, with a new stale
# set and the refresh queue empty at its start:
#
#   3 x fresh, worker idle      the fresh set
#   stale, 1st pass             the stale set: every call serves the stale
#                               value and queues a refresh of its key
#   3 x (fresh, refreshing;     the fresh set while the worker refreshes
#        stale, later pass)     the stale set again: its keys are queued or
#                               being refreshed, so a call finds its key in
#                               the queue and queues nothing (a key the
#                               worker has refreshed meanwhile is a fresh
#                               hit: cachier.stats().stale_hits counts them)
#
# A fresh hit looks the key up and decodes the value.  A stale hit does the
# same, then checks the refresh queue: an exclusive LWLock held over a
# linear scan of the 1,024-slot shared queue, for its key and a free slot;
# when it queues, it also wakes the launcher (SetLatch).  Goal: a stale hit
# within 1.5x of a fresh one.
#
# Part 1b, where that time goes: bench.nt_slow sleeps 1 s, so its 1,000
# queued refreshes stay in the queue (slots 0..999, in the order of the
# first pass) while later passes hit 100 of its keys 10 times each: keys
# near the head of the queue (slots 10..109) against keys near its tail
# (slots 900..999) and 100 fresh keys.  The difference is the scan.
#
# Part 2, cleanup under load.  bench.cl_fn gets 1,000,000 entries through
# its wrapper (misses that store, 100,000 per transaction) with
# stale_after => '1 second', so all are stale a second later; then VACUUM
# (ANALYZE) and CHECKPOINT.  8 pgbench clients call bench.hot_fn_cached(k)
# for random k among 10,000 fresh keys of another function, as fast as
# they can, with --log.  Three runs of the same length:
#
#   baseline       nothing else
#   cleanup        2 s in, cachier_configure(cl_fn, cleanup_stale => true,
#                  cleanup_interval => '1 second'); a monitoring session
#                  waits 2 s for a worker to start the cleanup and then,
#                  if none did, starts one with a stale hit of bench.nt_fn
#                  (a queued refresh starts the database's worker, which
#                  first runs the cleanups that are due).  It polls
#                  pg_stat_activity every 20 ms: the cleanup starts when
#                  the worker reports "removing stale cache entries"
#                  (state_change) and ends when it leaves it; the worker
#                  deletes in batches of 10,000 rows, each its own
#                  transaction.  count(*) of cl_fn's entries is checked
#                  before and after; then VACUUM removes the deleted rows
#                  (timed, without load), so that no autovacuum of them
#                  runs during the next run.
#   reference      a CPU-bound plpgsql loop, in another session, as long as
#                  the cleanup took and as far into the run: what any
#                  CPU-bound process costs the hits on this machine.
#
# Latencies are pgbench's (client side), of the transactions that started
# in each window.  Goal: p99 during the cleanup within 2x of the baseline.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_tmp

rounds=7          # part 1: stale sets of 1,000 keys, one per round
later=3           # part 1: later passes per round
clients=8         # part 2
duration=15       # part 2: seconds of each pgbench run
hot_keys=10000    # part 2: fresh keys of bench.hot_fn
stale_rows=1000000

section_started=$(now_s)
header "Background worker: next_time stale hits; cleanup of 1,000,000 stale entries under load"

if [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'cachier launcher'")" -eq 0 ]; then
	echo "no cachier launcher is running (shared_preload_libraries = '$(q 'SHOW shared_preload_libraries')')"
	exit 1
fi

sql <<'SQL'
-- the refresh counters of one function
CREATE FUNCTION bench.w40_counts(fn regprocedure, OUT stale_hits bigint, OUT queued bigint,
                                 OUT done bigint, OUT failed bigint)
LANGUAGE sql AS $$
  SELECT coalesce(sum(stale_hits), 0), coalesce(sum(refreshes_queued), 0),
         coalesce(sum(refreshes_done), 0), coalesce(sum(refreshes_failed), 0)
    FROM cachier.stats() WHERE function = fn
$$;
-- whether every refresh of fn that was queued is done or failed (every
-- refresh of part 1 stores a value, so counts as done)
CREATE FUNCTION bench.w40_drained(fn regprocedure) RETURNS boolean LANGUAGE sql AS
  'SELECT queued = done + failed FROM bench.w40_counts(fn)';
-- wait until no cachier worker has been running here for 3 polls 20 ms
-- apart (a worker exits when the queue has nothing left for its database)
CREATE PROCEDURE bench.w40_wait_no_worker(max_s float8) LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    quiet int := 0;
BEGIN
    WHILE quiet < 3 AND clock_timestamp() < t0 + make_interval(secs => max_s) LOOP
        COMMIT;    -- pg_stat_activity is read once per transaction
        IF EXISTS (SELECT FROM pg_stat_activity
                    WHERE backend_type = 'cachier worker' AND datname = current_database()) THEN
            quiet := 0;
        ELSE
            quiet := quiet + 1;
        END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
END
$$;
CREATE FUNCTION bench.w40_worker_running() RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT FROM pg_stat_activity
                  WHERE backend_type = 'cachier worker' AND datname = current_database())
$$;
SQL

# ---------------------------------------------------------------- part 1
echo
echo "Part 1: stale hits of a next_time function against fresh hits (1,000 keys per statement)"

sql <<SQL
CREATE FUNCTION bench.nt_fn(i int) RETURNS int LANGUAGE plpgsql AS
  'BEGIN PERFORM pg_sleep(0.0005); RETURN i * 2; END';
SELECT cachier_memoize('bench.nt_fn(int)', stale_after => '1 hour', next_time => true) \gset
-- stale sets: keys 1001..$((1000 + rounds * 1000)); key 999999 is for part 2
-- (a stale hit that starts a worker); the fresh set: keys 1..1000
SELECT count(cachier_precache('bench.nt_fn', i * 2, i))
  FROM generate_series(1001, $((1000 + rounds * 1000))) i \gset
SELECT cachier_precache('bench.nt_fn', 999999 * 2, 999999) \gset
UPDATE cachier.entries SET created_at = created_at - interval '1 day'
 WHERE fn_id = cachier.fn_id('bench.nt_fn(int)');
SELECT count(cachier_precache('bench.nt_fn', i * 2, i)) FROM generate_series(1, 1000) i \gset
VACUUM cachier.entries;

CREATE TABLE bench.w40_passes (round int, ord int, kind text, ms float8,
                               stale_hits bigint, queued bigint);
CREATE TABLE bench.w40_rounds (round int, drained_s float8, done bigint, failed bigint);

-- one timed statement over keys lo..lo+999, in its own transaction
CREATE PROCEDURE bench.w40_pass(r int, o int, kind text, lo int)
LANGUAGE plpgsql AS \$\$
DECLARE
    c0 record;
    c1 record;
    t0 timestamptz;
    t1 timestamptz;
BEGIN
    c0 := bench.w40_counts('bench.nt_fn(int)');
    t0 := clock_timestamp();
    PERFORM count(bench.nt_fn_cached(i)) FROM generate_series(lo, lo + 999) i;
    t1 := clock_timestamp();
    c1 := bench.w40_counts('bench.nt_fn(int)');
    INSERT INTO bench.w40_passes VALUES (r, o, kind, extract(epoch FROM t1 - t0) * 1000,
                                         c1.stale_hits - c0.stale_hits, c1.queued - c0.queued);
    COMMIT;
END
\$\$;

CREATE PROCEDURE bench.w40_rounds(rounds int, later int)
LANGUAGE plpgsql AS \$\$
DECLARE
    t0 timestamptz;
    c record;
    lo int;
BEGIN
    FOR r IN 1..rounds LOOP
        lo := 1001 + (r - 1) * 1000;
        FOR j IN 1..3 LOOP
            CALL bench.w40_pass(r, 1, 'fresh, worker idle', 1);
        END LOOP;
        t0 := clock_timestamp();
        CALL bench.w40_pass(r, 2, 'stale, 1st pass', lo);
        FOR j IN 1..later LOOP
            CALL bench.w40_pass(r, 3, 'fresh, refreshes running', 1);
            CALL bench.w40_pass(r, 4, 'stale, later pass', lo);
        END LOOP;
        WHILE NOT bench.w40_drained('bench.nt_fn(int)') AND clock_timestamp() < t0 + interval '60 s' LOOP
            PERFORM pg_sleep(0.01);
        END LOOP;
        c := bench.w40_counts('bench.nt_fn(int)');
        INSERT INTO bench.w40_rounds VALUES (r,
            CASE WHEN bench.w40_drained('bench.nt_fn(int)') THEN extract(epoch FROM clock_timestamp() - t0) END,
            c.done, c.failed);
        COMMIT;
        CALL bench.w40_wait_no_worker(30);
    END LOOP;
END
\$\$;
SQL

echo "$rounds rounds of 3 + 1 + $later x 2 passes (a new stale set per round; each round waits until its refreshes are done) ..."
sql -c "CALL bench.w40_rounds($rounds, $later)"

sql <<'SQL'
\echo
SELECT kind AS pass, count(*) AS passes,
       round((1000 * percentile_disc(0.5) WITHIN GROUP (ORDER BY ms / 1000))::numeric, 2) AS "median µs/call",
       round((1000 * min(ms / 1000))::numeric, 2) AS "min µs/call",
       1000 * count(*) AS calls, sum(stale_hits) AS "stale hits", sum(queued) AS "refreshes queued"
  FROM bench.w40_passes GROUP BY kind ORDER BY min(ord);
SQL
read -r f_idle s_first f_run s_later < <(q "
	SELECT string_agg(round(m::numeric, 2)::text, ' ' ORDER BY o) FROM (
	  SELECT min(ord) AS o, 1000 * percentile_disc(0.5) WITHIN GROUP (ORDER BY ms / 1000) AS m
	    FROM bench.w40_passes GROUP BY kind) x")
stale_later_pct=$(q "SELECT round(100.0 * sum(stale_hits) / (1000 * count(*)), 1) FROM bench.w40_passes WHERE ord = 4")
read -r drain_med drain_max undrained n_done n_failed < <(q "
	SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY drained_s)::numeric, 2),
	       round(max(drained_s)::numeric, 2), count(*) - count(drained_s),
	       max(done), max(failed) FROM bench.w40_rounds" | tr '|' ' ')
r1=$(awk -v a="$s_first" -v b="$f_idle" 'BEGIN { printf "%.2f", a / b }')
r2=$(awk -v a="$s_later" -v b="$f_run" 'BEGIN { printf "%.2f", a / b }')
echo "stale 1st pass / fresh, worker idle:         $s_first / $f_idle µs = ${r1}x"
echo "stale later pass / fresh, refreshes running: $s_later / $f_run µs = ${r2}x ($stale_later_pct% of those calls were stale hits)"
echo "refreshes: $n_done done, $n_failed failed; a round's 1,000 refreshes (0.5 ms function) were done"
echo "  ${drain_med:-?} s (median; max ${drain_max:-?} s) after its 1st pass began; rounds not done within 60 s: $undrained"
echo "(a stale hit = a fresh hit's lookup and decode, then an exclusive LWLock over a linear scan of the"
echo " 1,024-slot refresh queue for its key and a free slot; on the 1st pass also a queued item and a"
echo " wake-up of the launcher, which starts the database's worker: part 1b measures the scan)"
if awk -v a="$r1" -v b="$r2" 'BEGIN { exit !(a <= 1.5 && b <= 1.5) }'; then
	echo "goal (a stale hit within 1.5x of a fresh hit): met"
else
	echo "goal (a stale hit within 1.5x of a fresh hit): NOT MET"
fi

# ---------------------------------------------------------------- part 1b
echo
echo "Part 1b: a later stale hit by its key's place in the refresh queue (1,000 calls per statement: 100 keys x 10)"

sql <<'SQL'
CREATE FUNCTION bench.nt_slow(i int) RETURNS int LANGUAGE plpgsql AS
  'BEGIN PERFORM pg_sleep(1); RETURN i * 2; END';
SELECT cachier_memoize('bench.nt_slow(int)', stale_after => '1 hour', next_time => true) \gset
SELECT count(cachier_precache('bench.nt_slow', i * 2, i)) FROM generate_series(1, 1000) i \gset
UPDATE cachier.entries SET created_at = created_at - interval '1 day'
 WHERE fn_id = cachier.fn_id('bench.nt_slow(int)');
SELECT count(cachier_precache('bench.nt_slow', i * 2, i)) FROM generate_series(2001, 2100) i \gset
VACUUM cachier.entries;
CREATE TABLE bench.w40_queue (kind text, ord int, us float8, stale_hits bigint);

CREATE PROCEDURE bench.w40_queue_passes(reps int) LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    t1 timestamptz;
    c0 record;
    c1 record;
    lo int;
BEGIN
    -- the queue is empty: keys 1..1000 take slots 0..999
    PERFORM count(bench.nt_slow_cached(i)) FROM generate_series(1, 1000) i;
    COMMIT;
    FOR r IN 1..reps LOOP
        FOREACH lo IN ARRAY ARRAY[2001, 11, 901] LOOP
            c0 := bench.w40_counts('bench.nt_slow(int)');
            t0 := clock_timestamp();
            PERFORM count(bench.nt_slow_cached(i)) FROM generate_series(1, 10) j, generate_series(lo, lo + 99) i;
            t1 := clock_timestamp();
            c1 := bench.w40_counts('bench.nt_slow(int)');
            INSERT INTO bench.w40_queue VALUES (
                CASE lo WHEN 2001 THEN 'fresh'
                        WHEN 11 THEN 'stale, key in queue slots 10..109'
                        ELSE 'stale, key in queue slots 900..999' END,
                lo, extract(epoch FROM t1 - t0) * 1e6 / 1000, c1.stale_hits - c0.stale_hits);
            COMMIT;
        END LOOP;
    END LOOP;
END
$$;
CALL bench.w40_queue_passes(30);
\echo
SELECT kind AS pass, count(*) AS passes,
       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY us)::numeric, 2) AS "median µs/call",
       round(min(us)::numeric, 2) AS "min µs/call",
       1000 * count(*) AS calls, sum(stale_hits) AS "stale hits"
  FROM bench.w40_queue GROUP BY kind ORDER BY min(array_position(ARRAY[2001, 11, 901], ord));
-- let the worker drop the remaining refreshes (their entries are gone)
SELECT cachier_clear('bench.nt_slow') \gset
CALL bench.w40_wait_no_worker(30);
SQL
# "median min" µs per call of one kind of pass
qus() { q "SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY us)::numeric, 2) || ' ' || round(min(us)::numeric, 2)
             FROM bench.w40_queue WHERE ord = $1"; }
read -r f_med f_min < <(qus 2001)
read -r h_med h_min < <(qus 11)
read -r t_med t_min < <(qus 901)
scan_line() {
	awk -v m="$1" -v f="$2" -v h="$3" -v t="$4" 'BEGIN {
		printf "%-7s head / fresh = %.2fx, tail / fresh = %.2fx: scanning 890 more queue slots costs %.2f µs (%.2f ns a slot)\n",
			m, h / f, t / f, t - h, (t - h) * 1000 / 890 }'
}
scan_line median: "$f_med" "$h_med" "$t_med"
scan_line min: "$f_min" "$h_min" "$t_min"
if [ "$(q "SELECT bench.w40_worker_running()")" = t ]; then
	echo "WARNING: the worker is still busy with bench.nt_slow; part 2 may start late"
fi

# ---------------------------------------------------------------- part 2
echo
echo "Part 2: the worker removes 1,000,000 stale entries while $clients clients hit fresh keys"

sql <<SQL
CREATE FUNCTION bench.hot_fn(i int) RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN i + 3; END';
SELECT cachier_memoize('bench.hot_fn(int)') \gset
SELECT count(bench.hot_fn_cached(i)) FROM generate_series(1, $hot_keys) i \gset
CREATE FUNCTION bench.cl_fn(i int) RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN i + 7; END';
SELECT cachier_memoize('bench.cl_fn(int)', stale_after => '1 second') \gset
CREATE PROCEDURE bench.w40_fill(n int, batch int) LANGUAGE plpgsql AS \$\$
BEGIN
    FOR lo IN 1..n BY batch LOOP
        PERFORM count(bench.cl_fn_cached(i)) FROM generate_series(lo, least(lo + batch - 1, n)) i;
        COMMIT;
    END LOOP;
END
\$\$;
SQL
t0=$(now_s)
sql -c "CALL bench.w40_fill($stale_rows, 100000)"
t1=$(now_s)
sql -c "VACUUM (ANALYZE) cachier.entries" -c "CHECKPOINT"
t2=$(now_s)
read -r n_stale n_total tbl_size < <(q "
	SELECT count(*) FILTER (WHERE fn_id = cachier.fn_id('bench.cl_fn(int)')), count(*),
	       pg_size_pretty(pg_total_relation_size('cachier.entries'))
	  FROM cachier.entries" | tr '|' ' ')
awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$stale_rows" 'BEGIN {
	printf "stored %d entries of bench.cl_fn in %.1f s (%.1f µs a miss); VACUUM (ANALYZE) + CHECKPOINT: %.1f s\n",
		n, b - a, (b - a) * 1e6 / n, c - b }'
echo "cachier.entries: $n_total rows ($n_stale of bench.cl_fn, stale), $tbl_size with its indexes"

cat >"$tmp/hot.sql" <<SQL
\set k random(1, $hot_keys)
SELECT bench.hot_fn_cached(:k);
SQL

sql <<'SQL'
CREATE TABLE bench.w40_events (event text, at timestamptz, pid int);
CREATE FUNCTION bench.w40_event(e text, p int DEFAULT NULL, t timestamptz DEFAULT clock_timestamp())
RETURNS void LANGUAGE sql AS 'INSERT INTO bench.w40_events VALUES (e, t, p)';

-- every change of state or activity of this database's cachier workers,
-- as the monitoring session saw it
CREATE TABLE bench.w40_trace (at timestamptz, pid int, state text, query text);
CREATE FUNCTION bench.w40_observe() RETURNS void LANGUAGE sql AS $$
  INSERT INTO bench.w40_trace
  SELECT clock_timestamp(), a.pid, a.state, a.query FROM pg_stat_activity a
   WHERE a.backend_type = 'cachier worker' AND a.datname = current_database()
     AND NOT EXISTS (SELECT FROM (SELECT t.state, t.query FROM bench.w40_trace t
                                   WHERE t.pid = a.pid ORDER BY t.at DESC LIMIT 1) l
                     WHERE l.state IS NOT DISTINCT FROM a.state AND l.query IS NOT DISTINCT FROM a.query)
$$;

-- see the header: enable the cleanup after pre_s, wait own_s for a worker,
-- then start one; record when the worker's cleanup started (state_change:
-- the time of its last pgstat_report_activity; a worker's query_start is
-- not maintained) and ended
CREATE PROCEDURE bench.w40_monitor(pre_s float8, own_s float8, max_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    t_enabled timestamptz;
    triggered boolean := false;
    w record;
    a record;
BEGIN
    PERFORM pg_sleep(pre_s);
    t_enabled := clock_timestamp();
    PERFORM cachier_configure('bench.cl_fn(int)', stale_after => '1 second',
                              cleanup_stale => true, cleanup_interval => '1 second');
    COMMIT;
    PERFORM bench.w40_event('cachier_configure(cleanup_stale => true) called', NULL, t_enabled);
    PERFORM bench.w40_event('... and committed');
    COMMIT;
    LOOP
        PERFORM bench.w40_observe();
        SELECT pid, state_change INTO w FROM pg_stat_activity
         WHERE backend_type = 'cachier worker' AND datname = current_database()
           AND state = 'active' AND query = 'removing stale cache entries';
        EXIT WHEN FOUND;
        IF NOT triggered AND clock_timestamp() > t_enabled + make_interval(secs => own_s) THEN
            PERFORM bench.w40_event('no cleanup yet: a stale hit of bench.nt_fn queues a refresh');
            PERFORM bench.nt_fn_cached(999999);
            triggered := true;
        END IF;
        IF clock_timestamp() > t_enabled + make_interval(secs => max_s) THEN
            PERFORM bench.w40_event('gave up waiting for the worker');
            RETURN;
        END IF;
        COMMIT;    -- pg_stat_activity is read once per transaction
        PERFORM pg_sleep(0.02);
    END LOOP;
    PERFORM bench.w40_event('cleanup started', w.pid, w.state_change);
    COMMIT;
    LOOP
        PERFORM pg_sleep(0.02);
        COMMIT;
        PERFORM bench.w40_observe();
        SELECT state, query, state_change INTO a FROM pg_stat_activity WHERE pid = w.pid;
        CONTINUE WHEN FOUND AND a.state = 'active' AND a.query = 'removing stale cache entries';
        -- ended: when the worker went idle, or about now (busy with
        -- something else, or gone)
        PERFORM bench.w40_event('cleanup ended', w.pid,
            CASE WHEN FOUND AND a.state = 'idle' THEN a.state_change ELSE clock_timestamp() END);
        RETURN;
    END LOOP;
END
$$;

-- the reference: a CPU-bound loop of secs seconds
CREATE FUNCTION bench.w40_burn(secs float8) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    n bigint := 0;
BEGIN
    PERFORM bench.w40_event('CPU-bound loop started', pg_backend_pid(), t0);
    WHILE clock_timestamp() < t0 + make_interval(secs => secs) LOOP
        n := n + 1;
    END LOOP;
    PERFORM bench.w40_event('CPU-bound loop ended', pg_backend_pid());
    RETURN n;
END
$$;
SQL

# autovacuums of cachier.entries and checkpoints so far
noise() {
	q "SELECT (SELECT autovacuum_count FROM pg_stat_all_tables WHERE relid = 'cachier.entries'::regclass)
	          || ' ' || (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)"
}

# run_load NAME: the clients for $duration s, logged to $tmp/NAME.log;
# appends to $tmp/noise what else ran meanwhile
run_load() {
	local rc=0 n0 n1
	n0=$(noise)
	pgbench -n -c "$clients" -j 2 -T "$duration" -f "$tmp/hot.sql" \
		--log --log-prefix="$tmp/$1" >"$tmp/$1.out" 2>&1 || rc=$?
	n1=$(noise)
	cat "$tmp/$1".[0-9]* >"$tmp/$1.log"
	echo "$1 $n0 $n1" | awk '{ printf "%s %d autovacuum(s) of cachier.entries, %d checkpoint(s)\n", $1, $4 - $2, $5 - $3 }' >>"$tmp/noise"
	if [ "$rc" -ne 0 ] || grep -Eq 'ERROR|FATAL|aborted' "$tmp/$1.out"; then
		echo "  pgbench ($1): rc=$rc"
		grep -Ev '^ *$' "$tmp/$1.out" | head -20 | sed 's/^/    /'
	fi
}

# span LOG: "first last" start times (epoch s) of its transactions; the
# last is nudged so that a window [first, last) includes it
span() {
	awk '{ s = $5 + $6 / 1e6 - $3 / 1e6; if (NR == 1 || s < lo) lo = s; if (NR == 1 || s > hi) hi = s }
	     END { printf "%.6f %.6f\n", lo, hi + 1e-6 }' "$1"
}

ev() { awk -F'|' -v e="$1" '$1 == e { print $3; exit }' "$tmp/events"; }

# row LABEL FROM TO LOG: latencies (µs) of the transactions that started in
# [FROM, TO); sets p99
row() {
	local label=$1 from=$2 to=$3 log=$4
	set -- $(awk -v a="$from" -v b="$to" '{ e = $5 + $6 / 1e6; s = e - $3 / 1e6; if (s >= a && s < b) print $3 }' "$log" | stats)
	printf '%-42s %6.2f %8s %7s %7s %7s %8s\n' "$label" \
		"$(awk -v a="$from" -v b="$to" 'BEGIN { print b - a }')" "$5" \
		"$(awk -v n="$5" -v a="$from" -v b="$to" 'BEGIN { printf "%.0f", n / (b - a) }')" "$2" "$3" "$4"
	p99=$3
}

echo "baseline: pgbench -c $clients -j 2 -T $duration, SELECT bench.hot_fn_cached(random(1, $hot_keys)) ..."
run_load base
echo "cleanup: the same; cleanup_stale enabled after 2 s ..."
sql -c "CALL bench.w40_monitor(2, 2, $((duration - 3)))" >"$tmp/monitor.out" 2>&1 &
mon=$!
launched=$(now_s)
run_load clean
wait "$mon" || { echo "  the monitoring session failed:"; sed 's/^/    /' "$tmp/monitor.out"; }
n_left=$(q "SELECT count(*) FROM cachier.entries WHERE fn_id = cachier.fn_id('bench.cl_fn(int)')")
# the deleted rows are left to VACUUM: do it now, so that no autovacuum of
# them runs during the reference run
t0=$(now_s)
sql -c "VACUUM cachier.entries"
vacuum_s=$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }')
events() {
	q "SELECT event, to_char(at, 'HH24:MI:SS.MS'), extract(epoch FROM at), pid FROM bench.w40_events
	   UNION ALL
	   SELECT '  (seen: worker ' || state || coalesce(', ' || nullif(query, ''), '') || ')',
	          to_char(at, 'HH24:MI:SS.MS'), extract(epoch FROM at), pid FROM bench.w40_trace
	   ORDER BY 3" >"$tmp/events"
}
events
t_en=$(ev 'cachier_configure(cleanup_stale => true) called')
t_commit=$(ev '... and committed')
t_trig=$(ev 'no cleanup yet: a stale hit of bench.nt_fn queues a refresh')
t_start=$(ev 'cleanup started')
t_end=$(ev 'cleanup ended')
read -r c_first c_last < <(span "$tmp/clean.log")
read -r b_first b_last < <(span "$tmp/base.log")

cleaned=0
if [ -n "$t_start" ] && [ -n "$t_end" ] &&
	awk -v s="$t_start" -v f="$t_end" -v a="$c_first" -v b="$c_last" 'BEGIN { exit !(s >= a && f <= b) }'; then
	cleaned=1
	offset=$(awk -v s="$t_start" -v l="$launched" 'BEGIN { printf "%.3f", s - l }')
	burn=$(awk -v s="$t_start" -v f="$t_end" 'BEGIN { printf "%.3f", f - s }')
	echo "reference: the same; after $offset s a CPU-bound loop of $burn s in another session ..."
	(sleep "$offset" && q "SELECT bench.w40_burn($burn)" >/dev/null) &
	burner=$!
	run_load ref
	wait "$burner"
	events
fi

echo
echo "events of the cleanup run (pgbench from $(date -d "@$c_first" +%H:%M:%S.%3N) to $(date -d "@$c_last" +%H:%M:%S.%3N)):"
awk -F'|' '$1 !~ /CPU-bound/ { printf "  %s  %s%s\n", $2, $1, ($4 != "" ? " (pid " $4 ")" : "") }' "$tmp/events"
if [ -n "$t_trig" ]; then
	echo "  NOTE: no cleanup began within 2 s of the configure call (cleanup_interval = 1 second);"
	echo "        it began when a queued refresh started the database's worker"
fi
if [ -n "$t_trig" ] && awk -F'|' -v a="$t_en" -v b="$t_trig" '$1 ~ /seen: worker/ && $3 >= a && $3 < b { n++ } END { exit !n }' "$tmp/events"; then
	echo "  NOTE: a worker did run right after the configure call, but without cleaning up: it planned"
	echo "        before the configure's transaction committed (the launcher is woken inside it)"
fi
if [ -n "$t_start" ] && awk -v s="$t_start" -v c="$t_commit" 'BEGIN { exit !(s < c) }'; then
	echo "  NOTE: the worker began its cleanup before cachier_configure's transaction committed"
fi
if [ -n "$t_start" ] && [ -n "$t_end" ]; then
	awk -v e="$t_en" -v s="$t_start" -v f="$t_end" -v n="$n_stale" -v l="$n_left" 'BEGIN {
		printf "cleanup: %d of %d entries removed in %.2f s by the worker (%.0f rows/s), done %.2f s after the configure call; %d left\n",
			n - l, n, f - s, (n - l) / (f - s), f - e, l }'
else
	echo "cleanup: the worker's cleanup was not seen; entries of bench.cl_fn left: $n_left"
fi
echo "VACUUM cachier.entries after the cleanup run (no load): $vacuum_s s"

echo
printf '%-42s %6s %8s %7s %7s %7s %8s\n' "hits: transactions started" "s" "n" "tps" "p50 µs" "p99 µs" "max µs"
row "baseline run" "$b_first" "$b_last" "$tmp/base.log"
base_p99=$p99
if [ "$cleaned" -eq 1 ]; then
	row "cleanup run, before the cleanup" "$c_first" "$t_start" "$tmp/clean.log"
	row "cleanup run, during the cleanup" "$t_start" "$t_end" "$tmp/clean.log"
	during_p99=$p99
	row "cleanup run, after it (1 s worker cycles)" "$t_end" "$c_last" "$tmp/clean.log"
	r_first=$(ev 'CPU-bound loop started')
	r_last=$(ev 'CPU-bound loop ended')
	if [ -n "$r_first" ] && [ -n "$r_last" ]; then
		row "reference run, during the CPU-bound loop" "$r_first" "$r_last" "$tmp/ref.log"
		ref_p99=$p99
	fi
	ratio=$(awk -v a="$during_p99" -v b="$base_p99" 'BEGIN { printf "%.2f", a / b }')
	echo "p99 during the cleanup / baseline p99: $during_p99 / $base_p99 µs = ${ratio}x" \
		"${ref_p99:+(the CPU-bound loop: $(awk -v a="$ref_p99" -v b="$base_p99" 'BEGIN { printf "%.2f", a / b }')x)}"
	if awk -v r="$ratio" 'BEGIN { exit !(r <= 2) }'; then
		echo "goal (p99 of hits during the cleanup within 2x of the baseline): met"
	else
		echo "goal (p99 of hits during the cleanup within 2x of the baseline): NOT MET"
	fi
else
	row "cleanup run (whole)" "$c_first" "$c_last" "$tmp/clean.log"
	echo "goal (p99 of hits during the cleanup within 2x of the baseline): NOT MEASURED (no cleanup inside the run)"
fi
echo "during the runs: $(paste -sd';' "$tmp/noise" | sed 's/;/; /g')"

# no more cleanups of bench.cl_fn every second
sql -c "SELECT cachier_configure('bench.cl_fn(int)', stale_after => '1 second')" >/dev/null
echo
echo "section time: $(awk -v a="$section_started" -v b="$(now_s)" 'BEGIN { printf "%.0f s", b - a }')"
