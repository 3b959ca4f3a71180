# shellcheck shell=bash disable=SC2119
# 85-table-vs-memo.sh: the table tier against a hand-written memo table
# (issue 13: "the table tier must not lose to a hand-written memo table
# anywhere").  Run by run.sh inside the bench cluster, or alone against any
# PostgreSQL 15 with cachier preloaded (PGHOST, PGPORT, ... as for psql).
#
# The memo table is what users write by hand (as cheap_memo in
# 10-call-cost.sql): CREATE TABLE memo(k int PRIMARY KEY, v text) and a
# PL/pgSQL function that SELECTs v by k and, on a miss, computes and INSERTs
# ... ON CONFLICT DO NOTHING.  The cachier side is cachier_memoize's wrapper
# of the same function.  The memory tier must be off
# (cachier.shared_cache_size = 0, the default) so that the table is measured.
#
# For results of 8 B, 1 KB and 100 KB (text, or bytea with B85_TYPE=bytea;
# the 100 KB values are incompressible, so both tables keep them out of
# line in TOAST):
#   hits    the same B85_HIT_KEYS keys over and over;
#   misses  that store: every call a new key of a cheap function.  The new
#           keys are scattered over the int range, as new arguments of a
#           memoized function usually are (B85_MISS_KEYS=sequential: one
#           ascending run, the memo table's best case: every insert goes to
#           the rightmost leaf of its index; cachier hashes keys, so for it
#           the two are the same).
# Every result is consumed by ascii() (get_byte() for bytea), which needs
# the whole value, as sending it to a client would: a PL/pgSQL variable can
# hold a TOAST pointer, and count() would never fetch what it points to.
# Each timed statement is its own transaction, timed in the session around
# the statement and its commit (cachier writes a statement's entries when
# it ends); memo and cachier statements alternate, B85_REPS times, and the
# median per-call time of each is compared.  Target: cachier / memo <= 1.0.
#
# Parameters (environment, defaults in brackets): B85_REPS [7],
# B85_TYPE [text], B85_MISS_KEYS [scattered], B85_SIZES [8 1024 102400],
# B85_HIT_CALLS [100000] and B85_MISS_CALLS [4000] (calls per statement for
# results under 1 KB; halved from 1 KB, divided by 50 from 64 KB),
# B85_HIT_KEYS [1000; 100 from 64 KB].  The defaults take about 30 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_tmp

reps=${B85_REPS:-7}
type=${B85_TYPE:-text}
sizes=${B85_SIZES:-8 1024 102400}
hit_calls=${B85_HIT_CALLS:-100000}
miss_calls=${B85_MISS_CALLS:-4000}
hit_keys=${B85_HIT_KEYS:-}
miss_keys=${B85_MISS_KEYS:-scattered}
case "$type" in
	text | bytea) ;;
	*) echo "B85_TYPE must be text or bytea" >&2; exit 1 ;;
esac
# the new key of miss i: scattered over the int range (i times an odd
# number, modulo 2^31: no two alike), or i itself
case "$miss_keys" in
	scattered) new_key="((i::bigint * 1103515245) % 2147483648)::int" ;;
	sequential) new_key=i ;;
	*) echo "B85_MISS_KEYS must be scattered or sequential" >&2; exit 1 ;;
esac

# sum(ascii(f(key))): the whole value is needed (get_byte(f(key), 0) for bytea)
consumed() {	# size variant key
	if [ "$type" = text ]; then
		echo "sum(ascii(bench85.f_$1_$2($3)))"
	else
		echo "sum(get_byte(bench85.f_$1_$2($3), 0))"
	fi
}

header "Issue 13: the table tier vs a hand-written memo table ($type results, $miss_keys new keys)"
if [ "$(q "SELECT current_setting('cachier.shared_cache_size', true)")" != "0" ]; then
	echo "cachier.shared_cache_size is not 0: the memory tier would be measured, not the table"
	exit 1
fi

# calls per statement for a size: fewer for bigger values, so that every
# statement takes tens of milliseconds
calls_for() {
	local base=$1 size=$2
	if [ "$size" -ge 65536 ]; then echo $((base / 50)); elif [ "$size" -ge 1024 ]; then echo $((base / 2)); else echo "$base"; fi
}
keys_for() {
	if [ -n "$hit_keys" ]; then echo "$hit_keys"; elif [ "$1" -ge 65536 ]; then echo 100; else echo 1000; fi
}

# ---------------------------------------------------------------- functions
# f_S(i) returns an S-byte value that starts with i; its body holds an
# incompressible S-byte literal (base64 of SHA-256 digests), so computing
# it is one copy.
{
	echo "SET client_min_messages = warning;"
	echo "DROP SCHEMA IF EXISTS bench85 CASCADE;"
	echo "CREATE SCHEMA bench85;"
	echo "CREATE TABLE bench85.runs (kind text, size int, variant text, rep int, calls int, ms float8);"
	for s in $sizes; do
		if [ "$type" = text ]; then
			small="lpad(i::text, $s, '0')"
			big="overlay(%L placing i::text from 1)"
		else
			small="substr(int8send(i), 9 - $s)"
			big="overlay(%L::bytea placing int4send(i) from 1)"
		fi
		if [ "$s" -le 8 ]; then body="BEGIN RETURN $small; END"; else body="BEGIN RETURN $big; END"; fi
		cat <<SQL
SELECT format(\$f\$CREATE FUNCTION bench85.f_$s(i int) RETURNS $type
    LANGUAGE plpgsql IMMUTABLE AS %L\$f\$,
    format(\$b\$$body\$b\$, (SELECT left(string_agg(encode(sha256(g::text::bytea), 'base64'), ''), $s)
                       FROM generate_series(1, $s / 40 + 1) g))) \\gexec
CREATE TABLE bench85.memo_$s (k int PRIMARY KEY, v $type);
CREATE FUNCTION bench85.f_${s}_memo(k int) RETURNS $type
LANGUAGE plpgsql AS \$\$
DECLARE
    r $type;
BEGIN
    SELECT v INTO r FROM bench85.memo_$s m WHERE m.k = f_${s}_memo.k;
    IF NOT FOUND THEN
        r := bench85.f_$s(k);
        INSERT INTO bench85.memo_$s VALUES (k, r) ON CONFLICT DO NOTHING;
    END IF;
    RETURN r;
END
\$\$;
SELECT cachier_memoize('bench85.f_$s(int)') \\g /dev/null
SQL
	done
} | sql

# ---------------------------------------------------------------- the runs
# One psql session runs everything, so that no statement pays for a cold
# session; each timed statement is followed by the insert of its time.
timed() {	# kind size variant rep calls statement
	cat <<SQL
SELECT clock_timestamp() AS t0 \\gset
$6 \\g /dev/null
INSERT INTO bench85.runs VALUES ('$1', $2, '$3', $4, $5,
    extract(epoch FROM clock_timestamp() - :'t0') * 1000);
SQL
}
{
	echo "SET jit = off;"
	for s in $sizes; do
		k=$(keys_for "$s")
		# warm: every hot key stored, then read once by each
		for v in memo cached; do
			echo "SELECT $(consumed "$s" "$v" i) FROM generate_series(0, $k - 1) i \\g /dev/null"
		done
	done
	# hint bits set and statistics fresh in both, no autovacuum while timing
	echo "VACUUM ANALYZE cachier.entries;"
	for s in $sizes; do echo "VACUUM ANALYZE bench85.memo_$s;"; done
	for s in $sizes; do
		n=$(calls_for "$hit_calls" "$s")
		k=$(keys_for "$s")
		for r in $(seq 1 "$reps"); do
			for v in memo cached; do
				timed hit "$s" "$v" "$r" "$n" \
					"SELECT $(consumed "$s" "$v" "i % $k") FROM generate_series(1, $n) i"
			done
		done
		n=$(calls_for "$miss_calls" "$s")
		for r in $(seq 1 "$reps"); do
			for v in memo cached; do
				# fresh keys: memo and cachier each their own range per rep
				if [ "$v" = cached ]; then lo=$(((r * 2 + 1) * 1000000)); else lo=$((r * 2 * 1000000)); fi
				timed miss "$s" "$v" "$r" "$n" \
					"SELECT $(consumed "$s" "$v" "$new_key") FROM generate_series($lo, $lo + $n - 1) i"
			done
		done
	done
} >"$tmp/runs.sql"
echo "timing: $reps reps of each statement, memo and cachier alternating ..."
started=$(now_s)
sql -f "$tmp/runs.sql"
elapsed=$(awk -v a="$started" -v b="$(now_s)" 'BEGIN { printf "%.0f", b - a }')

sql <<'SQL'
\echo
\echo 'µs per call: median over the reps (min-max); each statement timed with its COMMIT'
WITH per AS (
    SELECT kind, size, variant, 1000 * ms / calls AS us, calls FROM bench85.runs
), med AS (
    SELECT kind, size, variant, max(calls) AS calls,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY us) AS med, min(us) AS lo, max(us) AS hi
      FROM per GROUP BY kind, size, variant
)
SELECT m.kind, pg_size_pretty(m.size::bigint) AS result, m.calls AS "calls/stmt",
       format('%s (%s-%s)', round(m.med::numeric, 2), round(m.lo::numeric, 2), round(m.hi::numeric, 2)) AS "memo µs",
       format('%s (%s-%s)', round(c.med::numeric, 2), round(c.lo::numeric, 2), round(c.hi::numeric, 2)) AS "cachier µs",
       round((c.med / m.med)::numeric, 2) AS "cachier/memo",
       CASE WHEN c.med <= m.med THEN 'met' ELSE 'NOT MET' END AS "<= 1.0"
  FROM med m JOIN med c USING (kind, size)
 WHERE m.variant = 'memo' AND c.variant = 'cached'
 ORDER BY m.kind, m.size;
\echo 'per-rep ratios (cachier / memo of the same rep), to judge the noise:'
SELECT kind, pg_size_pretty(size::bigint) AS result,
       string_agg(round((c.ms / m.ms)::numeric, 2)::text, ' ' ORDER BY rep) AS ratios
  FROM bench85.runs m JOIN bench85.runs c USING (kind, size, rep)
 WHERE m.variant = 'memo' AND c.variant = 'cached'
 GROUP BY kind, size ORDER BY kind, size;
SELECT (SELECT count(*) FROM cachier.entries e JOIN cachier.function_ids i ON i.id = e.fn_id
         WHERE i.identity LIKE '%bench85.f\_%') AS cachier_entries,
       (SELECT pg_size_pretty(pg_total_relation_size('cachier.entries'))) AS cachier_size,
       (SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'bench85' AND c.relname LIKE 'memo\_%' AND c.relkind = 'r') AS memo_size;
SQL
echo "timed part: ${elapsed} s; $(machine_load)"
