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

/*
 * pg_upgrade keeps the OIDs of relations, types, roles and databases but
 * not those of functions, and refuses tables with regprocedure columns.
 * So storage no longer holds function OIDs: cachier.function_ids gives
 * each function a fixed-width id and records its identity -- the
 * schema-qualified signature, e.g. 'public.f(integer)', which pg_upgrade
 * and pg_dump keep -- and the id is what entries and options are keyed by.
 * fn is a hint, the OID the identity resolved to last; it is checked
 * before every use and resolved again from the identity when it no longer
 * names that function (after pg_upgrade, or a restore).  The event
 * triggers keep identities current when a function, its schema or an
 * argument type is renamed.
 */
-- (the event triggers of 0.4 name the old columns: off until replaced)
ALTER EVENT TRIGGER cachier_sql_drop DISABLE;
ALTER EVENT TRIGGER cachier_ddl_end DISABLE;

CREATE FUNCTION cachier.function_identity(fn oid) RETURNS text
    AS 'MODULE_PATHNAME', 'cachier_function_identity_sql' LANGUAGE C STABLE STRICT;

CREATE SEQUENCE cachier.function_ids_seq AS integer;
CREATE TABLE cachier.function_ids (
    id        integer PRIMARY KEY
              DEFAULT pg_catalog.nextval('cachier.function_ids_seq'::pg_catalog.regclass),
    identity  text COLLATE "C" NOT NULL UNIQUE,
    fn        oid NOT NULL
);
-- (PUBLIC has no privilege on a new sequence)
REVOKE ALL ON cachier.function_ids FROM PUBLIC;
-- the ids of cachier.functions mean nothing without them: dumped with it
SELECT pg_catalog.pg_extension_config_dump('cachier.function_ids', '');
SELECT pg_catalog.pg_extension_config_dump('cachier.function_ids_seq', '');

-- every function that has options, a wrapper or entries gets its id;
-- options and entries of functions that no longer exist go
INSERT INTO cachier.function_ids (identity, fn)
SELECT cachier.function_identity(o), o
  FROM (SELECT f.fn::pg_catalog.oid FROM cachier.functions f
        UNION SELECT f.wrapper::pg_catalog.oid FROM cachier.functions f
               WHERE f.wrapper IS NOT NULL
        UNION SELECT DISTINCT e.function_id::pg_catalog.oid FROM cachier.entries e) AS s(o)
 WHERE cachier.function_identity(o) IS NOT NULL;

CREATE FUNCTION cachier.migrate_id(fn oid) RETURNS integer LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT i.id FROM cachier.function_ids i
           WHERE i.identity OPERATOR(pg_catalog.=) cachier.function_identity($1) $$;
DELETE FROM cachier.entries e WHERE cachier.migrate_id(e.function_id::pg_catalog.oid) IS NULL;
DELETE FROM cachier.functions f WHERE cachier.migrate_id(f.fn::pg_catalog.oid) IS NULL;
UPDATE cachier.functions f SET wrapper = NULL
 WHERE cachier.migrate_id(f.wrapper::pg_catalog.oid) IS NULL;

/*
 * The columns change type in place (their positions stay, the indexes are
 * rebuilt) and are renamed, so that a query written for 0.4, comparing
 * with a regprocedure, fails instead of comparing an id with an OID.
 */
ALTER TABLE cachier.entries
    ALTER COLUMN function_id TYPE integer
    USING cachier.migrate_id(function_id::pg_catalog.oid);
ALTER TABLE cachier.entries RENAME COLUMN function_id TO fn_id;
ALTER TABLE cachier.functions
    ALTER COLUMN fn TYPE integer USING cachier.migrate_id(fn::pg_catalog.oid);
ALTER TABLE cachier.functions
    ALTER COLUMN wrapper TYPE integer USING cachier.migrate_id(wrapper::pg_catalog.oid);
ALTER TABLE cachier.functions RENAME COLUMN fn TO fn_id;
ALTER TABLE cachier.functions RENAME COLUMN wrapper TO wrapper_id;
DROP FUNCTION cachier.migrate_id(oid);

-- the options of issues 10 and 11 (NULL: the default)
ALTER TABLE cachier.functions
    ADD COLUMN track_reads boolean,
    ADD COLUMN depends_on regclass[],
    ADD COLUMN on_change text CHECK (on_change IN ('invalidate', 'refresh')),
    ADD COLUMN key_settings text[];

-- the id of a function (NULL: it has none), for tests and administrators
CREATE FUNCTION cachier.fn_id(fn regprocedure) RETURNS integer
    AS 'MODULE_PATHNAME', 'cachier_fn_id_sql' LANGUAGE C STABLE STRICT;

/*
 * The event triggers.  Before a command that can rename a function (its
 * name or schema, its schema's name, an argument type's name or schema)
 * every hint is checked; after it, identities follow the hints.  A drop
 * removes the ids (found by identity), options and entries of the dropped
 * functions and forgets dropped wrappers.
 */
CREATE FUNCTION cachier.check_hints() RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_check_hints' LANGUAGE C VOLATILE;
CREATE FUNCTION cachier.follow_renames() RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_follow_renames' LANGUAGE C VOLATILE;

CREATE FUNCTION cachier.on_ddl_start() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pg_catalog.to_regclass('cachier.function_ids') IS NULL THEN
        RETURN;
    END IF;
    PERFORM cachier.check_hints();
END
$$;

CREATE OR REPLACE FUNCTION cachier.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    gone integer[];
BEGIN
    IF pg_catalog.to_regclass('cachier.function_ids') IS NULL THEN
        RETURN;                 -- the extension itself is being dropped
    END IF;
    WITH d AS (
        DELETE FROM cachier.function_ids i
         USING pg_catalog.pg_event_trigger_dropped_objects() o
         WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND i.identity OPERATOR(pg_catalog.=) o.object_identity
        RETURNING i.id)
    SELECT pg_catalog.array_agg(d.id) INTO gone FROM d;
    IF gone IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM cachier.entries e WHERE e.fn_id OPERATOR(pg_catalog.=) ANY (gone);
    DELETE FROM cachier.functions f WHERE f.fn_id OPERATOR(pg_catalog.=) ANY (gone);
    UPDATE cachier.functions f SET wrapper_id = NULL
     WHERE f.wrapper_id OPERATOR(pg_catalog.=) ANY (gone);
END
$$;

-- (ALTER FUNCTION ... OWNER TO of a SECURITY DEFINER function changes its
-- identity too, so its entries go here)
CREATE OR REPLACE FUNCTION cachier.on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pg_catalog.to_regclass('cachier.function_ids') IS NULL THEN
        RETURN;
    END IF;
    PERFORM cachier.follow_renames();
    DELETE FROM cachier.entries e
     USING pg_catalog.pg_event_trigger_ddl_commands() c, cachier.function_ids i
     WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
       AND i.identity OPERATOR(pg_catalog.=) cachier.function_identity(c.objid)
       AND e.fn_id OPERATOR(pg_catalog.=) i.id
       AND e.fingerprint OPERATOR(pg_catalog.<>)
           cachier.fingerprint(c.objid::pg_catalog.regprocedure);
END
$$;

ALTER EVENT TRIGGER cachier_sql_drop ENABLE;
DROP EVENT TRIGGER cachier_ddl_end;
CREATE EVENT TRIGGER cachier_ddl_start ON ddl_command_start
    WHEN TAG IN ('ALTER FUNCTION', 'ALTER ROUTINE', 'ALTER SCHEMA', 'ALTER TYPE',
                 'ALTER DOMAIN', 'ALTER TABLE', 'ALTER VIEW', 'ALTER MATERIALIZED VIEW',
                 'ALTER FOREIGN TABLE', 'ALTER EXTENSION')
    EXECUTE FUNCTION cachier.on_ddl_start();
CREATE EVENT TRIGGER cachier_ddl_end ON ddl_command_end
    WHEN TAG IN ('CREATE FUNCTION', 'ALTER FUNCTION', 'ALTER ROUTINE', 'ALTER SCHEMA',
                 'ALTER TYPE', 'ALTER DOMAIN', 'ALTER TABLE', 'ALTER VIEW',
                 'ALTER MATERIALIZED VIEW', 'ALTER FOREIGN TABLE', 'ALTER EXTENSION')
    EXECUTE FUNCTION cachier.on_ddl_end();

/*
 * The option functions gain the options of issues 10, 11 and 13 and reset, at
 * the end of their parameter lists (positional and named calls of 0.4 keep
 * working).  A call changes only the options it is given; reset names the
 * options that go back to their defaults ('all': every one).
 */
DROP FUNCTION cachier_configure(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text, interval);
DROP FUNCTION cachier_memoize(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text, interval, text);

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
    max_stale_age interval DEFAULT NULL,
    track_reads boolean DEFAULT NULL,
    depends_on regclass[] DEFAULT NULL,
    on_change text DEFAULT NULL,
    key_settings text[] DEFAULT NULL,
    shared_cache boolean DEFAULT NULL,
    reset text[] DEFAULT NULL) RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_configure' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_configure(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text, interval, boolean, regclass[],
    text, text[], boolean, text[]) IS
    'change the cache options of fn given (and those named in reset), used by cachier_wrap and by its wrapper';

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
    name text DEFAULT NULL,
    track_reads boolean DEFAULT NULL,
    depends_on regclass[] DEFAULT NULL,
    on_change text DEFAULT NULL,
    key_settings text[] DEFAULT NULL,
    shared_cache boolean DEFAULT NULL,
    reset text[] DEFAULT NULL) RETURNS regprocedure
    AS 'MODULE_PATHNAME', 'cachier_memoize' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_memoize(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text, interval, text, boolean,
    regclass[], text, text[], boolean, text[]) IS
    'create a wrapper of fn whose calls go through the cache';

-- effective_options and the view of the options gain the new options
DROP VIEW cachier_functions;
DROP FUNCTION cachier.function_rows();
DROP FUNCTION cachier.effective_options(regprocedure);
CREATE FUNCTION cachier.effective_options(fn regprocedure,
    OUT stale_after interval, OUT next_time boolean, OUT wait_timeout interval,
    OUT allow_null boolean, OUT entry_size_limit bigint, OUT cleanup_stale boolean,
    OUT cleanup_interval interval, OUT per_role boolean, OUT storage text,
    OUT max_stale_age interval, OUT track_reads boolean, OUT depends_on regclass[],
    OUT on_change text, OUT key_settings text[], OUT shared_cache boolean)
    AS 'MODULE_PATHNAME', 'cachier_effective_options_sql' LANGUAGE C STABLE STRICT;

CREATE FUNCTION cachier.function_rows(
    OUT function regprocedure, OUT wrapper regprocedure,
    OUT stale_after interval, OUT next_time boolean, OUT wait_timeout interval,
    OUT allow_null boolean, OUT entry_size_limit bigint, OUT cleanup_stale boolean,
    OUT cleanup_interval interval, OUT per_role boolean, OUT storage text,
    OUT max_stale_age interval, OUT updated_at timestamptz,
    OUT track_reads boolean, OUT depends_on regclass[], OUT on_change text,
    OUT key_settings text[], OUT shared_cache boolean)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cachier_function_rows' LANGUAGE C STABLE;
GRANT EXECUTE ON FUNCTION cachier.function_rows() TO PUBLIC;

CREATE VIEW cachier_functions AS
SELECT function, wrapper, stale_after, next_time, wait_timeout, allow_null,
       entry_size_limit, cleanup_stale, cleanup_interval, per_role, storage,
       max_stale_age, updated_at, track_reads, depends_on, on_change, key_settings,
       shared_cache
  FROM cachier.function_rows();
COMMENT ON VIEW cachier_functions IS
    'configured functions the current role may see, with their effective options';
GRANT SELECT ON cachier_functions TO PUBLIC;

-- nothing new in schema cachier is executable by PUBLIC but function_rows
REVOKE ALL ON FUNCTION cachier.function_identity(oid), cachier.fn_id(regprocedure),
    cachier.check_hints(), cachier.follow_renames(), cachier.on_ddl_start(),
    cachier.effective_options(regprocedure) FROM PUBLIC;

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

-- The context an entry was keyed with (role, collation, settings, search
-- path), readable, from its stored keyed bytes; for cachier_entries and
-- for the superuser.  Its text names roles and setting values: not PUBLIC.
CREATE FUNCTION cachier.entry_context(fn pg_catalog.regprocedure, args pg_catalog.bytea)
    RETURNS pg_catalog.text
    AS 'MODULE_PATHNAME', 'cachier_entry_context' LANGUAGE C STABLE STRICT;
REVOKE ALL ON FUNCTION cachier.entry_context(pg_catalog.regprocedure, pg_catalog.bytea) FROM PUBLIC;

-- ==== [Y] everyday use

/*
 * Overloads for bound parameters (issue 12.6): a parameter of unknown type
 * (psycopg 3, pgbench -M prepared, JDBC with stringtype=unspecified) cannot
 * become VARIADIC "any" or anyelement, but resolves to text.  These read
 * their text arguments (and the precached value) as untyped literals are
 * read, by the input function of the parameter they reach.
 */
CREATE FUNCTION cachier_wrap(fn text, VARIADIC args text[]) RETURNS text
    AS 'MODULE_PATHNAME', 'cachier_wrap_untyped' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_wrap(text, text[]) IS
    'call fn(args...) through the cache, the arguments read as untyped literals';
CREATE FUNCTION cachier_clear(fn text, VARIADIC args text[]) RETURNS bigint
    AS 'MODULE_PATHNAME', 'cachier_clear_untyped' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_clear(text, text[]) IS
    'remove the cached entry of fn(args...), the arguments read as untyped literals';
CREATE FUNCTION cachier_precache(fn text, value text)
    RETURNS boolean AS 'MODULE_PATHNAME', 'cachier_precache_untyped' LANGUAGE C VOLATILE;
CREATE FUNCTION cachier_precache(fn text, value text, VARIADIC args "any")
    RETURNS boolean AS 'MODULE_PATHNAME', 'cachier_precache_untyped' LANGUAGE C VOLATILE;
CREATE FUNCTION cachier_precache(fn text, value text, VARIADIC args text[])
    RETURNS boolean AS 'MODULE_PATHNAME', 'cachier_precache_untyped_args' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_precache(text, text, "any") IS
    'store value, read as the result type''s literal, as the result of fn(args...)';

-- ==== [W] waits

-- ==== [M] the shared memory tier (issue 13)

-- option shared_cache (NULL: on when the area exists); cachier_configure,
-- cachier_memoize and cachier_functions have it since section [S]
ALTER TABLE cachier.functions ADD COLUMN shared_cache boolean;

-- cachier_stats gains the memory tier's hits, evictions and bytes (after
-- section [F]'s invalidations).
DROP VIEW cachier_stats;
DROP FUNCTION cachier.stats();
CREATE FUNCTION cachier.stats(
    OUT function regprocedure, OUT hits bigint, OUT misses bigint,
    OUT stale_hits bigint, OUT waits bigint, OUT wait_timeouts bigint,
    OUT computations bigint, OUT refreshes_queued bigint,
    OUT refreshes_done bigint, OUT refreshes_failed bigint,
    OUT total_compute_ms double precision, OUT saved_ms double precision,
    OUT entries bigint, OUT bytes bigint, OUT invalidations bigint,
    OUT memory_hits bigint, OUT memory_evictions bigint, OUT memory_bytes bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cachier_stats' LANGUAGE C VOLATILE;
GRANT EXECUTE ON FUNCTION cachier.stats() TO PUBLIC;
CREATE VIEW cachier_stats AS
SELECT function, hits, misses, stale_hits, waits, wait_timeouts, computations,
       refreshes_queued, refreshes_done, refreshes_failed, total_compute_ms,
       saved_ms, entries, bytes, invalidations, memory_hits, memory_evictions,
       memory_bytes
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

/*
 * cachier_entries tells the whole truth (issue 12.9): the value, as text,
 * to the role whose call stored it (and superusers); the keys being
 * computed for the first time, which have no stored row yet (processing,
 * not completed); and the context the entry was keyed with (issue 11).  update_keep.c keeps the DBA's grants and views.
 */
DROP VIEW cachier_entries;
DROP FUNCTION cachier.entry_rows();
CREATE FUNCTION cachier.entry_rows(
    OUT function regprocedure, OUT key bigint, OUT arguments text,
    OUT created_at timestamptz, OUT stale boolean, OUT processing boolean,
    OUT completed boolean, OUT size_bytes integer,
    OUT compute_ms double precision, OUT role regrole, OUT value text,
    OUT context text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cachier_entry_rows' LANGUAGE C VOLATILE;
GRANT EXECUTE ON FUNCTION cachier.entry_rows() TO PUBLIC;
CREATE VIEW cachier_entries AS
SELECT function, key, arguments, created_at, stale, processing, completed,
       size_bytes, compute_ms, role, value, context
  FROM cachier.entry_rows();
COMMENT ON VIEW cachier_entries IS
    'cached entries the current role may see, and keys being computed; stale and processing are computed when read';
GRANT SELECT ON cachier_entries TO PUBLIC;

-- ==== end
