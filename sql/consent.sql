-- Consent and limits: entries are shared between roles only for functions
-- whose owner configured caching; otherwise each role has its own.  Only
-- the owner sets values other roles are served.  A superuser bounds what
-- any role can store.
\set SHOW_CONTEXT never
CREATE EXTENSION cachier;
CREATE SCHEMA consent_test;
GRANT USAGE ON SCHEMA consent_test TO PUBLIC;
SET search_path = consent_test, public;
CREATE ROLE consent_owner;
CREATE ROLE consent_a;
CREATE ROLE consent_b;
GRANT CREATE ON SCHEMA consent_test TO consent_owner;

-- a function whose result depends on the caller
SET ROLE consent_owner;
CREATE FUNCTION who(x int) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT current_user || ' ' || x $$;
CREATE FUNCTION shared_who(x int) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT current_user || ' ' || x $$;
-- per_role => false: the owner says its results may be shared (its STABLE
-- SECURITY INVOKER kind is otherwise keyed by role)
SELECT cachier_memoize('shared_who(int)', per_role => false);
RESET ROLE;

-- not configured by its owner: cachier_wrap keeps each role's entries to
-- that role, so every role gets what a direct call gives it
SET ROLE consent_a;
SELECT cachier_wrap('who', 1) AS a_first, who(1) AS a_direct;
SET ROLE consent_b;
SELECT cachier_wrap('who', 1) AS b_first, who(1) AS b_direct;
SET ROLE consent_a;
SELECT cachier_wrap('who', 1) AS a_again;
RESET ROLE;
SELECT role_id::regrole AS role, count(*) FROM cachier.entries
 WHERE fn_id = cachier.fn_id('who(int)') GROUP BY 1 ORDER BY 1;

-- configured by its owner (memoized, per_role => false): one entry, shared
-- by every role
SET ROLE consent_a;
SELECT shared_who_cached(1);
SET ROLE consent_b;
SELECT shared_who_cached(1);
RESET ROLE;
SELECT count(*) AS shared_entries FROM cachier.entries
 WHERE fn_id = cachier.fn_id('shared_who(int)');

-- precache: another role may not set a shared value ...
SET ROLE consent_a;
SELECT cachier_precache('shared_who', 'poison'::text, 2);
-- ... but may set its own entry of an unconfigured function, which
-- nobody else is served
SELECT cachier_precache('who', 'mine'::text, 7);
SELECT cachier_wrap('who', 7) AS a_sees_own;
SET ROLE consent_b;
SELECT cachier_wrap('who', 7) AS b_unaffected;
-- the owner sets shared values
SET ROLE consent_owner;
SELECT cachier_precache('shared_who', 'from the owner'::text, 2);
SET ROLE consent_b;
SELECT shared_who_cached(2);
RESET ROLE;

-- cachier.overwrite_cache cannot replace a shared value: only the owner's
-- setting counts; anyone may overwrite their own per-role entries
SET ROLE consent_a;
SET cachier.overwrite_cache = on;
SET cachier."verbose" = on;
SELECT shared_who_cached(2) AS not_overwritten;
SELECT cachier_wrap('who', 7) AS own_overwritten;
RESET cachier."verbose";
RESET cachier.overwrite_cache;
RESET ROLE;

-- a call with a collation other than the default is keyed by it (see
-- context.sql), so it can never be served a value computed under another
SET cachier."verbose" = on;
SELECT cachier_wrap('lower', 'ABC'::text COLLATE "C") AS keyed_by_collation;
RESET cachier."verbose";

-- a shared value is keyed by the schemas the caller's search path resolves
-- to (unless the function pins its own): a role that shadows a table
-- name, or plants an operator, in its own path gets what a direct call
-- gives it and cannot change what others are served
SET ROLE consent_owner;
CREATE TABLE prices (id int, p int);
INSERT INTO prices VALUES (1, 10);
GRANT SELECT ON prices TO PUBLIC;
CREATE FUNCTION price(i int) RETURNS int LANGUAGE sql STABLE
    AS 'SELECT p FROM prices WHERE id = i';
SELECT cachier_memoize('price(int)');
RESET ROLE;
CREATE SCHEMA consent_mal AUTHORIZATION consent_a;
SET ROLE consent_a;
CREATE TABLE consent_mal.prices (id int, p int);
INSERT INTO consent_mal.prices VALUES (1, 999);
SET search_path = consent_mal, consent_test, public;
SELECT consent_test.price_cached(1) AS attacker_cached, consent_test.price(1) AS attacker_direct;
RESET ROLE;
SET search_path = consent_test, public;
SET ROLE consent_b;
SELECT price_cached(1) AS victim_cached, price(1) AS victim_direct;
RESET ROLE;
-- a session's temporary schema stands for that session in the key: what
-- its temporary tables make a function return is its own entry, never
-- another session's
CREATE TEMP TABLE prices (id int, p int);
INSERT INTO prices VALUES (1, -1);
SELECT price_cached(1) AS temp_cached, price(1) AS temp_direct;
DROP TABLE prices;

-- a temporary function's entries would outlive it with nobody to clear
-- them: its results are not stored
CREATE FUNCTION pg_temp.tmpf(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1';
SELECT cachier_wrap('pg_temp.tmpf', 1) AS temporary;
SELECT count(*) AS stored FROM cachier.entries
 WHERE fn_id = cachier.fn_id('pg_temp.tmpf(int)');

-- a SECURITY DEFINER function's entries belong to its owner, by OID: a
-- role renamed to the old owner's name does not inherit them
CREATE ROLE consent_d;
CREATE ROLE consent_e;
CREATE FUNCTION definer() RETURNS text LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT current_user::text $$;
ALTER FUNCTION definer() OWNER TO consent_d;
SELECT cachier_memoize('definer()');
SELECT definer_cached();
ALTER ROLE consent_d RENAME TO consent_d_old;
ALTER ROLE consent_e RENAME TO consent_d;
ALTER FUNCTION definer() OWNER TO consent_d;
SELECT count(*) AS old_owner_entries FROM cachier.entries
 WHERE fn_id = cachier.fn_id('definer()');
SELECT definer_cached() AS computed_by_the_new_owner;
DROP FUNCTION definer() CASCADE;
DROP ROLE consent_d_old;
DROP ROLE consent_d;

-- per-role keys hold the role's OID: a new role with a dropped role's
-- name does not get its entries
CREATE ROLE consent_c;
SET ROLE consent_c;
SELECT cachier_wrap('who', 3) AS c_first;
RESET ROLE;
DROP ROLE consent_c;
CREATE ROLE consent_c;
SET ROLE consent_c;
SET cachier."verbose" = on;
SELECT cachier_wrap('who', 3) AS new_c;
RESET cachier."verbose";
RESET ROLE;
DROP ROLE consent_c;

-- limits that only a superuser can raise
SET ROLE consent_a;
SET cachier.max_entry_size = '1GB';
SET cachier.max_role_bytes = -1;
RESET ROLE;
-- cachier.max_entry_size caps every entry, whatever entry_size_limit says
SET cachier.max_entry_size = '1kB';
SET ROLE consent_a;
SET cachier.entry_size_limit = -1;
SET cachier."verbose" = on;
SELECT length(cachier_wrap('repeat', 'x'::text, 2000)) AS not_stored;
SELECT length(cachier_wrap('repeat', 'x'::text, 1000)) AS stored;
RESET cachier."verbose";
RESET ROLE;
RESET cachier.max_entry_size;
-- cachier.max_role_bytes bounds the total a role's calls store
ALTER ROLE consent_b SET cachier.max_role_bytes = '8kB';
SET cachier.max_role_bytes = '8kB';
SET ROLE consent_b;
SELECT count(*) AS returned
  FROM generate_series(1, 20) i
 WHERE length(cachier_wrap('repeat', 'y'::text, 1000 + i)) = 1000 + i;
RESET ROLE;
-- (each entry counts its arguments, its value and 64 bytes of overhead;
-- the role's earlier entries of who() count too)
SELECT count(*) FILTER (WHERE fn_id = cachier.fn_id('repeat(text,integer)'))
           BETWEEN 1 AND 7 AS some_stored,
       sum(octet_length(value) + octet_length(args) + 64) <= 8192 AS within_limit
  FROM cachier.entries WHERE role_id = 'consent_b'::regrole;
-- a clear makes room again
SELECT cachier_clear('repeat') > 0 AS cleared;
SET ROLE consent_b;
SET cachier."verbose" = on;
SELECT length(cachier_wrap('repeat', 'z'::text, 100)) AS stored_again;
RESET cachier."verbose";
RESET ROLE;
RESET cachier.max_role_bytes;
ALTER ROLE consent_b RESET cachier.max_role_bytes;

SET client_min_messages = warning;
DROP SCHEMA consent_mal CASCADE;
DROP SCHEMA consent_test CASCADE;
DROP EXTENSION cachier;
DROP ROLE consent_owner;
DROP ROLE consent_a;
DROP ROLE consent_b;
