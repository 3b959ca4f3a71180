-- Entries follow the function: a new definition makes old entries misses
-- and removes them, DROP FUNCTION and DROP EXTENSION leave nothing behind
CREATE EXTENSION cachier;
CREATE SCHEMA lifecycle_test;
SET search_path = lifecycle_test, public;
CREATE FUNCTION version_of(x int) RETURNS text LANGUAGE sql AS $$ SELECT 'v1:' || x $$;
SELECT cachier_memoize('version_of(int)', stale_after => '1 day');
SELECT version_of_cached(1), version_of_cached(2);
SELECT count(*) FROM cachier.entries;

-- CREATE OR REPLACE with a new body: the old entries are gone and the new
-- definition is computed
CREATE OR REPLACE FUNCTION version_of(x int) RETURNS text LANGUAGE sql AS $$ SELECT 'v2:' || x $$;
SELECT count(*) FROM cachier.entries;
SELECT version_of_cached(1);

-- a change of settings (ALTER FUNCTION ... SET) changes the definition too
ALTER FUNCTION version_of(int) SET search_path = public;
SELECT count(*) FROM cachier.entries;
SELECT version_of_cached(1);
-- a change that does not alter results (a comment) keeps the entries
COMMENT ON FUNCTION version_of(int) IS 'still the same';
SELECT count(*) FROM cachier.entries;

-- a SECURITY DEFINER function computes with its owner's rights: a new
-- owner is a new identity, and ALTER FUNCTION ... OWNER TO removes the
-- entries computed with the old owner's rights
CREATE ROLE cachier_new_owner;
CREATE FUNCTION definer_of(x int) RETURNS boolean LANGUAGE sql SECURITY DEFINER
AS $$ SELECT current_user IS NOT NULL AND x > 0 $$;
SELECT cachier_wrap('definer_of', 1);
SELECT count(*) AS definer_entries FROM cachier.entries
 WHERE fn_id = cachier.fn_id('definer_of(int)');
ALTER FUNCTION definer_of(int) OWNER TO cachier_new_owner;
SELECT count(*) AS definer_entries FROM cachier.entries
 WHERE fn_id = cachier.fn_id('definer_of(int)');
DROP FUNCTION definer_of(int);
DROP ROLE cachier_new_owner;

-- the options survive a new definition
SELECT function, stale_after FROM cachier_functions;

-- DROP FUNCTION removes the options and the entries (and the wrapper,
-- with CASCADE)
CREATE FUNCTION other(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_configure('other(int)', stale_after => '1 hour');
SELECT cachier_wrap('other', 5);
DROP FUNCTION other(int);
-- (storage names functions by id; an id whose identity names no function
-- is left over)
CREATE VIEW lifecycle_test.ids_left AS
SELECT i.id FROM cachier.function_ids i WHERE to_regprocedure(i.identity) IS NULL;
SELECT count(*) AS ids_left FROM lifecycle_test.ids_left;
SELECT count(*) AS options_left FROM cachier.functions
 WHERE fn_id NOT IN (SELECT id FROM cachier.function_ids) OR fn_id IN (SELECT id FROM lifecycle_test.ids_left);
SELECT count(*) AS entries_left FROM cachier.entries
 WHERE fn_id NOT IN (SELECT id FROM cachier.function_ids) OR fn_id IN (SELECT id FROM lifecycle_test.ids_left);

-- dropping the wrapper alone keeps the options and entries of the function
DROP FUNCTION version_of_cached(int);
SELECT function, wrapper FROM cachier_functions;
SELECT count(*) FROM cachier.entries;

-- DROP SCHEMA ... CASCADE is a drop of its functions too
CREATE SCHEMA tmp;
CREATE FUNCTION tmp.f(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('tmp.f(int)');
SELECT tmp.f_cached(1);
DROP SCHEMA tmp CASCADE;
SELECT count(*) AS ids_left FROM lifecycle_test.ids_left;
SELECT count(*) AS options_left FROM cachier.functions
 WHERE fn_id NOT IN (SELECT id FROM cachier.function_ids);

-- renames keep the options: storage knows a function by its identity
-- (schema-qualified signature, which pg_upgrade and pg_dump keep), and the
-- identity follows ALTER FUNCTION ... RENAME / SET SCHEMA, ALTER SCHEMA
-- ... RENAME and a renamed argument type.  Entries go (their keys hold
-- the old identity), as with any new definition.
CREATE SCHEMA ren;
CREATE TYPE ren.kind AS ENUM ('a', 'b');
CREATE FUNCTION ren.f(k ren.kind) RETURNS text LANGUAGE sql AS $$ SELECT k::text || '!' $$;
SELECT cachier_memoize('ren.f(ren.kind)', stale_after => '5 hours', name => 'lifecycle_test.rf_cached');
SELECT lifecycle_test.rf_cached('a');
SELECT identity FROM cachier.function_ids ORDER BY 1;
ALTER FUNCTION ren.f(ren.kind) RENAME TO g;
ALTER FUNCTION ren.g(ren.kind) SET SCHEMA lifecycle_test;
ALTER TYPE ren.kind RENAME TO sort;
ALTER SCHEMA ren RENAME TO ren2;
ALTER FUNCTION lifecycle_test.rf_cached(ren2.sort) RENAME TO rg_cached;
SELECT identity FROM cachier.function_ids ORDER BY 1;
SELECT function, wrapper, stale_after FROM cachier_functions
 WHERE function = 'lifecycle_test.g(ren2.sort)'::regprocedure;
SELECT count(*) AS entries_of_old_identity FROM cachier.entries
 WHERE fn_id = cachier.fn_id('lifecycle_test.g(ren2.sort)');
SET cachier."verbose" = on;
SELECT lifecycle_test.rg_cached('b'), lifecycle_test.rg_cached('b');
RESET cachier."verbose";
-- and a drop after the renames removes them
DROP FUNCTION lifecycle_test.g(ren2.sort) CASCADE;
SELECT count(*) AS ids_left FROM lifecycle_test.ids_left;
SELECT count(*) AS options_left FROM cachier.functions
 WHERE fn_id NOT IN (SELECT id FROM cachier.function_ids);
SELECT identity FROM cachier.function_ids ORDER BY 1;
DROP SCHEMA ren2 CASCADE;

-- DROP EXTENSION refuses while wrappers depend on it, and with CASCADE
-- removes everything: storage, wrappers, event triggers
SELECT cachier_memoize('version_of(int)');
-- (DDL on the storage also works in the same transaction as cache hits)
BEGIN;
SELECT version_of_cached(5), version_of_cached(5);
TRUNCATE cachier.entries;
SELECT version_of_cached(5);
DROP EXTENSION cachier CASCADE;
ROLLBACK;
DROP EXTENSION cachier;
DROP EXTENSION cachier CASCADE;
SELECT count(*) AS cachier_objects FROM pg_namespace WHERE nspname = 'cachier';
SELECT count(*) AS wrappers FROM pg_proc WHERE proname LIKE '%\_cached';
SELECT count(*) AS event_triggers FROM pg_event_trigger WHERE evtname LIKE 'cachier%';

-- and it can be created again
CREATE EXTENSION cachier SCHEMA public;
SELECT cachier_wrap('version_of', 3);
SET client_min_messages = warning;
DROP SCHEMA lifecycle_test CASCADE;
DROP EXTENSION cachier;

-- options that 0.3 stored and 0.4 refuses are repaired by ALTER EXTENSION
-- UPDATE: a zero cleanup_interval (the worker would clean up without pause)
-- falls back to the setting, and a wrapper that is gone (one created in
-- pg_temp went with its session) is forgotten, so the function can be
-- memoized again
CREATE EXTENSION cachier VERSION '0.3';
CREATE SCHEMA lifecycle_test;
CREATE FUNCTION lifecycle_test.old_fn(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
INSERT INTO cachier.functions (fn, wrapper, cleanup_interval)
VALUES ('lifecycle_test.old_fn(int)', 4000000000::oid::regprocedure, '0');
ALTER EXTENSION cachier UPDATE TO '0.4';
SELECT fn, wrapper, cleanup_interval FROM cachier.functions;
SELECT cachier_memoize('lifecycle_test.old_fn(int)');
SELECT lifecycle_test.old_fn_cached(4);
SET client_min_messages = warning;
DROP SCHEMA lifecycle_test CASCADE;
DROP EXTENSION cachier CASCADE;
