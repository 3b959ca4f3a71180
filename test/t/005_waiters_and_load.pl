# 005_waiters_and_load.pl: a session waiting for another one's computation
# can be interrupted like any other statement, without disturbing the
# computation; and under a steady concurrent load on keys that go stale,
# each key is computed at most once per shelf life.
#
#  - A waiter (wait_timeout = 1h) for a key that another session computes:
#     a. pg_cancel_backend(waiter): the waiter's statement fails at once with
#        "canceling statement due to user request" while the computation is
#        still running; its session stays usable; the computing session
#        returns and stores its value, and the function ran once.
#     b. pg_terminate_backend(waiter): the waiter's connection ends; the
#        computing session stores; another waiter gets the value without
#        the function running again.
#     c. statement_timeout (2s) in the waiter: the statement-timeout
#        error, without the waiter running the function; the computing
#        session stores; one execution in all.
#  - 16 pgbench clients call a memoized function over 1,000 keys whose
#    entries go stale after 1 second, for 5 seconds: no errors, and no key
#    is computed more often than once per shelf life (plus the first time).
#
# The computations of the first part are held open by a gate, an advisory
# lock that the test holds and the cached function takes in share mode
# after counting its execution, so every step is observed in pg_locks and
# pg_stat_activity instead of timed.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw($gate $lock_of counting_setup close_gate session
  start_statement finish_statement close_session computing_condition);
use IPC::Run;
use POSIX qw(ceil);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;

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

# Wait until a statement started with start_statement has written an error
# matching $pattern to stderr; true if it did.  The error is then cleared
# from the session's stderr, so that its next statements start clean.
sub wait_error
{
	my ($session, $pattern) = @_;
	my $found =
	  pump_until($session->{run}, $session->{timeout}, \$session->{stderr},
		$pattern);
	$session->{stderr} = '' if $found;
	return $found;
}

# pid waits for the session computing a key (in whatever lock mode): it has
# a not-granted lock in cachier's lock space, and pg_stat_activity shows it
# waiting for an advisory lock.
sub waiting_condition
{
	my ($pid) = @_;
	return "EXISTS (SELECT 1 FROM pg_locks WHERE pid = $pid AND $lock_of"
	  . "        AND NOT granted)"
	  . " AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $pid"
	  . "        AND wait_event_type = 'Lock' AND wait_event = 'advisory')";
}

sub executions
{
	return $node->safe_psql('postgres', 'SELECT executions()');
}

sub is_true
{
	my ($condition) = @_;
	return $node->safe_psql('postgres', "SELECT $condition") eq 't';
}

# Start computing slow_cached($key) in a new session, held at the gate.
sub start_computer
{
	my ($key, $name) = @_;
	my ($computer, $pid) = session($node);
	start_statement($computer, "SELECT 'computer got ' || slow_cached($key);");
	ok( $node->poll_query_until(
			'postgres', 'SELECT ' . computing_condition($pid)),
		"$name: a backend is computing slow_cached($key), held at the gate");
	return ($computer, $pid);
}

# Open the gate; the computing session returns the value and stores it;
# the function ran once since $base, and later calls are hits.
sub computation_completes
{
	my ($gate_session, $computer, $key, $base, $name) = @_;

	$gate_session->quit;
	my ($line, $stderr) = finish_statement($computer, qr/computer got .*\n/);
	like($line, qr/^computer got value of $key$/m,
		"$name: the computing session returns its value");
	unlike($stderr, qr/WARNING|ERROR|FATAL/,
		"$name: the computing session gets no warning or error");
	is( $node->safe_psql(
			'postgres',
			"SELECT processing FROM cachier_entries WHERE arguments = '($key)'"),
		'f',
		"$name: the computing session stored the value");
	is(executions() - $base, 1, "$name: the function ran exactly once");
	is($node->safe_psql('postgres', "SELECT slow_cached($key)"),
		"value of $key", "$name: a new session gets the value from the cache");
	is(executions() - $base, 1, "$name: ... without running the function");
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_locks WHERE $lock_of"),
		'0', "$name: no key is left locked");
}

# ------------------------------------------------ a. cancelling a waiter

{
	my $name = 'cancel';
	my $key = 1;
	my $base = executions();
	my $gate_session = close_gate($node);
	my ($computer, $computer_pid) = start_computer($key, $name);

	my ($waiter, $waiter_pid) = session($node, q{SET cachier.wait_timeout = '1h'});
	start_statement($waiter, "SELECT 'waiter got ' || slow_cached($key);");
	ok( $node->poll_query_until(
			'postgres', 'SELECT ' . waiting_condition($waiter_pid)),
		"$name: the waiter waits for the computation, with wait_timeout = 1h");

	my $t0 = time;
	is($node->safe_psql('postgres', "SELECT pg_cancel_backend($waiter_pid)"),
		't', "$name: the waiter is sent a cancel request");
	ok( wait_error($waiter, qr/ERROR:  canceling statement due to user request/),
		"$name: the waiter's statement fails with the cancellation error");
	note sprintf('the cancelled waiter got its error after %.3f s',
		time - $t0);
	ok(is_true(computing_condition($computer_pid)),
		"$name: the error came at once: the computation is still held at the gate"
	);

	# The waiter's session goes on.
	is($waiter->query('SELECT pg_backend_pid()'), $waiter_pid,
		"$name: the waiter's session runs its next statement, on the same backend");
	is($waiter->{stderr}, '', "$name: ... without an error");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM pg_locks WHERE pid = $waiter_pid AND $lock_of"),
		'0',
		"$name: the cancelled waiter holds and waits for no key's lock");
	is(executions() - $base, 1,
		"$name: the cancelled waiter did not run the function");

	computation_completes($gate_session, $computer, $key, $base, $name);

	my ($out, $err) = $waiter->query("SELECT slow_cached($key)");
	is($out, "value of $key",
		"$name: the cancelled waiter's session then gets the value from the cache");
	is($err, 0, "$name: ... without an error");
	is(executions() - $base, 1, "$name: ... without running the function");

	close_session($_) for ($computer, $waiter);
}

# ------------------------------------------------ b. terminating a waiter

{
	my $name = 'terminate';
	my $key = 2;
	my $base = executions();
	my $gate_session = close_gate($node);
	my ($computer, $computer_pid) = start_computer($key, $name);

	# Two waiters, through the wrapper and through cachier_wrap; the first
	# one is terminated.
	my ($victim, $victim_pid) = session($node, q{SET cachier.wait_timeout = '1h'});
	start_statement($victim, "SELECT 'victim got ' || slow_cached($key);");
	my ($other, $other_pid) = session($node, q{SET cachier.wait_timeout = '1h'});
	start_statement($other, "SELECT 'other got ' || cachier_wrap('slow', $key);");
	ok( $node->poll_query_until(
			'postgres',
			'SELECT ' . waiting_condition($victim_pid) . ' AND '
			  . waiting_condition($other_pid)),
		"$name: two waiters wait for the computation, with wait_timeout = 1h");

	is($node->safe_psql('postgres', "SELECT pg_terminate_backend($victim_pid)"),
		't', "$name: the first waiter is terminated");
	ok( wait_error(
			$victim, qr/terminating connection due to administrator command/),
		"$name: the terminated waiter's connection reports the termination");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $victim_pid)"
		),
		"$name: the terminated waiter's backend is gone");
	close_session($victim);

	ok( is_true(
			computing_condition($computer_pid) . ' AND '
			  . waiting_condition($other_pid)),
		"$name: the computation is still held at the gate, and the other waiter still waits"
	);
	is(executions() - $base, 1, "$name: only the computing session ran the function");

	computation_completes($gate_session, $computer, $key, $base, $name);

	my ($line, $stderr) = finish_statement($other, qr/other got .*\n/);
	like($line, qr/^other got value of $key$/m,
		"$name: the other waiter returns the value");
	unlike($stderr, qr/WARNING|ERROR|FATAL/,
		"$name: the other waiter gets no warning or error");
	is(executions() - $base, 1,
		"$name: the other waiter got it without running the function");

	close_session($_) for ($computer, $other);
}

# ------------------------------------------------ c. statement_timeout

{
	my $name = 'statement_timeout';
	my $key = 3;
	my $base = executions();
	my $gate_session = close_gate($node);
	my ($computer, $computer_pid) = start_computer($key, $name);

	my ($waiter, $waiter_pid) = session($node,
		q{SET cachier.wait_timeout = '1h'; SET statement_timeout = '2s'});
	start_statement($waiter, "SELECT 'waiter got ' || slow_cached($key);");
	# (its statement times out 2 s after it starts: poll_query_until looks
	# every 100 ms)
	ok( $node->poll_query_until(
			'postgres', 'SELECT ' . waiting_condition($waiter_pid)),
		"$name: the waiter waits for the key's lock");
	ok( wait_error(
			$waiter, qr/ERROR:  canceling statement due to statement timeout/),
		"$name: the waiter's statement fails with the statement-timeout error");
	ok(is_true(computing_condition($computer_pid)),
		"$name: the computation goes on, held at the gate");
	is(executions() - $base, 1,
		"$name: the waiter did not run the function");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM pg_locks WHERE pid = $waiter_pid AND $lock_of"),
		'0',
		"$name: the waiter holds and waits for no key's lock");

	computation_completes($gate_session, $computer, $key, $base, $name);

	my ($out, $err) = $waiter->query("SELECT slow_cached($key)");
	is($out, "value of $key",
		"$name: the waiter's session then gets the value from the cache");
	is($err, 0, "$name: ... without an error");
	is(executions() - $base, 1, "$name: ... without running the function");

	close_session($_) for ($computer, $waiter);
}

# ------------------------------------------------ load

# f(k) counts its executions with a sequence and logs each one's key and
# time; the log row commits with the caller's (autocommit) statement.
my $clients = 16;
my $duration = 5;
my $keys = 1000;
my $shelf = 1;    # seconds

$node->safe_psql(
	'postgres', qq{
CREATE SEQUENCE f_runs;
CREATE UNLOGGED TABLE f_log (k int, started timestamptz);
CREATE FUNCTION f(k int) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM nextval('f_runs');
    INSERT INTO f_log VALUES (k, clock_timestamp());
    RETURN k + 1;
END
\$\$;
SELECT cachier_memoize('f(int)', stale_after => '$shelf second');
});

my $script = $node->basedir . '/f_cached.sql';
append_to_file($script, "\\set k random(1, $keys)\nSELECT f_cached(:k);\n");
my $pgbench = $node->config_data('--bindir') . '/pgbench';
my ($stdout, $stderr) = ('', '');
my $started = time;
my $ok;
{
	# the statements of the load are not worth logging
	local $ENV{PGOPTIONS} = '-c log_statement=none';
	$ok = IPC::Run::run(
		[
			$pgbench, '-n', '-c', $clients, '-j', 4,
			'-T', $duration, '-f', $script,
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$stdout, '2>', \$stderr);
}
my $elapsed = time - $started;
note "pgbench ran for $elapsed s; stdout:\n$stdout\nstderr:\n$stderr";

ok($ok, 'load: pgbench exits with status 0');
my ($processed) = $stdout =~ /number of transactions actually processed: (\d+)/;
my ($failed) = $stdout =~ /number of failed transactions: (\d+)/;
ok(defined $processed && $processed > 0, 'load: pgbench ran transactions');
is($failed, '0', 'load: no failed transactions');
unlike($stderr, qr/ERROR|FATAL|WARNING|aborted/,
	'load: no errors, warnings or aborted clients');

my $rounded = ceil($elapsed);
my $total_bound = $keys * ($rounded / $shelf + 1);
my $key_bound = ceil($rounded / $shelf) + 1;
my $runs = $node->safe_psql('postgres',
	'SELECT last_value - 1 + is_called::int FROM f_runs');
note "load: $processed calls, $runs executions in $elapsed s";
cmp_ok($runs, '>', 0, 'load: the function ran');
cmp_ok($runs, '<=', $total_bound,
	"load: at most $keys keys x ($rounded s / $shelf s + 1) = $total_bound executions"
);
is($node->safe_psql('postgres', 'SELECT count(*) FROM f_log'),
	$runs, 'load: every execution was logged and committed');
my ($max_per_key, $keys_over) = split /\|/,
  $node->safe_psql(
	'postgres', qq{
SELECT max(n), count(*) FILTER (WHERE n > $key_bound)
  FROM (SELECT count(*) AS n FROM f_log GROUP BY k) per_key});
note "load: at most $max_per_key computations of one key";
is($keys_over, '0',
	"load: no key was computed more than $rounded s / $shelf s + 1 = $key_bound times"
);
# A key is recomputed only once its entry is older than the shelf life, so
# two computations of one key start about a shelf life apart or more.  The
# logged time lags cachier's created_at by the few statements before the
# INSERT; half a shelf life leaves ample room for that (a second
# computation of a key that single flight should have prevented would
# start within milliseconds of the first).
my $min_gap = $node->safe_psql(
	'postgres', q{
SELECT coalesce(min(gap), 'infinity')
  FROM (SELECT extract(epoch FROM started - lag(started)
                         OVER (PARTITION BY k ORDER BY started)) AS gap
          FROM f_log) gaps});
note "load: closest two computations of one key: $min_gap s apart";
cmp_ok($min_gap, '>=', $shelf / 2,
	'load: two computations of one key start at least about a shelf life apart'
);
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM cachier_entries WHERE function = 'f(integer)'::regprocedure
    AND arguments IN (SELECT '(' || k || ')' FROM f_log)}),
	$node->safe_psql('postgres', 'SELECT count(DISTINCT k) FROM f_log'),
	'load: every computed key has its entry');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_locks WHERE $lock_of"),
	'0', 'load: no key is left locked');

$node->stop;
done_testing();
