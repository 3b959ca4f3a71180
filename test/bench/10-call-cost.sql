-- 10-call-cost.sql: what one call costs (issue 2).
--
-- 1,000,000 calls over 1,000 keys of a cheap function, one statement per
-- run, three interleaved rounds; misses separately, 1,000 fresh keys per
-- statement.
--
-- The cheap function is LANGUAGE plpgsql: a LANGUAGE sql body such as
-- 'SELECT i * 2' would be inlined by the planner into the expression i * 2,
-- so (a) would measure no function call at all.  A PL/pgSQL function is
-- never inlined, so every row makes a real call.  It is IMMUTABLE (the
-- honest label for i * 2), which does not matter here since its argument
-- is never a constant.

\echo
\echo ==================================================================
\echo 'Issue 2: cost of one call (1,000,000 calls over 1,000 keys)'
\echo ==================================================================

SET jit = off;

CREATE FUNCTION cheap(i int) RETURNS int
LANGUAGE plpgsql IMMUTABLE AS 'BEGIN RETURN i * 2; END';

-- (b) what users write today: a memo table and a PL/pgSQL lookup function
CREATE TABLE memo (k int PRIMARY KEY, v int);
CREATE FUNCTION cheap_memo(k int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    r int;
BEGIN
    SELECT v INTO r FROM memo WHERE memo.k = cheap_memo.k;
    IF NOT FOUND THEN
        r := cheap(k);
        INSERT INTO memo VALUES (k, r) ON CONFLICT DO NOTHING;
    END IF;
    RETURN r;
END
$$;

-- (c) the memoized wrapper cheap_cached(int)
SELECT cachier_memoize('cheap(int)') \gset

CREATE TABLE bench.variants (ord int, label text, q text, calls bigint);
INSERT INTO bench.variants VALUES
 (0, '(0) empty loop: count(i % 1000)',
     'SELECT count(i %% 1000) FROM generate_series(1, 1000000) i', 1000000),
 (1, '(a) cheap(i)  plain call',
     'SELECT count(cheap(i %% 1000)) FROM generate_series(1, 1000000) i', 1000000),
 (2, '(b) cheap_memo(i)  memo table hit',
     'SELECT count(cheap_memo(i %% 1000)) FROM generate_series(1, 1000000) i', 1000000),
 (3, '(c) cheap_cached(i)  wrapper hit',
     'SELECT count(cheap_cached(i %% 1000)) FROM generate_series(1, 1000000) i', 1000000),
 (4, '(d) cachier_wrap(''cheap'', i)  hit',
     'SELECT count(cachier_wrap(''cheap'', i %% 1000)) FROM generate_series(1, 1000000) i', 1000000);

-- warm (b), (c), (d): every key is stored once, so the timed runs only hit
SELECT count(cheap_memo(i)) AS memo_warm,
       count(cheap_cached(i)) AS wrapper_warm,
       count(cachier_wrap('cheap', i)) AS wrap_warm
  FROM generate_series(0, 999) i \gset
SELECT clock_timestamp() AS warmed_at \gset

-- three rounds, the variants interleaved in each
\echo 'timing hits: 3 rounds x 5 statements of 1,000,000 calls ...'
CREATE PROCEDURE bench.rounds(section text, rounds int) LANGUAGE plpgsql AS $$
DECLARE
    v bench.variants[];
    x bench.variants;
BEGIN
    v := ARRAY(SELECT t FROM bench.variants t ORDER BY ord);
    FOR r IN 1..rounds LOOP
        FOREACH x IN ARRAY v LOOP
            CALL bench.measure(section, x.label, x.ord, x.q, x.calls, 1, r);
        END LOOP;
    END LOOP;
END
$$;
CALL bench.rounds('hits', 3);

-- the hits were hits: nothing was computed or rewritten after warming
\echo
SELECT (SELECT count(*) FROM memo) AS memo_rows,
       (SELECT count(*) FROM cachier.entries WHERE fn_id = cachier.fn_id('cheap(int)')) AS cachier_entries,
       (SELECT count(*) FROM cachier.entries WHERE fn_id = cachier.fn_id('cheap(int)')
           AND created_at > :'warmed_at') AS entries_written_while_timing_hits;

-- (e) misses that store: fresh keys, 1,000 per statement (one transaction
-- each), 20 statements per variant.  The wrapper and cachier_wrap share
-- cheap's entries, so each variant gets its own key range.
\echo 'timing misses: 3 variants x 20 statements of 1,000 fresh keys ...'
CALL bench.measure('misses', '(e) cheap_cached(i)  wrapper miss+store', 6,
    'SELECT count(cheap_cached(i)) FROM generate_series(10000000 + %1$s * 1000, 10000000 + %1$s * 1000 + 999) i',
    1000, 20);
CALL bench.measure('misses', '(e2) cachier_wrap(''cheap'', i)  miss+store', 7,
    'SELECT count(cachier_wrap(''cheap'', i)) FROM generate_series(20000000 + %1$s * 1000, 20000000 + %1$s * 1000 + 999) i',
    1000, 20);
CALL bench.measure('misses', '(b-miss) cheap_memo(i)  memo table miss+insert', 8,
    'SELECT count(cheap_memo(i)) FROM generate_series(30000000 + %1$s * 1000, 30000000 + %1$s * 1000 + 999) i',
    1000, 20);

\echo
SELECT (SELECT count(*) FROM cachier.entries WHERE fn_id = cachier.fn_id('cheap(int)')) - 1000
           AS cachier_entries_stored_by_misses,
       (SELECT count(*) FROM memo) - 1000 AS memo_rows_stored_by_misses;

\echo
\echo 'Per-call cost (µs).  "median" and "min" are per-statement; "net" subtracts'
\echo 'the median empty loop (0), shown as its own row; nothing else is subtracted.'
SELECT label AS variant,
       runs AS statements,
       (calls / runs)::bigint AS calls_per_statement,
       round(median_ms::numeric, 1) AS median_ms,
       round(median_us::numeric, 3) AS "median µs/call",
       round(min_us::numeric, 3) AS "min µs/call",
       CASE WHEN ord BETWEEN 1 AND 4 THEN
           round((median_us - (SELECT median_us FROM bench.summary WHERE ord = 0))::numeric, 3)
       END AS "net µs/call"
  FROM bench.summary WHERE section = 'hits'
 ORDER BY ord;

SELECT label AS variant,
       runs AS statements,
       calls AS misses,
       round(mean_us::numeric, 2) AS "µs/miss (statement)",
       round(mean_us_commit::numeric, 2) AS "µs/miss (with COMMIT)",
       round(median_us::numeric, 2) AS "median µs/miss",
       round(min_us::numeric, 2) AS "min µs/miss"
  FROM bench.summary WHERE section = 'misses'
 ORDER BY ord;

\echo 'Ratios (from the median µs/call; "net" = after subtracting the empty loop).'
\echo '(e)/(a) uses the mean µs/miss of the statements (without COMMIT).'
WITH s AS (
    SELECT max(median_us) FILTER (WHERE ord = 0) AS z,
           max(median_us) FILTER (WHERE ord = 1) AS a,
           max(median_us) FILTER (WHERE ord = 2) AS b,
           max(median_us) FILTER (WHERE ord = 3) AS c,
           max(median_us) FILTER (WHERE ord = 4) AS d,
           max(mean_us)   FILTER (WHERE ord = 6) AS e,
           max(mean_us)   FILTER (WHERE ord = 7) AS e2,
           max(mean_us)   FILTER (WHERE ord = 8) AS bm
      FROM bench.summary
)
SELECT r.ratio, round(r.gross::numeric, 3) AS gross, round(r.net::numeric, 3) AS net, r.note
  FROM s, LATERAL (VALUES
    ('(c)/(b)  wrapper hit / memo table hit', c / b, (c - z) / (b - z),
        CASE WHEN c / b <= 0.5 THEN 'goal (<= 0.5) met'
             WHEN (c - z) / (b - z) <= 0.5 THEN 'goal (<= 0.5) met net only'
             ELSE 'GOAL (<= 0.5) NOT MET' END),
    ('(d)/(b)  cachier_wrap hit / memo table hit', d / b, (d - z) / (b - z), ''),
    ('(c)/(a)  wrapper hit / plain call', c / a, (c - z) / (a - z), ''),
    ('(d)/(c)  cachier_wrap hit / wrapper hit', d / c, (d - z) / (c - z), ''),
    ('(e)/(a)  wrapper miss / plain call', e / a, (e - z) / (a - z), ''),
    ('(e2)/(a) cachier_wrap miss / plain call', e2 / a, (e2 - z) / (a - z), ''),
    ('(e)/(b-miss) wrapper miss / memo table miss', e / bm, (e - z) / (bm - z), '')
  ) AS r(ratio, gross, net, note);
