#!/bin/bash
# cachier benchmark (`make bench`).
#
# Usage:  test/bench/run.sh [SECTION...]
#   SECTION is a two-digit prefix (10, 20, ...) or a file name under
#   test/bench/; without arguments every section runs, in name order.
#
# Outside the cluster (first invocation) this script installs missing
# packages (test/scripts/install-deps.sh), builds and installs the current
# code when run as root, then starts ONE throwaway cluster with
# pg_virtualenv and re-runs itself inside it.  Inside, it runs:
#
#   00-setup.sql        the extension and the bench schema (always runs)
#   NN-name.sql         run with psql (ON_ERROR_STOP)
#   NN-name.sh          run with bash; lib.sh gives the helpers
#
# Every section prints its own report.  All numbers of one run come from
# the same cluster, so their ratios are comparable.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ -z "${CACHIER_BENCH_INSIDE:-}" ]; then
	"$(dirname "$0")/../scripts/install-deps.sh"
	if [ "$(id -u)" -eq 0 ]; then
		# Bench the code in the tree, not whatever was installed last.  -B:
		# PGXS tracks no header dependencies, so after a change to
		# src/cachier.h a plain make keeps objects compiled against the old
		# structs (e.g. a CallSite of the old size).
		make -C "$top" -s -B
		make -C "$top" -s install >/dev/null
	fi
	# max_connections: 64 stampede sessions + 16 load clients + slack.
	# jit=off: the 1M-row statements would otherwise be JIT-compiled, which
	# adds a compile time unrelated to the per-call costs measured here.
	exec pg_virtualenv -t \
		-o shared_preload_libraries=cachier \
		-o max_connections=100 \
		-o jit=off \
		env CACHIER_BENCH_INSIDE=1 "$here/run.sh" "$@"
fi

# ---------------------------------------------------------------- inside the cluster
. "$here/lib.sh"

bench_started=$(now_s)
sections=()
if [ $# -eq 0 ]; then
	for f in "$here"/[0-9][0-9]-*.sql "$here"/[0-9][0-9]-*.sh; do
		[ -e "$f" ] && sections+=("$f")
	done
else
	sections+=("$here/00-setup.sql")
	for a in "$@"; do
		for f in "$here"/"$a"*; do
			case "$f" in
				*/00-setup.sql) ;;
				*.sql|*.sh) sections+=("$f") ;;
			esac
		done
	done
fi
mapfile -t sections < <(printf '%s\n' "${sections[@]}" | sort -u)

header "cachier benchmark"
echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "commit:      $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$top" diff --quiet HEAD -- src sql 2>/dev/null || echo ' (+ uncommitted changes in src/ or sql/)')"
echo "machine:     $(nproc) CPUs, $(uname -sr)"
echo "server:      $(q 'SHOW server_version')"
echo "load:        $(machine_load)"
echo "settings:    $(q "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit', 'jit', 'max_connections', 'max_locks_per_transaction', 'shared_preload_libraries')")"

# a failing section is reported and the others still run
failed=()
for f in "${sections[@]}"; do
	rc=0
	case "$f" in
		*.sql) psql -X -q -v ON_ERROR_STOP=1 -f "$f" || rc=$? ;;
		*.sh) bash "$f" || rc=$? ;;
	esac
	if [ "$rc" -ne 0 ]; then
		echo "!!! section $(basename "$f") FAILED (exit $rc)"
		failed+=("$(basename "$f")")
		# the others need the setup
		case "$f" in */00-setup.sql) break ;; esac
	fi
done

echo
echo "load at end: $(machine_load)"
echo "total bench time: $(awk -v a="$bench_started" -v b="$(now_s)" 'BEGIN { printf "%.0f s", b - a }')"
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED sections: ${failed[*]}"
	exit 1
fi
