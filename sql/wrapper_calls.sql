-- How calls of a wrapper run (wrapper_calls.c, site_pool.c): before
-- planning, a call of a wrapper is replaced by its body's call of
-- cachier.call_* (what inlining does, without reading the body back in
-- every statement), and the call site prepared for it is kept between
-- statements.  Each must give what a direct call gives, whatever changed
-- in between; where the planner's own path is the right one (named
-- arguments, a wrapper its owner gave a SET clause or SECURITY DEFINER),
-- that path is taken.
CREATE EXTENSION cachier;
CREATE SCHEMA wc;
SET search_path = wc, public;
CREATE FUNCTION sq(i int) RETURNS int LANGUAGE plpgsql STABLE
    AS 'BEGIN RETURN i * i; END';
SELECT cachier_memoize('sq(int)');

-- the plan calls cachier.call_* itself
EXPLAIN (VERBOSE, COSTS OFF) SELECT sq_cached(3);
SELECT sq_cached(3) AS cached, sq(3) AS direct;
-- named arguments: the planner's usual inlining, the same answer
EXPLAIN (VERBOSE, COSTS OFF) SELECT sq_cached(i => 4);
SELECT sq_cached(i => 4) AS cached, sq(4) AS direct;

-- a wrapper with a SET clause is not inlined by the planner, and not
-- replaced either: the SET applies
ALTER FUNCTION sq_cached(int) SET work_mem = '1MB';
EXPLAIN (VERBOSE, COSTS OFF) SELECT sq_cached(3);
SELECT sq_cached(3) AS cached;
ALTER FUNCTION sq_cached(int) RESET work_mem;

-- a prepared statement is planned again when the wrapper changes
PREPARE p(int) AS SELECT sq_cached($1);
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE p(5);
ALTER FUNCTION sq_cached(int) SECURITY DEFINER;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE p(5);
EXECUTE p(5);
ALTER FUNCTION sq_cached(int) SECURITY INVOKER;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE p(5);
EXECUTE p(5);
DEALLOCATE p;

-- a role that may not execute the wrapper gets the wrapper's error, as
-- from any function
CREATE ROLE wc_nobody;
GRANT USAGE ON SCHEMA wc TO wc_nobody;
REVOKE EXECUTE ON FUNCTION sq_cached(int) FROM PUBLIC;
SET ROLE wc_nobody;
SELECT sq_cached(3);
RESET ROLE;
GRANT EXECUTE ON FUNCTION sq_cached(int) TO PUBLIC;

-- a call site kept from an earlier statement follows a new definition
SELECT sq_cached(6) AS before_replace;
CREATE OR REPLACE FUNCTION sq(i int) RETURNS int LANGUAGE plpgsql STABLE
    AS 'BEGIN RETURN i * i + 1; END';
SELECT sq_cached(6) AS cached, sq(6) AS direct;

-- a statement that fails halfway gives its sites back; the next ones work
SELECT sq_cached(i) / (i - 2) FROM generate_series(1, 3) i;
SELECT sq_cached(7) AS cached, sq(7) AS direct;

-- a function calling itself through its wrapper: each nested call has a
-- site of its own
CREATE FUNCTION fib(n int) RETURNS numeric LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF n < 2 THEN RETURN n; END IF;
    RETURN wc.fib_cached(n - 1) + wc.fib_cached(n - 2);
END $$;
SELECT cachier_memoize('fib(int)');
SELECT fib_cached(80) AS cached;
SELECT fib_cached(80) = 23416728348467685 AS right_value, fib_cached(79) AS again;

-- the kept sites are bounded: after statements calling 60 wrapped
-- functions, some are kept, and at most 32
DO $$
BEGIN
    FOR i IN 1..60 LOOP
        EXECUTE format('CREATE FUNCTION wc.k%s(i int) RETURNS int LANGUAGE sql STABLE AS ''SELECT i + %s''', i, i);
        PERFORM cachier_memoize(format('wc.k%s(int)', i)::regprocedure);
    END LOOP;
END $$;
DO $$
DECLARE r int;
BEGIN
    FOR round IN 1..2 LOOP
        FOR i IN 1..60 LOOP
            EXECUTE format('SELECT wc.k%s_cached(%s)', i, round) INTO r;
            IF r <> i + round THEN
                RAISE EXCEPTION 'k%_cached(%) returned %', i, round, r;
            END IF;
        END LOOP;
    END LOOP;
END $$;
SELECT count(*) BETWEEN 1 AND 32 AS kept_and_bounded
  FROM pg_backend_memory_contexts WHERE name = 'cachier call site';

SET client_min_messages = warning;
DROP SCHEMA wc CASCADE;
DROP ROLE wc_nobody;
DROP EXTENSION cachier CASCADE;
