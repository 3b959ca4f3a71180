# 026_many_waiters.pl: 64 sessions wait for one key's computation; all get
# the value, without errors, and none of them runs PostgreSQL's deadlock
# check while it waits.
#
# The computing session is held open by the gate (see CachierTest.pm), so
# it is itself waiting for a lock: the case in which a waiter must ask
# whether a deadlock can form through its wait.  Here none can -- the gate
# is held by a session that waits for nothing -- and the waiters see that
# by following the chain of lock waits, cheaply, instead of running the
# deadlock check (which takes every partition of the lock table).
#
# The server logs each lock wait whose deadlock check ran
# (log_lock_waits), after deadlock_timeout, here 10 ms; the waiters wait
# for much longer than that, in rounds of 100 ms.  The log must show no
# wait for a key's lock (objsubid 27182).  Timings are in
# test/bench/25-waiters.sh, not here.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw($gate $lock_of cachier_node counting_setup close_gate
  session start_statement finish_statement close_session computing_condition);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $waiters = 64;
my $key = 7;

my $node = cachier_node(
	'main', conf => q{
max_connections = 100
log_lock_waits = on
deadlock_timeout = 10ms
});
$node->safe_psql(
	'postgres', counting_setup() . qq{
CREATE FUNCTION slow(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM nextval('calls');                   -- counts executions
    PERFORM pg_advisory_xact_lock_shared($gate);  -- waits at the gate
    RETURN 'value of ' || x;
END
\$\$;
SELECT cachier_memoize('slow(int)');
CREATE TABLE got (pid int, value text);
});

my $log_offset = -s $node->logfile;
my $gate_session = close_gate($node);
my ($computer, $computer_pid) = session($node);
start_statement($computer, "SELECT 'computer got ' || slow_cached($key);");
ok($node->poll_query_until('postgres', 'SELECT ' . computing_condition($computer_pid)),
	'a backend is computing the key, held at the gate');

# Each pgbench client calls the function once and records what it got.
my $script = $node->basedir . '/waiter.sql';
append_to_file($script,
	"INSERT INTO got SELECT pg_backend_pid(), slow_cached($key);\n");
my $pgbench = $node->config_data('--bindir') . '/pgbench';
my ($stdout, $stderr) = ('', '');
my $load;
{
	local $ENV{PGOPTIONS} = "-c cachier.wait_timeout=1h";
	$load = IPC::Run::start(
		[
			$pgbench, '-n', '-c', $waiters, '-j', 2, '-t', 1,
			'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$stdout, '2>', \$stderr);
}

# the waiters of the key: its ShareLock, not granted
my $waiting = "SELECT count(*) FROM pg_locks WHERE $lock_of"
  . " AND mode = 'ShareLock' AND NOT granted";
ok($node->poll_query_until('postgres', $waiting, $waiters),
	"$waiters sessions wait for the key's lock in the lock manager");
# several rounds of their waits, each many times deadlock_timeout
ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) FROM pg_stat_activity a
 WHERE query LIKE 'INSERT INTO got%'
   AND clock_timestamp() - query_start > interval '500 ms'
   AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND $lock_of AND NOT l.granted)},
		$waiters),
	"all $waiters have waited for more than 500 ms (50 x deadlock_timeout)");
is(executions(), 1, 'only the computing session has run the function');

$gate_session->quit;
my ($line, $computer_err) = finish_statement($computer, qr/computer got .*\n/);
like($line, qr/^computer got value of $key$/m,
	'the computing session returns its value');
my $exited_ok = $load->finish;
note "pgbench stdout:\n$stdout\nstderr:\n$stderr";
ok($exited_ok, 'pgbench exits with status 0');
my ($failed) = $stdout =~ /number of failed transactions: (\d+)/;
is($failed, '0', 'no failed transactions');
unlike($stderr, qr/ERROR|FATAL|WARNING|aborted/,
	'no errors, warnings or aborted clients');

is( $node->safe_psql(
		'postgres',
		"SELECT count(DISTINCT pid) || ' ' || count(*) FILTER (WHERE value = 'value of $key') FROM got"
	),
	"$waiters $waiters",
	"each of the $waiters sessions got the value");
is(executions(), 1, '... computed once, by the computing session');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_locks WHERE $lock_of"),
	'0', 'no key is left locked');

my $log = slurp_file($node->logfile, $log_offset);
my @checked = $log =~ /(still waiting for \w+ on advisory lock \[\d+,\d+,\d+,27182\])/g;
is(scalar(@checked), 0,
	'no wait for a key ran the deadlock check (log_lock_waits logged none)');
like($log, qr/still waiting for ShareLock on advisory lock \[\d+,0,$gate,1\]/,
	'(the log does show lock waits: the computing session waited at the gate)');

close_session($computer);
$node->stop;
done_testing();

sub executions
{
	return $node->safe_psql('postgres', 'SELECT executions()');
}
