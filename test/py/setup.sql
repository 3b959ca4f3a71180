-- What the examples assume: an application's slow function, with a
-- counter of its executions so the output shows what was computed.
CREATE EXTENSION cachier;
CREATE SEQUENCE geocode_calls;
CREATE FUNCTION geocode(address text) RETURNS point LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('geocode_calls');
    RETURN point(length(address), 1);
END $$;
CREATE FUNCTION geocode_executions() RETURNS bigint LANGUAGE sql
AS $$ SELECT last_value - 1 + is_called::int FROM geocode_calls $$;
SELECT cachier_memoize('geocode(text)', stale_after => '30 days');
