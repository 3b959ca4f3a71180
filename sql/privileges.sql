-- Privileges: reading a function's cached results needs EXECUTE on it;
-- changing its cache needs ownership; nobody reads or writes the storage
\set SHOW_CONTEXT never
CREATE EXTENSION cachier;
CREATE SCHEMA privileges_test;
SET search_path = privileges_test, public;
CREATE ROLE cachier_owner;
CREATE ROLE cachier_user;
CREATE ROLE cachier_other;
GRANT CREATE ON SCHEMA public TO cachier_owner;

SET ROLE cachier_owner;
CREATE FUNCTION secret(x int) RETURNS text LANGUAGE sql AS $$ SELECT 'secret ' || x $$;
REVOKE EXECUTE ON FUNCTION secret(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION secret(int) TO cachier_user;
-- the owner memoizes and configures without being superuser
SELECT cachier_memoize('secret(int)', stale_after => '1 day');
GRANT EXECUTE ON FUNCTION secret_cached(int) TO cachier_other;
SELECT secret_cached(1);
RESET ROLE;

-- a role with EXECUTE reads through the cache
SET ROLE cachier_user;
SELECT secret_cached(1);
SELECT cachier_wrap('secret', 2);
-- but may not change the cache's options or clear it
SELECT cachier_memoize('secret(int)');
SELECT cachier_configure('secret(int)', stale_after => '1 second');
SELECT cachier_unmemoize('secret(int)');
SELECT cachier_clear('secret');
SELECT cachier_clear('secret', 1);
RESET ROLE;

-- a role without EXECUTE on the function cannot read its cached results,
-- neither through the wrapper nor cachier_wrap nor cachier_precache
SET ROLE cachier_other;
SELECT secret_cached(1);
SELECT cachier_wrap('secret', 1);
SELECT cachier_precache('secret', 'poison'::text, 1);
-- nor the storage or the views
SELECT * FROM cachier.entries;
SELECT * FROM cachier.functions;
SELECT * FROM cachier_entries;
SELECT * FROM cachier_functions;
INSERT INTO cachier.entries VALUES ('secret(int)', 0, 0, now(), 0, '\x', '\x');
-- nor call the helpers behind them
SELECT cachier.set_options('secret(int)', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT cachier.forget('secret(int)');
SELECT cachier.format_args('secret(int)', '\x');
-- nor pass a hand-made call to cachier.call_*
SELECT cachier.call_volatile_unsafe('secret(int)'::regprocedure, NULL::text, 1);
RESET ROLE;

-- the owner clears, and unmemoizes
SET ROLE cachier_owner;
SELECT cachier_clear('secret');
SELECT cachier_unmemoize('secret(int)');
RESET ROLE;

-- call_* checks that a hand-written call matches the function exactly
SELECT cachier.call_volatile_unsafe('secret(int)'::regprocedure, NULL::int, 1);
SELECT cachier.call_volatile_unsafe('secret(int)'::regprocedure, NULL::text, 'x'::text);

DROP FUNCTION secret(int);
SET client_min_messages = warning;
DROP SCHEMA privileges_test CASCADE;
DROP EXTENSION cachier;
REVOKE CREATE ON SCHEMA public FROM cachier_owner;
DROP ROLE cachier_owner;
DROP ROLE cachier_user;
DROP ROLE cachier_other;
