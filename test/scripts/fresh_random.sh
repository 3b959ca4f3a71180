#!/bin/bash
# fresh_random.sh: the randomized freshness test of issue 10.
#
# Usage: fresh_random.sh SECONDS [WRITERS] [READERS]
# Connects with the usual PG* variables (psql and pgbench in PATH), builds
# schema fr (dropping an old one), runs WRITERS writer sessions and READERS
# reader sessions for SECONDS seconds with pgbench, and prints one summary
# line:
#   fresh_random: N checks (...), D differences, F failed transactions, ...
# It exits non-zero when a check found a difference or a client failed.
#
# Tables fr.a, fr.b, fr.c, fr.p (partitioned) change in every way the
# writers know (UPDATE, INSERT, DELETE, MERGE, ON CONFLICT, COPY, TRUNCATE,
# moves between partitions, inserts straight into a partition, rolled-back
# transactions and savepoints); fr.m and fr.n only ever grow.  Cached
# functions read them through SQL and PL/pgSQL bodies, dynamic SQL, a
# view, a partitioned table and a nested cached call.
#
# How a cached result is compared with a direct one in the same snapshot,
# under the freshness model's rule that a READ COMMITTED computation takes
# a fresh snapshot (so a cached call and a direct call in one statement may
# legitimately see different commits):
#  - locked: READ COMMITTED, after LOCK TABLE ... IN SHARE MODE on every
#    table the functions read, so no change can commit until the
#    transaction ends: cached = direct exactly, hits included.
#  - own-write: a writer that holds SHARE ROW EXCLUSIVE locks, changes a
#    table and compares cached with direct before committing.
#  - repeatable read: one snapshot for the transaction: cached = direct.
#  - monotone: no lock at all, READ COMMITTED, over fr.m and fr.n, whose
#    functions only grow: direct d1, then cached c, then direct d2, each in
#    its own statement, must satisfy d1 <= c <= d2.  A stale entry is
#    smaller than d1 as soon as a change committed before d1's snapshot;
#    this is the check that races writers' commits.
# A difference is recorded in fr.diffs with the values.
set -euo pipefail

seconds=${1:?usage: fresh_random.sh SECONDS [WRITERS] [READERS]}
writers=${2:-3}
readers=${3:-4}

tmp=$(mktemp -d /tmp/fresh_random.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

q() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

# ---------------------------------------------------------------- schema
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS cachier;
DROP SCHEMA IF EXISTS fr CASCADE;
CREATE SCHEMA fr;
CREATE TABLE fr.a (id serial PRIMARY KEY, k int NOT NULL, v int NOT NULL);
CREATE TABLE fr.b (id serial PRIMARY KEY, k int NOT NULL, v int NOT NULL);
CREATE TABLE fr.c (id serial PRIMARY KEY, k int NOT NULL, v int NOT NULL);
CREATE TABLE fr.p (k int NOT NULL, v int NOT NULL) PARTITION BY LIST ((k % 3));
CREATE TABLE fr.p0 PARTITION OF fr.p FOR VALUES IN (0);
CREATE TABLE fr.p1 PARTITION OF fr.p FOR VALUES IN (1);
CREATE TABLE fr.p2 PARTITION OF fr.p FOR VALUES IN (2);
CREATE TABLE fr.m (k int NOT NULL, v int NOT NULL);
CREATE TABLE fr.n (k int NOT NULL, v int NOT NULL);
INSERT INTO fr.a (k, v) SELECT 1 + i % 10, i FROM generate_series(1, 30) i;
INSERT INTO fr.b (k, v) SELECT 1 + i % 10, i FROM generate_series(1, 30) i;
INSERT INTO fr.c (k, v) SELECT 1 + i % 10, i FROM generate_series(1, 30) i;
INSERT INTO fr.p (k, v) SELECT 1 + i % 10, i FROM generate_series(1, 30) i;
INSERT INTO fr.m (k, v) SELECT 1 + i % 10, 1 FROM generate_series(1, 30) i;
INSERT INTO fr.n (k, v) SELECT 1 + i % 10, 1 FROM generate_series(1, 30) i;
CREATE VIEW fr.bc AS SELECT k, v FROM fr.b UNION ALL SELECT k, v FROM fr.c;
CREATE TABLE fr.diffs (at timestamptz DEFAULT clock_timestamp(), kind text, k int,
                       n int, detail text);

-- count * 1,000,000 + sum: changes with every insert, delete and update
CREATE FUNCTION fr.fa(k int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT count(*) * 1000000 + coalesce(sum(v), 0) FROM fr.a WHERE a.k = $1 $$;
CREATE FUNCTION fr.fab(k int) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    r bigint;
BEGIN
    SELECT count(*) * 1000000 + coalesce(sum(a.v * b.v), 0) INTO r
      FROM fr.a JOIN fr.b ON a.k = b.k WHERE a.k = fab.k;
    RETURN r;
END $$;
CREATE FUNCTION fr.fdyn(k int) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    r bigint;
BEGIN
    EXECUTE format('SELECT count(*) * 1000000 + coalesce(sum(v), 0) FROM %I.%I WHERE k = $1', 'fr', 'c')
      INTO r USING k;
    RETURN r;
END $$;
CREATE FUNCTION fr.fview(k int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT count(*) * 1000000 + coalesce(sum(v), 0) FROM fr.bc WHERE bc.k = $1 $$;
CREATE FUNCTION fr.fpart(k int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT count(*) * 1000000 + coalesce(sum(v), 0) FROM fr.p WHERE p.k = $1 $$;
CREATE FUNCTION fr.fall() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT (SELECT count(*) || '/' || coalesce(sum(v), 0) FROM fr.a) || ' '
              || (SELECT count(*) || '/' || coalesce(sum(v), 0) FROM fr.c) $$;
-- monotone: m and n only grow
CREATE FUNCTION fr.fm(k int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT coalesce(sum(v), 0) FROM fr.m WHERE m.k = $1 $$;
CREATE FUNCTION fr.fm_all() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT coalesce(sum(v), 0) FROM fr.m $$;
SELECT cachier_memoize(f::regprocedure) FROM unnest(ARRAY['fr.fa(int)', 'fr.fab(int)',
    'fr.fdyn(int)', 'fr.fview(int)', 'fr.fpart(int)', 'fr.fall()', 'fr.fm(int)',
    'fr.fm_all()']) f;
-- nested cached calls, and the same computed without the cache
CREATE FUNCTION fr.fnest(k int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT fr.fa_cached($1) * 7 + (SELECT count(*) FROM fr.b WHERE b.k = $1) $$;
CREATE FUNCTION fr.fnest_direct(k int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT fr.fa($1) * 7 + (SELECT count(*) FROM fr.b WHERE b.k = $1) $$;
CREATE FUNCTION fr.fmn(k int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT fr.fm_cached($1) + (SELECT coalesce(sum(v), 0) FROM fr.n WHERE n.k = $1) $$;
CREATE FUNCTION fr.fmn_direct(k int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT fr.fm($1) + (SELECT coalesce(sum(v), 0) FROM fr.n WHERE n.k = $1) $$;
SELECT cachier_memoize('fr.fnest(int)'), cachier_memoize('fr.fmn(int)');

-- the exact comparison: how many cached calls differ from direct ones
CREATE FUNCTION fr.mismatches(k int) RETURNS int LANGUAGE sql STABLE AS $$
    SELECT (fr.fa_cached(k) IS DISTINCT FROM fr.fa(k))::int
         + (fr.fab_cached(k) IS DISTINCT FROM fr.fab(k))::int
         + (fr.fdyn_cached(k) IS DISTINCT FROM fr.fdyn(k))::int
         + (fr.fview_cached(k) IS DISTINCT FROM fr.fview(k))::int
         + (fr.fpart_cached(k) IS DISTINCT FROM fr.fpart(k))::int
         + (fr.fall_cached() IS DISTINCT FROM fr.fall())::int
         + (fr.fnest_cached(k) IS DISTINCT FROM fr.fnest_direct(k))::int
         + (fr.fm_cached(k) IS DISTINCT FROM fr.fm(k))::int
         + (fr.fmn_cached(k) IS DISTINCT FROM fr.fmn_direct(k))::int
$$;
-- what the cached and direct calls give, for the record of a difference
CREATE FUNCTION fr.detail(k int) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('fa %s/%s fab %s/%s fdyn %s/%s fview %s/%s fpart %s/%s fall %s/%s fnest %s/%s fm %s/%s fmn %s/%s',
                  fr.fa_cached(k), fr.fa(k), fr.fab_cached(k), fr.fab(k),
                  fr.fdyn_cached(k), fr.fdyn(k), fr.fview_cached(k), fr.fview(k),
                  fr.fpart_cached(k), fr.fpart(k), fr.fall_cached(), fr.fall(),
                  fr.fnest_cached(k), fr.fnest_direct(k), fr.fm_cached(k), fr.fm(k),
                  fr.fmn_cached(k), fr.fmn_direct(k))
$$;
SQL

printf '%s\t%s\n' 3 5 4 6 5 7 >"$tmp/copy.data"
chmod 644 "$tmp/copy.data"

# ---------------------------------------------------------------- writers
# Writers that keep locks take them in the readers' order (a, b, c, p, m,
# n), so that the readers' LOCK TABLE does not deadlock with them (a
# deadlock is retried, but costs deadlock_timeout).
cat >"$tmp/w_dml.sql" <<'EOF'
\set k random(1, 10)
\set d random(1, 5)
BEGIN;
UPDATE fr.a SET v = v + :d WHERE k = :k;
INSERT INTO fr.b (k, v) VALUES (:k, :d);
DELETE FROM fr.c WHERE id = (SELECT min(id) FROM fr.c WHERE k = :k);
INSERT INTO fr.c (k, v) VALUES (:k, :d * 2);
COMMIT;
EOF
cat >"$tmp/w_merge.sql" <<'EOF'
\set k random(1, 10)
\set d random(1, 9)
MERGE INTO fr.a t USING (VALUES (:k, :d)) s(k, v) ON t.k = s.k AND t.v % 3 = 0
  WHEN MATCHED THEN UPDATE SET v = t.v + s.v
  WHEN NOT MATCHED THEN INSERT (k, v) VALUES (s.k, s.v);
INSERT INTO fr.b (id, k, v) VALUES (:k, :k, :d) ON CONFLICT (id) DO UPDATE SET v = fr.b.v + excluded.v;
DELETE FROM fr.b WHERE id = (SELECT max(id) FROM fr.b WHERE k = :k AND id > 30);
EOF
cat >"$tmp/w_part.sql" <<'EOF'
\set k random(1, 10)
\set k2 random(1, 10)
\set d random(1, 5)
\set k1 1 + 3 * random(0, 3)
UPDATE fr.p SET k = :k2 WHERE k = :k AND v % 2 = 0;
INSERT INTO fr.p1 (k, v) VALUES (:k1, :d);
DELETE FROM fr.p2 WHERE v = :d;
EOF
cat >"$tmp/w_rollback.sql" <<'EOF'
\set k random(1, 10)
BEGIN;
UPDATE fr.a SET v = v + 1000 WHERE k = :k;
SAVEPOINT s;
UPDATE fr.c SET v = v + 1000 WHERE k = :k;
ROLLBACK TO SAVEPOINT s;
UPDATE fr.b SET v = v + 1 WHERE k = :k;
SELECT pg_sleep(0.001);
ROLLBACK;
BEGIN;
SAVEPOINT t;
DELETE FROM fr.a WHERE k = :k;
ROLLBACK TO SAVEPOINT t;
SAVEPOINT s;
DELETE FROM fr.p WHERE k = :k;
RELEASE SAVEPOINT s;
INSERT INTO fr.p (k, v) VALUES (:k, 1), (:k, 2);
COMMIT;
EOF
cat >"$tmp/w_bulk.sql" <<EOF
BEGIN;
TRUNCATE fr.c;
INSERT INTO fr.c (k, v) SELECT 1 + i % 10, (random() * 20)::int FROM generate_series(1, 30) i;
COMMIT;
COPY fr.a (k, v) FROM '$tmp/copy.data';
DELETE FROM fr.a WHERE id IN (SELECT id FROM fr.a ORDER BY random() LIMIT 3);
EOF
cat >"$tmp/w_mono.sql" <<'EOF'
\set k random(1, 10)
\set d random(1, 3)
BEGIN;
UPDATE fr.m SET v = v + :d WHERE k = :k;
INSERT INTO fr.n (k, v) VALUES (:k, :d);
COMMIT;
INSERT INTO fr.m (k, v) VALUES (:k, 1);
EOF
cat >"$tmp/w_own.sql" <<'EOF'
\set k random(1, 10)
BEGIN;
LOCK TABLE fr.a, fr.b, fr.c, fr.p, fr.m, fr.n IN SHARE ROW EXCLUSIVE MODE;
SELECT fr.mismatches(:k) AS before_write \gset
UPDATE fr.a SET v = v + 1 WHERE k = :k;
UPDATE fr.m SET v = v + 1 WHERE k = :k;
DELETE FROM fr.p WHERE k = :k AND v % 5 = 0;
SELECT fr.mismatches(:k) AS after_write \gset
\if :before_write + :after_write > 0
INSERT INTO fr.diffs (kind, k, n, detail)
  SELECT 'own-write', :k, :before_write + :after_write, fr.detail(:k);
\endif
COMMIT;
EOF

# ---------------------------------------------------------------- readers
cat >"$tmp/r_locked.sql" <<'EOF'
\set k random(1, 10)
BEGIN;
LOCK TABLE fr.a, fr.b, fr.c, fr.p, fr.m, fr.n IN SHARE MODE;
SELECT fr.mismatches(:k) AS bad \gset
\if :bad > 0
INSERT INTO fr.diffs (kind, k, n, detail) SELECT 'locked', :k, :bad, fr.detail(:k);
\endif
COMMIT;
EOF
cat >"$tmp/r_rr.sql" <<'EOF'
\set k random(1, 10)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT fr.mismatches(:k) AS bad \gset
\if :bad > 0
INSERT INTO fr.diffs (kind, k, n, detail) SELECT 'repeatable read', :k, :bad, fr.detail(:k);
\endif
COMMIT;
EOF
cat >"$tmp/r_mono.sql" <<'EOF'
\set k random(1, 10)
SELECT fr.fm(:k) AS d1a, fr.fmn_direct(:k) AS d1b, fr.fm_all() AS d1c \gset
SELECT fr.fm_cached(:k) AS ca \gset
SELECT fr.fmn_cached(:k) AS cb \gset
SELECT fr.fm_all_cached() AS cc \gset
SELECT fr.fm(:k) AS d2a, fr.fmn_direct(:k) AS d2b, fr.fm_all() AS d2c \gset
\if :ca < :d1a or :ca > :d2a or :cb < :d1b or :cb > :d2b or :cc < :d1c or :cc > :d2c
INSERT INTO fr.diffs (kind, k, n, detail) VALUES ('monotone', :k, 1,
  'fm :d1a <= :ca <= :d2a, fmn :d1b <= :cb <= :d2b, fm_all :d1c <= :cc <= :d2c');
\endif
EOF

# ---------------------------------------------------------------- run
common=(-n -T "$seconds" -j 1 --max-tries=100 --no-vacuum)
rc_w=0
rc_r=0
pgbench "${common[@]}" -c "$writers" \
	-f "$tmp/w_dml.sql@10" -f "$tmp/w_merge.sql@5" -f "$tmp/w_part.sql@5" \
	-f "$tmp/w_rollback.sql@4" -f "$tmp/w_bulk.sql@1" -f "$tmp/w_mono.sql@10" \
	-f "$tmp/w_own.sql@2" >"$tmp/writers.out" 2>&1 &
wpid=$!
pgbench "${common[@]}" -c "$readers" \
	-f "$tmp/r_locked.sql@4" -f "$tmp/r_rr.sql@2" -f "$tmp/r_mono.sql@6" \
	>"$tmp/readers.out" 2>&1 || rc_r=$?
wait "$wpid" || rc_w=$?

# transactions of each script, from pgbench's per-script report
script_count() {
	awk -v s="$2" '
		/^SQL script [0-9]+:/ { cur = ($0 ~ s) }
		cur && /^ - [0-9]+ transactions/ { print $2; exit }' "$1"
}
failed_count() {
	awk '/^number of failed transactions:/ { print $5; found = 1 } END { if (!found) print "?" }' "$1"
}

locked=$(script_count "$tmp/readers.out" r_locked)
rr=$(script_count "$tmp/readers.out" r_rr)
mono=$(script_count "$tmp/readers.out" r_mono)
own=$(script_count "$tmp/writers.out" w_own)
writes=$(awk '/^number of transactions actually processed:/ { print $6 }' "$tmp/writers.out")
failed_w=$(failed_count "$tmp/writers.out")
failed_r=$(failed_count "$tmp/readers.out")
checks=$(( (${locked:-0} + ${rr:-0}) * 9 + ${own:-0} * 18 + ${mono:-0} * 3 ))
diffs=$(q "SELECT coalesce(sum(n), 0) FROM fr.diffs")
read -r hits calls < <(q "SELECT coalesce(sum(hits), 0), coalesce(sum(hits + misses + stale_hits), 0)
                           FROM cachier_stats WHERE function::text LIKE 'fr.%'" | tr '|' ' ')

echo "writers: $writers sessions, $writes transactions; readers: $readers sessions; $seconds s"
echo "cachier_stats of fr.*: $hits hits of $calls calls"
q "SELECT function, hits, misses FROM cachier_stats WHERE function::text LIKE 'fr.%' ORDER BY 1" |
	sed 's/^/  /'
if [ "$diffs" != 0 ]; then
	echo "differences (first 20):"
	q "SELECT at, kind, k, n, detail FROM fr.diffs ORDER BY at LIMIT 20" | sed 's/^/  /'
fi
if [ "$rc_w" != 0 ] || [ "$rc_r" != 0 ] || [ "$failed_w" != 0 ] || [ "$failed_r" != 0 ]; then
	echo "--- pgbench writers (exit $rc_w)"; cat "$tmp/writers.out"
	echo "--- pgbench readers (exit $rc_r)"; cat "$tmp/readers.out"
fi
echo "fresh_random: $checks checks (${locked:-0} locked, ${rr:-0} repeatable read, ${own:-0} own-write, ${mono:-0} monotone transactions), $diffs differences, $failed_w+$failed_r failed transactions, $hits hits"
[ "$diffs" = 0 ] && [ "$rc_w" = 0 ] && [ "$rc_r" = 0 ] && [ "$failed_w" = 0 ] && [ "$failed_r" = 0 ]
