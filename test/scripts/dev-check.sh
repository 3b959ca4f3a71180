#!/bin/bash
# For developers working as root: run `make installcheck ARGS...` as the
# postgres user on a copy of the tree, then bring results/ and output_iso/
# back so new expected files can be reviewed.  The extension must already
# be installed (make install).
# Usage: test/scripts/dev-check.sh [COPY_DIR] -- [make args, e.g. REGRESS=wrap]
# Run by hand, it runs the tests on throwaway clusters (TEMP_INSTANCE=1, as
# test/run-tests.sh does); run by `make installcheck` as root, the make
# variables given to that make (MAKEFLAGS) say which.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=/tmp/cachier-dev
if [ $# -gt 0 ] && [ "$1" != "--" ]; then dir=$1; shift; fi
[ "${1:-}" = "--" ] && shift
mkdir -p "$dir"
tar -C "$top" --exclude=.git --exclude=tmp_check --exclude=tmp_regress \
	--exclude=tmp_check_iso -cf - . | tar -C "$dir" -xf -
chown -R postgres: "$dir"
mode=
[ -z "${MAKELEVEL:-}" ] && mode=TEMP_INSTANCE=1
runuser -u postgres -- make -s -C "$dir" installcheck $mode "$@"
status=$?
rm -rf "$top/results" "$top/output_iso"
[ -d "$dir/results" ] && cp -r "$dir/results" "$top/"
[ -d "$dir/output_iso" ] && cp -r "$dir/output_iso" "$top/"
[ -f "$dir/regression.diffs" ] && cp "$dir/regression.diffs" "$top/"
exit $status
