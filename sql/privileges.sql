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
-- a refusal caught in a subtransaction leaves the caller's role and
-- search_path as they were (the pin is undone by the abort)
DO $$
BEGIN
    PERFORM cachier_memoize('secret(int)');
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'refused; still % with search_path %',
        current_user, current_setting('search_path');
END
$$;
RESET ROLE;

-- a role without EXECUTE on the function cannot read its cached results,
-- neither through the wrapper nor cachier_wrap nor cachier_precache
SET ROLE cachier_other;
SELECT secret_cached(1);
SELECT cachier_wrap('secret', 1);
SELECT cachier_precache('secret', 'poison'::text, 1);
-- nor the storage; the views show it nothing (it owns no function)
SELECT * FROM cachier.entries;
SELECT * FROM cachier.functions;
SELECT * FROM cachier_entries;
SELECT * FROM cachier_functions;
INSERT INTO cachier.entries VALUES (1, 0, 0, now(), 0, '\x', '\x');
-- nor call the helpers behind them (the option helpers are gone in 0.4:
-- cachier_memoize and friends are C functions that need none)
SELECT cachier.set_options('secret(int)', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT cachier.forget('secret(int)');
SELECT cachier.format_args('secret(int)', '\x');
-- nor pass a hand-made call to cachier.call_*
SELECT cachier.call_volatile_unsafe('secret(int)'::regprocedure, NULL::text, 1);
RESET ROLE;

-- the wrapper belongs to the role that memoized, not to the storage owner
SELECT proowner::regrole AS wrapper_owner FROM pg_proc
 WHERE oid = 'secret_cached(int)'::regprocedure;

-- a role that owns neither cannot unmemoize or configure through the
-- wrapper, nor learn from the error that it is one
SET ROLE cachier_other;
SELECT cachier_unmemoize('secret_cached(int)');
SELECT cachier_configure('secret_cached(int)');
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

-- no function in schema cachier is executable by PUBLIC but the wrapper
-- entry points cachier.call_* and the set-returning functions behind the
-- public views (cachier_entries, cachier_functions, cachier_stats,
-- cachier_stats_info, cachier_dependencies), which show each role only
-- what it may see
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p
 WHERE p.pronamespace = 'cachier'::regnamespace
   AND p.proname NOT LIKE 'call\_%'
   AND has_function_privilege('cachier_other', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;

/*
 * Superuser through search_path (issue 8, route 1).  An ordinary role that
 * can create objects in a schema of its search_path shadows the = of
 * regprocedure (and of bigint, and now()) with code that makes it
 * superuser if it ever runs as anybody else.  cachier must never parse its
 * privileged SQL under the caller's search_path.
 */
CREATE ROLE cachier_attacker;
CREATE SCHEMA mal AUTHORIZATION cachier_attacker;
GRANT CREATE ON SCHEMA public TO cachier_attacker;
SET ROLE cachier_attacker;
CREATE TABLE mal.log (who text);
CREATE FUNCTION mal.pwn() RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF current_user <> 'cachier_attacker' THEN
        INSERT INTO mal.log VALUES (current_user);
        ALTER ROLE cachier_attacker SUPERUSER;
    END IF;
END
$$;
CREATE FUNCTION mal.eq(a regprocedure, b regprocedure) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog
AS $$ BEGIN PERFORM mal.pwn(); RETURN a::oid = b::oid; END $$;
CREATE FUNCTION mal.eq8(a bigint, b bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog
AS $$ BEGIN PERFORM mal.pwn(); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE FUNCTION mal.now() RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog
AS $$ BEGIN PERFORM mal.pwn(); RETURN pg_catalog.now(); END $$;
CREATE OPERATOR mal.= (LEFTARG = regprocedure, RIGHTARG = regprocedure, FUNCTION = mal.eq);
CREATE OPERATOR mal.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = mal.eq8);
CREATE FUNCTION mal.f(x int) RETURNS int LANGUAGE sql AS 'SELECT x * 2';
SELECT cachier_wrap('mal.f', 1);

-- route: cachier_clear with the planted schema first in search_path (the
-- extension's functions named by schema, as the attacker would)
SET search_path = mal, pg_catalog;
SELECT public.cachier_clear('mal.f');
-- route: the option helpers, called directly (no longer exist)
SELECT cachier.forget('mal.f(int)');
SELECT cachier.set_options('mal.f(int)', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
-- the option functions work under that search_path and run none of it
SELECT public.cachier_configure('mal.f(int)', stale_after => '1 day');
SELECT public.cachier_memoize('mal.f(int)');
SELECT mal.f_cached(2);
SELECT public.cachier_clear('mal.f', 2);
SELECT public.cachier_unmemoize('mal.f(int)');
RESET search_path;
RESET ROLE;
SELECT rolsuper AS attacker_is_superuser FROM pg_roles WHERE rolname = 'cachier_attacker';
SELECT count(*) AS planted_code_ran FROM mal.log;

-- route: an operator planted in public fires when a superuser later
-- works with the cache (its search_path is the default "$user", public)
ALTER ROLE cachier_attacker NOSUPERUSER;	-- (had the route above worked)
TRUNCATE mal.log;
SET ROLE cachier_attacker;
CREATE OPERATOR public.= (LEFTARG = regprocedure, RIGHTARG = regprocedure, FUNCTION = mal.eq);
RESET ROLE;
SET search_path = "$user", public;
CREATE FUNCTION privileges_test.sf(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1';
SELECT cachier_wrap('privileges_test.sf', 1);
SELECT cachier_clear('privileges_test.sf');
SELECT cachier_configure('privileges_test.sf(int)', stale_after => '1 hour');
SELECT cachier_memoize('privileges_test.sf(int)');
SELECT privileges_test.sf_cached(1);
SELECT cachier_clear('privileges_test.sf', 1);
SELECT cachier_unmemoize('privileges_test.sf(int)');
DROP FUNCTION privileges_test.sf(int);
DROP OPERATOR public.= (regprocedure, regprocedure);
SET search_path = privileges_test, public;
SELECT rolsuper AS attacker_is_superuser FROM pg_roles WHERE rolname = 'cachier_attacker';
SELECT count(*) AS planted_code_ran FROM mal.log;

SET client_min_messages = warning;
DROP SCHEMA mal CASCADE;
REVOKE CREATE ON SCHEMA public FROM cachier_attacker;
DROP ROLE cachier_attacker;
DROP SCHEMA privileges_test CASCADE;
DROP EXTENSION cachier;
REVOKE CREATE ON SCHEMA public FROM cachier_owner;
DROP ROLE cachier_owner;
DROP ROLE cachier_user;
DROP ROLE cachier_other;
