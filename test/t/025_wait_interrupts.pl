# 025_wait_interrupts.pl: a cancel request or statement_timeout that
# arrives exactly as a round of a cache wait ends is not lost.
#
# A waiter waits for the session computing a key in rounds, each ended by a
# lock timeout.  PostgreSQL delivers a lock timeout, statement_timeout and
# a cancel request (pg_cancel_backend) the same way, as a cancel of the
# current statement, and reports one of them: if they coincide, the others
# are forgotten.  cachier must then raise the cancel (or the statement
# timeout) itself instead of waiting on.
#
# The coincidence is made certain, not waited for: the waiter's backend is
# stopped (SIGSTOP) while it waits, until its round's timer has fired --
# SIGALRM is then pending in /proc/<pid>/status -- and the cancel request
# (or the statement timeout) has arrived too; then it is continued, and
# handles both at once.
#
#  a. pg_cancel_backend at a round's end: "canceling statement due to user
#     request", while the computation is still held at the gate (wait_timeout
#     is an hour, so nothing else could end the wait).
#  b. statement_timeout at a round's end: "canceling statement due to
#     statement timeout", likewise.  (cachier 0.4 already recognised this
#     one, by the time; b guards that.  a failed before 0.5: the cancel
#     was taken for the lock timeout and the waiter waited on.)
#
# In both, the waiter did not run the function, holds no key's lock
# afterwards, and its session then gets the value from the cache.
#
# The computation is held open by the gate (see CachierTest.pm).

use strict;
use warnings;
no warnings 'portable';    # 64-bit signal masks

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw($gate $lock_of cachier_node counting_setup close_gate
  session start_statement finish_statement close_session computing_condition);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

if ($^O ne 'linux')
{
	plan skip_all => 'reads pending signals from /proc/<pid>/status';
}

my $SIGINT_BIT = 1 << (2 - 1);
my $SIGALRM_BIT = 1 << (14 - 1);

my $node = cachier_node('main');
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

sub executions
{
	return $node->safe_psql('postgres', 'SELECT executions()');
}

sub is_true
{
	my ($condition) = @_;
	return $node->safe_psql('postgres', "SELECT $condition") eq 't';
}

# Poll $check (a sub) every 10 ms until it returns true; false after
# $seconds (default: the usual test timeout).
sub eventually
{
	my ($check, $seconds) = @_;
	my $deadline = time + ($seconds // $PostgreSQL::Test::Utils::timeout_default);
	while (time < $deadline)
	{
		return 1 if $check->();
		usleep(10_000);
	}
	return 0;
}

# The state letter of process $pid (T: stopped) and the signals pending
# for it, as a bit mask (bit n-1 for signal n).
sub process_signals
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return ('', 0);
	my ($state, $pending) = ('', 0);
	while (<$fh>)
	{
		$state = $1 if /^State:\s+(\S)/;
		$pending |= hex($1) if /^(?:SigPnd|ShdPnd):\s+([0-9a-f]+)/;
	}
	close $fh;
	return ($state, $pending);
}

sub stopped_with_pending
{
	my ($pid, $mask) = @_;
	my ($state, $pending) = process_signals($pid);
	return $state eq 'T' && ($pending & $mask) == $mask;
}

# Stop process $pid (SIGSTOP) while it sleeps in a round of its wait, and
# keep it stopped until the round's lock timeout has fired (SIGALRM is
# pending: the round lasts 100 ms).  A stop that catches the waiter
# between two rounds, when no timer is set, is undone and tried again.
sub stop_at_round_end
{
	my ($pid) = @_;
	for my $attempt (1 .. 20)
	{
		kill 'STOP', $pid;
		return 1
		  if eventually(sub { stopped_with_pending($pid, $SIGALRM_BIT) }, 5);
		kill 'CONT', $pid;
		note "attempt $attempt stopped the waiter between two rounds";
	}
	return 0;
}

# pid waits in the lock manager for the session computing a key.
sub waiting_condition
{
	my ($pid) = @_;
	return "EXISTS (SELECT 1 FROM pg_locks WHERE pid = $pid AND $lock_of"
	  . "        AND NOT granted)";
}

sub wait_error
{
	my ($session, $pattern) = @_;
	my $found =
	  pump_until($session->{run}, $session->{timeout}, \$session->{stderr},
		$pattern);
	$session->{stderr} = '' if $found;
	return $found;
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

# Start a waiter for $key with $settings; true once it waits.  Its rounds
# last 100 ms (deadlock_timeout / 2, at least 100 ms).
sub start_waiter
{
	my ($key, $settings, $name) = @_;
	my ($waiter, $pid) = session($node,
		"SET cachier.wait_timeout = '1h'; SET deadlock_timeout = '200ms'; $settings");
	start_statement($waiter, "SELECT 'waiter got ' || slow_cached($key);");
	ok(eventually(sub { is_true(waiting_condition($pid)) }),
		"$name: the waiter waits for the computation");
	return ($waiter, $pid);
}

# After the waiter's error: the computation was still held, the waiter
# ran nothing and holds nothing; once the computation completes, the
# waiter's session gets the value from the cache.
sub after_error
{
	my ($name, $key, $base, $gate_session, $computer, $computer_pid,
		$waiter, $waiter_pid)
	  = @_;

	ok(is_true(computing_condition($computer_pid)),
		"$name: the error came while the computation is still held at the gate");
	is(executions() - $base, 1, "$name: the waiter did not run the function");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM pg_locks WHERE pid = $waiter_pid AND $lock_of"),
		'0',
		"$name: the waiter holds and waits for no key's lock");

	$gate_session->quit;
	my ($line, $stderr) = finish_statement($computer, qr/computer got .*\n/);
	like($line, qr/^computer got value of $key$/m,
		"$name: the computing session returns its value");
	my ($out, $err) = $waiter->query("SELECT slow_cached($key)");
	is($out, "value of $key",
		"$name: the waiter's session then gets the value from the cache");
	is(executions() - $base, 1, "$name: ... without running the function");
	close_session($_) for ($computer, $waiter);
}

# ------------------------------------------ a. a cancel as a round ends

{
	my $name = 'cancel at a round end';
	my $key = 1;
	my $base = executions();
	my $gate_session = close_gate($node);
	my ($computer, $computer_pid) = start_computer($key, $name);
	my ($waiter, $waiter_pid) = start_waiter($key, '', $name);

	ok(stop_at_round_end($waiter_pid),
		"$name: the waiter is stopped and its round's lock timeout has fired");
	is($node->safe_psql('postgres', "SELECT pg_cancel_backend($waiter_pid)"),
		't', "$name: the waiter is sent a cancel request");
	ok( eventually(
			sub {
				stopped_with_pending($waiter_pid, $SIGALRM_BIT | $SIGINT_BIT);
			}),
		"$name: the cancel request is pending with the lock timeout");
	kill 'CONT', $waiter_pid;

	ok( wait_error($waiter, qr/ERROR:  canceling statement due to user request/),
		"$name: the waiter's statement fails with the cancellation error");
	after_error($name, $key, $base, $gate_session, $computer, $computer_pid,
		$waiter, $waiter_pid);
}

# ------------------------------------------ b. statement_timeout as a round ends

{
	my $name = 'statement_timeout at a round end';
	my $key = 2;
	my $base = executions();
	my $gate_session = close_gate($node);
	my ($computer, $computer_pid) = start_computer($key, $name);
	my ($waiter, $waiter_pid) =
	  start_waiter($key, "SET statement_timeout = '8s'", $name);

	ok(stop_at_round_end($waiter_pid),
		"$name: the waiter is stopped and its round's lock timeout has fired");
	ok( is_true(
			waiting_condition($waiter_pid)
			  . " AND (SELECT now() < query_start + interval '8s'"
			  . "      FROM pg_stat_activity WHERE pid = $waiter_pid)"),
		"$name: ... before its statement_timeout (so it was the lock timeout)");
	ok( eventually(
			sub {
				is_true("(SELECT now() > query_start + interval '8s'"
					  . " FROM pg_stat_activity WHERE pid = $waiter_pid)");
			}),
		"$name: statement_timeout has passed too while the waiter is stopped");
	kill 'CONT', $waiter_pid;

	ok( wait_error(
			$waiter, qr/ERROR:  canceling statement due to statement timeout/),
		"$name: the waiter's statement fails with the statement-timeout error");
	after_error($name, $key, $base, $gate_session, $computer, $computer_pid,
		$waiter, $waiter_pid);
}

$node->stop;
done_testing();
