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

-- The context an entry was keyed with (role, collation, settings, search
-- path), readable, from its stored keyed bytes; for cachier_entries and
-- for the superuser.  Its text names roles and setting values: not PUBLIC.
CREATE FUNCTION cachier.entry_context(fn pg_catalog.regprocedure, args pg_catalog.bytea)
    RETURNS pg_catalog.text
    AS 'MODULE_PATHNAME', 'cachier_entry_context' LANGUAGE C STABLE STRICT;
REVOKE ALL ON FUNCTION cachier.entry_context(pg_catalog.regprocedure, pg_catalog.bytea) FROM PUBLIC;

-- ==== [Y] everyday use

-- ==== [W] waits

-- ==== end
