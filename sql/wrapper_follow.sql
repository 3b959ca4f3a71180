-- A wrapper made by cachier_memoize follows its function: after ALTER
-- FUNCTION or CREATE OR REPLACE FUNCTION it has the function's new
-- defaults, volatility and parallel safety, and no plan keeps a cached
-- value folded into a constant.
CREATE EXTENSION cachier;
CREATE SCHEMA follow_test;
SET search_path = follow_test, public;

-- new defaults: g_cached(1) is g(1) after g's default changed
CREATE FUNCTION g(x int, y int DEFAULT 10) RETURNS int LANGUAGE sql STABLE PARALLEL SAFE AS 'SELECT x + y';
SELECT cachier_memoize('g(int, int)');
SELECT g_cached(1) AS cached, g(1) AS direct;
CREATE OR REPLACE FUNCTION g(x int, y int DEFAULT 20) RETURNS int LANGUAGE sql STABLE PARALLEL SAFE AS 'SELECT x + y';
SELECT g_cached(1) AS cached, g(1) AS direct;

-- volatility and parallel safety follow ALTER FUNCTION
SELECT p.oid::regprocedure, p.provolatile, p.proparallel
  FROM pg_proc p WHERE p.proname IN ('g', 'g_cached') ORDER BY 1;
ALTER FUNCTION g(int, int) VOLATILE PARALLEL UNSAFE;
SELECT p.oid::regprocedure, p.provolatile, p.proparallel
  FROM pg_proc p WHERE p.proname IN ('g', 'g_cached') ORDER BY 1;

-- a function that cannot run in a parallel worker: once it is declared
-- PARALLEL UNSAFE, its wrapper keeps the plan out of parallel workers too
CREATE FUNCTION setter(x int) RETURNS int LANGUAGE plpgsql PARALLEL SAFE AS $$
BEGIN
    PERFORM set_config('follow_test.last', x::text, true);
    RETURN x;
END
$$;
SELECT cachier_memoize('setter(int)');
ALTER FUNCTION setter(int) PARALLEL UNSAFE;
SET force_parallel_mode = on;
SELECT setter_cached(7) AS cached, setter(7) AS direct;
RESET force_parallel_mode;

-- an IMMUTABLE function's wrapper is STABLE: a prepared statement sees
-- what the cache holds now, not what it held when it was planned
CREATE FUNCTION i(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 2';
SELECT cachier_memoize('i(int)');
SELECT p.oid::regprocedure, p.provolatile FROM pg_proc p WHERE p.proname IN ('i', 'i_cached') ORDER BY 1;
PREPARE folded AS SELECT i_cached(21);
EXECUTE folded;
CREATE OR REPLACE FUNCTION i(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 3';
EXECUTE folded;
SELECT cachier_precache('i', 1000, 21);
EXECUTE folded;
SELECT cachier_clear('i');
EXECUTE folded;
DEALLOCATE folded;

-- a role that may change the function but does not own the wrapper: its
-- DDL succeeds, and a WARNING says how to make the wrapper follow
CREATE ROLE regress_follow_owner;
GRANT USAGE, CREATE ON SCHEMA follow_test TO regress_follow_owner;
CREATE FUNCTION theirs(x int, y int DEFAULT 1) RETURNS int LANGUAGE sql AS 'SELECT x + y';
ALTER FUNCTION theirs(int, int) OWNER TO regress_follow_owner;
SELECT cachier_memoize('theirs(int, int)');
SET ROLE regress_follow_owner;
ALTER FUNCTION theirs(int, int) STABLE;
RESET ROLE;
SELECT p.oid::regprocedure, p.provolatile FROM pg_proc p WHERE p.proname IN ('theirs', 'theirs_cached') ORDER BY 1;

SET client_min_messages = warning;
DROP SCHEMA follow_test CASCADE;
DROP ROLE regress_follow_owner;
DROP EXTENSION cachier;
