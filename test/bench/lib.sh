# shellcheck shell=bash disable=SC2119
# Helpers for the shell sections of the benchmark (sourced, not run).
# PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE come from pg_virtualenv.

# one value (or unaligned rows) from a query
q() {
	psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"
}

# run SQL from stdin, quietly, stopping at the first error
sql() {
	psql -X -q -v ON_ERROR_STOP=1 "$@"
}

header() {
	echo
	echo "=================================================================="
	echo "$1"
	echo "=================================================================="
}

now_s() {
	date +%s.%N
}

# sets tmp to a scratch directory for pgbench logs, removed at exit
# (not in $(...): the trap would fire when the subshell ends)
bench_tmp() {
	tmp=$(mktemp -d /tmp/cachier-bench.XXXXXX)
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" EXIT
}

# "min p50 p99 max n" (nearest-rank percentiles) of numbers on stdin
stats() {
	sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- - - - 0"; exit }
			i50 = int(0.50 * NR); if (i50 < 0.50 * NR) i50++
			i99 = int(0.99 * NR); if (i99 < 0.99 * NR) i99++
			printf "%.1f %.1f %.1f %.1f %d\n", v[1], v[i50], v[i99], v[NR], NR
		}'
}

# load average and the busiest processes that are not part of this cluster,
# so that a reader can tell whether the machine was quiet
machine_load() {
	local others
	others=$(ps -eo pcpu=,pid=,comm= --sort=-pcpu |
		awk -v port="$PGPORT" '$1 >= 20 && $3 != "ps" { printf "%s%s(pid %s, %s%% CPU)", sep, $3, $2, $1; sep = ", " }')
	echo "loadavg $(cut -d' ' -f1-3 /proc/loadavg)${others:+; busy: $others}"
}
