/* cachier--0.1.sql: storage, API and event triggers of cachier 0.1 */

\echo Use "CREATE EXTENSION cachier" to load this file. \quit

/*
 * Storage lives in the schema "cachier", which only the extension owner can
 * write.  The public API lives in the extension's schema (@extschema@).
 */
DO $$
BEGIN
    IF '@extschema@' <> 'cachier' THEN
        IF EXISTS (SELECT FROM pg_catalog.pg_namespace
                    WHERE nspname OPERATOR(pg_catalog.=) 'cachier') THEN
            RAISE EXCEPTION 'schema "cachier" already exists'
                USING ERRCODE = 'duplicate_schema',
                      DETAIL = 'cachier keeps its storage in a schema of that name, which it creates.',
                      HINT = 'Rename or drop the existing schema (ALTER SCHEMA cachier RENAME TO ...), then run CREATE EXTENSION cachier again.';
        END IF;
        CREATE SCHEMA cachier;
    END IF;
END
$$;
REVOKE ALL ON SCHEMA cachier FROM PUBLIC;
-- wrappers made by cachier_memoize call cachier.call_*; everything else in
-- the schema stays closed to PUBLIC
GRANT USAGE ON SCHEMA cachier TO PUBLIC;

/*
 * Per-function options.  NULL in an option column means "use the cachier.*
 * setting".  Rows are user configuration, so pg_dump keeps them.
 */
CREATE TABLE cachier.functions (
    fn                regprocedure PRIMARY KEY,
    wrapper           regprocedure UNIQUE,
    stale_after       interval,
    next_time         boolean,
    wait_timeout      interval,
    allow_null        boolean,
    entry_size_limit  bigint,
    cleanup_stale     boolean,
    cleanup_interval  interval,
    per_role          boolean,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('cachier.functions', '');

/*
 * Cached results.  args holds the arguments' binary forms (and, with
 * per_role, the role name): what an entry is for, compared on every hit
 * and kept so that a value can be shown and recomputed.  key is a 64-bit
 * hash of args seeded with the function's identity.  value is the result's
 * binary (send) form, or its text form for types without one.
 * Whether an entry is stale or being computed is not stored: it is derived
 * when read (see the view cachier_entries), so it can never lie.
 */
CREATE TABLE cachier.entries (
    function_id  regprocedure NOT NULL,
    key          bigint NOT NULL,
    fingerprint  bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    compute_ms   double precision NOT NULL,
    args         bytea NOT NULL,
    value        bytea,
    PRIMARY KEY (function_id, key)
);
REVOKE ALL ON cachier.functions, cachier.entries FROM PUBLIC;

/* ---------------------------------------------------------------- C helpers */

CREATE FUNCTION cachier.fingerprint(fn regprocedure) RETURNS bigint
    AS 'MODULE_PATHNAME', 'cachier_fingerprint' LANGUAGE C STABLE STRICT;

CREATE FUNCTION cachier.format_args(fn regprocedure, args bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'cachier_format_args' LANGUAGE C STABLE STRICT;

CREATE FUNCTION cachier.lock_ids(key bigint, OUT classid oid, OUT objid oid)
    AS 'MODULE_PATHNAME', 'cachier_lock_ids' LANGUAGE C IMMUTABLE STRICT;

CREATE FUNCTION cachier.effective_options(fn regprocedure,
    OUT stale_after interval, OUT next_time boolean, OUT wait_timeout interval,
    OUT allow_null boolean, OUT entry_size_limit bigint, OUT cleanup_stale boolean,
    OUT cleanup_interval interval, OUT per_role boolean)
    AS 'MODULE_PATHNAME', 'cachier_effective_options_sql' LANGUAGE C STABLE STRICT;

CREATE FUNCTION cachier.check_memoizable(fn regprocedure) RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_check_memoizable' LANGUAGE C STABLE;

CREATE FUNCTION cachier.set_options(fn regprocedure, wrapper regprocedure,
    stale_after interval, next_time boolean, wait_timeout interval,
    allow_null boolean, entry_size_limit text, cleanup_stale boolean,
    cleanup_interval interval, per_role boolean) RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_set_options' LANGUAGE C VOLATILE;

CREATE FUNCTION cachier.wrapper_of(fn regprocedure) RETURNS regprocedure
    AS 'MODULE_PATHNAME', 'cachier_wrapper_of' LANGUAGE C STABLE STRICT;

CREATE FUNCTION cachier.forget(fn regprocedure) RETURNS regprocedure
    AS 'MODULE_PATHNAME', 'cachier_forget' LANGUAGE C VOLATILE;

REVOKE ALL ON FUNCTION cachier.fingerprint(regprocedure),
    cachier.format_args(regprocedure, bytea),
    cachier.lock_ids(bigint),
    cachier.effective_options(regprocedure) FROM PUBLIC;

/*
 * The functions a memoized wrapper calls.  A wrapper is a LANGUAGE sql
 * function whose body is one call of these; the planner inlines it, so a
 * wrapper call costs one C call.  There is one per volatility and parallel
 * safety so that the inlined call keeps exactly the wrapped function's
 * properties (an IMMUTABLE wrapper stays usable in index conditions, a
 * PARALLEL UNSAFE one keeps plans serial), and one per arity (with or
 * without arguments).  The second argument is a NULL of the result type.
 */
DO $$
DECLARE
    vol text;
    par text;
BEGIN
    FOREACH vol IN ARRAY ARRAY['immutable', 'stable', 'volatile'] LOOP
        FOREACH par IN ARRAY ARRAY['safe', 'restricted', 'unsafe'] LOOP
            EXECUTE format(
                'CREATE FUNCTION cachier.%I(fn regprocedure, result anyelement, VARIADIC args "any") '
                'RETURNS anyelement AS %L, %L LANGUAGE C %s PARALLEL %s',
                'call_' || vol || '_' || par, 'MODULE_PATHNAME', 'cachier_call', vol, par);
            EXECUTE format(
                'CREATE FUNCTION cachier.%I(fn regprocedure, result anyelement) '
                'RETURNS anyelement AS %L, %L LANGUAGE C %s PARALLEL %s',
                'call_' || vol || '_' || par, 'MODULE_PATHNAME', 'cachier_call', vol, par);
        END LOOP;
    END LOOP;
END
$$;

/* ---------------------------------------------------------------- public API */

CREATE FUNCTION cachier_wrap(fn text, VARIADIC args "any") RETURNS text
    AS 'MODULE_PATHNAME', 'cachier_wrap' LANGUAGE C VOLATILE;
CREATE FUNCTION cachier_wrap(fn text) RETURNS text
    AS 'MODULE_PATHNAME', 'cachier_wrap' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_wrap(text, "any") IS
    'call fn(args...) through the cache and return the result as text';

CREATE FUNCTION cachier_clear(fn text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'cachier_clear' LANGUAGE C VOLATILE;
CREATE FUNCTION cachier_clear(fn text, VARIADIC args "any") RETURNS bigint
    AS 'MODULE_PATHNAME', 'cachier_clear' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_clear(text) IS
    'remove every cached entry of fn; returns how many were removed';

CREATE FUNCTION cachier_precache(fn text, value anyelement, VARIADIC args "any")
    RETURNS boolean AS 'MODULE_PATHNAME', 'cachier_precache' LANGUAGE C VOLATILE;
CREATE FUNCTION cachier_precache(fn text, value anyelement)
    RETURNS boolean AS 'MODULE_PATHNAME', 'cachier_precache' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cachier_precache(text, anyelement, "any") IS
    'store value as the result of fn(args...) without calling fn';

CREATE FUNCTION cachier_configure(
    fn regprocedure,
    stale_after interval DEFAULT NULL,
    next_time boolean DEFAULT NULL,
    wait_timeout interval DEFAULT NULL,
    allow_null boolean DEFAULT NULL,
    entry_size_limit text DEFAULT NULL,
    cleanup_stale boolean DEFAULT NULL,
    cleanup_interval interval DEFAULT NULL,
    per_role boolean DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM cachier.check_memoizable(fn);
    PERFORM cachier.set_options(fn, cachier.wrapper_of(fn), stale_after, next_time,
        wait_timeout, allow_null, entry_size_limit, cleanup_stale,
        cleanup_interval, per_role);
END
$$;
COMMENT ON FUNCTION cachier_configure(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean) IS
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
    name text DEFAULT NULL) RETURNS regprocedure
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p            pg_proc;
    target       text[];
    wschema      text;
    wname        text;
    old_wrapper  regprocedure;
    clash        regprocedure;
    argtypes     text;
    callargs     text;
    created      regprocedure;
BEGIN
    PERFORM cachier.check_memoizable(fn);
    SELECT * INTO p FROM pg_proc WHERE oid = fn;

    -- where the wrapper goes: name => 'x' or 'schema.x', else <fn>_cached
    IF name IS NULL THEN
        target := ARRAY[p.proname || '_cached'];
    ELSE
        target := parse_ident(name);
    END IF;
    IF cardinality(target) = 1 THEN
        target := ARRAY[(SELECT nspname FROM pg_namespace WHERE oid = p.pronamespace)::text,
                        target[1]];
    ELSIF cardinality(target) <> 2 THEN
        RAISE EXCEPTION 'invalid wrapper name "%"', name
            USING ERRCODE = 'invalid_name',
                  HINT = 'Give a function name, optionally qualified by a schema.';
    END IF;
    wschema := target[1];
    wname := target[2];

    SELECT string_agg(format_type(t, NULL), ', ' ORDER BY i),
           string_agg('$' || i, ', ' ORDER BY i)
      INTO argtypes, callargs
      FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, i);

    clash := to_regprocedure(format('%I.%I(%s)', wschema, wname, coalesce(argtypes, '')));
    old_wrapper := cachier.wrapper_of(fn);
    IF clash IS NOT NULL AND clash IS DISTINCT FROM old_wrapper THEN
        RAISE EXCEPTION 'function %.%(%) already exists', wschema, wname, coalesce(argtypes, '')
            USING ERRCODE = 'duplicate_function',
                  HINT = 'Pass another wrapper name with name => ''...''.';
    END IF;
    IF old_wrapper IS NOT NULL AND clash IS NULL THEN
        -- memoized before under another name: the old wrapper goes
        EXECUTE format('DROP FUNCTION %s', old_wrapper);
    END IF;

    EXECUTE format(
        'CREATE OR REPLACE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql %s PARALLEL %s '
        'BEGIN ATOMIC SELECT cachier.%I(%L::pg_catalog.regprocedure, NULL::%s%s); END',
        wschema, wname, pg_get_function_arguments(fn),
        format_type(p.prorettype, NULL),
        CASE p.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END,
        CASE p.proparallel WHEN 's' THEN 'SAFE' WHEN 'r' THEN 'RESTRICTED' ELSE 'UNSAFE' END,
        'call_' || CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END
            || '_' || CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted' ELSE 'unsafe' END,
        fn::text, format_type(p.prorettype, NULL),
        CASE WHEN callargs IS NULL THEN '' ELSE ', ' || callargs END);

    created := format('%I.%I(%s)', wschema, wname, coalesce(argtypes, ''))::regprocedure;
    EXECUTE format('COMMENT ON FUNCTION %s IS %L', created,
                   format('cached wrapper of %s (cachier)', fn));
    PERFORM cachier.set_options(fn, created, stale_after, next_time,
        wait_timeout, allow_null, entry_size_limit, cleanup_stale,
        cleanup_interval, per_role);
    RETURN created;
END
$$;
COMMENT ON FUNCTION cachier_memoize(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text) IS
    'create a wrapper of fn whose calls go through the cache';

CREATE FUNCTION cachier_unmemoize(fn regprocedure) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old_wrapper regprocedure;
BEGIN
    -- cachier.forget checks ownership, removes options and entries and
    -- returns the wrapper to drop (NULL when there is none)
    old_wrapper := cachier.forget(fn);
    IF old_wrapper IS NOT NULL THEN
        EXECUTE format('DROP FUNCTION %s', old_wrapper);
    END IF;
END
$$;
COMMENT ON FUNCTION cachier_unmemoize(regprocedure) IS
    'drop the wrapper, the options and the cached entries of fn';

/* ---------------------------------------------------------------- views */

CREATE VIEW cachier_entries AS
SELECT e.function_id                         AS function,
       e.key                                 AS key,
       cachier.format_args(e.function_id, e.args) AS arguments,
       e.created_at,
       (o.stale_after IS NOT NULL
        AND e.created_at + o.stale_after <= clock_timestamp()) AS stale,
       EXISTS (SELECT 1
                 FROM pg_catalog.pg_locks l, cachier.lock_ids(e.key) k
                WHERE l.locktype = 'advisory'
                  AND l.database = (SELECT oid FROM pg_catalog.pg_database
                                     WHERE datname = current_database())
                  AND l.classid = k.classid AND l.objid = k.objid
                  AND l.objsubid = 27182 AND l.granted
                  AND l.mode = 'ExclusiveLock') AS processing,
       true                                  AS completed,
       coalesce(octet_length(e.value), 0)    AS size_bytes,
       e.compute_ms
  FROM cachier.entries e
  LEFT JOIN LATERAL cachier.effective_options(e.function_id) o ON true;
COMMENT ON VIEW cachier_entries IS
    'cached entries; stale and processing are computed when read';

CREATE VIEW cachier_functions AS
SELECT f.fn AS function, f.wrapper, o.*, f.updated_at
  FROM cachier.functions f,
       LATERAL cachier.effective_options(f.fn) o;
COMMENT ON VIEW cachier_functions IS
    'configured functions with their effective options';

REVOKE ALL ON cachier_entries, cachier_functions FROM PUBLIC;

/* ---------------------------------------------------------------- event triggers */

/*
 * DROP FUNCTION (and DROP SCHEMA ... CASCADE, DROP OWNED, ...) removes the
 * options and entries of every dropped function, and forgets dropped
 * wrappers.  SECURITY DEFINER because the storage is closed to the role that
 * drops; it only acts on objects that the command really dropped.
 */
CREATE FUNCTION cachier.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('cachier.entries') IS NULL THEN
        RETURN;                 -- the extension itself is being dropped
    END IF;
    DELETE FROM cachier.entries e
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND e.function_id = d.objid;
    DELETE FROM cachier.functions f
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND f.fn = d.objid;
    UPDATE cachier.functions f SET wrapper = NULL
      FROM pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND f.wrapper = d.objid;
END
$$;

/*
 * CREATE OR REPLACE FUNCTION and ALTER FUNCTION that change a function's
 * definition change its fingerprint, so its old entries can never be hit
 * again: remove them now rather than leave them orphaned.
 */
CREATE FUNCTION cachier.on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('cachier.entries') IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM cachier.entries e
     USING pg_event_trigger_ddl_commands() c
     WHERE c.classid = 'pg_catalog.pg_proc'::regclass
       AND e.function_id = c.objid
       AND e.fingerprint <> cachier.fingerprint(c.objid::regprocedure);
END
$$;
REVOKE ALL ON FUNCTION cachier.on_sql_drop(), cachier.on_ddl_end() FROM PUBLIC;

CREATE EVENT TRIGGER cachier_sql_drop ON sql_drop
    EXECUTE FUNCTION cachier.on_sql_drop();
CREATE EVENT TRIGGER cachier_ddl_end ON ddl_command_end
    WHEN TAG IN ('CREATE FUNCTION', 'ALTER FUNCTION', 'ALTER ROUTINE')
    EXECUTE FUNCTION cachier.on_ddl_end();
