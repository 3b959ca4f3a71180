-- A fresh install of the newest version (its base script) creates exactly
-- what installing 0.1 and updating step by step creates: the same
-- functions, tables (columns in the same order: the C code reads them by
-- position), indexes, views, event triggers, comments and privileges.
CREATE TEMP TABLE shape (path text, what text, description text);

CREATE FUNCTION pg_temp.describe(path text) RETURNS void LANGUAGE sql AS $$
INSERT INTO shape
WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
     WHERE d.refclassid = 'pg_extension'::regclass AND x.extname = 'cachier'
       AND d.deptype = 'e')
SELECT path, 'function ' || p.oid::regprocedure,
       concat_ws(' | ', pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
                 p.provolatile, p.proparallel, p.proisstrict, p.prosecdef, p.proconfig::text,
                 l.lanname, p.prosrc, p.probin, obj_description(p.oid, 'pg_proc'),
                 (SELECT string_agg(a::text, ',' ORDER BY a::text)
                    FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a))
  FROM members m JOIN pg_proc p ON p.oid = m.objid JOIN pg_language l ON l.oid = p.prolang
 WHERE m.classid = 'pg_proc'::regclass
UNION ALL
SELECT path, 'relation ' || c.oid::regclass,
       concat_ws(' | ', c.relkind, c.reloptions::text, obj_description(c.oid, 'pg_class'),
                 CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END,
                 (SELECT string_agg(a::text, ',' ORDER BY a::text)
                    FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a))
  FROM members m JOIN pg_class c ON c.oid = m.objid
 WHERE m.classid = 'pg_class'::regclass
UNION ALL
SELECT path, 'column ' || c.oid::regclass || '.' || a.attnum,
       concat_ws(' | ', a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                 pg_get_expr(ad.adbin, ad.adrelid))
  FROM members m JOIN pg_class c ON c.oid = m.objid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
 WHERE m.classid = 'pg_class'::regclass
UNION ALL
SELECT path, 'index ' || i.indexrelid::regclass, pg_get_indexdef(i.indexrelid)
  FROM members m JOIN pg_index i ON i.indrelid = m.objid
 WHERE m.classid = 'pg_class'::regclass
UNION ALL
SELECT path, 'event trigger ' || e.evtname,
       concat_ws(' | ', e.evtevent, e.evtfoid::regproc, e.evttags::text, e.evtenabled)
  FROM members m JOIN pg_event_trigger e ON e.oid = m.objid
 WHERE m.classid = 'pg_event_trigger'::regclass
UNION ALL
SELECT path, 'schema ' || n.nspname,
       (SELECT string_agg(a::text, ',' ORDER BY a::text)
          FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a)
  FROM members m JOIN pg_namespace n ON n.oid = m.objid
 WHERE m.classid = 'pg_namespace'::regclass
UNION ALL
SELECT path, 'dumped table ' || t::regclass, coalesce(x.extcondition[i], '')
  FROM pg_extension x, unnest(x.extconfig) WITH ORDINALITY AS u(t, i)
 WHERE x.extname = 'cachier'
UNION ALL
-- (initial privileges equal to the defaults are the same as none)
SELECT path, 'initial privileges of ' || pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
       (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM aclexplode(ip.initprivs) a)
  FROM members m JOIN pg_init_privs ip ON ip.objoid = m.objid AND ip.classoid = m.classid
  LEFT JOIN pg_proc p ON ip.classoid = 'pg_proc'::regclass AND p.oid = ip.objoid
  LEFT JOIN pg_class c ON ip.classoid = 'pg_class'::regclass AND c.oid = ip.objoid
 WHERE ip.initprivs::text[] IS DISTINCT FROM
       coalesce(acldefault('f', p.proowner), acldefault('r', c.relowner))::text[]
$$;

CREATE EXTENSION cachier;
SELECT pg_temp.describe('fresh');
DROP EXTENSION cachier;
CREATE EXTENSION cachier VERSION '0.1';
ALTER EXTENSION cachier UPDATE;
SELECT pg_temp.describe('updated');
DROP EXTENSION cachier;

-- what one has and the other has not, or has differently: nothing
SELECT 'only in ' || path AS difference, what, description
  FROM (SELECT * FROM shape WHERE path = 'fresh'
        EXCEPT SELECT 'fresh', what, description FROM shape WHERE path = 'updated'
        UNION ALL
        SELECT * FROM shape WHERE path = 'updated'
        EXCEPT SELECT 'updated', what, description FROM shape WHERE path = 'fresh') d
 ORDER BY what, path;
-- and the comparison is of something: every kind of object is there
SELECT split_part(what, ' ', 1) AS kind, count(*) > 0 AS present
  FROM shape WHERE path = 'fresh' GROUP BY 1 ORDER BY 1;
