-- Upgrading: a database created with 0.1 keeps its wrappers, options and
-- entries through ALTER EXTENSION cachier UPDATE
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
SELECT function, hits, entries FROM cachier_stats;
SELECT cachier_cleanup('f(int)');
SELECT indexname FROM pg_indexes WHERE schemaname = 'cachier' ORDER BY 1;

SET client_min_messages = warning;
DROP SCHEMA upgrade_test CASCADE;
DROP EXTENSION cachier CASCADE;
