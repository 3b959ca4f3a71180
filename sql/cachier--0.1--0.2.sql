/* cachier--0.1--0.2.sql: statistics, cleanup, background refreshes */

\echo Use "ALTER EXTENSION cachier UPDATE TO '0.2'" to load this file. \quit

-- Keep the privileges a DBA changed on our objects, and the views that
-- depend on ours, through the update (src/update_keep.c).
CREATE OR REPLACE FUNCTION cachier.keep_user_objects() RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_keep_user_objects' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION cachier.keep_user_objects() FROM PUBLIC;
SELECT cachier.keep_user_objects();

-- cleanup finds a function's oldest entries without scanning the others
CREATE INDEX entries_created ON cachier.entries (function_id, created_at);

/* ---------------------------------------------------------------- statistics */

CREATE FUNCTION cachier.stats(
    OUT function regprocedure, OUT hits bigint, OUT misses bigint,
    OUT stale_hits bigint, OUT waits bigint, OUT wait_timeouts bigint,
    OUT computations bigint, OUT refreshes_queued bigint,
    OUT refreshes_done bigint, OUT refreshes_failed bigint,
    OUT compute_ms double precision, OUT saved_ms double precision)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cachier_stats' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION cachier.stats() FROM PUBLIC;

CREATE VIEW cachier_stats AS
SELECT coalesce(s.function, e.function_id) AS function,
       coalesce(s.hits, 0) AS hits,
       coalesce(s.misses, 0) AS misses,
       coalesce(s.stale_hits, 0) AS stale_hits,
       coalesce(s.waits, 0) AS waits,
       coalesce(s.wait_timeouts, 0) AS wait_timeouts,
       coalesce(s.computations, 0) AS computations,
       coalesce(s.refreshes_queued, 0) AS refreshes_queued,
       coalesce(s.refreshes_done, 0) AS refreshes_done,
       coalesce(s.refreshes_failed, 0) AS refreshes_failed,
       coalesce(s.compute_ms, 0) AS total_compute_ms,
       coalesce(s.saved_ms, 0) AS saved_ms,
       coalesce(e.entries, 0) AS entries,
       coalesce(e.bytes, 0) AS bytes
  FROM cachier.stats() s
  FULL JOIN (SELECT function_id, count(*) AS entries,
                    sum(coalesce(octet_length(value), 0)) AS bytes
               FROM cachier.entries GROUP BY function_id) e
    ON e.function_id = s.function;
COMMENT ON VIEW cachier_stats IS
    'per-function cache statistics since the server started or cachier_stats_reset()';
REVOKE ALL ON cachier_stats FROM PUBLIC;

CREATE FUNCTION cachier_stats_reset() RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_stats_reset' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION cachier_stats_reset() FROM PUBLIC;
COMMENT ON FUNCTION cachier_stats_reset() IS
    'zero the statistics of this database''s functions';

/* ---------------------------------------------------------------- cleanup */

CREATE FUNCTION cachier_cleanup(fn regprocedure DEFAULT NULL) RETURNS bigint
    AS 'MODULE_PATHNAME', 'cachier_cleanup' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_cleanup(regprocedure) IS
    'remove the stale entries of fn, or of every function with cleanup_stale that you own';
