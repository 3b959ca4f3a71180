-- Per-function options (cachier_configure / cachier_memoize) and the
-- cachier.* settings that give their defaults
CREATE EXTENSION cachier;
CREATE SCHEMA options_test;
SET search_path = options_test, public;
CREATE SEQUENCE calls;
CREATE FUNCTION executions() RETURNS bigint LANGUAGE sql
AS $$ SELECT last_value - 1 + is_called::int FROM calls $$;
CREATE FUNCTION sq(x int) RETURNS int LANGUAGE plpgsql
AS $$ BEGIN PERFORM nextval('calls'); RETURN x * x; END $$;
SELECT set_config('cachier.verbose', 'on', false);

-- stale_after: an entry older than its shelf life is recomputed (the
-- entry is made older by hand, which a shared memory tier does not see: its
-- copies are forgotten, as README says)
SELECT cachier_configure('sq(int)', stale_after => '1 hour');
SELECT cachier_wrap('sq', 3);
SELECT cachier_wrap('sq', 3);
UPDATE cachier.entries SET created_at = created_at - interval '61 minutes'
 WHERE key = (SELECT key FROM cachier_entries
               WHERE function = 'sq(int)'::regprocedure AND arguments = '(3)');
SELECT cachier_memory_reset() AS memory_reset \gset
SELECT cachier_wrap('sq', 3);
SELECT executions();

-- stale_after as a setting: the option wins while it is set (reset puts
-- the option back to "use the setting")
SELECT cachier_configure('sq(int)', reset => '{stale_after}');
SET cachier.stale_after = '1h';
SELECT stale_after FROM cachier_functions WHERE function = 'sq(int)'::regprocedure;
SELECT cachier_wrap('sq', 3);
RESET cachier.stale_after;

-- max_age: the effective shelf life is the smaller of stale_after and
-- max_age; 0 recomputes every time
SET cachier.max_age = 0;
SELECT cachier_wrap('sq', 3);
SET cachier.max_age = '1d';
SELECT cachier_wrap('sq', 3);
RESET cachier.max_age;
SELECT executions();

-- NULL results are not cached unless allow_null
CREATE FUNCTION maybe(x int) RETURNS int LANGUAGE plpgsql
AS $$ BEGIN PERFORM nextval('calls'); RETURN NULL; END $$;
SELECT cachier_wrap('maybe', 1) IS NULL AS is_null;
SELECT cachier_wrap('maybe', 1) IS NULL AS is_null;
SELECT cachier_configure('maybe(int)', allow_null => true);
SELECT cachier_wrap('maybe', 1) IS NULL AS is_null;
SELECT cachier_wrap('maybe', 1) IS NULL AS is_null;
SELECT executions();

-- entry_size_limit: larger values are returned but not stored
CREATE FUNCTION big(n int) RETURNS text LANGUAGE sql AS 'SELECT repeat(''x'', n)';
SELECT cachier_configure('big(int)', entry_size_limit => '1KB');
SELECT length(cachier_wrap('big', 1024)) AS stored_1024;
SELECT length(cachier_wrap('big', 1025)) AS not_stored_1025;
SET cachier.entry_size_limit = '2kB';
SELECT cachier_configure('big(int)', reset => ARRAY['entry_size_limit']);
SELECT length(cachier_wrap('big', 1025)) AS stored_1025;
RESET cachier.entry_size_limit;
SELECT arguments, size_bytes FROM cachier_entries
 WHERE function = 'big(int)'::regprocedure ORDER BY size_bytes;

-- per_role: the key includes current_user, for results that depend on it
CREATE FUNCTION whoami() RETURNS text LANGUAGE sql STABLE AS 'SELECT current_user::text';
CREATE ROLE cachier_alice;
CREATE ROLE cachier_bob;
GRANT cachier_alice, cachier_bob TO CURRENT_USER;
GRANT USAGE ON SCHEMA options_test TO cachier_alice, cachier_bob;
SELECT cachier_memoize('whoami()', per_role => true);
SET ROLE cachier_alice;
SELECT whoami_cached();
SET ROLE cachier_bob;
SELECT whoami_cached();
RESET ROLE;
SELECT role, arguments FROM cachier_entries
 WHERE function = 'whoami()'::regprocedure ORDER BY role::text;
-- without per_role the first caller's value is served to every role: the
-- owner configured it to be shared
SELECT cachier_memoize('whoami()', per_role => false);
SET ROLE cachier_alice;
SELECT whoami_cached();
SET ROLE cachier_bob;
SELECT whoami_cached();
RESET ROLE;
DROP FUNCTION whoami() CASCADE;

-- the effective options of every configured function
SELECT function, wrapper, stale_after, next_time, wait_timeout, allow_null,
       entry_size_limit, cleanup_stale, cleanup_interval, per_role
  FROM cachier_functions ORDER BY function::text;

-- max_stale_age bounds how old a value next_time may serve; unset, it is
-- twice stale_after, and without stale_after there is no bound
SELECT cachier_configure('sq(int)', stale_after => '1 hour', next_time => true);
SELECT stale_after, next_time, max_stale_age FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
SELECT cachier_configure('sq(int)', stale_after => '1 hour', next_time => true,
                         max_stale_age => '90 minutes');
SELECT stale_after, next_time, max_stale_age FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
SELECT cachier_configure('sq(int)', reset => '{all}');
SELECT stale_after, max_stale_age FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
-- like the other durations it cannot be negative (nothing is changed)
SELECT cachier_configure('sq(int)', stale_after => '1 day', max_stale_age => '-1 second');
SELECT stale_after FROM cachier_functions WHERE function = 'sq(int)'::regprocedure;

-- with next_time a stale value is served while a refresh runs, but never
-- one older than max_stale_age: then the call computes (the entries are
-- made older by hand, as if every refresh had failed; a shared memory
-- tier, when the server has one, does not see changes made by hand, so
-- its copies are forgotten after each, as README says)
SELECT cachier_configure('sq(int)', stale_after => '1 hour', next_time => true,
                         max_stale_age => '3 hours');
SELECT cachier_wrap('sq', 5);
UPDATE cachier.entries SET created_at = created_at - interval '2 hours'
 WHERE key = (SELECT key FROM cachier_entries
               WHERE function = 'sq(int)'::regprocedure AND arguments = '(5)');
SELECT cachier_memory_reset() AS memory_reset \gset
SELECT cachier_wrap('sq', 5) AS served_stale;
UPDATE cachier.entries SET created_at = created_at - interval '2 hours'
 WHERE key = (SELECT key FROM cachier_entries
               WHERE function = 'sq(int)'::regprocedure AND arguments = '(5)');
SELECT cachier_memory_reset() AS memory_reset \gset
SELECT executions() AS before;
SELECT cachier_wrap('sq', 5) AS recomputed;
SELECT executions() AS after;

-- next_time is stored; until the background worker exists a stale entry
-- is recomputed synchronously, and verbose output says so
SELECT cachier_configure('sq(int)', stale_after => '1 millisecond', next_time => true,
                         max_stale_age => '1 hour');
SELECT pg_sleep(0.01);
SELECT cachier_wrap('sq', 3);

-- changing one option never changes another: a call changes the options
-- it is given (and those it names in reset), nothing else
SELECT cachier_configure('sq(int)', reset => '{all}', stale_after => '1 hour',
                         allow_null => true, wait_timeout => '5 seconds');
SELECT cachier_configure('sq(int)', entry_size_limit => '10KB');
SELECT stale_after, allow_null, wait_timeout, entry_size_limit FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
-- memoize (which creates the wrapper) and memoize again keep them too
SELECT cachier_memoize('sq(int)');
SELECT cachier_memoize('sq(int)', next_time => true);
SELECT wrapper, stale_after, next_time, allow_null, wait_timeout, entry_size_limit
  FROM cachier_functions WHERE function = 'sq(int)'::regprocedure;
-- reset names the options that go back to their defaults; one given in the
-- same call takes the given value
SELECT cachier_configure('sq(int)', reset => '{allow_null, wait_timeout, stale_after}',
                         stale_after => '2 hours');
SELECT stale_after, next_time, allow_null, wait_timeout, entry_size_limit FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
-- 'all': every option
SELECT cachier_memoize('sq(int)', reset => '{ALL}');
SELECT stale_after, next_time, allow_null, wait_timeout, entry_size_limit FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
-- an unknown name is an error, and nothing changes
SELECT cachier_configure('sq(int)', stale_after => '1 day', reset => '{stale_afer}');
SELECT cachier_configure('sq(int)', reset => ARRAY[NULL]);
SELECT stale_after FROM cachier_functions WHERE function = 'sq(int)'::regprocedure;
-- (a call that changes nothing still records the function as configured)
SELECT cachier_unmemoize('sq(int)');
SELECT cachier_configure('sq(int)');
SELECT function, wrapper, stale_after FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;

-- the options of freshness and context keys: track_reads, depends_on,
-- on_change and key_settings; unset, they follow the settings
-- (cachier.track_reads, cachier.key_settings) and the defaults
CREATE TABLE orders (id int);
CREATE VIEW recent AS SELECT * FROM orders;
SELECT track_reads, depends_on, on_change FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
SET cachier.track_reads = off;
SELECT track_reads FROM cachier_functions WHERE function = 'sq(int)'::regprocedure;
RESET cachier.track_reads;
SELECT cachier_configure('sq(int)', track_reads => false, depends_on => '{orders, recent}',
                         on_change => 'REFRESH', key_settings => '{TimeZone, app.Tenant}');
SELECT track_reads, depends_on, on_change, key_settings FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
SELECT track_reads, depends_on, on_change, key_settings
  FROM cachier.effective_options('sq(int)');
-- an empty list is a list: no dependencies declared, no setting in the key
SELECT cachier_configure('sq(int)', depends_on => '{}', key_settings => '{}');
SELECT depends_on, key_settings FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
SELECT cachier_configure('sq(int)', reset => '{track_reads, depends_on, on_change, key_settings}');
SELECT track_reads, depends_on, on_change FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
-- bad values are errors that say what is accepted
SELECT cachier_configure('sq(int)', on_change => 'sometimes');
SELECT cachier_configure('sq(int)', depends_on => ARRAY[4000000000::oid::regclass]);
SELECT cachier_configure('sq(int)', depends_on => ARRAY['calls'::regclass]);
CREATE TEMP TABLE scratch (x int);
SELECT cachier_configure('sq(int)', depends_on => ARRAY['scratch'::regclass]);
SELECT cachier_configure('sq(int)', depends_on => ARRAY[NULL::regclass]);
SELECT cachier_configure('sq(int)', key_settings => '{"time zone"}');
SELECT cachier_configure('sq(int)', key_settings => '{app..tenant}');
SELECT cachier_configure('sq(int)', key_settings => '{1st}');
SELECT track_reads, depends_on, on_change FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
-- a dependency needs no privilege on the relation: it only invalidates
-- the owner's own function
CREATE ROLE cachier_carol;
CREATE FUNCTION carol_fn(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
ALTER FUNCTION carol_fn(int) OWNER TO cachier_carol;
GRANT USAGE ON SCHEMA options_test TO cachier_carol;
SET ROLE cachier_carol;
SELECT cachier_configure('carol_fn(int)', depends_on => '{orders}');
SELECT function, depends_on FROM cachier_functions;
RESET ROLE;
DROP FUNCTION carol_fn(int);

-- shared_cache (issue 13): whether the shared memory tier stands in front
-- of the table for this function.  Unset it is on, and the tier is used
-- when the server has one (cachier.shared_cache_size above 0); off, the
-- function's entries are served from the table only.
SELECT shared_cache FROM cachier_functions WHERE function = 'sq(int)'::regprocedure;
SELECT cachier_configure('sq(int)', shared_cache => false);
SELECT shared_cache FROM cachier_functions WHERE function = 'sq(int)'::regprocedure;
SELECT shared_cache FROM cachier.effective_options('sq(int)');
-- a call that gives other options keeps it, and cachier_memoize takes it
SELECT cachier_configure('sq(int)', stale_after => '1 hour');
SELECT stale_after, shared_cache FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
SELECT cachier_memoize('sq(int)', shared_cache => true);
SELECT wrapper, shared_cache FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;
SELECT cachier_memoize('sq(int)', shared_cache => false);
-- reset puts the option back to unset (NULL in cachier.functions): on
SELECT cachier_configure('sq(int)', reset => '{Shared_Cache}');
SELECT f.shared_cache AS stored, v.shared_cache AS effective
  FROM cachier.functions f, cachier_functions v
 WHERE f.fn_id = cachier.fn_id('sq(int)') AND v.function = 'sq(int)'::regprocedure;
SELECT cachier_configure('sq(int)', shared_cache => false);
SELECT cachier_configure('sq(int)', reset => '{all}');
SELECT stale_after, shared_cache FROM cachier_functions
 WHERE function = 'sq(int)'::regprocedure;

SET client_min_messages = warning;
DROP SCHEMA options_test CASCADE;
DROP EXTENSION cachier;
DROP ROLE cachier_alice;
DROP ROLE cachier_bob;
DROP ROLE cachier_carol;
