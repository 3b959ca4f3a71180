# shellcheck shell=bash disable=SC2119,SC2046,SC2206
# 70-fresh.sh: what freshness (issue 10) costs, and that it stays right
# under load.  Run by run.sh inside the cluster.
#
#  1. Hit cost: a function that read 8 tables (its hits check that none of
#     them changed) against the same function with track_reads off (0.4's
#     hit: shelf life only) and a function that reads nothing; 300,000 hits
#     over 1,000 keys per statement, 3 interleaved rounds.  Goal: <= 1.1x.
#  2. pgbench TPC-B-like (built-in) tps with cachier not loaded, loaded
#     with nothing depending on the pgbench tables (goal >= 0.99x), and
#     loaded with cached functions depending on all four (goal >= 0.97x).
#     The server restarts between the first two (shared_preload_libraries
#     given on the command line); FRESH_TPCB_SECONDS per run (15), 3 rounds.
#  3. No global lock: 16 writers on 16 tracked tables and 16 cached
#     readers for FRESH_LOCK_SECONDS (15); pg_stat_activity sampled every
#     50 ms: how many samples show a backend waiting on one of cachier's
#     LWLocks or in-progress locks.
#  4. A TPC-B mix with a cached report (per branch: branch, teller and
#     the first 2,000 accounts' balances): throughput and hit ratio against
#     the same mix
#     calling the report directly; a share of the report calls compare the
#     cached and the direct report under SHARE locks: every answer must be
#     right (the section fails otherwise).
#  5. test/scripts/fresh_random.sh for FRESH_RANDOM_SECONDS (180): 0
#     differences or the section fails.
# Timings are reported, not asserted; correctness is asserted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_tmp

tpcb_seconds=${FRESH_TPCB_SECONDS:-15}
lock_seconds=${FRESH_LOCK_SECONDS:-15}
random_seconds=${FRESH_RANDOM_SECONDS:-180}
failed=0
# FRESH_PARTS: which parts to run (all by default), e.g. "3 4"
parts=" ${FRESH_PARTS:-1 2 3 4 5} "
want() { [[ $parts == *" $1 "* ]]; }

header "Issue 10: freshness"

# ---------------------------------------------------------------- server restarts

# restart the cluster with shared_preload_libraries = $1 (a command-line
# option: ALTER SYSTEM cannot store an empty list); FRESH_RESTART is the
# restart command outside pg_virtualenv's cluster (pg_ctl ... restart)
restart_with() {
	if [ -n "${FRESH_RESTART:-}" ]; then
		$FRESH_RESTART -o "-c shared_preload_libraries=$1" >/dev/null
	else
		pg_ctlcluster -o "-c shared_preload_libraries=$1" "${PGVERSION:-15}" regress restart
	fi
	local deadline=$((SECONDS + 60))
	until psql -X -q -At -c 'SELECT 1' >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || { echo "the server did not come back"; exit 1; }
		sleep 0.2
	done
}
trap 'restart_with cachier >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------- 1. hit cost
q "CREATE SCHEMA fb" >/dev/null
if want 1; then
echo
echo "1. Hit cost (300,000 hits over 1,000 keys per statement, µs per call)"
sql <<'SQL'
CREATE TABLE fb.d1 (v int); CREATE TABLE fb.d2 (v int); CREATE TABLE fb.d3 (v int);
CREATE TABLE fb.d4 (v int); CREATE TABLE fb.d5 (v int); CREATE TABLE fb.d6 (v int);
CREATE TABLE fb.d7 (v int); CREATE TABLE fb.d8 (v int);
INSERT INTO fb.d1 VALUES (1); INSERT INTO fb.d2 VALUES (1); INSERT INTO fb.d3 VALUES (1);
INSERT INTO fb.d4 VALUES (1); INSERT INTO fb.d5 VALUES (1); INSERT INTO fb.d6 VALUES (1);
INSERT INTO fb.d7 VALUES (1); INSERT INTO fb.d8 VALUES (1);
-- the same body twice: one tracked, one measured with track_reads off
CREATE FUNCTION fb.f8(i int) RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN i + (SELECT v FROM fb.d1) + (SELECT v FROM fb.d2) + (SELECT v FROM fb.d3)
             + (SELECT v FROM fb.d4) + (SELECT v FROM fb.d5) + (SELECT v FROM fb.d6)
             + (SELECT v FROM fb.d7) + (SELECT v FROM fb.d8);
END $$;
CREATE FUNCTION fb.f8u(i int) RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN i + (SELECT v FROM fb.d1) + (SELECT v FROM fb.d2) + (SELECT v FROM fb.d3)
             + (SELECT v FROM fb.d4) + (SELECT v FROM fb.d5) + (SELECT v FROM fb.d6)
             + (SELECT v FROM fb.d7) + (SELECT v FROM fb.d8);
END $$;
CREATE FUNCTION fb.f1(i int) RETURNS int LANGUAGE plpgsql STABLE
    AS $$ BEGIN RETURN i + (SELECT v FROM fb.d1); END $$;
CREATE FUNCTION fb.pure(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN RETURN i * 2; END $$;
SELECT cachier_memoize(f::regprocedure)
  FROM unnest(ARRAY['fb.f8(int)', 'fb.f8u(int)', 'fb.f1(int)', 'fb.pure(int)']) f \g /dev/null
SQL

# variant LABEL ORD FUNCTION [SETTINGS]: warm, then time 3 statements, one per round
declare -A hitq=(
	[1]="SELECT count(fb.pure_cached(i %% 1000)) FROM generate_series(1, 300000) i"
	[2]="SELECT count(fb.f8u_cached(i %% 1000)) FROM generate_series(1, 300000) i"
	[3]="SELECT count(fb.f1_cached(i %% 1000)) FROM generate_series(1, 300000) i"
	[4]="SELECT count(fb.f8_cached(i %% 1000)) FROM generate_series(1, 300000) i")
declare -A hitlabel=(
	[1]="(p) reads nothing"
	[2]="(u) 8 tables, track_reads off (as 0.4)"
	[3]="(1) 1 table, tracked"
	[4]="(8) 8 tables, tracked")
declare -A hitset=([2]="SET cachier.track_reads = off;")
for ord in 1 2 3 4; do
	# two warm passes: a first computation may only register what it read
	for _ in 1 2; do
		psql -X -q -v ON_ERROR_STOP=1 -c "${hitset[$ord]:-} ${hitq[$ord]//%%/%}" >/dev/null
	done
done
for round in 1 2 3; do
	for ord in 1 2 3 4; do
		# separate -c: CALL must not run in the implicit transaction of a
		# multi-statement string (bench.measure commits)
		psql -X -q -v ON_ERROR_STOP=1 -c "SET jit = off" ${hitset[$ord]:+-c "${hitset[$ord]}"} \
			-c "CALL bench.measure('fresh hits', '${hitlabel[$ord]}', $ord, '${hitq[$ord]}', 300000, 1, $round)"
	done
done
q "SELECT rpad(label, 44) || ' median ' || round(median_us::numeric, 3) || ' µs/call, min ' || round(min_us::numeric, 3)
     FROM bench.summary WHERE section = 'fresh hits' ORDER BY ord"
q "SELECT 'ratio (8)/(u): ' || round((max(median_us) FILTER (WHERE ord = 4) / max(median_us) FILTER (WHERE ord = 2))::numeric, 3)
        || '   (8)/(p): ' || round((max(median_us) FILTER (WHERE ord = 4) / max(median_us) FILTER (WHERE ord = 1))::numeric, 3)
        || '   goal (8)/(u) <= 1.1'
     FROM bench.summary WHERE section = 'fresh hits'"

fi

# ---------------------------------------------------------------- 2. TPC-B overhead
# the pgbench tables (also for part 4)
pgbench -q -i -s 10 >/dev/null 2>&1
if want 2; then
echo
echo "2. pgbench TPC-B-like: cachier not loaded / loaded (pgbench tables untracked) / loaded (tracked)"
echo "   $tpcb_seconds s per run, 4 clients, scale 10, 3 rounds"
sql <<'SQL'
CREATE FUNCTION fb.on_branches() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT sum(bbalance) FROM pgbench_branches';
CREATE FUNCTION fb.on_tellers() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT sum(tbalance) FROM pgbench_tellers';
CREATE FUNCTION fb.on_accounts() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT abalance FROM pgbench_accounts WHERE aid = 1';
CREATE FUNCTION fb.on_history() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM pgbench_history';
SELECT cachier_memoize(f::regprocedure) FROM unnest(ARRAY['fb.on_branches()',
    'fb.on_tellers()', 'fb.on_accounts()', 'fb.on_history()']) f \g /dev/null
SQL
tpcb() {
	pgbench -n -c 4 -j 2 -T "$tpcb_seconds" 2>&1 | awk '/^tps/ { print $3; exit }'
}
declare -a t_none t_untracked t_tracked
for round in 1 2 3; do
	restart_with ''
	t_none+=($(tpcb))
	restart_with cachier
	t_untracked+=($(tpcb))
	# register the dependencies (after a restart nothing is registered)
	q "SELECT fb.on_branches_cached(), fb.on_tellers_cached(), fb.on_accounts_cached(), fb.on_history_cached()" >/dev/null
	q "SELECT fb.on_branches_cached(), fb.on_tellers_cached(), fb.on_accounts_cached(), fb.on_history_cached()" >/dev/null
	deps=$(q "SELECT count(DISTINCT relation) FROM cachier_dependencies WHERE relation::text LIKE 'pgbench_%'" 2>/dev/null || echo '?')
	t_tracked+=($(tpcb))
	echo "   round $round: not loaded ${t_none[-1]} tps, untracked ${t_untracked[-1]} tps, tracked ($deps tables) ${t_tracked[-1]} tps"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
m_none=$(median "${t_none[@]}")
m_untracked=$(median "${t_untracked[@]}")
m_tracked=$(median "${t_tracked[@]}")
awk -v n="$m_none" -v u="$m_untracked" -v t="$m_tracked" 'BEGIN {
	printf "   medians: not loaded %.0f, untracked %.0f (%.3fx, goal >= 0.99), tracked %.0f (%.3fx, goal >= 0.97)\n",
		n, u, u / n, t, t / n }'

fi

# ---------------------------------------------------------------- 3. no global lock
if want 3; then
echo
echo "3. 16 writers on 16 tracked tables + 16 cached readers, $lock_seconds s; waits sampled every 50 ms"
sql <<'SQL'
DO $$
BEGIN
    FOR i IN 1..16 LOOP
        EXECUTE format('CREATE TABLE fb.w%s (k int PRIMARY KEY, v int)', i);
        EXECUTE format('INSERT INTO fb.w%s SELECT k, 0 FROM generate_series(1, 100) k', i);
        EXECUTE format('CREATE FUNCTION fb.r%s(k int) RETURNS int LANGUAGE sql STABLE
                        AS ''SELECT v FROM fb.w%s WHERE k = $1''', i, i);
        PERFORM cachier_memoize(format('fb.r%s(int)', i)::regprocedure, name => format('fb.rc%s', i));
    END LOOP;
END $$;
SQL
cat >"$tmp/writer.sql" <<'EOF'
\set t 1 + :client_id % 16
\set k random(1, 100)
UPDATE fb.w:t SET v = v + 1 WHERE k = :k;
EOF
cat >"$tmp/reader.sql" <<'EOF'
\set t 1 + :client_id % 16
\set k random(1, 100)
SELECT fb.rc:t(:k);
EOF
pgbench -n -c 16 -j 2 -T "$lock_seconds" -f "$tmp/writer.sql" >"$tmp/writers.out" 2>&1 &
wpid=$!
pgbench -n -c 16 -j 2 -T "$lock_seconds" -f "$tmp/reader.sql" >"$tmp/readers.out" 2>&1 &
rpid=$!
# one session samples from inside the server (a new psql per sample costs
# more than 50 ms on a busy machine); COMMIT after each sample, since
# pg_stat_activity is read once per transaction
q "CREATE TABLE fb.samples (n int, wait text)" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -c "DO \$\$
BEGIN
    PERFORM pg_sleep(1);
    FOR i IN 1..$(( (lock_seconds - 2) * 20 )) LOOP
        INSERT INTO fb.samples
        SELECT i, coalesce(a.wait_event_type || ':' || a.wait_event, '-')
          FROM (SELECT 1) one
          LEFT JOIN pg_stat_activity a
            ON a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
           AND a.state = 'active' AND a.wait_event IS NOT NULL;
        INSERT INTO fb.samples
        SELECT i, 'cachier-key-lock' FROM pg_locks
         WHERE locktype = 'advisory' AND objsubid NOT IN (1, 2) AND NOT granted;
        COMMIT;
        PERFORM pg_sleep(0.05);
    END LOOP;
END \$\$"
wait "$wpid" || true
wait "$rpid" || true
samples=$(q "SELECT count(DISTINCT n) FROM fb.samples")
echo "   writers: $(awk '/^tps/ { print $3; exit }' "$tmp/writers.out") tps, readers: $(awk '/^tps/ { print $3; exit }' "$tmp/readers.out") tps, $samples samples"
echo "   waits seen (backends x samples), by event:"
q "SELECT lpad(count(*)::text, 7) || ' ' || wait FROM fb.samples WHERE wait <> '-'
    GROUP BY wait ORDER BY count(*) DESC LIMIT 12"
lw=$(q "SELECT count(*) FROM fb.samples WHERE wait ILIKE 'LWLock:cachier%'")
kl=$(q "SELECT count(*) FROM fb.samples WHERE wait = 'cachier-key-lock'")
echo "   waits on cachier's LWLocks: $lw; on cachier's in-progress key locks: $kl (goal: 0 LWLock waits)"
q "SELECT '   readers: ' || sum(hits) || ' hits, ' || sum(misses) || ' misses, ' || sum(invalidations) || ' invalidations'
     FROM cachier_stats WHERE function::text LIKE 'fb.r%'" 2>/dev/null || true

fi

# ---------------------------------------------------------------- 4. TPC-B with a cached report
if want 4; then
echo
echo "4. TPC-B mix (4 clients, $tpcb_seconds s) with a report per branch: cached against direct"
sql <<'SQL'
CREATE FUNCTION fb.report(bid int) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT (SELECT bbalance FROM pgbench_branches b WHERE b.bid = $1) || ' '
        || (SELECT sum(tbalance) FROM pgbench_tellers t WHERE t.bid = $1) || ' '
        || (SELECT sum(abalance) FROM pgbench_accounts a
             WHERE a.aid BETWEEN ($1 - 1) * 100000 + 1 AND ($1 - 1) * 100000 + 2000)
$$;
SELECT cachier_memoize('fb.report(int)') \g /dev/null
CREATE TABLE fb.report_diffs (bid int, cached text, direct text);
SQL
cat >"$tmp/report_cached.sql" <<'EOF'
\set bid random(1, 10)
SELECT fb.report_cached(:bid);
EOF
cat >"$tmp/report_direct.sql" <<'EOF'
\set bid random(1, 10)
SELECT fb.report(:bid);
EOF
# locks in the order TPC-B takes them (accounts, tellers, branches): no deadlock
cat >"$tmp/report_check.sql" <<'EOF'
\set bid random(1, 10)
BEGIN;
LOCK TABLE pgbench_accounts, pgbench_tellers, pgbench_branches IN SHARE MODE;
SELECT (fb.report_cached(:bid) IS NOT DISTINCT FROM fb.report(:bid))::int AS ok \gset
\if :ok = 0
INSERT INTO fb.report_diffs SELECT :bid, fb.report_cached(:bid), fb.report(:bid);
\endif
COMMIT;
EOF
before=$(q "SELECT coalesce(sum(hits), 0) || ' ' || coalesce(sum(misses), 0) FROM cachier_stats WHERE function = 'fb.report(int)'::regprocedure")
pgbench -n -c 4 -j 2 --max-tries=10 -T "$tpcb_seconds" -b tpcb-like@10 -f "$tmp/report_cached.sql@10" \
	>"$tmp/mix_cached.out" 2>&1 || { echo "   pgbench failed:"; cat "$tmp/mix_cached.out"; failed=1; }
after=$(q "SELECT coalesce(sum(hits), 0) || ' ' || coalesce(sum(misses), 0) FROM cachier_stats WHERE function = 'fb.report(int)'::regprocedure")
pgbench -n -c 4 -j 2 --max-tries=10 -T "$tpcb_seconds" -b tpcb-like@10 -f "$tmp/report_direct.sql@10" \
	>"$tmp/mix_direct.out" 2>&1 || { echo "   pgbench failed:"; cat "$tmp/mix_direct.out"; failed=1; }
# correctness, in a run of its own (the checks' SHARE locks stall TPC-B)
pgbench -n -c 4 -j 2 --max-tries=10 -T "$tpcb_seconds" -b tpcb-like@10 -f "$tmp/report_cached.sql@10" \
	-f "$tmp/report_check.sql@2" >"$tmp/mix_check.out" 2>&1 ||
	{ echo "   pgbench failed:"; cat "$tmp/mix_check.out"; failed=1; }
per_script() {
	awk -v s="$2" '
		/^SQL script [0-9]+:/ { cur = ($0 ~ s) }
		cur && /^ - [0-9]+ transactions/ { gsub(/[(),]/, ""); print $2 " transactions, " $NF " tps"; exit }' "$1"
}
read -r h0 m0 <<<"$before"
read -r h1 m1 <<<"$after"
echo "   cached: total $(awk '/^tps/ { print $3; exit }' "$tmp/mix_cached.out") tps; reports $(per_script "$tmp/mix_cached.out" report_cached); TPC-B $(per_script "$tmp/mix_cached.out" TPC-B)"
echo "   direct: total $(awk '/^tps/ { print $3; exit }' "$tmp/mix_direct.out") tps; reports $(per_script "$tmp/mix_direct.out" report_direct); TPC-B $(per_script "$tmp/mix_direct.out" TPC-B)"
awk -v h=$((h1 - h0)) -v m=$((m1 - m0)) 'BEGIN { printf "   report hit ratio: %d hits, %d misses (%.1f%%)\n", h, m, (h + m) ? 100 * h / (h + m) : 0 }'
diffs=$(q "SELECT count(*) FROM fb.report_diffs")
echo "   checks (cached = direct under SHARE locks, in a third run): $(per_script "$tmp/mix_check.out" report_check); wrong: $diffs (must be 0)"
[ "$diffs" = 0 ] || { q "SELECT * FROM fb.report_diffs LIMIT 5"; failed=1; }

fi

# ---------------------------------------------------------------- 5. the randomized test, longer
if want 5; then
echo
echo "5. test/scripts/fresh_random.sh for $random_seconds s"
if ! bash "$here/../scripts/fresh_random.sh" "$random_seconds" 3 4 | sed 's/^/   /'; then
	failed=1
fi
fi

exit "$failed"
