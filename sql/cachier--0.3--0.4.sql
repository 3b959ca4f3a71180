/* cachier--0.3--0.4.sql: the security model (issue 8) */

\echo Use "ALTER EXTENSION cachier UPDATE TO '0.4'" to load this file. \quit

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

-- ==== [A] storage, option functions, privileges of the helpers

-- with next_time, a value older than max_stale_age is never served (NULL:
-- twice stale_after)
ALTER TABLE cachier.functions ADD COLUMN max_stale_age interval;

/*
 * cachier_configure, cachier_memoize and cachier_unmemoize become C
 * functions (memoize.c): they check ownership before they look anything
 * up, create the wrapper as the caller under a pinned search_path and
 * write the options as the storage owner.  The helpers the PL/pgSQL
 * versions called, executable by PUBLIC until now, go (or are revoked).
 */
DROP FUNCTION cachier_configure(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text);
DROP FUNCTION cachier_memoize(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text, text);
DROP FUNCTION cachier_unmemoize(regprocedure);
DROP FUNCTION cachier.set_options(regprocedure, regprocedure, interval, boolean,
    interval, boolean, text, boolean, interval, boolean, text);
DROP FUNCTION cachier.forget(regprocedure);
DROP FUNCTION cachier.check_memoizable(regprocedure);
-- (cachier.wrapper_of stays for administrators and tests, revoked from
-- PUBLIC below; it checks ownership of fn first)

CREATE FUNCTION cachier_configure(
    fn regprocedure,
    stale_after interval DEFAULT NULL,
    next_time boolean DEFAULT NULL,
    wait_timeout interval DEFAULT NULL,
    allow_null boolean DEFAULT NULL,
    entry_size_limit text DEFAULT NULL,
    cleanup_stale boolean DEFAULT NULL,
    cleanup_interval interval DEFAULT NULL,
    per_role boolean DEFAULT NULL,
    storage text DEFAULT NULL,
    max_stale_age interval DEFAULT NULL) RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_configure' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_configure(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text, interval) IS
    'set the cache options of fn, used by cachier_wrap and by its wrapper';

CREATE FUNCTION cachier_memoize(
    fn regprocedure,
    stale_after interval DEFAULT NULL,
    next_time boolean DEFAULT NULL,
    wait_timeout interval DEFAULT NULL,
    allow_null boolean DEFAULT NULL,
    entry_size_limit text DEFAULT NULL,
    cleanup_stale boolean DEFAULT NULL,
    cleanup_interval interval DEFAULT NULL,
    per_role boolean DEFAULT NULL,
    storage text DEFAULT NULL,
    max_stale_age interval DEFAULT NULL,
    name text DEFAULT NULL) RETURNS regprocedure
    AS 'MODULE_PATHNAME', 'cachier_memoize' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_memoize(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text, interval, text) IS
    'create a wrapper of fn whose calls go through the cache';

CREATE FUNCTION cachier_unmemoize(fn regprocedure) RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_unmemoize' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_unmemoize(regprocedure) IS
    'drop the wrapper, the options and the cached entries of fn';

-- effective_options gains max_stale_age
DROP VIEW cachier_entries;
DROP VIEW cachier_functions;
DROP FUNCTION cachier.effective_options(regprocedure);
CREATE FUNCTION cachier.effective_options(fn regprocedure,
    OUT stale_after interval, OUT next_time boolean, OUT wait_timeout interval,
    OUT allow_null boolean, OUT entry_size_limit bigint, OUT cleanup_stale boolean,
    OUT cleanup_interval interval, OUT per_role boolean, OUT storage text,
    OUT max_stale_age interval)
    AS 'MODULE_PATHNAME', 'cachier_effective_options_sql' LANGUAGE C STABLE STRICT;

-- (the views are created again on new functions in section [D])

/*
 * The event triggers run as the extension owner whoever runs the DDL:
 * search_path pinned, every operator and function qualified.
 */
CREATE OR REPLACE FUNCTION cachier.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pg_catalog.to_regclass('cachier.entries') IS NULL THEN
        RETURN;                 -- the extension itself is being dropped
    END IF;
    DELETE FROM cachier.entries e
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND e.function_id OPERATOR(pg_catalog.=) d.objid;
    DELETE FROM cachier.functions f
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND f.fn OPERATOR(pg_catalog.=) d.objid;
    UPDATE cachier.functions f SET wrapper = NULL
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND f.wrapper OPERATOR(pg_catalog.=) d.objid;
END
$$;

-- (ALTER FUNCTION ... OWNER TO of a SECURITY DEFINER function changes its
-- identity too, so its entries go here)
CREATE OR REPLACE FUNCTION cachier.on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pg_catalog.to_regclass('cachier.entries') IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM cachier.entries e
     USING pg_catalog.pg_event_trigger_ddl_commands() c
     WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND e.function_id OPERATOR(pg_catalog.=) c.objid
       AND e.fingerprint OPERATOR(pg_catalog.<>)
           cachier.fingerprint(c.objid::pg_catalog.regprocedure);
END
$$;

/*
 * No function in schema cachier is executable by PUBLIC except the
 * wrapper entry points cachier.call_*, which check EXECUTE on the function
 * and the exact argument types.
 */
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'cachier'::pg_catalog.regnamespace
                AND NOT p.proname::pg_catalog.text OPERATOR(pg_catalog.~~) 'call\_%'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

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
-- (cachier_entries and cachier_functions were dropped in section [A])
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
    OUT max_stale_age interval, OUT updated_at timestamptz)
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
       max_stale_age, updated_at
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

-- Options that 0.3 accepted and 0.4 refuses.  A zero cleanup_interval had
-- the background worker clean up without pause: such rows use the setting.
-- A wrapper created in pg_temp went with its session and left its OID
-- behind, which broke cachier_memoize and cachier_unmemoize of the function.
UPDATE cachier.functions SET cleanup_interval = NULL
 WHERE cleanup_interval OPERATOR(pg_catalog.<=) '0'::pg_catalog.interval;
UPDATE cachier.functions SET wrapper = NULL
 WHERE wrapper IS NOT NULL
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_proc p
                    WHERE p.oid OPERATOR(pg_catalog.=) wrapper::pg_catalog.oid);

-- ==== end
