-- Every argument and result type works, and equal values give one entry
CREATE EXTENSION cachier;
CREATE SCHEMA types_test;
SET search_path = types_test, public;
CREATE SEQUENCE calls;
CREATE FUNCTION executions() RETURNS bigint LANGUAGE sql
AS $$ SELECT last_value - 1 + is_called::int FROM calls $$;

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE point3 AS (x float8, y float8, z float8);
CREATE DOMAIN posint AS int CHECK (VALUE > 0);

-- echo(x) returns its argument; the first call per value computes
CREATE FUNCTION echo_any(x anyelement) RETURNS anyelement LANGUAGE sql AS 'SELECT x';
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['int[]', 'jsonb', 'point3', 'int4range', 'mood',
                             'posint', 'text', 'numeric', 'timestamptz', 'bytea',
                             'uuid', 'inet', 'interval', 'bool', 'float8', 'date',
                             'text[]', 'tsvector', 'xml', 'json']
    LOOP
        EXECUTE format('CREATE FUNCTION echo(x %s) RETURNS %s LANGUAGE plpgsql AS '
                       '$f$ BEGIN PERFORM nextval(''calls''); RETURN x; END $f$', t, t);
        EXECUTE format('SELECT cachier_memoize(%L::regprocedure)', format('echo(%s)', t));
    END LOOP;
END
$$;

CREATE TABLE samples (v text, t text);
INSERT INTO samples VALUES
  ('{1,2,NULL,4}', 'int[]'), ('{"b": [1, 2.5], "a": null}', 'jsonb'),
  ('(1.5,-2,3e10)', 'point3'), ('[3,7)', 'int4range'), ('happy', 'mood'),
  ('42', 'posint'), ('grüße, 世界', 'text'), ('-12345678901234567890.000001', 'numeric'),
  ('2024-02-29 12:34:56.789+00', 'timestamptz'), ('\x00ff10', 'bytea'),
  ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'uuid'), ('192.168.0.1/24', 'inet'),
  ('1 year 2 mons 3 days 04:05:06', 'interval'), ('true', 'bool'), ('-0.5e-300', 'float8'),
  ('infinity', 'date'), ('{"a b",NULL,""}', 'text[]'), ('fat:1 cat:2', 'tsvector'),
  ('<a x="1">t</a>', 'xml'), ('{"k":  [1, 2]}', 'json');

-- each value round-trips exactly: the cached result equals the input,
-- first computed, then from the cache
CREATE FUNCTION roundtrip(v text, t text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    direct text;
    first text;
    second text;
BEGIN
    EXECUTE format('SELECT (%L::%s)::text', v, t) INTO direct;
    EXECUTE format('SELECT echo_cached(%L::%s)::text', v, t) INTO first;
    EXECUTE format('SELECT echo_cached(%L::%s)::text', v, t) INTO second;
    RETURN direct = first AND first = second;
END
$$;
SELECT t, roundtrip(v, t) FROM samples ORDER BY t;
SELECT executions() AS executions, (SELECT count(*) FROM samples) AS samples;

-- NULL arguments are keys too
SELECT echo_cached(NULL::jsonb) IS NULL AS null_jsonb;

-- the readable arguments of what is cached
SELECT function, arguments FROM cachier_entries ORDER BY function::text;

-- keys do not depend on the client encoding
SET client_encoding = 'LATIN1';
SELECT echo_cached('grüße'::text);
RESET client_encoding;
SELECT echo_cached('grüße'::text);
SELECT count(*) AS entries_for_gruesse FROM cachier_entries WHERE arguments = '(''grüße'')';

-- a polymorphic function is refused by cachier_wrap with a clear error
SELECT cachier_wrap('echo_any', 1);

SET client_min_messages = warning;
DROP SCHEMA types_test CASCADE;
DROP EXTENSION cachier CASCADE;
