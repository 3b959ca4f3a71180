#!/bin/bash
# The examples of README "Calling from applications", run through real
# drivers (Debian's python3-psycopg, python3-psycopg2, python3-sqlalchemy)
# and pgbench -M prepared, against a throwaway cluster with cachier
# installed.  Each example_*.py prints what README shows; its output must
# equal expected/<name>.out, and README.md must contain the file verbatim.
# Run as a user that may start a cluster (not root); PG_CONFIG picks the
# installation.  Prints "test/py/<name> ... ok|FAILED" per test.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
python=/usr/bin/python3		# Debian's, which the python3-* packages are for
work=$(mktemp -d /tmp/cachier-py.XXXXXX)
export PGHOST=$work PGPORT=5499 PGDATABASE=app PGUSER=$(id -un)
unset PGPASSWORD PGSERVICE

"$bindir/initdb" -D "$work/data" -A trust -N --encoding=UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 || {
	cat "$work/initdb.log"; exit 1; }
cat "$top/test/regress.conf" >>"$work/data/postgresql.conf"
printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %s\n" \
	"$work" "$PGPORT" >>"$work/data/postgresql.conf"
"$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null || {
	cat "$work/server.log"; exit 1; }
trap '"$bindir/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null; rm -rf "$work"' EXIT

failed=0
report() {		# name status [detail file]
	echo "test/py/$1 ... $2"
	if [ "$2" != ok ]; then
		failed=$((failed + 1))
		[ -n "${3:-}" ] && cat "$3"
	fi
}
fresh_database() {
	"$bindir/dropdb" --if-exists app && "$bindir/createdb" app &&
		"$bindir/psql" -XqAt -v ON_ERROR_STOP=1 -f "$here/setup.sql" >/dev/null
}

for example in "$here"/example_*.py; do
	name=$(basename "$example" .py)
	out="$work/$name.out"
	if ! fresh_database >"$out" 2>&1; then
		report "$name.py" FAILED "$out"; continue
	fi
	"$python" "$example" >"$out" 2>&1
	expected=$here/expected/$name.out
	[ -f "$expected" ] || expected=/dev/null
	if ! diff -u "$expected" "$out" >"$work/$name.diff"; then
		report "$name.py" FAILED "$work/$name.diff"
	elif ! "$python" -c 'import sys; sys.exit(open(sys.argv[2]).read() not in open(sys.argv[1]).read())' \
		"$top/README.md" "$example"; then
		echo "README.md does not contain $example verbatim" >"$work/$name.diff"
		report "$name.py" FAILED "$work/$name.diff"
	else
		report "$name.py" ok
	fi
done

# pgbench's prepared mode binds :n as a parameter of unknown type
name=pgbench_prepared
out="$work/$name.out"
if fresh_database >"$out" 2>&1 &&
	"$bindir/pgbench" -n -M prepared -c 2 -t 50 -f "$here/$name.sql" >>"$out" 2>&1 &&
	grep -q "number of failed transactions: 0" "$out"; then
	report "$name.sql" ok
else
	report "$name.sql" FAILED "$out"
fi
exit $((failed > 0))
