# 007_worker_lifecycle.pl: the life of cachier's background workers (with
# shared_preload_libraries = 'cachier').
#  1. SIGHUP: cachier.max_workers and cachier.cleanup_interval, changed with
#     ALTER SYSTEM and pg_reload_conf(), take effect: a new session shows the
#     new max_workers, and a function with cleanup_stale and the default
#     interval is cleaned soon after cleanup_interval goes from '1 day' to
#     '1s'.
#  2. SIGTERM: a fast shutdown while a worker refreshes is prompt; after the
#     start the entries are kept and the launcher is back.  A worker
#     terminated during a refresh leaves the refresh queued: another worker
#     does it.  But a refresh that terminates its own worker every time is
#     not retried in a tight loop.
#  3. kill -9 of the launcher: the server restarts (restart_after_crash),
#     the launcher comes back and next_time refreshes work.
#  4. DROP EXTENSION cachier CASCADE and DROP DATABASE where refreshes were
#     just queued succeed, the launcher keeps running and does not keep
#     starting workers for the dropped database; DROP DATABASE also
#     succeeds while a worker is refreshing a slow function there.
#  5. A streaming standby runs no launcher while in recovery; a stale
#     next_time hit there returns a value without error and writes
#     nothing; after promotion the launcher starts and refreshes work.
#
# The gate that holds a refresh running is a role: while the role
# gate_closed exists, the function gated() sleeps in a loop.  Roles are
# shared by all databases, so it works wherever the worker runs, and a
# session closing it is not connected to the database being dropped.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node counting_setup backdate);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = cachier_node(
	'primary',
	allows_streaming => 1,
	conf => q{
max_worker_processes = 16
# the test framework turns this off; the launcher's crash must restart all
restart_after_crash = on
# refreshes by time only: the gates read a catalog and tables, whose
# changes freshness would otherwise act on (it has its own tests)
cachier.track_reads = off});

# gated(x): counts its execution, waits while the gate is closed.
my $setup = counting_setup() . q{
CREATE FUNCTION gated(x int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('calls');
    WHILE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gate_closed') LOOP
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN x || ':' || currval('calls');
END
$$;
SELECT cachier_memoize('gated(int)', stale_after => '1 hour', next_time => true);
SELECT gated_cached(i) FROM generate_series(1, 5) i;
};
$node->safe_psql('postgres', $setup);
$node->safe_psql(
	'postgres', q{
-- cleaned at the default cleanup_interval
CREATE FUNCTION tidy(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('tidy(int)', stale_after => '1 hour', cleanup_stale => true);
SELECT tidy_cached(i) FROM generate_series(1, 4) i;
UPDATE cachier.entries SET created_at = created_at - interval '1 day'
 WHERE function_id = 'tidy(int)'::regprocedure AND key IN
       (SELECT key FROM cachier_entries WHERE arguments IN ('(1)', '(2)'));
-- a refresh that terminates its worker while the table says so
CREATE TABLE suicidal (yes boolean NOT NULL);
INSERT INTO suicidal VALUES (false);
CREATE FUNCTION doomed(x int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('calls');
    IF (SELECT yes FROM suicidal) THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN x || ':' || currval('calls');
END
$$;
SELECT cachier_memoize('doomed(int)', stale_after => '1 hour', next_time => true);
SELECT doomed_cached(1);
CREATE DATABASE d1;
CREATE DATABASE d2;
CREATE DATABASE d3;
});
$node->safe_psql($_, $setup) for qw(d1 d2 d3);

# ---------------------------------------------------------------- helpers

sub executions
{
	my ($db) = @_;
	return $node->safe_psql($db // 'postgres', 'SELECT executions()');
}

sub counter
{
	my ($db, $fn, $counter) = @_;
	return $node->safe_psql($db,
		"SELECT $counter FROM cachier_stats WHERE function = '$fn'::regprocedure");
}

# Wait until fn's counter in db is $value.
sub wait_counter
{
	my ($db, $fn, $counter, $value) = @_;
	return $node->poll_query_until($db,
		"SELECT $counter FROM cachier_stats WHERE function = '$fn'::regprocedure",
		$value);
}

sub close_gate { $node->safe_psql('postgres', 'CREATE ROLE gate_closed'); }
sub open_gate  { $node->safe_psql('postgres', 'DROP ROLE gate_closed'); }

# A condition: one worker of db is refreshing, held at the closed gate.
sub at_gate_condition
{
	my ($db) = @_;
	return qq{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'cachier worker' AND datname = '$db'
   AND query = 'refreshing a stale cache entry' AND wait_event = 'PgSleep'};
}

# The pid of the refresh worker of db (its cleanup worker may run too).
sub worker_pid
{
	my ($db) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT pid FROM pg_stat_activity
 WHERE backend_type = 'cachier worker' AND datname = '$db'
   AND query = 'refreshing a stale cache entry'});
}

sub launcher_pid
{
	my ($n) = @_;
	return ($n // $node)->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'cachier launcher'});
}

my $tidy_stale = q{
SELECT count(*) FROM cachier.entries
 WHERE function_id = 'tidy(int)'::regprocedure
   AND created_at < now() - interval '1 hour'};

# The launcher now knows every database, and those are due at once: the
# worker of "postgres" cleans tidy (last cleaned: never) and plans the
# next cleanup a day later.
$node->restart;
ok($node->poll_query_until('postgres', $tidy_stale, '0'),
	'start: the worker cleaned the function with cleanup_stale at once');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(arguments, ',' ORDER BY arguments) FROM cachier_entries
		   WHERE function = 'tidy(int)'::regprocedure}),
	'(3),(4)',
	'start: its two fresh entries stayed');

# ---------------------------------------------------------------- 1. SIGHUP

is($node->safe_psql('postgres', 'SHOW cachier.max_workers'),
	'8', 'SIGHUP: max_workers is 8 by default');
is($node->safe_psql('postgres', 'SHOW cachier.cleanup_interval'),
	'1 day', 'SIGHUP: cleanup_interval is 1 day by default');
backdate($node, 'postgres', 'tidy(int)', '(3)');
$node->safe_psql(
	'postgres', q{
ALTER SYSTEM SET cachier.max_workers = 1;
ALTER SYSTEM SET cachier.cleanup_interval = '1s';
SELECT pg_reload_conf();
});
ok($node->poll_query_until('postgres', 'SHOW cachier.max_workers', '1'),
	'SIGHUP: a new session shows max_workers = 1');
is($node->safe_psql('postgres', 'SHOW cachier.cleanup_interval'),
	'1s', 'SIGHUP: and cleanup_interval = 1s');
my $cleaned;
{
	# one second is the new interval: give it ten
	local $PostgreSQL::Test::Utils::timeout_default = 10;
	$cleaned = $node->poll_query_until('postgres', $tidy_stale, '0');
}
ok($cleaned,
	'SIGHUP: after cleanup_interval went from 1 day to 1s, the function with the default '
	  . 'interval is cleaned within 10 s');
$node->safe_psql('postgres', q{SELECT cachier_cleanup('tidy(int)')}) unless $cleaned;

# ---------------------------------------------------------------- 2. SIGTERM

# A fast shutdown while a worker refreshes.
close_gate();
backdate($node, 'postgres', 'gated(int)', '(1)');
my $v1 = $node->safe_psql('postgres', 'SELECT gated_cached(1)');
ok($node->poll_query_until('postgres', at_gate_condition('postgres')),
	'SIGTERM: a worker is refreshing (held at the gate)');
my $entries_query = q{
SELECT string_agg(function || arguments || ' ' || created_at, ', '
                  ORDER BY function::text, arguments)
  FROM cachier_entries};
my $entries_before = $node->safe_psql('postgres', $entries_query);
my $started = time;
$node->stop('fast');
my $elapsed = time - $started;
ok($elapsed < 10,
	sprintf('SIGTERM: the fast shutdown with a worker running took %.1f s', $elapsed));
$node->start;
open_gate();
is($node->safe_psql('postgres', $entries_query),
	$entries_before, 'SIGTERM: after the start the entries are all there, unchanged');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'cachier launcher'},
		'1'),
	'SIGTERM: the launcher is back');
is($node->safe_psql('postgres', 'SHOW cachier.max_workers'),
	'1', 'SIGTERM: ALTER SYSTEM settings are kept');

# A worker terminated during a refresh: the refresh is done by another.
close_gate();
backdate($node, 'postgres', 'gated(int)', '(2)');
my $base = executions();
my $v2 = $node->safe_psql('postgres', 'SELECT gated_cached(2)');
ok($node->poll_query_until('postgres', at_gate_condition('postgres')),
	'terminate: a worker is refreshing gated(2) at the gate');
my $pid = worker_pid('postgres');
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"),
	't', 'terminate: the worker is sent SIGTERM');
ok( $node->poll_query_until(
		'postgres',
		at_gate_condition('postgres') =~ s/count\(\*\) = 1/count(*) FILTER (WHERE pid <> $pid) = 1/r),
	'terminate: another worker takes the refresh up');
open_gate();
ok(wait_counter('postgres', 'gated(int)', 'refreshes_done', '1'),
	'terminate: the refresh completes');
isnt($node->safe_psql('postgres', 'SELECT gated_cached(2)'),
	$v2, 'terminate: the refreshed value is served');
is(executions() - $base, 2,
	'terminate: two executions: the terminated one and the one that stored');

# A refresh that terminates its worker every time.
$node->safe_psql('postgres', 'UPDATE suicidal SET yes = true');
backdate($node, 'postgres', 'doomed(int)', '(1)');
my $log_offset = -s $node->logfile;
my $d1 = $node->safe_psql('postgres', 'SELECT doomed_cached(1)');
$node->wait_for_log(
	qr/FATAL:  terminating background worker "cachier worker" due to administrator command/,
	$log_offset);
usleep(2_000_000);    # a window to count the restarts in
my $log = slurp_file($node->logfile, $log_offset);
my $deaths = () = $log =~
  /FATAL:  terminating background worker "cachier worker" due to administrator command/g;
ok($deaths <= 3,
	"terminate: a refresh that kills its worker is not retried in a tight loop ($deaths workers died within 2 s)"
);
$node->safe_psql('postgres', 'UPDATE suicidal SET yes = false');
ok( $node->poll_query_until(
		'postgres',
		qq{SELECT doomed_cached(1) <> '$d1'}),
	'terminate: once it stops doing so, the entry is refreshed');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'cachier launcher'},
		'1'),
	'terminate: the launcher still runs');

# ---------------------------------------------------------------- 3. kill -9

my $launcher = launcher_pid();
like($launcher, qr/^\d+$/, 'crash: the launcher runs');
$log_offset = -s $node->logfile;
ok(kill('KILL', $launcher), 'crash: the launcher is sent SIGKILL');
$node->wait_for_log(
	qr/background worker "cachier launcher" \(PID $launcher\) was terminated by signal 9/,
	$log_offset);
$node->wait_for_log(qr/all server processes terminated; reinitializing/,
	$log_offset);
$node->wait_for_log(qr/database system is ready to accept connections/,
	$log_offset);
ok(1, 'crash: the server restarted all processes');
ok( $node->poll_query_until(
		'postgres',
		qq{SELECT count(*) = 1 AND min(pid) <> $launcher FROM pg_stat_activity
		    WHERE backend_type = 'cachier launcher'}),
	'crash: a new launcher runs');
backdate($node, 'postgres', 'gated(int)', '(3)');
$base = executions();
my $v3 = $node->safe_psql('postgres', 'SELECT gated_cached(3)');
like($v3, qr/^3:\d+$/, 'crash: a stale hit returns the stale value');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT refreshes_done FROM cachier_stats WHERE function = 'gated(int)'::regprocedure},
		'1'),
	'crash: the background refresh is done');
my $v3new = $node->safe_psql('postgres', 'SELECT gated_cached(3)');
isnt($v3new, $v3, 'crash: the refreshed value is served');
is(executions() - $base, 1, 'crash: the function ran once');

# ---------------------------------------------------- 4. DROP EXTENSION, DROP DATABASE

# max_workers is 1: while the only worker refreshes at the gate in
# "postgres", the refreshes queued in d1 and d2 wait.
$launcher = launcher_pid();
my $done = counter('postgres', 'gated(int)', 'refreshes_done');
close_gate();
backdate($node, 'postgres', 'gated(int)', '(4)');
$node->safe_psql('postgres', 'SELECT gated_cached(4)');
ok($node->poll_query_until('postgres', at_gate_condition('postgres')),
	'drop: the only worker refreshes at the gate in postgres');
for my $db (qw(d1 d2))
{
	backdate($node, $db, 'gated(int)', '(1)');
	$node->safe_psql($db, 'SELECT gated_cached(1)');
	is(counter($db, 'gated(int)', 'refreshes_queued'),
		'1', "drop: a refresh is queued in $db");
}
my $most_workers = 0;
for (1 .. 10)
{
	my $n = $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'cachier worker'});
	$most_workers = $n if $n > $most_workers;
	usleep(100_000);
}
is($most_workers, 1, 'drop: max_workers = 1 is obeyed: one worker at a time');
is(counter('d1', 'gated(int)', 'refreshes_done'),
	'0', 'drop: the refresh of d1 waits');

my ($rc, $stdout, $stderr) =
  $node->psql('d1', 'DROP EXTENSION cachier CASCADE', on_error_stop => 1);
is($rc, 0, 'drop: DROP EXTENSION cachier CASCADE with a refresh queued succeeds');
unlike($stderr, qr/ERROR|WARNING/, 'drop: without an error or warning');
($rc, $stdout, $stderr) = $node->psql('postgres', 'DROP DATABASE d2');
is($rc, 0, 'drop: DROP DATABASE with a refresh queued succeeds');
is($stderr, '', 'drop: without a message') or diag $stderr;

$log_offset = -s $node->logfile;
open_gate();
ok(wait_counter('postgres', 'gated(int)', 'refreshes_done', $done + 1),
	'drop: the refresh in postgres completes');
usleep(2_000_000);    # a window for workers to start for the dropped database
$log = slurp_file($node->logfile, $log_offset);
my $failed_starts = () = $log =~ /FATAL:  database \d+ does not exist/g;
ok($failed_starts <= 1,
	"drop: the launcher does not keep starting workers for the dropped database ($failed_starts failed within 2 s)"
);
unlike($log, qr/WARNING|ERROR/, 'drop: no warning or error for the database without the extension');
is(launcher_pid(), $launcher, 'drop: the launcher kept running');

# DROP DATABASE while a worker refreshes there (a slow function).
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET cachier.max_workers; SELECT pg_reload_conf()');
close_gate();
backdate($node, 'd3', 'gated(int)', '(1)');
$node->safe_psql('d3', 'SELECT gated_cached(1)');
ok($node->poll_query_until('postgres', at_gate_condition('d3')),
	'drop: a worker refreshes a slow function in d3');
($rc, $stdout, $stderr) = $node->psql('postgres', 'DROP DATABASE d3');
is($rc, 0, 'drop: DROP DATABASE while a worker refreshes there succeeds');
is($stderr, '', 'drop: without a message') or diag $stderr;
open_gate();
unless ($rc == 0)
{
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = 'd3'});
	$node->safe_psql('postgres', 'DROP DATABASE d3');
}
is(launcher_pid(), $launcher, 'drop: the launcher kept running');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database}),
	'd1,postgres,template0,template1',
	'drop: d2 and d3 are gone');

# ---------------------------------------------------------------- 5. standby

$node->safe_psql(
	'postgres', q{
CREATE TABLE source (v int NOT NULL);
INSERT INTO source VALUES (1);
CREATE FUNCTION reads(x int) RETURNS text LANGUAGE sql
    AS $$ SELECT x || ':' || v FROM source $$;
SELECT cachier_memoize('reads(int)', stale_after => '1 hour', next_time => true);
SELECT reads_cached(1);
});
$node->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'backup', has_streaming => 1);
$standby->start;

$node->safe_psql('postgres', 'UPDATE source SET v = 2');
backdate($node, 'postgres', 'reads(int)', '(1)');
$node->wait_for_catchup($standby, 'replay', $node->lsn('insert'));
my $entry_query = q{
SELECT convert_from(value, 'UTF8') || ' @ ' || created_at FROM cachier.entries
 WHERE function_id = 'reads(int)'::regprocedure};
my $entry = $node->safe_psql('postgres', $entry_query);
like($entry, qr/^1:1 @ /, 'standby: the primary\'s entry of reads(1) is stale, with 1:1');

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'standby: in recovery');
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'cachier%'}),
	'0',
	'standby: no cachier launcher or worker runs in recovery');
($rc, $stdout, $stderr) = $standby->psql(
	'postgres',
	"SET cachier.\"verbose\" = on;\nSELECT reads_cached(1); SELECT reads_cached(1);",
	on_error_stop => 1);
is($rc, 0, 'standby: stale next_time hits succeed');
is($stdout, "1:2\n1:2",
	'standby: they return the value computed there (a refresh cannot be queued)');
unlike($stderr, qr/ERROR|WARNING/, 'standby: without error or warning');
like($stderr, qr/cachier: not stored: public\.reads\(1\)/,
	'standby: verbose says nothing was stored');
is($standby->safe_psql('postgres', $entry_query),
	$entry, 'standby: the entry is unchanged on the standby');
is($standby->safe_psql('postgres',
		q{SELECT refreshes_queued FROM cachier_stats WHERE function = 'reads(int)'::regprocedure}),
	'0', 'standby: no refresh was queued');
is($node->safe_psql('postgres', $entry_query),
	$entry, 'standby: nor on the primary');

$node->stop;
$standby->promote;
ok( $standby->poll_query_until(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'cachier launcher'},
		'1'),
	'promoted: the launcher starts');
is($standby->safe_psql('postgres', 'SELECT reads_cached(1)'),
	'1:1', 'promoted: a stale hit serves the stale value');
ok($standby->poll_query_until('postgres', $entry_query =~ s/ \|\| ' @ ' \|\| created_at//r, '1:2'),
	'promoted: and the entry is refreshed in the background');

$standby->stop;
done_testing();
