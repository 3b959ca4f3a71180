-- cachier_stats: per-function counters in shared memory (the regression
-- cluster preloads cachier), and cachier_stats_reset()
CREATE EXTENSION cachier;
CREATE SCHEMA stats_test;
SET search_path = stats_test, public;
CREATE FUNCTION sq(x int) RETURNS int LANGUAGE sql AS 'SELECT x * x';
SELECT cachier_memoize('sq(int)');
SELECT cachier_stats_reset();

-- a scripted sequence: 2 misses, 3 hits, 1 stale entry recomputed,
-- 1 call with the cache skipped (not counted)
SELECT sq_cached(1), sq_cached(2);
SELECT sq_cached(1), sq_cached(1), sq_cached(2);
-- each hit adds the compute time of the entry it served
CREATE FUNCTION entry_ms(x int) RETURNS float8 LANGUAGE sql AS $$
    SELECT compute_ms FROM cachier.entries e
     WHERE function_id = 'sq(int)'::regprocedure
       AND cachier.format_args(function_id, args) = format('(%s)', x) $$;
SELECT saved_ms = 2 * entry_ms(1) + entry_ms(2) AS saved_is_exact
  FROM cachier_stats WHERE function = 'sq(int)'::regprocedure;
SET cachier.max_age = 0;
SELECT sq_cached(2);
RESET cachier.max_age;
SET cachier.skip_cache = on;
SELECT sq_cached(3);
RESET cachier.skip_cache;

SELECT function, hits, misses, stale_hits, waits, wait_timeouts, computations,
       refreshes_queued, refreshes_done, refreshes_failed, entries, bytes,
       total_compute_ms >= 0 AS timed, saved_ms >= 0 AS saved
  FROM cachier_stats WHERE function = 'sq(int)'::regprocedure;

-- entries and bytes come from the table; a reset zeroes the counters only
SELECT cachier_stats_reset();
SELECT function, hits, misses, computations, entries, bytes
  FROM cachier_stats WHERE function = 'sq(int)'::regprocedure;

-- not readable by PUBLIC
CREATE ROLE cachier_stats_reader;
SET ROLE cachier_stats_reader;
SELECT * FROM cachier_stats;
SELECT cachier_stats_reset();
RESET ROLE;
DROP ROLE cachier_stats_reader;

SET client_min_messages = warning;
DROP SCHEMA stats_test CASCADE;
DROP EXTENSION cachier CASCADE;
