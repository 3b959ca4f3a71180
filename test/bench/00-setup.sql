-- 00-setup.sql: the extension and the bench schema shared by all sections.
--
-- bench.measure() times statements with clock_timestamp() around EXECUTE in
-- a procedure that commits after every run, so each run is its own
-- transaction (misses hold their in-progress locks until commit).  Both
-- the statement time and the statement + COMMIT time are recorded.

CREATE EXTENSION cachier;
CREATE SCHEMA bench;

CREATE TABLE bench.runs (
    section    text NOT NULL,
    label      text NOT NULL,
    ord        int NOT NULL,
    rep        int NOT NULL,
    calls      bigint NOT NULL,
    ms         double precision NOT NULL,   -- the statement
    ms_commit  double precision NOT NULL    -- the statement and its COMMIT
);

-- Run q reps times; q is a format() string whose %1$s, if used, is the run
-- number (first, first + 1, ...), e.g. to pick fresh keys in every run.
CREATE PROCEDURE bench.measure(section text, label text, ord int, q text,
                               calls bigint, reps int DEFAULT 3, first int DEFAULT 1)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    t1 timestamptz;
    t2 timestamptz;
BEGIN
    FOR r IN first..first + reps - 1 LOOP
        t0 := clock_timestamp();
        EXECUTE format(q, r);
        t1 := clock_timestamp();
        COMMIT;
        t2 := clock_timestamp();
        INSERT INTO bench.runs VALUES (section, label, ord, r, calls,
            extract(epoch FROM t1 - t0) * 1000, extract(epoch FROM t2 - t0) * 1000);
        COMMIT;
    END LOOP;
END
$$;

-- Per-variant summary of a section: per-call µs of the median and the
-- fastest run (runs of a variant all have the same number of calls).
CREATE VIEW bench.summary AS
SELECT section, label, min(ord) AS ord, count(*) AS runs,
       sum(calls) AS calls,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS median_ms,
       min(ms) AS min_ms,
       sum(ms) AS total_ms,
       sum(ms_commit) AS total_ms_commit,
       1000 * percentile_disc(0.5) WITHIN GROUP (ORDER BY ms / calls) AS median_us,
       1000 * min(ms / calls) AS min_us,
       1000 * sum(ms) / sum(calls) AS mean_us,
       1000 * sum(ms_commit) / sum(calls) AS mean_us_commit
  FROM bench.runs
 GROUP BY section, label;
