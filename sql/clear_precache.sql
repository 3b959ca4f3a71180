-- cachier_clear removes entries; cachier_precache stores a value without
-- calling the function
CREATE EXTENSION cachier;
CREATE SCHEMA clear_precache_test;
SET search_path = clear_precache_test, public;
CREATE SEQUENCE calls;
CREATE FUNCTION executions() RETURNS bigint LANGUAGE sql
AS $$ SELECT last_value - 1 + is_called::int FROM calls $$;
CREATE FUNCTION price(item int, qty int DEFAULT 1) RETURNS numeric LANGUAGE plpgsql
AS $$ BEGIN PERFORM nextval('calls'); RETURN item * 1.5 * qty; END $$;
SELECT cachier_memoize('price(int,int)');
SELECT price_cached(1), price_cached(2), price_cached(3, 2);

-- one entry, named by its arguments (defaults apply as in a call)
SELECT cachier_clear('price', 2);
SELECT cachier_clear('price', 2);
SELECT cachier_clear('price', 3, 2);
SELECT arguments FROM cachier_entries ORDER BY arguments;
-- all entries of a function: by name, qualified name or signature
SELECT price_cached(2);
SELECT cachier_clear('price');
SELECT cachier_clear('clear_precache_test.price(integer, integer)');
SELECT count(*) FROM cachier.entries;

-- precache: the value is coerced to the result type (numeric)
SELECT cachier_precache('price', 99, 7);
SELECT price_cached(7);
SELECT executions();
SELECT cachier_precache('price', 12.25::float8, 8, 1);
SELECT price_cached(8);
-- a function without arguments
CREATE FUNCTION motd() RETURNS text LANGUAGE sql AS $$ SELECT 'computed' $$;
SELECT cachier_precache('motd', 'precached'::text);
SELECT cachier_wrap('motd');
-- precache overwrites what was cached
SELECT cachier_precache('motd', 'again'::text);
SELECT cachier_wrap('motd');
-- a NULL value is stored only with allow_null
SELECT cachier_precache('price', NULL::numeric, 9);
SELECT cachier_configure('price(int,int)', allow_null => true);
SELECT cachier_precache('price', NULL::numeric, 9);
SELECT price_cached(9) IS NULL AS from_cache;
SELECT executions();

-- a value of a type that has no assignment cast is refused; a text value
-- is read as a literal of the result type, so it must be one
SELECT cachier_precache('price', now(), 10);
SELECT cachier_precache('price', 'a lot'::text, 10);
SELECT cachier_precache('price', '12.5', 10), price_cached(10);

-- a wrapper's name means its function: clear and precache act on the
-- entries that the wrapper serves
SELECT cachier_clear('price');
SELECT price_cached(1), price_cached(2);
SELECT cachier_clear('price_cached', 1);
SELECT arguments FROM cachier_entries ORDER BY arguments;
SELECT cachier_precache('price_cached', 100, 1);
SELECT cachier_precache('clear_precache_test.price_cached(int,int)', 200, 3);
SELECT price_cached(1) AS precached, price_cached(3) AS precached, cachier_wrap('price', 1) AS same_entry;
SELECT cachier_clear('price_cached');
SELECT count(*) AS left_after_clear FROM cachier_entries;

-- bound parameters of unknown type (psycopg 3, pgbench -M prepared): the
-- value and the arguments are read as literals of their types
PREPARE precache_bound AS SELECT cachier_precache($1, $2, $3);
EXECUTE precache_bound('price', '42.5', '4');
PREPARE precache_typed_arg AS SELECT cachier_precache($1, $2, $3::int);
EXECUTE precache_typed_arg('price', '43.5', '5');
PREPARE precache_motd AS SELECT cachier_precache($1, $2);
EXECUTE precache_motd('motd', 'bound');
SELECT price_cached(4), price_cached(5), cachier_wrap('motd');
PREPARE clear_bound AS SELECT cachier_clear($1, $2);
EXECUTE clear_bound('price', '4');
PREPARE clear_all_bound AS SELECT cachier_clear($1);
EXECUTE clear_all_bound('price_cached');
SELECT executions() AS no_new_computation;

SET client_min_messages = warning;
DROP SCHEMA clear_precache_test CASCADE;
DROP EXTENSION cachier CASCADE;
