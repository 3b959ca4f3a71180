-- Who sees what in the views: like pg_stat_statements, the views are
-- readable by every role, and each role sees the options, statistics and
-- entries of the functions it owns plus the entries its own calls stored;
-- members of pg_read_all_stats see everything.  A broken row (its function
-- dropped, an argument that no longer decodes) never breaks the view.
\set SHOW_CONTEXT never
CREATE EXTENSION cachier;
CREATE SCHEMA vis;
GRANT USAGE ON SCHEMA vis TO PUBLIC;
SET search_path = vis, public;
CREATE ROLE vis_alice;
CREATE ROLE vis_bob;
CREATE ROLE vis_monitor IN ROLE pg_read_all_stats;
GRANT CREATE ON SCHEMA vis TO vis_alice, vis_bob;
SELECT cachier_stats_reset();

-- alice and bob each memoize a function of their own and call both
SET ROLE vis_alice;
CREATE FUNCTION alice_f(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1000';
SELECT cachier_memoize('alice_f(int)');
SET ROLE vis_bob;
CREATE FUNCTION bob_f(x text) RETURNS text LANGUAGE sql AS $$ SELECT 'bob ' || x $$;
SELECT cachier_memoize('bob_f(text)');
SELECT bob_f_cached('secret'), alice_f_cached(7);
SET ROLE vis_alice;
SELECT alice_f_cached(1), alice_f_cached(1), bob_f_cached('hello');
RESET ROLE;
-- what is stored: four entries, two per function
SELECT function, arguments, role FROM cachier_entries ORDER BY function::text, arguments;

-- alice sees her function's entries, bob's call included (she owns the
-- function, so she may read its arguments), and her own call of bob_f;
-- never bob's argument 'secret'.  She sees the values of the entries her
-- own calls stored, not the value bob's call stored: a function's owner
-- might not be allowed to compute what another role's call read
SET ROLE vis_alice;
SELECT function, arguments, role, size_bytes, stale, processing, completed, value
  FROM cachier_entries ORDER BY function::text, arguments;
SELECT function, wrapper, stale_after FROM cachier_functions ORDER BY function::text;
SELECT function, hits, misses, computations, entries
  FROM cachier_stats ORDER BY function::text;

-- bob likewise: his function's entries and his own call of alice_f
SET ROLE vis_bob;
SELECT function, arguments, role FROM cachier_entries ORDER BY function::text, arguments;
SELECT function, wrapper FROM cachier_functions ORDER BY function::text;
SELECT function, hits, misses, computations, entries
  FROM cachier_stats ORDER BY function::text;

-- a role with no function and no call of its own sees no row at all
RESET ROLE;
CREATE ROLE vis_nobody;
SET ROLE vis_nobody;
SELECT count(*) AS entries FROM cachier_entries;
SELECT count(*) AS functions FROM cachier_functions;
SELECT count(*) AS stats FROM cachier_stats;
SELECT evictions FROM cachier_stats_info;
-- and the storage itself stays closed
SELECT * FROM cachier.entries;

-- a member of pg_read_all_stats sees every row, with the arguments, and
-- no value: values are data, not statistics
SET ROLE vis_monitor;
SELECT function, arguments, role, value FROM cachier_entries ORDER BY function::text, arguments;
SELECT function FROM cachier_functions ORDER BY function::text;
SELECT function, hits, misses FROM cachier_stats
 WHERE function::text IN ('alice_f(integer)', 'bob_f(text)') ORDER BY function::text;
RESET ROLE;

-- a member of the owning role sees what the owner sees
GRANT vis_alice TO vis_nobody;
SET ROLE vis_nobody;
SELECT function, arguments, role FROM cachier_entries ORDER BY function::text, arguments;
RESET ROLE;
REVOKE vis_alice FROM vis_nobody;

-- an argument that cannot be decoded any more (its enum label renamed)
-- shows '?', and the other rows are still there
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE FUNCTION greet(m mood) RETURNS text LANGUAGE sql AS $$ SELECT 'feeling ' || m $$;
SELECT cachier_memoize('greet(mood)');
SELECT greet_cached('happy'), greet_cached('sad');
ALTER TYPE mood RENAME VALUE 'happy' TO 'glad';
SELECT function, arguments FROM cachier_entries
 WHERE function = 'greet(mood)'::regprocedure ORDER BY 2;
SELECT count(*) AS all_entries FROM cachier_entries;

-- an orphan entry (its function is gone without the drop trigger having
-- removed it) shows no function, '?' arguments and no staleness to the roles that see
-- it -- the role whose call stored it and pg_read_all_stats -- and
-- nobody's view fails
CREATE FUNCTION doomed(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('doomed(int)');
GRANT EXECUTE ON FUNCTION doomed(int) TO vis_bob;
SET ROLE vis_bob;
SELECT doomed_cached(5);
RESET ROLE;
CREATE TEMP TABLE orphan AS
  SELECT * FROM cachier.entries WHERE fn_id = cachier.fn_id('doomed(int)');
SELECT cachier_unmemoize('doomed(int)');
DROP FUNCTION doomed(int);
INSERT INTO cachier.entries SELECT * FROM orphan;
CREATE FUNCTION orphans() RETURNS TABLE (arguments text, stale boolean, role regrole)
    LANGUAGE sql AS $$
    SELECT arguments, stale, role FROM cachier_entries
     WHERE function IS NULL $$;
SET ROLE vis_bob;
SELECT * FROM orphans();
SELECT count(*) AS bob_entries FROM cachier_entries;
SET ROLE vis_monitor;
SELECT * FROM orphans();
SET ROLE vis_alice;
SELECT * FROM orphans();
SELECT count(*) AS alice_entries FROM cachier_entries;
RESET ROLE;
-- orphans have no statistics row
SELECT count(*) AS orphan_stats FROM cachier_stats
 WHERE function::oid NOT IN (SELECT oid FROM pg_proc);

SET client_min_messages = warning;
DROP SCHEMA vis CASCADE;
DROP EXTENSION cachier CASCADE;
DROP OWNED BY vis_alice, vis_bob;
DROP ROLE vis_alice, vis_bob, vis_monitor, vis_nobody;
