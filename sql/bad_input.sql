-- Bad input gets a clear error, never a crash, and nothing cached is lost
\set SHOW_CONTEXT never
-- a schema named cachier that is not the extension's: a clear error, and
-- nothing of it is touched
CREATE SCHEMA cachier;
CREATE TABLE cachier.mine (x int);
CREATE EXTENSION cachier;
SELECT count(*) AS still_mine FROM cachier.mine;
DROP SCHEMA cachier CASCADE;
CREATE EXTENSION cachier;
CREATE SCHEMA bad_input_test;
SET search_path = bad_input_test, public;
CREATE FUNCTION ok(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('ok(int)');
SELECT ok_cached(1);

-- unknown and ambiguous functions
SELECT cachier_wrap('no_such_function', 1);
SELECT cachier_wrap('nope.ok', 1);
SELECT cachier_wrap('ok(text, text)', 1);
-- a text argument is read as an untyped literal would be (see wrap.sql)
SELECT cachier_wrap('ok', 'a'::text);
CREATE FUNCTION dup(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
CREATE FUNCTION dup(x bigint) RETURNS int LANGUAGE sql AS 'SELECT 1';
SELECT cachier_wrap('dup', 1::smallint);
SELECT cachier_clear('dup');
SELECT cachier_wrap('int4', '12');
SELECT cachier_wrap('ok(', 1);
SELECT cachier_wrap('', 1);

-- a '(' inside a quoted name is part of the name, not a signature
CREATE FUNCTION "f(x)"(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1';
SELECT cachier_wrap('"f(x)"', 1);
SELECT cachier_wrap('bad_input_test."f(x)"(int)', 1);
SELECT cachier_wrap('"f(x)"(integer)', 1);
SELECT cachier_clear('"f(x)"');

-- wrong argument count or types
SELECT cachier_wrap('ok');
SELECT cachier_wrap('ok', 1, 2);
SELECT cachier_wrap('ok(int)', 1, 2);
SELECT cachier_wrap('ok(int)', 'x'::text);
SELECT cachier_wrap('ok(int)', now());
SELECT cachier_wrap('ok(int)', '1.5');

-- NULL function name
SELECT cachier_wrap(NULL, 1);
SELECT cachier_clear(NULL);
SELECT cachier_precache(NULL, 1, 1);
SELECT cachier_memoize(NULL);
SELECT cachier_configure(NULL);
SELECT cachier_wrap('ok', VARIADIC NULL::int[]);

-- kinds of functions that cannot be cached
CREATE PROCEDURE proc(x int) LANGUAGE sql AS 'SELECT 1';
CREATE AGGREGATE agg(int) (sfunc = int4pl, stype = int);
CREATE FUNCTION srf(x int) RETURNS SETOF int LANGUAGE sql AS 'SELECT x';
CREATE FUNCTION nothing(x int) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION rec(x int, OUT a int, OUT b int) LANGUAGE sql AS 'SELECT x, x';
CREATE FUNCTION trig() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
SELECT cachier_wrap('proc', 1);
SELECT cachier_wrap('agg', 1);
SELECT cachier_wrap('row_number');
SELECT cachier_wrap('srf', 1);
SELECT cachier_wrap('nothing', 1);
SELECT cachier_wrap('rec', 1);
SELECT cachier_memoize('proc(int)');
SELECT cachier_memoize('agg(int)');
SELECT cachier_memoize('srf(int)');
SELECT cachier_memoize('nothing(int)');
SELECT cachier_memoize('rec(int)');
SELECT cachier_memoize('trig()');

-- invalid option values
SELECT cachier_configure('ok(int)', stale_after => '-1 day');
SELECT cachier_configure('ok(int)', wait_timeout => '-5 seconds');
SELECT cachier_configure('ok(int)', cleanup_interval => '-1 hour');
SELECT cachier_configure('ok(int)', entry_size_limit => '10XB');
SELECT cachier_configure('ok(int)', entry_size_limit => 'lots');
SELECT cachier_configure('ok(int)', entry_size_limit => '-3KB');
-- a cleanup interval of zero would have the worker clean up without pause;
-- the option is refused as the setting is
SELECT cachier_configure('ok(int)', cleanup_interval => '0');
SELECT cachier_configure('ok(int)', cleanup_interval => '0 seconds');
SET cachier.cleanup_interval = '0';
-- an option accepts what its setting accepts, no more: -1 is unlimited
-- for entry_size_limit and its setting alike, other negative sizes and
-- sizes past 2GB are refused by both, and so are durations longer than
-- the setting can hold
SELECT cachier_configure('ok(int)', entry_size_limit => '-1');
SELECT entry_size_limit FROM cachier_functions WHERE function = 'ok(int)'::regprocedure;
SET cachier.entry_size_limit = '-1';
SHOW cachier.entry_size_limit;
RESET cachier.entry_size_limit;
SELECT cachier_configure('ok(int)', entry_size_limit => '-2');
SET cachier.entry_size_limit = '-2';
SELECT cachier_configure('ok(int)', entry_size_limit => '3GB');
SET cachier.entry_size_limit = '3GB';
SELECT cachier_configure('ok(int)', wait_timeout => '30 days');
SET cachier.wait_timeout = '30d';
SELECT cachier_configure('ok(int)', stale_after => '100 years');
SET cachier.stale_after = '36600d';
SELECT cachier_configure('ok(int)');
SELECT cachier_memoize('ok(int)', name => 'a.b.c');

-- memoizing a wrapper, and a wrapper name that already exists
SELECT cachier_memoize('ok_cached(int)');
SELECT cachier_configure('ok_cached(int)');
CREATE FUNCTION taken(x int) RETURNS int LANGUAGE sql AS 'SELECT -x';
SELECT cachier_memoize('ok(int)', name => 'taken');
SELECT taken(1);

-- arguments too large to be keyed (more than 64 MB encoded) are computed
-- without the cache, never "out of memory": a direct call works, so the
-- cached call must too
CREATE FUNCTION total_length(a text, b text) RETURNS bigint LANGUAGE sql
    AS 'SELECT octet_length(a)::bigint + octet_length(b)';
SET cachier.trace = on;
SELECT cachier_wrap('total_length', repeat('x', 40 * 1024 * 1024), repeat('y', 30 * 1024 * 1024));
SELECT cachier_precache('total_length', 1, repeat('x', 40 * 1024 * 1024), repeat('y', 30 * 1024 * 1024));
SELECT cachier_clear('total_length', repeat('x', 40 * 1024 * 1024), repeat('y', 30 * 1024 * 1024));
RESET cachier.trace;
SELECT count(*) FROM cachier_entries WHERE function = 'total_length(text, text)'::regprocedure;

-- storage 'redis' or 'both' without cachier.redis_url is accepted (the URL
-- may come with the next reload) with a WARNING that says what happens
-- until then; the trace says it at each call
CREATE FUNCTION remote(x int) RETURNS int LANGUAGE sql AS 'SELECT x * 10';
SELECT cachier_configure('remote(int)', storage => 'redis');
SET cachier.trace = on;
SELECT remote_value FROM cachier_wrap('remote', 1) AS remote_value;
SELECT cachier_configure('remote(int)', storage => 'both');
SELECT remote_value FROM cachier_wrap('remote', 2) AS remote_value;
RESET cachier.trace;
SELECT cachier_configure('remote(int)', storage => 'table');
SELECT arguments FROM cachier_entries WHERE function = 'remote(int)'::regprocedure;
SELECT cachier_unmemoize('remote(int)');

-- after all of that, what was cached is still there and still served
SELECT function, arguments FROM cachier_entries;
SELECT ok_cached(1);

SET client_min_messages = warning;
DROP SCHEMA bad_input_test CASCADE;
DROP EXTENSION cachier CASCADE;
