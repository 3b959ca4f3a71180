# 055_fresh_commit_window.pl: the commit window (issue 10, item 4), held
# open deterministically.  With synchronous_standby_names naming a standby
# that never connects, a writer with synchronous_commit = on stops in its
# COMMIT after its commit record is written and its pre-commit callbacks
# ran, and before it becomes visible (it waits for the standby, state
# SyncRep in pg_stat_activity, until its wait is cancelled; then it commits
# locally).  Other sessions default to synchronous_commit = local and never
# wait.  While the writer is held:
#  - calls get the old value (as direct calls do): served from an entry
#    stored before (warm) or computed and stored in the window (cold);
#  - a computation that reads in the window and finishes after the writer
#    became visible (it waits at a gate) returns the old value;
# and once the writer is visible every call gets the new value.  The same
# for COMMIT PREPARED, held the same way.
# (test/isolation/specs/fresh_commit_window.spec holds a writer earlier,
# before its pre-commit callbacks.)

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw($gate cachier_node close_gate session start_statement close_session);
use FreshTest qw(outcome warm_until_hit);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# allows_streaming: without WAL senders a commit never waits for a standby
my $node = cachier_node('main', allows_streaming => 1, conf => q{
synchronous_standby_names = 'never_connects'
synchronous_commit = local
max_prepared_transactions = 2});
$node->safe_psql('postgres', qq{
CREATE EXTENSION cachier;
CREATE TABLE t (v int); INSERT INTO t VALUES (1);
CREATE FUNCTION total() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT sum(v) FROM t';
SELECT cachier_memoize('total()');
CREATE FUNCTION total_k(k int) RETURNS bigint LANGUAGE sql STABLE AS 'SELECT k * 1000 + sum(v) FROM t';
SELECT cachier_memoize('total_k(int)');
CREATE FUNCTION read_then_wait() RETURNS bigint LANGUAGE plpgsql STABLE AS \$\$
DECLARE s bigint;
BEGIN
    SELECT sum(v) INTO s FROM t;
    PERFORM pg_advisory_xact_lock_shared($gate);
    RETURN s;
END \$\$;
SELECT cachier_memoize('read_then_wait()');
});

my $v = 1;

# Start $commit_sql in a new session with synchronous_commit = on and wait
# until it is held in SyncRep; returns the session and its pid.
sub hold_commit
{
	my ($prepare_sql, $commit_sql) = @_;
	my ($session, $pid) = session($node, 'SET synchronous_commit = on');
	$session->query_safe($prepare_sql) if $prepare_sql;
	start_statement($session, $commit_sql);
	ok( $node->poll_query_until('postgres',
			"SELECT wait_event = 'SyncRep' FROM pg_stat_activity WHERE pid = $pid"),
		'the writer is held in its commit (SyncRep)');
	return ($session, $pid);
}

# Let the held writer finish its commit: cancel its wait for the standby.
sub release
{
	my ($session, $pid) = @_;
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	ok( $node->poll_query_until('postgres',
			"SELECT state = 'idle' FROM pg_stat_activity WHERE pid = $pid"),
		'the writer committed');
	close_session($session);
}

sub value { return (outcome($node, $_[0]))[0]; }

# ---------------------------------------------------------------- COMMIT

for my $mode ('warm', 'cold')
{
	my $old = $v;
	my $new = ++$v;
	if ($mode eq 'warm')
	{
		ok((warm_until_hit($node, 'SELECT total_cached()'))[0], "$mode: an entry is served before");
	}
	my ($writer, $pid) = hold_commit("BEGIN; UPDATE t SET v = $new;", 'COMMIT;');
	is(value('SELECT total()'), "value: $old", "$mode: in the window the direct call gives the old value");
	is(value('SELECT total_cached()'), "value: $old", "$mode: in the window the cached call gives it too");
	# storing in the window is allowed, not required: say which happened
	my ($served) = warm_until_hit($node, 'SELECT total_k_cached(7)');
	note("$mode: a key computed in the window was " . ($served ? '' : 'not ') . 'stored and served there');
	is(value('SELECT total_k_cached(7)'), 'value: ' . (7000 + $old), "$mode: ... with the old value");
	release($writer, $pid);
	is(value('SELECT total()'), "value: $new", "$mode: after the commit the direct call gives the new value");
	is(value('SELECT total_cached()'), "value: $new", "$mode: after the commit, total_cached is new");
	is(value('SELECT total_k_cached(7)'), 'value: ' . (7000 + $new), "$mode: after the commit, total_k_cached(7) is new");
	$node->safe_psql('postgres', q{SELECT cachier_clear('total_k')});
}

# ---------------------------------------------------------------- a fill straddling the window

{
	my $old = $v;
	my $new = ++$v;
	my $gate_session = close_gate($node);
	my ($writer, $wpid) = hold_commit("BEGIN; UPDATE t SET v = $new;", 'COMMIT;');
	my ($reader, $rpid) = session($node);
	start_statement($reader, 'SELECT read_then_wait_cached();');
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM pg_locks WHERE pid = $rpid AND locktype = 'advisory'"
			  . " AND objid = $gate AND NOT granted"),
		'straddle: the computation read the old value and waits at the gate');
	release($writer, $wpid);
	$gate_session->quit;
	my $line = $reader->query_until(qr/^\d+$/m, '');
	like($line, qr/^$old$/m, 'straddle: the straddling computation returns what it read');
	close_session($reader);
	is(value('SELECT read_then_wait_cached()'), "value: $new", 'straddle: the next call gets the new value');
}

# ---------------------------------------------------------------- COMMIT PREPARED

for my $mode ('warm', 'cold')
{
	my $old = $v;
	my $new = ++$v;
	$node->safe_psql('postgres', "BEGIN; UPDATE t SET v = $new; PREPARE TRANSACTION 'held_$mode'");
	ok((warm_until_hit($node, 'SELECT total_cached()'))[0], "prepared, $mode: an entry is served")
	  if $mode eq 'warm';
	my ($admin, $pid) = hold_commit(undef, "COMMIT PREPARED 'held_$mode';");
	is(value('SELECT total()'), "value: $old", "prepared, $mode: in the window the direct call gives the old value");
	my ($served) = warm_until_hit($node, 'SELECT total_cached()');
	note("prepared, $mode: an entry was " . ($served ? '' : 'not ') . 'served in the window');
	is(value('SELECT total_cached()'), "value: $old", "prepared, $mode: ... the old value");
	release($admin, $pid);
	is(value('SELECT total_cached()'), "value: $new", "prepared, $mode: after COMMIT PREPARED the new value");
}

$node->stop;
done_testing();
