/* cachier--0.4--0.5.sql: trustworthy operations, stale-free data, context keys (issues 9-13) */

\echo Use "ALTER EXTENSION cachier UPDATE TO '0.5'" to load this file. \quit

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

-- ==== end
