# shellcheck shell=bash disable=SC2119
# 50-redis.sh: a hit through the Redis tier against a raw GET round trip
# to the same Redis (issue 5).  Run by run.sh inside the cluster.
#
# A redis-server is started on a free loopback port for this section.  The
# Redis-tier hit is one call of a memoized wrapper with storage => 'redis'
# over 1,000 warm keys, 20,000 calls in one statement; its cost includes the
# key's SHA-256, the GET round trip, the header check and the decoding.  The
# raw round trip is redis-benchmark with one client sending GET, one at a
# time (no pipelining), against the same server.  Goal: hit <= 1.5x raw.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_tmp

header "Issue 5: a Redis-tier hit against a raw GET round trip"

port=6400
while redis-cli -p "$port" ping >/dev/null 2>&1; do port=$((port + 1)); done
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
	--daemonize yes --dir "$tmp" --pidfile "$tmp/redis.pid" >/dev/null
trap 'kill "$(cat "$tmp/redis.pid" 2>/dev/null)" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
url="redis://127.0.0.1:$port"

sql <<SQL
CREATE FUNCTION bench.rcheap(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE
AS 'BEGIN RETURN i * 2; END';
SELECT cachier_memoize('bench.rcheap(int)', storage => 'redis') \\gset
CREATE FUNCTION bench.tcheap(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE
AS 'BEGIN RETURN i * 2; END';
SELECT cachier_memoize('bench.tcheap(int)') \\gset
SQL

calls=20000
# median of three timings (ms) of one statement, in a session with Redis set
time_stmt() {
	for _ in 1 2 3; do
		psql -X -q -At -v ON_ERROR_STOP=1 <<SQL
SET cachier.redis_url = '$url';
SELECT count($1(i % 1000)) FROM generate_series(1, 1000) i;
SELECT extract(epoch FROM clock_timestamp()) * 1000 AS t0 \\gset
SELECT count($1(i % 1000)) FROM generate_series(1, $calls) i \\g /dev/null
SELECT round((extract(epoch FROM clock_timestamp()) * 1000 - :t0)::numeric, 3);
SQL
	done | sort -g | sed -n 2p
}

redis_ms=$(time_stmt bench.rcheap_cached)
table_ms=$(time_stmt bench.tcheap_cached)
keys=$(redis-cli -p "$port" dbsize)
rps=$(redis-benchmark -p "$port" -c 1 -n "$calls" -t get -q 2>/dev/null |
	grep -o 'GET: [0-9.]*' | awk '{ print $2 }')

awk -v rm="$redis_ms" -v tm="$table_ms" -v n="$calls" -v rps="$rps" -v keys="$keys" 'BEGIN {
	hit = rm * 1000 / n; thit = tm * 1000 / n; raw = 1e6 / rps
	printf "keys in Redis:                     %d (1,000 expected)\n", keys
	printf "Redis-tier hit (wrapper):          %7.2f us/call  (%d calls, median of 3)\n", hit, n
	printf "raw GET round trip (redis-benchmark -c 1): %5.2f us/request\n", raw
	printf "table-tier hit, same machine:      %7.2f us/call\n", thit
	printf "ratio hit / raw round trip:        %7.2f  goal (<= 1.5) %s\n", hit / raw, (hit / raw <= 1.5 ? "met" : "NOT MET")
}'
