-- cachier_memoize(fn): a typed wrapper, <fn>_cached, whose calls go
-- through the cache
CREATE EXTENSION cachier;
CREATE SCHEMA memoize_test;
SET search_path = memoize_test, public;
CREATE SEQUENCE calls;
CREATE FUNCTION executions() RETURNS bigint LANGUAGE sql
AS $$ SELECT last_value - 1 + is_called::int FROM calls $$;
CREATE FUNCTION g(a int, b int DEFAULT 2) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$ BEGIN PERFORM nextval('calls'); RETURN a * 10 + b; END $$;

SELECT cachier_memoize('g(int,int)');

-- same argument names, types, defaults and result type; same volatility
SELECT p.oid::regprocedure, pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result, provolatile, proparallel
  FROM pg_proc p WHERE proname IN ('g', 'g_cached') ORDER BY proname;
SELECT obj_description('g_cached(int,int)'::regprocedure, 'pg_proc');

-- named arguments and defaults resolve to one entry
SELECT g_cached(1), g_cached(1, 2), g_cached(b => 2, a => 1);
SELECT executions();
SELECT count(*) FROM cachier_entries WHERE function = 'g(int,int)'::regprocedure;

-- the wrapper and cachier_wrap share entries
SELECT cachier_wrap('g', 1);
SELECT executions();

-- the planner inlines the wrapper into one C call
EXPLAIN (VERBOSE, COSTS OFF) SELECT g_cached(x) FROM generate_series(1, 3) x;

-- an IMMUTABLE function's wrapper is STABLE (a cached value can change, so
-- no plan may fold it into a constant); it is still used in index conditions
CREATE FUNCTION code_of(name text) RETURNS int LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$ BEGIN PERFORM nextval('calls'); RETURN length(name); END $$;
SELECT cachier_memoize('code_of(text)');
SELECT provolatile, proparallel FROM pg_proc WHERE oid = 'code_of_cached(text)'::regprocedure;
CREATE TABLE items (id int PRIMARY KEY, label text);
INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 1000) i;
ANALYZE items;
EXPLAIN (COSTS OFF) SELECT * FROM items WHERE id = code_of_cached('abcd');
SELECT * FROM items WHERE id = code_of_cached('abcd');
SELECT * FROM items WHERE id = code_of_cached('abcd');

-- a STABLE wrapper works in index conditions of a parameterized scan
EXPLAIN (COSTS OFF) SELECT * FROM items WHERE id = g_cached(1, 2)::int;

-- calling it again changes the options it is given and keeps the others
-- (and the wrapper)
SELECT cachier_memoize('g(int,int)', stale_after => '3 days', allow_null => true);
SELECT function, wrapper, stale_after, allow_null FROM cachier_functions WHERE function = 'g(int,int)'::regprocedure;
SELECT cachier_memoize('g(int,int)', stale_after => '1 hour');
SELECT function, wrapper, stale_after, allow_null FROM cachier_functions WHERE function = 'g(int,int)'::regprocedure;

-- another name, in another schema
CREATE SCHEMA fast;
SELECT cachier_memoize('code_of(text)', name => 'fast.code');
SELECT fast.code('xyz');
SELECT to_regprocedure('code_of_cached(text)') IS NULL AS old_wrapper_gone;

-- the wrapper is created from text in which every name is qualified, so
-- memoizing works from any search_path and the wrapper's types and
-- defaults are the function's own
CREATE DOMAIN small AS int CHECK (VALUE < 100);
CREATE FUNCTION base() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 7';
CREATE FUNCTION k(a small DEFAULT base()) RETURNS int LANGUAGE sql AS 'SELECT a * 2';
SET search_path = public;
SELECT cachier_memoize('memoize_test.k(memoize_test.small)');
SELECT memoize_test.k_cached(), memoize_test.k_cached(3);
SET search_path = pg_catalog;
SELECT pg_get_function_arguments('memoize_test.k_cached(memoize_test.small)'::regprocedure);
SET search_path = memoize_test, public;
SELECT cachier_unmemoize('k(small)');

-- a wrapper goes where pg_dump dumps it and where it outlives the session:
-- not in a system schema (memoizing a built-in with the default name would
-- put it in pg_catalog), not in an extension's schema, not in pg_temp
SELECT cachier_memoize('pg_catalog.upper(text)');
SELECT cachier_memoize('pg_catalog.upper(text)', name => 'pg_catalog.upper_cached');
SELECT cachier_memoize('pg_catalog.upper(text)', name => 'information_schema.x');
SELECT cachier_memoize('pg_catalog.upper(text)', name => 'pg_toast.x');
SELECT cachier_memoize('pg_catalog.upper(text)', name => 'cachier.x');
SELECT cachier_memoize('k(small)', name => 'pg_temp.k_cached');
SELECT count(*) AS no_options_left FROM cachier.functions
 WHERE fn_id IN (cachier.fn_id('pg_catalog.upper(text)'), cachier.fn_id('k(small)'));
-- a built-in memoized under a name of one's own works (it is called, and
-- survives a dump and restore, in test/t/002_dump_restore.pl)
SELECT cachier_memoize('pg_catalog.upper(text)', name => 'memoize_test.upper_cached');
SELECT function, wrapper FROM cachier_functions WHERE function = 'upper(text)'::regprocedure;
SELECT cachier_unmemoize('pg_catalog.upper(text)');

-- the most arguments: a wrapper passes fn and a NULL of the result type
-- before them, so it takes at most 98; cachier_wrap takes up to 99 given
-- arguments (and a 100th by default); cachier_configure takes any function
DO $$
DECLARE
    n int;
BEGIN
    FOREACH n IN ARRAY ARRAY[98, 99, 100] LOOP
        EXECUTE format('CREATE FUNCTION memoize_test.many%s(%s) RETURNS int LANGUAGE sql '
                       'AS %L', n,
                       (SELECT string_agg('a' || i || ' int' ||
                                          CASE WHEN i = 100 THEN ' DEFAULT 100' ELSE '' END, ', ')
                          FROM generate_series(1, n) i),
                       'SELECT a1 + a' || n);
    END LOOP;
END
$$;
SELECT substr(cachier_memoize(oid::regprocedure)::text, 1, 22) AS wrapper
  FROM pg_proc WHERE proname = 'many98';
SELECT cachier_memoize(oid::regprocedure) FROM pg_proc WHERE proname = 'many99';
SELECT cachier_memoize(oid::regprocedure) FROM pg_proc WHERE proname = 'many100';
SELECT cachier_configure(oid::regprocedure, stale_after => '1 hour')
  FROM pg_proc WHERE proname IN ('many99', 'many100');
\set ones '1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1'
SELECT many98_cached(:ones, 2), many98_cached(:ones, 2);
SELECT cachier_wrap('many99', :ones, 1, 3), cachier_wrap('many99', :ones, 1, 3);
SELECT cachier_wrap('many100', :ones, 1, 1), cachier_wrap('many100', :ones, 1, 1);
SELECT regexp_replace(function::text, '\(.*', '') AS function, length(arguments) AS arguments_length
  FROM cachier_entries WHERE function::text ~ '^many' ORDER BY 1;
SELECT count(*) FROM (SELECT cachier_unmemoize(oid::regprocedure)
                        FROM pg_proc WHERE proname ~ '^many(98|99|100)$') AS unmemoized;

-- cachier_unmemoize drops the wrapper, the options and the entries
SELECT cachier_unmemoize('g(int,int)');
SELECT to_regprocedure('g_cached(int,int)') IS NULL AS wrapper_gone;
SELECT count(*) FROM cachier.functions WHERE fn_id = cachier.fn_id('g(int,int)');
SELECT count(*) FROM cachier.entries WHERE fn_id = cachier.fn_id('g(int,int)');
-- it also accepts the wrapper itself
SELECT cachier_unmemoize('fast.code(text)');
SELECT to_regprocedure('fast.code(text)') IS NULL AS wrapper_gone;

-- the wrapper depends on the function: DROP FUNCTION needs CASCADE
SELECT cachier_memoize('g(int,int)');
DROP FUNCTION g(int, int);
DROP FUNCTION g(int, int) CASCADE;
SELECT count(*) FROM cachier.functions;

SET client_min_messages = warning;
DROP SCHEMA memoize_test CASCADE;
DROP EXTENSION cachier CASCADE;
