-- Context keys: a cached call returns what a direct call returns to this
-- caller, in this session.  Each part of the context (collation, session
-- settings, search path, role, row-level security) is checked by calling
-- the cached and the direct function side by side under two contexts; the
-- verbose DETAIL and cachier.entry_context() show what an entry is keyed
-- by.
\set SHOW_CONTEXT never
CREATE EXTENSION cachier;
CREATE SCHEMA context_test;
GRANT USAGE ON SCHEMA context_test TO PUBLIC;
SET search_path = context_test, public;
-- the settings the key holds by default, set here so that the output does
-- not depend on the test server's locale
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, MDY';
SET IntervalStyle = postgres;
SET lc_monetary = 'C';
SET lc_numeric = 'C';
SET lc_time = 'C';
SET default_text_search_config = 'pg_catalog.simple';

-- what every entry of a function is keyed by
CREATE FUNCTION keyed_by(fn regprocedure) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT cachier.entry_context(fn, args) FROM cachier.entries
     WHERE fn_id = cachier.fn_id(fn) ORDER BY 1 $$;

-- ---------------------------------------------------------------- collation
-- The wrapper keeps its call's collation: 'a' < 'B' is false under "C"
-- (byte order) and true under ICU's root collation; each is its own entry,
-- keyed by what the collation is (not its OID), and IMMUTABLE functions
-- are keyed by collation too (it is an input, not a setting).
CREATE FUNCTION lt(a text, b text) RETURNS boolean LANGUAGE sql IMMUTABLE
    AS $$ SELECT a < b $$;
SELECT cachier_memoize('lt(text,text)');
SELECT lt_cached('a' COLLATE "C", 'B') AS c_cached, lt('a' COLLATE "C", 'B') AS c_direct;
SELECT lt_cached('a' COLLATE "und-x-icu", 'B') AS icu_cached,
       lt('a' COLLATE "und-x-icu", 'B') AS icu_direct;
-- again, both from the cache, each under its own collation
SET cachier."verbose" = on;
SELECT lt_cached('a' COLLATE "C", 'B') AS c_hit;
SELECT lt_cached('a' COLLATE "und-x-icu", 'B') AS icu_hit;
RESET cachier."verbose";
-- a column's collation counts as in a direct call
CREATE TABLE words (w text COLLATE "C");
INSERT INTO words VALUES ('a');
SELECT lt_cached(w, 'B') AS column_cached, lt(w, 'B') AS column_direct FROM words;
SELECT lt_cached(w, 'B' COLLATE "und-x-icu") AS explicit_cached,
       lt(w, 'B' COLLATE "und-x-icu") AS explicit_direct FROM words;
-- cachier_wrap passes its own call's collation
SELECT cachier_wrap('lt', 'a'::text COLLATE "und-x-icu", 'B'::text) AS wrap_icu,
       cachier_wrap('lt', 'a'::text COLLATE "C", 'B'::text) AS wrap_c;
SELECT * FROM keyed_by('lt(text,text)');

-- ---------------------------------------------------------------- settings
-- A STABLE function formatting a timestamptz answers each TimeZone and
-- DateStyle with its own entry.
CREATE FUNCTION fmt(t timestamptz) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT t::text $$;
SELECT cachier_memoize('fmt(timestamptz)', per_role => false);
SET TimeZone = 'UTC';
SELECT fmt_cached('2024-01-02 12:00+00') AS utc_cached, fmt('2024-01-02 12:00+00') AS utc_direct;
SET TimeZone = 'Asia/Tokyo';
SELECT fmt_cached('2024-01-02 12:00+00') AS tokyo_cached, fmt('2024-01-02 12:00+00') AS tokyo_direct;
SET DateStyle = 'SQL, DMY';
SELECT fmt_cached('2024-01-02 12:00+00') AS sql_dmy_cached, fmt('2024-01-02 12:00+00') AS sql_dmy_direct;
SET DateStyle = 'German';
SELECT fmt_cached('2024-01-02 12:00+00') AS german_cached, fmt('2024-01-02 12:00+00') AS german_direct;
SET cachier."verbose" = on;
SET TimeZone = 'UTC';
RESET DateStyle;
SELECT fmt_cached('2024-01-02 12:00+00') AS utc_hit;
RESET cachier."verbose";
SELECT count(*) AS fmt_entries FROM cachier.entries
 WHERE fn_id = cachier.fn_id('fmt(timestamptz)');

-- IMMUTABLE functions are not keyed by settings: their contract says the
-- settings do not change their results
CREATE FUNCTION plus_one(i int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT i + 1';
SELECT cachier_memoize('plus_one(int)');
SELECT plus_one_cached(1);
SET TimeZone = 'Asia/Tokyo';
SET cachier."verbose" = on;
SELECT plus_one_cached(1) AS immutable_hit;
RESET cachier."verbose";
SET TimeZone = 'UTC';

-- A setting the function pins with its own SET clause is left out of the
-- key: every TimeZone shares one entry, which is right for all of them.
CREATE FUNCTION fmt_pinned(t timestamptz) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT t::text $$;
ALTER FUNCTION fmt_pinned(timestamptz) SET TimeZone = 'America/New_York';
SELECT cachier_memoize('fmt_pinned(timestamptz)', per_role => false);
SELECT fmt_pinned_cached('2024-01-02 12:00+00') AS pinned_utc,
       fmt_pinned('2024-01-02 12:00+00') AS pinned_utc_direct;
SET TimeZone = 'Asia/Tokyo';
SET cachier."verbose" = on;
SELECT fmt_pinned_cached('2024-01-02 12:00+00') AS pinned_tokyo_hit,
       fmt_pinned('2024-01-02 12:00+00') AS pinned_tokyo_direct;
RESET cachier."verbose";
SET TimeZone = 'UTC';
SELECT * FROM keyed_by('fmt_pinned(timestamptz)');

-- xmloption: a value cached under CONTENT is not served under DOCUMENT,
-- where the direct call fails
CREATE FUNCTION to_xml(t text) RETURNS xml LANGUAGE sql STABLE AS $$ SELECT t::xml $$;
SELECT cachier_memoize('to_xml(text)', per_role => false);
SET xmloption = content;
SELECT to_xml_cached('a<b/>') AS content_cached, to_xml('a<b/>') AS content_direct;
SET xmloption = document;
SELECT to_xml_cached('a<b/>') AS document_cached;
SELECT to_xml('a<b/>') AS document_direct;
RESET xmloption;

-- the other default settings: extra_float_digits, bytea_output, lc_numeric
-- (through to_char), IntervalStyle
CREATE FUNCTION show_all(f float8, b bytea, i interval) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT f::text || ' ' || b::text || ' ' || i::text || ' ' || to_char(1234.5, '9G999D9') $$;
SELECT cachier_memoize('show_all(float8,bytea,interval)', per_role => false);
SELECT show_all_cached(0.1, '\x41', '1 day 2 hours') = show_all(0.1, '\x41', '1 day 2 hours') AS same_default;
SET extra_float_digits = 0;
SET bytea_output = escape;
SET IntervalStyle = iso_8601;
SELECT show_all_cached(0.1, '\x41', '1 day 2 hours') AS changed_cached,
       show_all(0.1, '\x41', '1 day 2 hours') AS changed_direct;
RESET extra_float_digits;
RESET bytea_output;
RESET IntervalStyle;
SELECT show_all_cached(0.1, '\x41', '1 day 2 hours') = show_all(0.1, '\x41', '1 day 2 hours') AS same_again;

-- ---------------------------------------------------------------- search_path
-- Two schemas with a table of the same name: each search path gets what
-- its unqualified name reaches.
CREATE SCHEMA context_s1;
CREATE SCHEMA context_s2;
CREATE TABLE context_s1.t (x int);
CREATE TABLE context_s2.t (x int);
INSERT INTO context_s1.t VALUES (1);
INSERT INTO context_s2.t VALUES (2);
SET check_function_bodies = off;
CREATE FUNCTION getx() RETURNS int LANGUAGE sql STABLE AS 'SELECT x FROM t';
RESET check_function_bodies;
SELECT cachier_memoize('getx()', per_role => false);
SET search_path = context_s1, context_test, public;
SELECT getx_cached() AS s1_cached, getx() AS s1_direct;
SET search_path = context_s2, context_test, public;
SELECT getx_cached() AS s2_cached, getx() AS s2_direct;
SET search_path = context_s1, context_test, public;
SELECT getx_cached() AS s1_again;
SET search_path = context_test, public;
SELECT * FROM keyed_by('getx()');

-- ---------------------------------------------------------------- roles
-- A non-IMMUTABLE SECURITY INVOKER function is keyed by role unless its
-- owner says per_role => false; IMMUTABLE and SECURITY DEFINER ones are
-- shared (the view shows the effective per_role).
CREATE TABLE orders (amount int);
INSERT INTO orders VALUES (10), (20);
CREATE FUNCTION total() RETURNS bigint LANGUAGE sql STABLE
    AS 'SELECT sum(amount) FROM context_test.orders';
CREATE FUNCTION total_definer() RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER
    AS 'SELECT sum(amount) FROM context_test.orders';
SELECT cachier_memoize('total()');
SELECT cachier_memoize('total_definer()');
SELECT function, per_role FROM cachier_functions
 WHERE function::text IN ('total()', 'total_definer()', 'lt(text,text)', 'fmt(timestamptz)')
 ORDER BY 1::text;
CREATE ROLE context_reader;
CREATE ROLE context_nobody;
GRANT SELECT ON orders TO context_reader;
GRANT EXECUTE ON FUNCTION total_definer() TO context_nobody;
SELECT total_cached() AS owner_total;
-- a role with SELECT gets its own entry; one without gets the error a
-- direct call gives, never the owner's cached value
SET ROLE context_reader;
SELECT total_cached() AS reader_cached, total() AS reader_direct;
SET ROLE context_nobody;
SELECT total_cached() AS nobody_cached;
SELECT total() AS nobody_direct;
-- a SECURITY DEFINER function computes with its owner's rights: shared
SELECT total_definer_cached() AS nobody_definer;
RESET ROLE;
SELECT * FROM keyed_by('total()');

-- ---------------------------------------------------------------- row-level security
-- By role: each role sees its own rows, cached or not.
CREATE TABLE notes (owner name, body text);
INSERT INTO notes VALUES ('context_reader', 'reader''s note'), ('context_nobody', 'nobody''s note');
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_owner ON notes USING (owner = current_user);
GRANT SELECT ON notes TO context_reader, context_nobody;
CREATE FUNCTION my_notes() RETURNS text LANGUAGE sql STABLE
    AS 'SELECT string_agg(body, '','') FROM context_test.notes';
SELECT cachier_memoize('my_notes()');
SET ROLE context_reader;
SELECT my_notes_cached() AS reader_cached, my_notes() AS reader_direct;
SET ROLE context_nobody;
SELECT my_notes_cached() AS nobody_cached, my_notes() AS nobody_direct;
RESET ROLE;

-- By a session setting, through one login role: policies on
-- current_setting('app.tenant').  The key holds the setting once it is
-- listed in cachier.key_settings (a custom setting may be listed before
-- any session defined it).
CREATE TABLE tenant_rows (tenant text, v int);
INSERT INTO tenant_rows VALUES ('t1', 1), ('t1', 2), ('t2', 30);
ALTER TABLE tenant_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_tenant ON tenant_rows USING (tenant = current_setting('app.tenant', true));
GRANT SELECT ON tenant_rows TO context_reader;
CREATE FUNCTION tenant_sum() RETURNS bigint LANGUAGE sql STABLE
    AS 'SELECT sum(v) FROM context_test.tenant_rows';
SELECT cachier_memoize('tenant_sum()');
SET ROLE context_reader;
SET cachier.key_settings = 'TimeZone, DateStyle, search_path, app.tenant';
SELECT tenant_sum_cached() AS no_tenant_cached, tenant_sum() AS no_tenant_direct;
SET app.tenant = 't1';
SELECT tenant_sum_cached() AS t1_cached, tenant_sum() AS t1_direct;
SET app.tenant = 't2';
SELECT tenant_sum_cached() AS t2_cached, tenant_sum() AS t2_direct;
SET app.tenant = 't1';
SET cachier."verbose" = on;
SELECT tenant_sum_cached() AS t1_hit;
RESET cachier."verbose";
RESET app.tenant;
RESET cachier.key_settings;
RESET ROLE;
SELECT * FROM keyed_by('tenant_sum()');

-- ---------------------------------------------------------------- cachier.key_settings
SET cachier.key_settings = 'TimeZone, = x';
SET cachier.key_settings = '';
SET cachier."verbose" = on;
SELECT fmt_cached('2024-01-02 12:00+00') AS no_settings_keyed;
RESET cachier."verbose";
RESET cachier.key_settings;

-- cleanup
SET client_min_messages = warning;
DROP SCHEMA context_test, context_s1, context_s2 CASCADE;
DROP ROLE context_reader;
DROP ROLE context_nobody;
DROP EXTENSION cachier CASCADE;
