/* cachier--0.3--0.4.sql: the security model (issue 8) */

\echo Use "ALTER EXTENSION cachier UPDATE TO '0.4'" to load this file. \quit

/*
 * Rules for everything in this script: no operator, function or type is
 * written unqualified where a role other than the extension owner could
 * shadow it (OPERATOR(pg_catalog.=), pg_catalog.count(...)), and every
 * function in schema cachier is revoked from PUBLIC unless a view or a
 * wrapper must call it, in which case it validates its arguments.
 */

-- ==== [A] storage, option functions, privileges of the helpers

-- ==== [E] entries: the role column, per-role quotas

/*
 * role_id: the role whose call stored the entry.  Per-role entries (of a
 * function whose owner did not configure it, or with per_role) are keyed
 * by that role's OID and served to it alone; cachier.max_role_bytes limits
 * the total size of each role's entries, counted through entries_role.
 * Entries from before 0.4 get role 0: no role's.
 */
ALTER TABLE cachier.entries ADD COLUMN role_id oid NOT NULL DEFAULT 0;
ALTER TABLE cachier.entries ALTER COLUMN role_id DROP DEFAULT;
CREATE INDEX entries_role ON cachier.entries (role_id);

-- per-role keys now hold the role's OID and unconfigured functions are
-- keyed by role: the old entries of both can never be found again
DELETE FROM cachier.entries e
 WHERE NOT EXISTS (SELECT FROM cachier.functions f
                    WHERE f.fn OPERATOR(pg_catalog.=) e.function_id
                      AND f.per_role IS NOT TRUE);

-- ==== [D] views and statistics

/*
 * The views are readable by PUBLIC, as pg_stat_statements' are: each reads
 * a set-returning C function (views.c, stats.c) that runs with the
 * caller's rights, reads the storage directly and returns only the rows
 * the caller may see -- the functions it owns and the entries its own
 * calls stored; everything for members of pg_read_all_stats.
 */
DROP VIEW cachier_entries;
DROP VIEW cachier_functions;
DROP VIEW cachier_stats;
DROP FUNCTION cachier.stats();

CREATE FUNCTION cachier.entry_rows(
    OUT function regprocedure, OUT key bigint, OUT arguments text,
    OUT created_at timestamptz, OUT stale boolean, OUT processing boolean,
    OUT completed boolean, OUT size_bytes integer,
    OUT compute_ms double precision, OUT role regrole)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cachier_entry_rows' LANGUAGE C VOLATILE;

CREATE FUNCTION cachier.function_rows(
    OUT function regprocedure, OUT wrapper regprocedure,
    OUT stale_after interval, OUT next_time boolean, OUT wait_timeout interval,
    OUT allow_null boolean, OUT entry_size_limit bigint, OUT cleanup_stale boolean,
    OUT cleanup_interval interval, OUT per_role boolean, OUT storage text,
    OUT updated_at timestamptz)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cachier_function_rows' LANGUAGE C STABLE;

CREATE FUNCTION cachier.stats(
    OUT function regprocedure, OUT hits bigint, OUT misses bigint,
    OUT stale_hits bigint, OUT waits bigint, OUT wait_timeouts bigint,
    OUT computations bigint, OUT refreshes_queued bigint,
    OUT refreshes_done bigint, OUT refreshes_failed bigint,
    OUT total_compute_ms double precision, OUT saved_ms double precision,
    OUT entries bigint, OUT bytes bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cachier_stats' LANGUAGE C VOLATILE;

CREATE FUNCTION cachier.stats_info(OUT evictions bigint, OUT stats_reset timestamptz)
    AS 'MODULE_PATHNAME', 'cachier_stats_info' LANGUAGE C VOLATILE;

GRANT EXECUTE ON FUNCTION cachier.entry_rows(), cachier.function_rows(),
    cachier.stats(), cachier.stats_info() TO PUBLIC;

CREATE VIEW cachier_entries AS
SELECT function, key, arguments, created_at, stale, processing, completed,
       size_bytes, compute_ms, role
  FROM cachier.entry_rows();
COMMENT ON VIEW cachier_entries IS
    'cached entries the current role may see; stale and processing are computed when read';

CREATE VIEW cachier_functions AS
SELECT function, wrapper, stale_after, next_time, wait_timeout, allow_null,
       entry_size_limit, cleanup_stale, cleanup_interval, per_role, storage,
       updated_at
  FROM cachier.function_rows();
COMMENT ON VIEW cachier_functions IS
    'configured functions the current role may see, with their effective options';

CREATE VIEW cachier_stats AS
SELECT function, hits, misses, stale_hits, waits, wait_timeouts, computations,
       refreshes_queued, refreshes_done, refreshes_failed, total_compute_ms,
       saved_ms, entries, bytes
  FROM cachier.stats();
COMMENT ON VIEW cachier_stats IS
    'per-function cache statistics the current role may see, since the server started or cachier_stats_reset()';

CREATE VIEW cachier_stats_info AS
SELECT evictions, stats_reset FROM cachier.stats_info();
COMMENT ON VIEW cachier_stats_info IS
    'statistics entries evicted (cachier.max_tracked_functions is full) since stats_reset';

GRANT SELECT ON cachier_entries, cachier_functions, cachier_stats,
    cachier_stats_info TO PUBLIC;

COMMENT ON FUNCTION cachier_stats_reset() IS
    'zero the statistics of this database''s functions and the count of evictions';

-- ==== [B] background worker

-- ==== [C] Redis tier

-- ==== end
