-- The per-call settings: cachier.enabled, skip_cache, overwrite_cache,
-- verbose; and the scopes PostgreSQL gives every setting
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

-- per database (and likewise per role): the next session gets it
ALTER DATABASE :"DBNAME" SET cachier.stale_after = '2 hours';
\c
SET search_path = settings_test, public;
SHOW cachier.stale_after;
ALTER DATABASE :"DBNAME" RESET cachier.stale_after;
\c
SET search_path = settings_test, public;
SHOW cachier.stale_after;

-- verbose: a NOTICE explains each decision (VERBOSE is a keyword in SET,
-- so the name is quoted there)
SET cachier."verbose" = on;
SELECT stamp_cached(1);
SELECT stamp_cached(3);
SET cachier.skip_cache = on;
SELECT stamp_cached(3);
RESET cachier.skip_cache;
RESET cachier."verbose";

-- the settings and their defaults
SELECT name, setting, short_desc FROM pg_settings
 WHERE name LIKE 'cachier.%' ORDER BY name;

-- bad values are refused with the reason
SET cachier.stale_after = 'soon';
SET cachier.stale_after = '-1 day';
SET cachier.wait_timeout = 'never';
SET cachier.entry_size_limit = '10XB';
SET cachier.cleanup_interval = '0';
SET cachier.max_age = 'a while';
-- the prefix is reserved: misspelled settings are errors
SET cachier.stale_afterr = '1 day';

-- durations accept interval syntax, sizes accept units
SET cachier.stale_after = 'P3D';
SET cachier.stale_after = '90s';
SET cachier.stale_after = 'never';
SET cachier.entry_size_limit = '10 MB';
SET cachier.entry_size_limit = '1024';
SET cachier.max_age = '-5 minutes';
RESET ALL;

SET client_min_messages = warning;
DROP SCHEMA settings_test CASCADE;
DROP EXTENSION cachier CASCADE;
