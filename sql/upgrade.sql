-- Upgrading: a database created with 0.1 keeps its wrappers, options and
-- entries through ALTER EXTENSION cachier UPDATE (to 0.4)
CREATE EXTENSION cachier VERSION '0.1';
CREATE SCHEMA upgrade_test;
SET search_path = upgrade_test, public;
CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 100';
SELECT cachier_memoize('f(int)', stale_after => '1 day');
SELECT f_cached(1);
SELECT extversion FROM pg_extension WHERE extname = 'cachier';
SELECT to_regprocedure('cachier_cleanup(regprocedure)') IS NULL AS no_cleanup_in_0_1;

ALTER EXTENSION cachier UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'cachier';
SET cachier."verbose" = on;
SELECT f_cached(1);
RESET cachier."verbose";
SELECT function, wrapper, stale_after FROM cachier_functions;
SELECT function, hits, entries FROM cachier_stats WHERE function = 'f(int)'::regprocedure;
SELECT cachier_cleanup('f(int)');
SELECT indexname FROM pg_indexes WHERE schemaname = 'cachier' ORDER BY 1;

-- 0.4: the option helpers that PUBLIC could call are gone, the option
-- functions are C, and the wrapper made by 0.1 is still the one recorded
SELECT to_regprocedure('cachier.set_options(regprocedure,regprocedure,interval,boolean,interval,boolean,text,boolean,interval,boolean,text)') IS NULL AS no_set_options,
       to_regprocedure('cachier.forget(regprocedure)') IS NULL AS no_forget;
SELECT p.oid::regprocedure, l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.proname IN ('cachier_configure', 'cachier_memoize', 'cachier_unmemoize') ORDER BY 1;
SELECT cachier_memoize('f(int)', stale_after => '2 days', max_stale_age => '3 days');
SELECT function, wrapper, stale_after, max_stale_age FROM cachier_functions;
SELECT f_cached(1), count(*) AS entries FROM cachier.entries GROUP BY 1;
SELECT cachier_unmemoize('f_cached(int)');
SELECT to_regprocedure('f_cached(int)') IS NULL AS wrapper_gone;

SET client_min_messages = warning;
DROP SCHEMA upgrade_test CASCADE;
DROP EXTENSION cachier CASCADE;
