-- cachier_stats: per-function counters in shared memory (the regression
-- cluster preloads cachier), cachier_stats_info and cachier_stats_reset()
CREATE EXTENSION cachier;
CREATE SCHEMA stats_test;
SET search_path = stats_test, public;
-- every computation takes at least 20 ms, so the times below are real
CREATE FUNCTION sq(x int) RETURNS int LANGUAGE sql
    AS 'SELECT x * x FROM pg_sleep(0.02)';
SELECT cachier_memoize('sq(int)');
SELECT stats_reset AS before_reset FROM cachier_stats_info \gset
SELECT cachier_stats_reset();
-- the reset is dated, and it zeroes the count of evictions
SELECT stats_reset > :'before_reset' AS reset_dated, evictions
  FROM cachier_stats_info;

-- a scripted sequence: 2 misses, 3 hits, 1 stale entry recomputed,
-- 1 call with the cache skipped (not counted)
SELECT sq_cached(1), sq_cached(2);
SELECT sq_cached(1), sq_cached(1), sq_cached(2);
-- each hit adds the compute time of the entry it served
CREATE FUNCTION entry_ms(x int) RETURNS float8 LANGUAGE sql AS $$
    SELECT compute_ms FROM cachier_entries
     WHERE function = 'sq(int)'::regprocedure AND arguments = format('(%s)', x) $$;
SELECT saved_ms = 2 * entry_ms(1) + entry_ms(2) AS saved_is_exact,
       entry_ms(1) >= 20 AND entry_ms(2) >= 20 AS entries_timed
  FROM cachier_stats WHERE function = 'sq(int)'::regprocedure;
SET cachier.max_age = 0;
SELECT sq_cached(2);
RESET cachier.max_age;
SET cachier.skip_cache = on;
SELECT sq_cached(3);
RESET cachier.skip_cache;

-- four computations of at least 20 ms each, including those of the two
-- entries stored now; three hits of at least 20 ms saved each
SELECT function, hits, misses, stale_hits, waits, wait_timeouts, computations,
       refreshes_queued, refreshes_done, refreshes_failed, entries, bytes,
       total_compute_ms >= 4 * 20 AS four_computations_timed,
       total_compute_ms >= entry_ms(1) + entry_ms(2) AS includes_stored,
       saved_ms >= 3 * 20 AS three_hits_saved
  FROM cachier_stats WHERE function = 'sq(int)'::regprocedure;

-- entries and bytes come from the table; a reset zeroes the counters only
SELECT cachier_stats_reset();
SELECT function, hits, misses, computations, total_compute_ms, saved_ms,
       entries, bytes
  FROM cachier_stats WHERE function = 'sq(int)'::regprocedure;

-- the size of the statistics table is fixed when the server starts
SHOW cachier.max_tracked_functions;
SET cachier.max_tracked_functions = 10;

-- every role may read the views, and sees the statistics of the functions
-- it owns (none here: see visibility.sql); only a superuser resets them
CREATE ROLE cachier_stats_reader;
SET ROLE cachier_stats_reader;
SELECT count(*) AS visible FROM cachier_stats;
SELECT evictions FROM cachier_stats_info;
SELECT cachier_stats_reset();
RESET ROLE;
DROP ROLE cachier_stats_reader;

SET client_min_messages = warning;
DROP SCHEMA stats_test CASCADE;
DROP EXTENSION cachier CASCADE;
