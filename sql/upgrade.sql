-- Upgrading: a database created with 0.1 keeps its wrappers, options and
-- entries through ALTER EXTENSION cachier UPDATE (to 0.5), which moves
-- storage from function OIDs to function ids (pg_upgrade keeps names, not
-- function OIDs)
CREATE SCHEMA upgrade_test;
SET search_path = upgrade_test, public;
CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 100';

-- the entry a 0.1 database would hold for f(1): this library computes it
-- (the key is the same in every version since 0.4), then the extension is
-- created again as 0.1 and the entry written the way 0.1 stores it
CREATE EXTENSION cachier SCHEMA public;
SELECT cachier_memoize('f(int)', stale_after => '1 day');
SELECT f_cached(1);
CREATE TABLE upgrade_test.saved AS
SELECT key, fingerprint, created_at, compute_ms, args, value FROM cachier.entries;
DROP EXTENSION cachier CASCADE;

CREATE EXTENSION cachier SCHEMA public VERSION '0.1';
SELECT cachier_memoize('f(int)', stale_after => '1 day');
INSERT INTO cachier.entries (function_id, key, fingerprint, created_at, compute_ms, args, value)
SELECT 'f(int)'::regprocedure, key, fingerprint, created_at, compute_ms, args, value
  FROM upgrade_test.saved;
SELECT extversion FROM pg_extension WHERE extname = 'cachier';
SELECT to_regprocedure('cachier_cleanup(regprocedure)') IS NULL AS no_cleanup_in_0_1;
-- until the update this library neither reads nor writes 0.1's entries:
-- the wrapper computes (and stores nothing)
SET cachier."verbose" = on;
SELECT f_cached(2);
RESET cachier."verbose";
SELECT count(*) AS entries_0_1 FROM cachier.entries;

ALTER EXTENSION cachier UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'cachier';
-- the entry of 0.1 is kept and served: a hit.  Entries from before 0.5 were
-- stored without tracking their reads, so a function that tracks its reads
-- computes them again (see freshness.sql); f reads no table, and its owner
-- says so with track_reads => false, which changes no other option
SELECT cachier_configure('f(int)', track_reads => false);
SET cachier."verbose" = on;
SELECT f_cached(1);
RESET cachier."verbose";
SELECT function, wrapper, stale_after FROM cachier_functions;
SELECT function, arguments FROM cachier_entries;
SELECT function, hits, entries FROM cachier_stats WHERE function = 'f(int)'::regprocedure;
SELECT cachier_cleanup('f(int)');
SELECT indexname FROM pg_indexes WHERE schemaname = 'cachier' ORDER BY 1;
-- no reg* column but regclass/regtype/regrole is left in storage (pg_upgrade
-- refuses them), and functions are known by their identity
SELECT c.relname, a.attname, a.atttypid::regtype
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'cachier'::regnamespace AND c.relkind = 'r'
   AND a.attnum > 0 AND NOT a.attisdropped
   AND a.atttypid::regtype::text ~ '^reg'
 ORDER BY 1, 2;
SELECT identity FROM cachier.function_ids ORDER BY 1;

-- 0.4: the option helpers that PUBLIC could call are gone, the option
-- functions are C, and the wrapper made by 0.1 is still the one recorded
SELECT to_regprocedure('cachier.set_options(regprocedure,regprocedure,interval,boolean,interval,boolean,text,boolean,interval,boolean,text)') IS NULL AS no_set_options,
       to_regprocedure('cachier.forget(regprocedure)') IS NULL AS no_forget;
SELECT p.oid::regprocedure, l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.proname IN ('cachier_configure', 'cachier_memoize', 'cachier_unmemoize') ORDER BY 1;
SELECT cachier_memoize('f(int)', stale_after => '2 days', max_stale_age => '3 days');
SELECT function, wrapper, stale_after, max_stale_age FROM cachier_functions;
SELECT f_cached(1), count(*) AS entries FROM cachier.entries GROUP BY 1;
SELECT cachier_unmemoize('f_cached(int)');
SELECT to_regprocedure('f_cached(int)') IS NULL AS wrapper_gone;

SET client_min_messages = warning;
DROP SCHEMA upgrade_test CASCADE;
DROP EXTENSION cachier CASCADE;
