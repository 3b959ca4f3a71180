-- The per-call settings: cachier.enabled, skip_cache, overwrite_cache,
-- trace (and its old name verbose); the scopes PostgreSQL gives every
-- setting; durations and sizes with PostgreSQL's units
CREATE EXTENSION cachier;
CREATE SCHEMA settings_test;
SET search_path = settings_test, public;
CREATE SEQUENCE calls;
CREATE FUNCTION executions() RETURNS bigint LANGUAGE sql
AS $$ SELECT last_value - 1 + is_called::int FROM calls $$;
CREATE FUNCTION stamp(x int) RETURNS bigint LANGUAGE plpgsql
AS $$ BEGIN RETURN nextval('calls'); END $$;
SELECT cachier_memoize('stamp(int)');

SELECT stamp_cached(1);
SELECT stamp_cached(1);

-- cachier.enabled = off: the cache is neither read nor written
SET cachier.enabled = off;
SELECT stamp_cached(1);
SELECT stamp_cached(2);
RESET cachier.enabled;
SELECT count(*) FROM cachier.entries;

-- cachier.skip_cache: the same, per call or scope
SET cachier.skip_cache = on;
SELECT stamp_cached(1);
RESET cachier.skip_cache;
SELECT stamp_cached(1);

-- cachier.overwrite_cache: compute, store and return the new value
SET cachier.overwrite_cache = on;
SELECT stamp_cached(1);
RESET cachier.overwrite_cache;
SELECT stamp_cached(1);

-- SET LOCAL lasts for the transaction
BEGIN;
SET LOCAL cachier.skip_cache = on;
SELECT stamp_cached(1);
COMMIT;
SELECT stamp_cached(1);

-- per function: ALTER FUNCTION ... SET applies to the calls it makes
CREATE FUNCTION fresh_stamp(x int) RETURNS bigint LANGUAGE sql
AS 'SELECT stamp_cached(x)';
ALTER FUNCTION fresh_stamp(int) SET cachier.overwrite_cache = on;
SELECT fresh_stamp(1);
SELECT stamp_cached(1);

-- per database (and likewise per role): the next session gets it (LOAD:
-- a server without shared_preload_libraries loads cachier at first use)
ALTER DATABASE :"DBNAME" SET cachier.stale_after = '2h';
\c
LOAD 'cachier';
SET search_path = settings_test, public;
SHOW cachier.stale_after;
ALTER DATABASE :"DBNAME" RESET cachier.stale_after;
\c
LOAD 'cachier';
SET search_path = settings_test, public;
SHOW cachier.stale_after;

-- trace: a NOTICE explains each decision; the name needs no quotes
SET cachier.trace = on;
SHOW cachier.trace;
SELECT stamp_cached(1);
SELECT stamp_cached(3);
SET cachier.skip_cache = on;
SELECT stamp_cached(3);
RESET cachier.skip_cache;
RESET cachier.trace;
SELECT stamp_cached(3) AS no_notice;
-- cachier.verbose, its deprecated name (VERBOSE is a keyword: quoted in
-- SET), still turns the trace on: the trace is on while either is on
SET cachier."verbose" = on;
SELECT stamp_cached(1);
SELECT set_config('cachier.verbose', 'off', false);
SELECT stamp_cached(1) AS no_notice;

-- the settings, their units, ranges and defaults (but for the sizes of
-- shared memory tables, which exist only when cachier is preloaded:
-- cachier.max_tracked_functions, see stats.sql, and the dependency
-- registry's cachier.max_dependent_functions and max_dependency_relations)
SELECT name, setting, unit, min_val, max_val, short_desc FROM pg_settings
 WHERE name LIKE 'cachier.%'
   AND name NOT IN ('cachier.max_tracked_functions', 'cachier.max_dependent_functions',
                    'cachier.max_dependency_relations')
 ORDER BY name;

-- durations and sizes take PostgreSQL's units; -1 is never / unlimited
SET cachier.stale_after = '3d';
SHOW cachier.stale_after;
SET cachier.stale_after = '90s';
SHOW cachier.stale_after;
SET cachier.stale_after = 5400;
SHOW cachier.stale_after;
SET cachier.stale_after = -1;
SHOW cachier.stale_after;
SET cachier.wait_timeout = '500ms';
SHOW cachier.wait_timeout;
SET cachier.entry_size_limit = '10MB';
SHOW cachier.entry_size_limit;
SET cachier.entry_size_limit = 1024;
SHOW cachier.entry_size_limit;
SET cachier.entry_size_limit = -1;
SHOW cachier.entry_size_limit;
SET cachier.max_age = '10min';
SHOW cachier.max_age;
SET cachier.max_age = 0;
SHOW cachier.max_age;
RESET ALL;

-- bad values are refused with the reason; interval words ('3 days', the
-- spelling of 0.4) are not units
SET cachier.stale_after = 'soon';
SET cachier.stale_after = '3 days';
SET cachier.stale_after = -2;
SET cachier.wait_timeout = -1;
SET cachier.entry_size_limit = '10XB';
SET cachier.entry_size_limit = '3GB';
SET cachier.cleanup_interval = 0;
SET cachier.max_age = 'a while';
-- the prefix is reserved: misspelled settings are errors
SET cachier.stale_afterr = '1d';

SET client_min_messages = warning;
DROP SCHEMA settings_test CASCADE;
DROP EXTENSION cachier CASCADE;
