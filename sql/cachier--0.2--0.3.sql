/* cachier--0.2--0.3.sql: the Redis tier's per-function storage option */

\echo Use "ALTER EXTENSION cachier UPDATE TO '0.3'" to load this file. \quit

-- Keep the privileges a DBA changed on our objects, and the views that
-- depend on ours, through the update (src/update_keep.c).
CREATE OR REPLACE FUNCTION cachier.keep_user_objects() RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_keep_user_objects' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION cachier.keep_user_objects() FROM PUBLIC;
SELECT cachier.keep_user_objects();

-- where a function's entries live: the table (NULL, the default), Redis,
-- or both (table first, then Redis)
ALTER TABLE cachier.functions
    ADD COLUMN storage text CHECK (storage IN ('table', 'redis', 'both'));

-- the views read effective_options, which gains the storage column
DROP VIEW cachier_entries;
DROP VIEW cachier_functions;
DROP FUNCTION cachier.effective_options(regprocedure);
CREATE FUNCTION cachier.effective_options(fn regprocedure,
    OUT stale_after interval, OUT next_time boolean, OUT wait_timeout interval,
    OUT allow_null boolean, OUT entry_size_limit bigint, OUT cleanup_stale boolean,
    OUT cleanup_interval interval, OUT per_role boolean, OUT storage text)
    AS 'MODULE_PATHNAME', 'cachier_effective_options_sql' LANGUAGE C STABLE STRICT;
REVOKE ALL ON FUNCTION cachier.effective_options(regprocedure) FROM PUBLIC;

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

DROP FUNCTION cachier.set_options(regprocedure, regprocedure, interval, boolean,
    interval, boolean, text, boolean, interval, boolean);
CREATE FUNCTION cachier.set_options(fn regprocedure, wrapper regprocedure,
    stale_after interval, next_time boolean, wait_timeout interval,
    allow_null boolean, entry_size_limit text, cleanup_stale boolean,
    cleanup_interval interval, per_role boolean, storage text) RETURNS void
    AS 'MODULE_PATHNAME', 'cachier_set_options' LANGUAGE C VOLATILE;

-- the option functions gain a storage parameter (named calls are unchanged)
DROP FUNCTION cachier_configure(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean);
DROP FUNCTION cachier_memoize(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text);

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
    storage text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM cachier.check_memoizable(fn);
    PERFORM cachier.set_options(fn, cachier.wrapper_of(fn), stale_after, next_time,
        wait_timeout, allow_null, entry_size_limit, cleanup_stale,
        cleanup_interval, per_role, storage);
END
$$;
COMMENT ON FUNCTION cachier_configure(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text) IS
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
        cleanup_interval, per_role, storage);
    RETURN created;
END
$$;
COMMENT ON FUNCTION cachier_memoize(regprocedure, interval, boolean, interval,
    boolean, text, boolean, interval, boolean, text, text) IS
    'create a wrapper of fn whose calls go through the cache';
