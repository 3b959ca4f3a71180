-- cachier_wrap(fn, args...): calls fn through the cache and returns the
-- result as text.  The name resolves as a direct call would.
CREATE EXTENSION cachier;
CREATE SCHEMA wrap_test;
SET search_path = wrap_test, public;
CREATE SEQUENCE calls;
CREATE FUNCTION slow_add(a int, b int DEFAULT 10) RETURNS int
LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('calls'); RETURN a + b; END $$;
CREATE FUNCTION executions() RETURNS bigint LANGUAGE sql
AS $$ SELECT last_value - 1 + is_called::int FROM calls $$;

-- the first call computes, the second is served from the cache
SELECT cachier_wrap('slow_add', 1, 2);
SELECT cachier_wrap('slow_add', 1, 2);
SELECT executions();

-- users cast the text back
SELECT cachier_wrap('slow_add', 1, 2)::int + 1 AS plus_one;

-- schema-qualified names and signatures reach the same entry
SELECT cachier_wrap('wrap_test.slow_add', 1, 2);
SELECT cachier_wrap('slow_add(int,int)', 1, 2);
SELECT cachier_wrap('slow_add(integer, integer)', 1::smallint, 2::smallint);
SELECT executions();

-- implicit casts apply as in a direct call: smallint and an unknown
-- literal become integer, and it is the same entry
SELECT cachier_wrap('slow_add', 1::smallint, '2');
SELECT executions();

-- defaults fill missing arguments: slow_add(1) is slow_add(1, 10)
SELECT cachier_wrap('slow_add', 1);
SELECT cachier_wrap('slow_add', 1, 10);
SELECT executions();

-- VARIADIC with an array passes its elements
SELECT cachier_wrap('slow_add', VARIADIC ARRAY[1, 2]);
SELECT executions();

-- functions without arguments
CREATE FUNCTION answer() RETURNS text LANGUAGE plpgsql
AS $$ BEGIN PERFORM nextval('calls'); RETURN 'forty-two'; END $$;
SELECT cachier_wrap('answer');
SELECT cachier_wrap('answer');
SELECT executions();

-- overloads are told apart by the argument types
CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql AS 'SELECT x * 2';
CREATE FUNCTION twice(x text) RETURNS text LANGUAGE sql AS 'SELECT x || x';
SELECT cachier_wrap('twice', 21), cachier_wrap('twice', 'ab'::text);

-- NULL arguments are part of the key; a strict function gives NULL
-- without being called, as it would directly
CREATE FUNCTION null_count(a int, b int) RETURNS int LANGUAGE plpgsql
AS $$ BEGIN PERFORM nextval('calls'); RETURN (a IS NULL)::int + (b IS NULL)::int; END $$;
SELECT cachier_wrap('null_count', NULL::int, 1), cachier_wrap('null_count', 1, NULL::int);
SELECT cachier_wrap('null_count', NULL::int, 1);
SELECT executions();
CREATE FUNCTION strict_inc(a int) RETURNS int LANGUAGE sql STRICT AS 'SELECT a + 1';
SELECT cachier_wrap('strict_inc', NULL::int) IS NULL AS is_null;

-- errors raised by the function reach the caller unchanged, and nothing
-- is cached
CREATE FUNCTION fails(x int) RETURNS int LANGUAGE plpgsql
AS $$ BEGIN PERFORM nextval('calls'); RAISE EXCEPTION 'fails(%) failed', x USING ERRCODE = 'P0042'; END $$;
SELECT cachier_wrap('fails', 7);
DO $$
BEGIN
    PERFORM cachier_wrap('fails', 8);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'caught SQLSTATE %: %', SQLSTATE, SQLERRM;
END
$$;
SELECT count(*) FROM cachier.entries WHERE fn_id = cachier.fn_id('fails(int)');

-- a wrapper's name means its function: cachier_wrap('x_cached', ...) is
-- a call of x_cached, served from and stored in x's entries
CREATE FUNCTION triple(x int) RETURNS int LANGUAGE plpgsql
AS $$ BEGIN PERFORM nextval('calls'); RETURN 3 * x; END $$;
SELECT cachier_memoize('triple(int)');
SELECT triple_cached(5);
SELECT executions() AS after_first_call;
SELECT cachier_wrap('triple_cached', 5), cachier_wrap('wrap_test.triple_cached(int)', 5);
SELECT cachier_wrap('triple_cached', 6);
SELECT triple_cached(6), cachier_wrap('triple', 6);
SELECT executions() AS two_computations;
SELECT function, arguments FROM cachier_entries
 WHERE function::text LIKE '%triple%' ORDER BY arguments;

-- bound parameters of unknown type, as psycopg 3, JDBC and pgbench's
-- prepared mode send them: read as untyped literals are, so the call
-- reaches the same entry as slow_add(1, 2), and '2024-01-01' a date
PREPARE wrap_bound AS SELECT cachier_wrap($1, $2, $3);
EXECUTE wrap_bound('slow_add', '1', '2');
SELECT executions() AS still_two_computations;
CREATE FUNCTION weekday(d date) RETURNS int LANGUAGE sql AS $$ SELECT extract(isodow FROM d)::int $$;
PREPARE wrap_one AS SELECT cachier_wrap($1, $2);
EXECUTE wrap_one('weekday', '2024-01-01');
EXECUTE wrap_one('twice', 'ab');
-- a typed parameter goes to the typed overload; mixed with an untyped
-- one, the untyped one needs a cast (PostgreSQL cannot guess its type)
PREPARE wrap_typed(text, int, int) AS SELECT cachier_wrap($1, $2, $3);
EXECUTE wrap_typed('slow_add', 1, 2);
PREPARE wrap_mixed AS SELECT cachier_wrap($1, $2::int, $3);
PREPARE wrap_cast AS SELECT cachier_wrap($1, $2::int, $3::int);
EXECUTE wrap_cast('slow_add', '1', '2');
SELECT executions() AS still_two_computations;
-- text values, also in an explicit VARIADIC array, are read as untyped
-- literals: the string category wins, as in a direct call twice('cd')
SELECT cachier_wrap('twice', VARIADIC ARRAY['cd']);
SELECT cachier_wrap('twice', 'ef'::text);

-- what the cache holds, readable
SELECT function, arguments, stale, processing, size_bytes
  FROM cachier_entries ORDER BY function::text, arguments;

SET client_min_messages = warning;
DROP SCHEMA wrap_test CASCADE;
DROP EXTENSION cachier;
