# 004_crash.pl: a computation that dies leaves nothing behind.
#  - A backend killed with SIGKILL while computing (a new key, and a
#    recomputation of a stored key) makes the server restart all backends;
#    after that no key is marked as being computed, the stored entry is the
#    old one, the killed new key has no entry, and it computes normally.
#  - When the computing backend is terminated (pg_terminate_backend) or its
#    query cancelled (pg_cancel_backend) while other sessions wait for the
#    same key with a wait_timeout of one hour, the waiters do not wait that
#    hour: one of them takes over and computes the value, any other gets it
#    from the cache once stored; all return it without a warning, and the
#    function ran exactly once more.
#
# The computations are held open by a gate, an advisory lock that the test
# holds and the cached function takes in share mode after counting its
# execution, so every step is observed in pg_locks instead of timed.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw($gate $lock_of cachier_node counting_setup close_gate
  session start_statement finish_statement close_session computing_condition);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# the test framework turns restart_after_crash off; a crash must restart
# all backends
my $node = cachier_node('main', conf => 'restart_after_crash = on');

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
});

# ---------------------------------------------------------------- helpers
# (the shared ones are in CachierTest.pm)

# pid waits for the session computing a key (in whatever lock mode).
sub waiting_condition
{
	my ($pid) = @_;
	return "EXISTS (SELECT 1 FROM pg_locks WHERE pid = $pid AND $lock_of"
	  . "        AND NOT granted)";
}

sub executions
{
	return $node->safe_psql('postgres', 'SELECT executions()');
}

# ---------------------------------------------------------------- SIGKILL

is($node->safe_psql('postgres', 'SELECT slow_cached(2)'),
	'value of 2', 'slow_cached(2) is computed and stored');
my $created_2 = $node->safe_psql('postgres',
	"SELECT created_at FROM cachier_entries WHERE arguments = '(2)'");

my $gate_session = close_gate($node);

# One backend computes a new key, another recomputes the stored one.
my ($new_session, $new_pid) = session($node);
start_statement($new_session, 'SELECT slow_cached(1);');
my ($re_session, $re_pid) = session($node, 'SET cachier.overwrite_cache = on');
start_statement($re_session, 'SELECT slow_cached(2);');
ok( $node->poll_query_until(
		'postgres',
		'SELECT ' . computing_condition($new_pid) . ' AND ' . computing_condition($re_pid)),
	'two backends are computing: a new key and a recomputation');
is( $node->safe_psql(
		'postgres',
		'SELECT arguments, processing, completed FROM cachier_entries ORDER BY arguments'),
	"(1)|t|f\n(2)|t|t",
	'the new key (not completed yet) and the entry being recomputed are shown as processing');

my $log_offset = -s $node->logfile;
ok(kill('KILL', $new_pid), 'the backend computing slow_cached(1) is sent SIGKILL');
$node->wait_for_log(
	qr/server process \(PID $new_pid\) was terminated by signal 9/,
	$log_offset);
$node->wait_for_log(qr/database system is ready to accept connections/,
	$log_offset);
ok($node->log_contains(qr/all server processes terminated; reinitializing/,
		$log_offset),
	'the server restarted all backends after the crash');
close_session($_) for ($new_session, $re_session, $gate_session);

is($node->safe_psql('postgres', "SELECT count(*) FROM pg_locks WHERE $lock_of"),
	'0', 'after the crash no key is locked as being computed');
is( $node->safe_psql(
		'postgres',
		"SELECT arguments, processing, created_at = '$created_2'"
		  . ' FROM cachier_entries ORDER BY arguments'),
	'(2)|f|t',
	'after the crash nothing is processing, the recomputed entry is the old one, '
	  . 'and the killed new key has no entry');

my $base = executions();
is( $node->safe_psql(
		'postgres', 'SELECT slow_cached(1); SELECT slow_cached(1); SELECT slow_cached(2);'),
	"value of 1\nvalue of 1\nvalue of 2",
	'after the crash the killed key computes the right value');
is(executions() - $base, 1,
	'after the crash the killed key is computed once, then hit');
is( $node->safe_psql(
		'postgres',
		'SELECT string_agg(arguments || processing::text, \' \' ORDER BY arguments)'
		  . ' FROM cachier_entries'),
	'(1)false (2)false',
	'after the crash the killed key is stored');

# ------------------------------------------------ termination and cancellation

my $key = 10;
foreach my $case (
	[ 'pg_terminate_backend', 1 ],
	[ 'pg_terminate_backend', 2 ],
	[ 'pg_cancel_backend', 1 ],
	[ 'pg_cancel_backend', 2 ])
{
	my ($how, $nwaiters) = @$case;
	my $name = "$how, $nwaiters waiter" . ($nwaiters > 1 ? 's' : '');
	$key++;
	$base = executions();
	$gate_session = close_gate($node);

	my ($computer, $computer_pid) = session($node);
	start_statement($computer, "SELECT slow_cached($key);");
	ok( $node->poll_query_until(
			'postgres', 'SELECT ' . computing_condition($computer_pid)),
		"$name: a backend is computing slow_cached($key)");

	# Waiters through the wrapper and through cachier_wrap.
	my @calls = ("slow_cached($key)", "cachier_wrap('slow', $key)");
	my (@waiters, @pids);
	for my $i (0 .. $nwaiters - 1)
	{
		my ($w, $pid) = session($node, q{SET cachier.wait_timeout = '1h'});
		start_statement($w, "SELECT 'waiter $i got ' || $calls[$i];");
		push @waiters, $w;
		push @pids, $pid;
	}
	ok( $node->poll_query_until(
			'postgres',
			'SELECT ' . join(' AND ', map { waiting_condition($_) } @pids)),
		"$name: the waiters wait for it, with wait_timeout = 1h");

	is($node->safe_psql('postgres', "SELECT $how($computer_pid)"),
		't', "$name: the computing backend is interrupted");
	my $expected_error =
	  $how eq 'pg_terminate_backend'
	  ? qr/terminating connection due to administrator command/
	  : qr/canceling statement due to user request/;
	ok( pump_until(
			$computer->{run}, $computer->{timeout},
			\$computer->{stderr}, $expected_error),
		"$name: the interrupted session got its error");

	# One waiter takes over the computation (and stops at the gate); any
	# other waits for that one.
	my @takeovers;
	for my $i (0 .. $#pids)
	{
		push @takeovers,
		  '(' . join(' AND ',
			computing_condition($pids[$i]),
			map { waiting_condition($pids[$_]) } grep { $_ != $i } 0 .. $#pids)
		  . ')';
	}
	ok( $node->poll_query_until(
			'postgres', 'SELECT ' . join(' OR ', @takeovers)),
		"$name: a waiter takes over the computation, without waiting for wait_timeout");
	$gate_session->quit;

	for my $i (0 .. $#waiters)
	{
		my ($line, $stderr) =
		  finish_statement($waiters[$i], qr/waiter $i got .*\n/);
		like($line, qr/^waiter $i got value of $key$/m,
			"$name: waiter $i ($calls[$i]) returns the value");
		unlike($stderr, qr/WARNING|ERROR/,
			"$name: waiter $i ($calls[$i]) gets no warning or error");
	}

	is(executions() - $base, 2,
		"$name: two executions: the interrupted one and the one that took over");
	is( $node->safe_psql(
			'postgres',
			"SELECT slow_cached($key), processing FROM cachier_entries"
			  . " WHERE arguments = '($key)'"),
		"value of $key|f",
		"$name: the value is stored and served");
	is(executions() - $base, 2, "$name: later calls are hits");
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_locks WHERE $lock_of"),
		'0', "$name: no key is left locked");

	close_session($_) for ($computer, @waiters);
}

$node->stop;
done_testing();
