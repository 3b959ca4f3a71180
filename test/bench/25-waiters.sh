# shellcheck shell=bash disable=SC2119,SC2046,SC2086  # numbers are split on purpose
# 25-waiters.sh: what 64 sessions waiting for one key's computation cost
# while they wait, and how soon they have the value once it is committed
# (issue 9, item 6).  Run by run.sh inside the cluster.
#
# 65 pgbench clients (-t 1) call bench.held_cached(<key>) at once: one
# computes, 64 wait.  The computation takes 8 s, in two shapes:
#   running  the function sleeps (pg_sleep): its session is busy, waits for
#            no lock;
#   blocked  the function waits for an advisory lock (the gate) that a
#            psql session holds for 8 s: the waiters see a holder that is
#            itself waiting for a lock, the case in which they must ask
#            whether a deadlock can form through their wait.
# And, for scale, "no cachier": 64 sessions wait for one advisory lock
# (pg_advisory_xact_lock_shared) that another session holds for 8 s.
#
# Per round:
#   CPU while waiting: the CPU time the 64 waiting backends used together
#     over 2 s of their wait (from /proc/<pid>/schedstat, nanoseconds;
#     waits run in rounds of max(deadlock_timeout / 2, 100 ms), each
#     ended by a lock timeout, and between rounds the waiter follows the
#     chain of lock waits from the holder);
#   after fn: per waiter, how long after the function returned in the
#     computing session (no cachier: after the lock holder's last
#     statement) that waiter had its answer: includes the computing
#     session's COMMIT, the wake-up and the lookup.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_tmp

# how long the computation (or the lock) is held: long enough for 65
# clients to connect and for 2 s of measurement on a busy machine
hold=8

header "Issue 9.6: 64 waiters on one key (cost while waiting, wake-up latency)"

sql <<'SQL'
CREATE TABLE bench.held_log (k int, finished timestamptz);
-- computes for secs: sleeping (gate = 0) or waiting for the advisory lock gate
CREATE FUNCTION bench.held(k int, secs float8, gate bigint) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    IF gate = 0 THEN
        PERFORM pg_sleep(secs);
    ELSE
        PERFORM pg_advisory_xact_lock_shared(gate);
    END IF;
    INSERT INTO bench.held_log VALUES (k, clock_timestamp());
    RETURN k;
END
$$;
SELECT cachier_memoize('bench.held(int, float8, bigint)') \gset
SQL

# "pid ns" per backend of pids (on stdin): CPU nanoseconds used so far
cpu_ns() {
	local pid ns
	while read -r pid; do
		[ -r "/proc/$pid/schedstat" ] || continue
		read -r ns _ <"/proc/$pid/schedstat" || continue
		echo "$pid $ns"
	done
}

# milliseconds of CPU used between two cpu_ns samples, by the pids in both
cpu_ms_between() {
	awk 'NR == FNR { a[$1] = $2; next } ($1 in a) { d += $2 - a[$1] } END { printf "%.1f", d / 1e6 }' "$1" "$2"
}

# the pids of the sessions waiting in the lock manager for a key's lock
# (objsubid 27182) or, with "gate", for a plain advisory lock
waiting_pids() {
	local space="objsubid NOT IN (1, 2)"
	[ "${1:-}" = gate ] && space="objsubid = 1"
	q "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND $space AND NOT granted"
}

# wait until n sessions wait (at most 30 s)
await_waiters() {
	local n=$1 which=${2:-} i
	for i in $(seq 1 300); do
		[ "$(waiting_pids "$which" | wc -l)" -ge "$n" ] && return 0
		sleep 0.1
	done
	echo "  (only $(waiting_pids "$which" | wc -l) of $n sessions waited)"
}

# round LABEL MODE KEY: MODE is running, blocked or lock
round() {
	local label=$1 mode=$2 key=$3 log=$tmp/$1 n=64 clients rc=0
	local ref cpu_ms pids aft failed errs got gate=$((900000 + key)) which=
	[ "$mode" = lock ] && which=gate
	rm -f "$log".*
	case "$mode" in
		running) echo "SELECT bench.held_cached($key, $hold, 0);" >"$tmp/script.sql"; clients=$((n + 1)) ;;
		blocked) echo "SELECT bench.held_cached($key, $hold, $gate);" >"$tmp/script.sql"; clients=$((n + 1)) ;;
		lock) echo "SELECT pg_advisory_xact_lock_shared($gate);" >"$tmp/script.sql"; clients=$n ;;
	esac
	if [ "$mode" != running ]; then
		# the gate: held for $hold s; prints when it let go
		psql -X -q -At -c "SELECT pg_advisory_lock($gate)" -c "SELECT pg_sleep($hold)" \
			-c "SELECT extract(epoch FROM clock_timestamp())" >"$log.gate" &
		sleep 0.2
	fi
	pgbench -n -c "$clients" -j 2 -t 1 -f "$tmp/script.sql" \
		--log --log-prefix="$log" >"$log.out" 2>&1 &
	local bench_pid=$!
	await_waiters "$n" "$which"
	sleep 0.5
	pids=$(waiting_pids "$which")
	echo "$pids" | cpu_ns >"$log.cpu0"
	sleep 2
	echo "$pids" | cpu_ns >"$log.cpu1"
	cpu_ms=$(cpu_ms_between "$log.cpu0" "$log.cpu1")
	wait "$bench_pid" || rc=$?
	wait
	if [ "$mode" = lock ]; then
		ref=$(tail -n 1 "$log.gate")
	else
		ref=$(q "SELECT extract(epoch FROM finished) FROM bench.held_log WHERE k = $key")
	fi
	cat "$log".[0-9]* >"$log.all"
	# the computing session answers before the function returned: not a waiter
	aft=$(awk -v e="$ref" '{ a = ($5 + $6 / 1e6 - e) * 1000; if (a >= 0) printf "%.3f\n", a }' "$log.all")
	got=$(wc -l <"$log.all")
	failed=$(grep -Eo 'number of failed transactions: [0-9]+' "$log.out" | grep -Eo '[0-9]+$' || echo "?")
	errs=$(grep -Ec '(ERROR|WARNING|FATAL|aborted)' "$log.out" || true)
	printf '%-22s %5s %9s | %6s %6s %6s %6s | %s\n' "$label" "$(echo "$pids" | wc -w)" "$cpu_ms" \
		$(echo "$aft" | stats | cut -d' ' -f1-4) "$got/$clients answered, failed=$failed, errors=$errs, rc=$rc"
	if [ "$rc" -ne 0 ] || [ "$errs" -ne 0 ]; then
		grep -Ev '^ *$' "$log.out" | head -20 | sed 's/^/    /'
	fi
}

printf '%-22s %5s %9s | %-27s | %s\n' "" "" "CPU ms" "     after fn ms" ""
printf '%-22s %5s %9s | %6s %6s %6s %6s | %s\n' round waits "in 2 s" min p50 p99 max results
round "running holder #1" running 1
round "running holder #2" running 2
round "blocked holder #1" blocked 3
round "blocked holder #2" blocked 4
round "no cachier (lock)" lock 5
echo "(waits: backends seen waiting for the key's lock; CPU ms: their CPU time together over 2 s of"
echo " waiting; after fn: from the function's return in the computing session to each waiter's answer)"
echo "deadlock_timeout = $(q 'SHOW deadlock_timeout'): waits run in rounds of max(deadlock_timeout / 2, 100 ms)"
