/* cachier--0.4--0.5.sql: trustworthy operations, stale-free data, context keys (issues 9-13) */

\echo Use "ALTER EXTENSION cachier UPDATE TO '0.5'" to load this file. \quit

-- Keep the privileges a DBA changed on our objects, and the views that
-- depend on ours, through the update (src/update_keep.c).
CREATE OR REPLACE FUNCTION cachier.keep_user_objects() RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_keep_user_objects' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION cachier.keep_user_objects() FROM PUBLIC;
SELECT cachier.keep_user_objects();

/*
 * Rules for everything in this script: no operator, function or type is
 * written unqualified where a role other than the extension owner could
 * shadow it (OPERATOR(pg_catalog.=), pg_catalog.count(...)), and every
 * function in schema cachier is revoked from PUBLIC unless a view or a
 * wrapper must call it, in which case it validates its arguments.
 */

-- ==== [S] storage that survives pg_upgrade; the new options

-- ==== [F] freshness: captured and declared dependencies

-- ==== [X] context keys

-- ==== [Y] everyday use

-- ==== [W] waits

-- ==== [M] the shared memory tier (issue 13)

-- cachier_stats gains the memory tier's hits, evictions and bytes.
DROP VIEW cachier_stats;
DROP FUNCTION cachier.stats();
CREATE FUNCTION cachier.stats(
    OUT function regprocedure, OUT hits bigint, OUT misses bigint,
    OUT stale_hits bigint, OUT waits bigint, OUT wait_timeouts bigint,
    OUT computations bigint, OUT refreshes_queued bigint,
    OUT refreshes_done bigint, OUT refreshes_failed bigint,
    OUT total_compute_ms double precision, OUT saved_ms double precision,
    OUT entries bigint, OUT bytes bigint,
    OUT memory_hits bigint, OUT memory_evictions bigint, OUT memory_bytes bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cachier_stats' LANGUAGE C VOLATILE;
GRANT EXECUTE ON FUNCTION cachier.stats() TO PUBLIC;
CREATE VIEW cachier_stats AS
SELECT function, hits, misses, stale_hits, waits, wait_timeouts, computations,
       refreshes_queued, refreshes_done, refreshes_failed, total_compute_ms,
       saved_ms, entries, bytes, memory_hits, memory_evictions, memory_bytes
  FROM cachier.stats();
COMMENT ON VIEW cachier_stats IS
    'per-function cache statistics the current role may see, since the server started or cachier_stats_reset()';
GRANT SELECT ON cachier_stats TO PUBLIC;

-- The area as a whole: one row, whoever asks (no function or argument shown).
CREATE FUNCTION cachier.memory(
    OUT enabled boolean, OUT size_bytes bigint, OUT used_bytes bigint,
    OUT entries bigint, OUT max_entry_bytes bigint, OUT hits bigint,
    OUT misses bigint, OUT hit_ratio double precision, OUT evictions bigint,
    OUT rejected bigint, OUT invalidations bigint)
    AS 'MODULE_PATHNAME', 'cachier_memory' LANGUAGE C VOLATILE;
GRANT EXECUTE ON FUNCTION cachier.memory() TO PUBLIC;
CREATE VIEW cachier_memory AS
SELECT enabled, size_bytes, used_bytes, entries, max_entry_bytes, hits, misses,
       hit_ratio, evictions, rejected, invalidations
  FROM cachier.memory();
COMMENT ON VIEW cachier_memory IS
    'the shared memory tier (cachier.shared_cache_size): size, use, hit ratio, evictions, since the server started';
GRANT SELECT ON cachier_memory TO PUBLIC;

CREATE FUNCTION cachier_memory_reset() RETURNS boolean
    AS 'MODULE_PATHNAME', 'cachier_memory_reset' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION cachier_memory_reset() FROM PUBLIC;
COMMENT ON FUNCTION cachier_memory_reset() IS
    'forget every entry of the shared memory tier (all databases); false when there is no memory tier';

-- ==== end
