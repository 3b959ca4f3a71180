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

-- ==== end
