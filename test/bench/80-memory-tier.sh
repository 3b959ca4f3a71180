# shellcheck shell=bash disable=SC2119
# 80-memory-tier.sh: the shared memory tier (issue 13).  Run by run.sh
# inside the bench cluster, or alone (CACHIER_PG_BINDIR=/path/to/bin bash
# test/bench/80-memory-tier.sh) against any PostgreSQL 15 with cachier
# installed.
#
# The memory tier needs cachier.shared_cache_size at server start, and the
# other sections measure the table tier, so this section starts its own
# throwaway clusters (initdb in a scratch directory, unix socket only):
#   A  a memory-tier hit against a call of the bare PL/pgSQL function in the
#      same statement harness: 1 and 10 arguments, 8-byte (float8) and 1 KB
#      (text) results; 200,000 calls over 1,000 keys, median of 3.
#      Goal: hit <= 1.6x the bare call.
#   B  pgbench, one cached call per statement (SELECT g_cached(:k) over 10K
#      hot keys) against the same script calling g(:k): simple and prepared
#      protocol, 1, 8 and 32 clients, 5 s per run (PGBENCH_SECONDS), bare
#      and cached run one after another in B80_ROUNDS (5) rounds; the ratio
#      is the median of the rounds' ratios.  Goal: tps >= 0.95x.
#      The same through the table tier alone (gt, shared_cache => false).
#      In its own cluster with an area sized for the hot set (B80_AREA,
#      16MB; B80_AREA=256MB shows what a large area costs new backends),
#      in huge pages if the machine has them (B80_HUGEPAGES=N reserves N
#      for the section, as root).
#   C  the hit cost of the same 1,000 hot keys with 1K and with 1M entries
#      resident.  Goal: <= 1.2x.
#   D  a Zipf(0.99) trace over 10x the keys a 2 MB area holds: the memory
#      tier's hit ratio against an LRU of the same capacity simulated over
#      the same trace (python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_tmp

header "Issue 13: the shared memory tier"

bindir=${CACHIER_PG_BINDIR:-$(pg_config --bindir)}
chmod 777 "$tmp"
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start a cluster in $tmp/$1 with a memory tier of $2; sets port
port=""
clusters=()
start_cluster() {
	local dir="$tmp/$1"
	port=5500
	while [ -e "$tmp/.s.PGSQL.$port" ] || (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null; do
		port=$((port + 1))
	done
	as_owner "$bindir/initdb" -D "$dir" -A trust -U postgres >/dev/null
	cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$tmp'
port = $port
shared_preload_libraries = 'cachier'
cachier.shared_cache_size = '$2'
shared_buffers = 256MB
max_connections = 60
jit = off
fsync = off
synchronous_commit = off
CONF
	as_owner "$bindir/pg_ctl" -D "$dir" -l "$dir/log" -w start >/dev/null
	clusters+=("$dir")
}
stop_clusters() {
	local d
	for d in "${clusters[@]}"; do
		as_owner "$bindir/pg_ctl" -D "$d" -m fast stop >/dev/null 2>&1 || true
	done
	rm -rf "$tmp"
}
trap stop_clusters EXIT

mq() { "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$tmp" -p "$port" -U postgres -d postgres -c "$1"; }
msql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "$port" -U postgres -d postgres "$@"; }

# ms of one run of one statement, timed inside the session
time1() {
	msql -At <<SQL
SELECT extract(epoch FROM clock_timestamp()) * 1000 AS t0 \\gset
$1 \\g /dev/null
SELECT round((extract(epoch FROM clock_timestamp()) * 1000 - :t0)::numeric, 3);
SQL
}
# median (ms) of three runs
time3() {
	for _ in 1 2 3; do time1 "$1"; done | sort -g | sed -n 2p
}

# B80_SECTIONS (ABCD) picks sections, e.g. B80_SECTIONS=B for pgbench alone
sections=${B80_SECTIONS:-ABCD}
want() { case $sections in *"$1"*) return 0 ;; esac; return 1; }

if want A || want C; then
start_cluster main 256MB
msql <<'SQL'
CREATE EXTENSION cachier;
CREATE FUNCTION h(i int) RETURNS float8 LANGUAGE plpgsql IMMUTABLE
    AS 'BEGIN RETURN i * 2.5; END';
SELECT cachier_memoize('h(int)') \gset
CREATE FUNCTION b1(i int) RETURNS float8 LANGUAGE plpgsql IMMUTABLE
    AS 'BEGIN RETURN i * 2.5; END';
CREATE FUNCTION b1k(i int) RETURNS text LANGUAGE plpgsql IMMUTABLE
    AS 'BEGIN RETURN lpad(i::text, 1024, ''x''); END';
CREATE FUNCTION b10(a int, b int, c int, d int, e int, f int, g int, h int, i int, j int)
    RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS 'BEGIN RETURN a * 2.5; END';
CREATE FUNCTION b10k(a int, b int, c int, d int, e int, f int, g int, h int, i int, j int)
    RETURNS text LANGUAGE plpgsql IMMUTABLE AS 'BEGIN RETURN lpad(a::text, 1024, ''x''); END';
CREATE FUNCTION g(k int) RETURNS float8 LANGUAGE plpgsql IMMUTABLE
    AS 'BEGIN RETURN k * 2.5; END';
SELECT cachier_memoize(f) FROM unnest(ARRAY['b1(int)', 'b1k(int)',
    'b10(int,int,int,int,int,int,int,int,int,int)',
    'b10k(int,int,int,int,int,int,int,int,int,int)', 'g(int)']::regprocedure[]) f \g /dev/null
SQL
echo "memory tier: $(mq 'SELECT pg_size_pretty(size_bytes) FROM cachier_memory'), server $(mq 'SHOW server_version')"

fi
if want C; then
# ---------------------------------------------------------------- C: 1K vs 1M resident
echo
echo "C. hit cost of 1,000 hot keys with 1K and with 1M entries resident"
hot="SELECT count(h_cached(i % 1000)) FROM generate_series(1, 200000) i"
mq "SELECT count(h_cached(i)) FROM generate_series(0, 999) i; SELECT count(h_cached(i)) FROM generate_series(0, 999) i" >/dev/null
res_1k=$(mq 'SELECT entries FROM cachier_memory')
ms_1k=$(time3 "$hot")
t0=$(now_s)
for b in $(seq 0 9); do
	mq "SELECT count(h_cached(i)) FROM generate_series(1000 + $b * 100000, 1000 + ($b + 1) * 100000 - 1) i" >/dev/null
done
res_1m=$(mq 'SELECT entries FROM cachier_memory')
fill_s=$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.0f", b - a }')
# no autovacuum of the million new rows while the next sections measure
mq 'VACUUM ANALYZE cachier.entries' >/dev/null
mq 'CHECKPOINT' >/dev/null
misses0=$(mq 'SELECT misses FROM cachier_memory')
ms_1m=$(time3 "$hot")
misses1=$(mq 'SELECT misses FROM cachier_memory')
# again with 1K resident: a restart empties the area, the hot keys warm from the table
as_owner "$bindir/pg_ctl" -D "$tmp/main" -l "$tmp/main/log" -w restart >/dev/null
mq "SELECT count(h_cached(i)) FROM generate_series(0, 999) i" >/dev/null
ms_1k2=$(time3 "$hot")
awk -v a="$ms_1k" -v a2="$ms_1k2" -v b="$ms_1m" -v ra="$res_1k" -v rb="$res_1m" -v f="$fill_s" -v m="$((misses1 - misses0))" 'BEGIN {
	printf "  %8d entries resident: %6.3f us/call; after a restart, again: %6.3f us/call\n", ra, a * 1000 / 200000, a2 * 1000 / 200000
	printf "  %8d entries resident: %6.3f us/call   (1M filled in %s s: computed, stored, published)%s\n", rb, b * 1000 / 200000, f, m ? "  MEMORY MISSES: " m : ""
	lo = a < a2 ? a : a2
	printf "  ratio 1M / 1K: %.2fx   (goal <= 1.2x; against the faster 1K sample)\n", b / lo }'

fi
if want A; then
# ---------------------------------------------------------------- A: hit vs bare call
echo
echo "A. memory-tier hit vs a bare PL/pgSQL call (200,000 calls over 1,000 keys, median of 3)"
args10='i % 1000, 1, 2, 3, 4, 5, 6, 7, 8, 9'
declare -A call=(
	[b1]="b1(i % 1000)" [b1k]="b1k(i % 1000)"
	[b10]="b10($args10)" [b10k]="b10k($args10)")
declare -A label=(
	[b1]="1 argument,   8-byte result" [b1k]="1 argument,   1 KB result "
	[b10]="10 arguments, 8-byte result" [b10k]="10 arguments, 1 KB result ")
empty_ms=$(time3 "SELECT count(i % 1000) FROM generate_series(1, 200000) i")
printf "  empty loop: %.3f us/row (subtracted for the net figures)\n" "$(awk -v m="$empty_ms" 'BEGIN { print m * 1000 / 200000 }')"
for f in b1 b1k b10 b10k; do
	cached=${call[$f]/$f(/${f}_cached(}
	# warm: the first pass computes and stores, the second promotes nothing new
	mq "SELECT count($cached) FROM generate_series(0, 999) i; SELECT count($cached) FROM generate_series(0, 999) i" >/dev/null
	misses0=$(mq 'SELECT misses FROM cachier_memory')
	# bare and cached interleaved, three rounds, median of each
	for _ in 1 2 3; do
		echo "b $(time1 "SELECT count(${call[$f]}) FROM generate_series(1, 200000) i")"
		echo "h $(time1 "SELECT count($cached) FROM generate_series(1, 200000) i")"
	done >"$tmp/rounds"
	bare_ms=$(awk '$1 == "b" { print $2 }' "$tmp/rounds" | sort -g | sed -n 2p)
	hit_ms=$(awk '$1 == "h" { print $2 }' "$tmp/rounds" | sort -g | sed -n 2p)
	misses1=$(mq 'SELECT misses FROM cachier_memory')
	awk -v l="${label[$f]}" -v b="$bare_ms" -v h="$hit_ms" -v e="$empty_ms" -v m="$((misses1 - misses0))" 'BEGIN {
		n = 200000; bu = b * 1000 / n; hu = h * 1000 / n; eu = e * 1000 / n
		printf "  %s: bare %6.3f us, memory hit %6.3f us: %.2fx (net of the loop %.3f vs %.3f us: %.2fx; goal <= 1.6x)%s\n",
			l, bu, hu, hu / bu, bu - eu, hu - eu, (hu - eu) / (bu - eu), m ? "  MEMORY MISSES: " m : "" }'
done

fi
if want B; then
# ---------------------------------------------------------------- B: pgbench
# in a cluster of its own, with an area sized for its hot set (B80_AREA):
# every new backend faults in the pages of the area it touches, and with a
# 256MB area the 10K hot keys' entries and index groups are spread over
# thousands of pages (on this VM a page fault costs tens of microseconds)
echo
echo "B. pgbench, one call per statement over 10K hot keys: cached (memory tier, table tier) vs bare tps"
echo "   (${PGBENCH_SECONDS:-5} s per run; ${B80_ROUNDS:-5} rounds of bare, memory and table runs one after another;"
echo "    tps are medians, ratios the median of the rounds' ratios; area ${B80_AREA:-16MB})"
main_port=$port
# B80_HUGEPAGES=N (as root): reserve N huge pages (vm.nr_hugepages) for this
# cluster, given back after it stops; the server's huge_pages = try takes them
hugepages_before=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
if [ -n "${B80_HUGEPAGES:-}" ] && [ "$(id -u)" -eq 0 ]; then
	echo "$B80_HUGEPAGES" >/proc/sys/vm/nr_hugepages
fi
# huge pages neither in use nor reserved (a server reserves its segment's at start)
huge_free() { awk '/^HugePages_Free/ { f = $2 } /^HugePages_Rsvd/ { r = $2 } END { print f - r }' /proc/meminfo; }
free_before=$(huge_free)
start_cluster perstmt "${B80_AREA:-16MB}"
huge_used=$((free_before - $(huge_free)))
if [ "$huge_used" -gt 0 ]; then
	echo "   huge pages: the cluster's shared memory takes $huge_used huge pages"
else
	echo "   huge pages: not used (vm.nr_hugepages = $(cat /proc/sys/vm/nr_hugepages)): every backend maps the 4 kB pages it touches"
fi
msql <<'SQL'
CREATE EXTENSION cachier;
CREATE FUNCTION g(k int) RETURNS float8 LANGUAGE plpgsql IMMUTABLE
    AS 'BEGIN RETURN k * 2.5; END';
SELECT cachier_memoize('g(int)') \g /dev/null
-- the same function through the table tier only
CREATE FUNCTION gt(k int) RETURNS float8 LANGUAGE plpgsql IMMUTABLE
    AS 'BEGIN RETURN k * 2.5; END';
SELECT cachier_memoize('gt(int)', shared_cache => false) \g /dev/null
SQL
mq "SELECT count(g_cached(i)) FROM generate_series(1, 10000) i; SELECT count(g_cached(i)) FROM generate_series(1, 10000) i" >/dev/null
mq "SELECT count(gt_cached(i)) FROM generate_series(1, 10000) i" >/dev/null
printf '\\set k random(1, 10000)\nSELECT g_cached(:k);\n' >"$tmp/cached.sql"
printf '\\set k random(1, 10000)\nSELECT gt_cached(:k);\n' >"$tmp/table.sql"
printf '\\set k random(1, 10000)\nSELECT g(:k);\n' >"$tmp/bare.sql"
tps() {
	"$bindir/pgbench" -n -h "$tmp" -p "$port" -U postgres -T "${PGBENCH_SECONDS:-5}" -c "$1" \
		-j "$(($1 < 2 ? 1 : 2))" -M "$2" -f "$tmp/$3.sql" postgres 2>/dev/null |
		awk '/^tps/ { printf "%.0f", $3; exit }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rounds=${B80_ROUNDS:-5}
for mode in simple prepared; do
	for c in 1 8 32; do
		b=(); x=(); t=(); rx=(); rt=()
		for r in $(seq 1 "$rounds"); do
			# the three runs of a round follow each other, in an order
			# that turns from round to round; each round gives a ratio
			case $((r % 3)) in
			1) order="bare cached table" ;;
			2) order="cached table bare" ;;
			0) order="table bare cached" ;;
			esac
			for s in $order; do
				case $s in
				bare) bt=$(tps "$c" "$mode" bare) ;;
				cached) xt=$(tps "$c" "$mode" cached) ;;
				table) tt=$(tps "$c" "$mode" table) ;;
				esac
			done
			b+=("$bt"); x+=("$xt"); t+=("$tt")
			rx+=("$(awk -v a="$xt" -v b="$bt" 'BEGIN { printf "%.3f", a / b }')")
			rt+=("$(awk -v a="$tt" -v b="$bt" 'BEGIN { printf "%.3f", a / b }')")
		done
		awk -v m="$mode" -v c="$c" -v b="$(median "${b[@]}")" -v x="$(median "${x[@]}")" -v t="$(median "${t[@]}")" \
			-v rx="$(median "${rx[@]}")" -v rt="$(median "${rt[@]}")" 'BEGIN {
			printf "  %-8s %2d clients: bare %6d tps, memory tier %6d tps: %.2fx (goal >= 0.95x); table tier %6d tps: %.2fx\n", m, c, b, x, rx, t, rt }'
		echo "           per-round ratios: memory ${rx[*]} / table ${rt[*]}"
		echo "           tps: bare ${b[*]} / memory ${x[*]} / table ${t[*]}"
	done
done
echo "  its memory tier: $(mq "SELECT format('%s entries, %s used, hit ratio %s', entries, pg_size_pretty(used_bytes), round(hit_ratio::numeric, 4)) FROM cachier_memory")"
as_owner "$bindir/pg_ctl" -D "$tmp/perstmt" -m fast stop >/dev/null
if [ -n "${B80_HUGEPAGES:-}" ] && [ "$(id -u)" -eq 0 ]; then
	echo "$hugepages_before" >/proc/sys/vm/nr_hugepages
fi
port=$main_port
{ want A || want C; } && echo "  memory tier after A-C: $(mq "SELECT format('%s entries, %s used, hit ratio %s', entries, pg_size_pretty(used_bytes), round(hit_ratio::numeric, 4)) FROM cachier_memory")"

fi
want D || exit 0
# ---------------------------------------------------------------- D: Zipf vs LRU
echo
echo "D. Zipf(0.99) over 10x the keys a 2 MB area holds: hit ratio vs a simulated LRU"
if ! command -v python3 >/dev/null; then
	echo "  skipped: python3 is not installed"
	exit 0
fi
start_cluster small 2MB
msql <<'SQL'
CREATE EXTENSION cachier;
CREATE FUNCTION z(k int) RETURNS float8 LANGUAGE plpgsql IMMUTABLE
    AS 'BEGIN RETURN k * 2.5; END';
SELECT cachier_memoize('z(int)') \gset
CREATE TABLE trace (n int PRIMARY KEY, k int);
SQL
# capacity in entries: fill with distinct keys until the area evicts
mq "SELECT count(z_cached(i)) FROM generate_series(-40000, -1) i; SELECT count(z_cached(i)) FROM generate_series(-40000, -1) i" >/dev/null
capacity=$(mq 'SELECT entries FROM cachier_memory')
mq 'SELECT cachier_memory_reset()' >/dev/null
keys=$((capacity * 10))
calls=500000
python3 - "$keys" "$calls" "$tmp/trace.csv" <<'PY'
import bisect, random, sys
keys, calls, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
random.seed(13)
cdf, total = [], 0.0
for r in range(1, keys + 1):
    total += 1.0 / r ** 0.99
    cdf.append(total)
perm = list(range(1, keys + 1))
random.shuffle(perm)  # popular keys spread over the key space
with open(out, "w") as f:
    for n in range(calls):
        f.write("%d,%d\n" % (n, perm[bisect.bisect_left(cdf, random.random() * total)]))
PY
msql -c "\\copy trace FROM '$tmp/trace.csv' WITH (FORMAT csv)"
mq "SELECT cachier_stats_reset()" >/dev/null
trace_ms=$(mq "SELECT extract(epoch FROM clock_timestamp()) * 1000" )
# one statement (and transaction) per 1,000 calls of the trace, in order
for ((b = 0; b < calls; b += 1000)); do
	echo "SELECT count(z_cached(k)) FROM (SELECT k FROM trace WHERE n >= $b AND n < $((b + 1000)) ORDER BY n) t;"
done >"$tmp/trace.sql"
msql -f "$tmp/trace.sql" >/dev/null
trace_ms=$(awk -v a="$trace_ms" -v b="$(mq "SELECT extract(epoch FROM clock_timestamp()) * 1000")" 'BEGIN { print b - a }')
mem_hits=$(mq "SELECT memory_hits FROM cachier_stats WHERE function = 'z(int)'::regprocedure")
lru=$(python3 - "$capacity" "$tmp/trace.csv" <<'PY'
import sys
from collections import OrderedDict
cap, hits, n = int(sys.argv[1]), 0, 0
lru = OrderedDict()
for line in open(sys.argv[2]):
    k = line.split(",")[1]
    n += 1
    if k in lru:
        hits += 1
        lru.move_to_end(k)
    else:
        lru[k] = True
        if len(lru) > cap:
            lru.popitem(last=False)
print("%.4f" % (hits / n))
PY
)
awk -v c="$capacity" -v k="$keys" -v n="$calls" -v h="$mem_hits" -v l="$lru" -v t="$trace_ms" 'BEGIN {
	printf "  area holds %d entries; %d distinct keys, %d calls\n", c, k, n
	printf "  memory tier (CLOCK) hit ratio: %.4f   LRU of %d entries: %s   ratio %.3f\n", h / n, c, l, (h / n) / l
	printf "  mean cost per call over the trace (hits, table hits and misses): %.2f us\n", t * 1000 / n }'
