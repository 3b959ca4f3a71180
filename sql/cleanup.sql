-- cachier_cleanup(): remove stale entries on demand
CREATE EXTENSION cachier;
CREATE SCHEMA cleanup_test;
SET search_path = cleanup_test, public;
CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
CREATE FUNCTION g(x int) RETURNS int LANGUAGE sql AS 'SELECT -x';
SELECT cachier_memoize('f(int)', stale_after => '1 hour');
SELECT cachier_memoize('g(int)', stale_after => '1 hour');
SELECT count(f_cached(i)) + count(g_cached(i)) FROM generate_series(1, 10) i;
-- age half of each function's entries past the shelf life
UPDATE cachier.entries SET created_at = created_at - interval '2 hours'
 WHERE key IN (SELECT key FROM cachier_entries
               WHERE arguments IN ('(1)', '(2)', '(3)', '(4)', '(5)'));

-- exactly the stale entries of f go
SELECT cachier_cleanup('f(int)');
SELECT function, count(*), bool_and(NOT stale) AS all_fresh
  FROM cachier_entries GROUP BY function ORDER BY function::text;

-- without an argument: every function with cleanup_stale.  (The
-- background worker would also clean g once this commits: the transaction
-- keeps it out of the way.)
BEGIN;
SELECT cachier_cleanup();
SELECT cachier_configure('g(int)', stale_after => '1 hour', cleanup_stale => true);
SELECT cachier_cleanup();
COMMIT;
SELECT function, count(*) FROM cachier_entries GROUP BY function ORDER BY function::text;

-- a function without a shelf life has nothing stale
CREATE FUNCTION h(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_wrap('h', 1);
UPDATE cachier.entries SET created_at = created_at - interval '10 years'
 WHERE fn_id = cachier.fn_id('h(int)');
SELECT cachier_cleanup('h(int)');

-- only the owner may clean up a function
CREATE ROLE cachier_cleaner;
GRANT USAGE ON SCHEMA cleanup_test TO cachier_cleaner;
SET ROLE cachier_cleaner;
SELECT cachier_cleanup('f(int)');
SELECT cachier_cleanup();
RESET ROLE;
REVOKE USAGE ON SCHEMA cleanup_test FROM cachier_cleaner;
DROP ROLE cachier_cleaner;

SET client_min_messages = warning;
DROP SCHEMA cleanup_test CASCADE;
DROP EXTENSION cachier CASCADE;
