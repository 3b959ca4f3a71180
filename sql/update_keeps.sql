-- ALTER EXTENSION cachier UPDATE keeps what a DBA did to cachier's objects:
-- privileges granted and revoked on its views and functions, and the
-- user's views (and views on those, and materialized views with their
-- indexes) built on cachier's views.  Tried from every released version.
CREATE ROLE regress_keep_reader;
CREATE ROLE regress_keep_owner;
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.dba_changes() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    f regprocedure;
BEGIN
    -- one configured function, for the materialized view to hold
    CREATE FUNCTION public.keep_f(int) RETURNS int LANGUAGE sql AS 'SELECT $1';
    PERFORM cachier_configure('public.keep_f(int)', stale_after => '1 day');
    -- the DBA's own policy: the views for a reader, configuring for nobody
    GRANT SELECT ON cachier_entries TO regress_keep_reader;
    IF to_regclass('cachier_stats') IS NOT NULL THEN
        GRANT SELECT ON cachier_stats TO regress_keep_reader;
    END IF;
    FOR f IN SELECT oid FROM pg_proc
              WHERE proname IN ('cachier_memoize', 'cachier_configure') LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
    -- views of the DBA's on cachier's, one owned by another role
    CREATE VIEW public.my_entries AS SELECT function, key, created_at FROM cachier_entries;
    ALTER VIEW public.my_entries OWNER TO regress_keep_owner;
    GRANT SELECT ON public.my_entries TO regress_keep_reader;
    COMMENT ON VIEW public.my_entries IS 'the entries, for the reader';
    CREATE VIEW public.my_entry_count AS SELECT count(*) AS n FROM public.my_entries;
    CREATE MATERIALIZED VIEW public.my_functions AS SELECT function, stale_after FROM cachier_functions;
    CREATE INDEX my_functions_function ON public.my_functions (function);
END
$$;

CREATE FUNCTION pg_temp.kept() RETURNS TABLE (what text, ok boolean) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    SELECT 'reader may read cachier_entries',
           has_table_privilege('regress_keep_reader', 'cachier_entries', 'SELECT')
    UNION ALL
    SELECT 'reader may read cachier_stats',
           has_table_privilege('regress_keep_reader', 'cachier_stats', 'SELECT')
    UNION ALL
    SELECT 'nobody but superusers may run ' || p.proname::text,
           NOT has_function_privilege('regress_keep_reader', p.oid, 'EXECUTE')
      FROM pg_proc p WHERE p.proname IN ('cachier_memoize', 'cachier_configure')
    UNION ALL
    SELECT 'my_entries kept its owner, grant and comment',
           pg_get_userbyid(c.relowner) = 'regress_keep_owner'
           AND has_table_privilege('regress_keep_reader', c.oid, 'SELECT')
           AND obj_description(c.oid, 'pg_class') = 'the entries, for the reader'
      FROM pg_class c WHERE c.oid = 'public.my_entries'::regclass
    UNION ALL
    SELECT 'my_entry_count works', (SELECT n FROM public.my_entry_count) = 0
    UNION ALL
    SELECT 'my_functions kept its index and data',
           EXISTS (SELECT FROM pg_indexes WHERE indexname = 'my_functions_function')
           AND (SELECT stale_after FROM public.my_functions
                 WHERE function = 'public.keep_f(int)'::regprocedure) = '1 day'
    UNION ALL
    SELECT 'no user view became part of the extension',
           NOT EXISTS (SELECT FROM pg_depend d
                        WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                          AND d.classid = 'pg_class'::regclass
                          AND d.objid IN ('public.my_entries'::regclass,
                                          'public.my_entry_count'::regclass,
                                          'public.my_functions'::regclass))
    UNION ALL
    -- pg_dump dumps privileges that differ from the extension's initial
    -- ones: the kept grants must not have become "initial"
    SELECT 'the reader''s grant is the DBA''s, so pg_dump keeps it',
           NOT EXISTS (SELECT FROM pg_init_privs i, aclexplode(i.initprivs) a
                        WHERE i.objoid = 'cachier_entries'::regclass
                          AND a.grantee = 'regress_keep_reader'::regrole);
END
$$;

CREATE FUNCTION pg_temp.undo() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DROP VIEW public.my_entry_count, public.my_entries;
    DROP MATERIALIZED VIEW public.my_functions;
    DROP EXTENSION cachier;
    DROP FUNCTION public.keep_f(int);
END
$$;

-- from 0.1
CREATE EXTENSION cachier VERSION '0.1';
SELECT pg_temp.dba_changes();
ALTER EXTENSION cachier UPDATE;
SELECT extversion AS updated_to FROM pg_extension WHERE extname = 'cachier';
SELECT * FROM pg_temp.kept() ORDER BY what;
SELECT pg_temp.undo();

-- from 0.2
CREATE EXTENSION cachier VERSION '0.2';
SELECT pg_temp.dba_changes();
ALTER EXTENSION cachier UPDATE;
SELECT extversion AS updated_to FROM pg_extension WHERE extname = 'cachier';
SELECT * FROM pg_temp.kept() ORDER BY what;
SELECT pg_temp.undo();

-- from 0.3
CREATE EXTENSION cachier VERSION '0.3';
SELECT pg_temp.dba_changes();
ALTER EXTENSION cachier UPDATE;
SELECT extversion AS updated_to FROM pg_extension WHERE extname = 'cachier';
SELECT * FROM pg_temp.kept() ORDER BY what;
SELECT pg_temp.undo();

-- from 0.4
CREATE EXTENSION cachier VERSION '0.4';
SELECT pg_temp.dba_changes();
ALTER EXTENSION cachier UPDATE;
SELECT extversion AS updated_to FROM pg_extension WHERE extname = 'cachier';
SELECT * FROM pg_temp.kept() ORDER BY what;
SELECT pg_temp.undo();

RESET client_min_messages;
DROP ROLE regress_keep_reader;
DROP ROLE regress_keep_owner;
