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

/*
 * epoch: the function's epoch when the entry was computed (see
 * src/freshness.c), NULL when the computation read nothing trackable.  An
 * entry with an epoch is served only while its function's epoch is
 * unchanged on this server, i.e. nothing it read has changed since.
 * Entries stored before 0.5 get epoch 0, which no function ever has: a
 * function that tracks its reads computes them again (they may be stale);
 * one with track_reads => false keeps them for their shelf life.
 */
ALTER TABLE cachier.entries ADD COLUMN epoch bigint;
UPDATE cachier.entries SET epoch = 0;

CREATE FUNCTION cachier_invalidate(rel regclass) RETURNS bigint
    AS 'MODULE_PATHNAME', 'cachier_invalidate' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION cachier_invalidate(regclass) IS
    'invalidate every cached entry that depends on rel (for changes cachier cannot see); how many';

CREATE FUNCTION cachier.dependency_rows(
    OUT function regprocedure, OUT relation regclass, OUT how text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cachier_dependency_rows' LANGUAGE C VOLATILE;
GRANT EXECUTE ON FUNCTION cachier.dependency_rows() TO PUBLIC;

CREATE VIEW cachier_dependencies AS
SELECT function, relation, how FROM cachier.dependency_rows();
COMMENT ON VIEW cachier_dependencies IS
    'relations the cached functions the current role may see depend on: captured while computing, or declared with depends_on';
GRANT SELECT ON cachier_dependencies TO PUBLIC;

-- cachier_stats gains invalidations: entries found invalidated by a change
DROP VIEW cachier_stats;
DROP FUNCTION cachier.stats();
CREATE FUNCTION cachier.stats(
    OUT function regprocedure, OUT hits bigint, OUT misses bigint,
    OUT stale_hits bigint, OUT waits bigint, OUT wait_timeouts bigint,
    OUT computations bigint, OUT refreshes_queued bigint,
    OUT refreshes_done bigint, OUT refreshes_failed bigint,
    OUT total_compute_ms double precision, OUT saved_ms double precision,
    OUT entries bigint, OUT bytes bigint, OUT invalidations bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cachier_stats' LANGUAGE C VOLATILE;
GRANT EXECUTE ON FUNCTION cachier.stats() TO PUBLIC;
CREATE VIEW cachier_stats AS
SELECT function, hits, misses, stale_hits, waits, wait_timeouts, computations,
       refreshes_queued, refreshes_done, refreshes_failed, total_compute_ms,
       saved_ms, entries, bytes, invalidations
  FROM cachier.stats();
COMMENT ON VIEW cachier_stats IS
    'per-function cache statistics the current role may see, since the server started or cachier_stats_reset()';
GRANT SELECT ON cachier_stats TO PUBLIC;

-- ==== [X] context keys

-- ==== [Y] everyday use

-- ==== [W] waits

-- ==== [L] wrappers follow their functions

/*
 * A cached value can change (cachier_clear, an invalidation, a new
 * definition), so no plan may fold one into a constant: the entry points
 * for IMMUTABLE functions, and the wrappers that call them, become STABLE.
 */
DO $$
DECLARE
    f pg_catalog.regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'cachier'::pg_catalog.regnamespace
                AND p.proname OPERATOR(pg_catalog.~~) 'call\_immutable\_%'
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s STABLE', f);
    END LOOP;
    FOR f IN SELECT DISTINCT w.oid FROM pg_catalog.pg_depend d
               JOIN pg_catalog.pg_proc e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
               JOIN pg_catalog.pg_proc w ON w.oid OPERATOR(pg_catalog.=) d.objid
              WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                AND e.pronamespace OPERATOR(pg_catalog.=) 'cachier'::pg_catalog.regnamespace
                AND e.proname OPERATOR(pg_catalog.~~) 'call\_%'
                AND w.provolatile OPERATOR(pg_catalog.=) 'i'
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s STABLE', f);
    END LOOP;
END
$$;

-- after ALTER FUNCTION or CREATE OR REPLACE FUNCTION of a memoized
-- function, its wrapper is defined again (src/wrapper_follow.c)
CREATE FUNCTION cachier.follow_functions() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'cachier_follow_functions' LANGUAGE C;
REVOKE ALL ON FUNCTION cachier.follow_functions() FROM PUBLIC;
CREATE EVENT TRIGGER cachier_follow_functions ON ddl_command_end
    WHEN TAG IN ('ALTER FUNCTION', 'CREATE FUNCTION')
    EXECUTE FUNCTION cachier.follow_functions();

-- ==== end
