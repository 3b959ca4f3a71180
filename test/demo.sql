-- cachier demo: a slow function, its first call and its cached calls
\pset footer off
\timing on
CREATE EXTENSION cachier;

-- a function that takes a second: think geocoder, model call, heavy report
CREATE FUNCTION slow_square(x int) RETURNS int
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM pg_sleep(1);
    RETURN x * x;
END
$$;

\echo
\echo '== cachier_memoize creates slow_square_cached(x int) with a shelf life'
SELECT cachier_memoize('slow_square(int)', stale_after => '3 days');

\echo
\echo '== the first call computes (about one second) ...'
SELECT slow_square_cached(12);
\echo '== ... the next calls are served from the cache, in every session'
SELECT slow_square_cached(12);
\echo '== a new session is served from the same cache'
\c
SELECT slow_square_cached(12);

\echo
\echo '== cachier_wrap works without a wrapper; the result comes back as text'
SELECT cachier_wrap('slow_square', 12)::int AS via_wrap;

\echo
\echo '== cachier.trace explains each decision'
SET cachier.trace = on;
SELECT slow_square_cached(12);
SELECT slow_square_cached(13);
RESET cachier.trace;

\echo
\echo '== what is cached'
SELECT function, arguments, stale, processing, size_bytes, round(compute_ms) AS compute_ms
  FROM cachier_entries ORDER BY arguments;

\echo
\echo '== cachier_clear empties it'
SELECT cachier_clear('slow_square');
\timing off
