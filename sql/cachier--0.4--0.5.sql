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
