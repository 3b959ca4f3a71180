# CachierTest.pm: helpers shared by cachier's TAP tests.
#
#   use FindBin;
#   use lib $FindBin::RealBin;
#   use CachierTest qw(cachier_node close_gate session ...);
#
# Nothing is exported unless asked for.  None of these helpers runs a test
# (ok, is, ...): they set nodes up, drive background psql sessions and
# build pg_locks conditions; the test files make their checks with what
# these return.

package CachierTest;

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils ();

# Every node's cluster is UTF8 with the C.UTF-8 locale whatever the
# environment says: initdb takes both from LANG and LC_* (Utils has dropped
# LC_ALL), and a machine without LANG would give SQL_ASCII, where the ICU
# collations the context tests use do not exist.
$ENV{LANG} = 'C.UTF-8';
delete @ENV{qw(LC_CTYPE LC_COLLATE LC_MONETARY LC_NUMERIC LC_TIME)};

our @EXPORT_OK = qw(
  $gate $lock_of
  cachier_node counting_setup backdate verbose_psql
  close_gate session start_statement start_fresh_statement
  finish_statement close_session computing_condition
  int_arg_hash new_keys);

# ---------------------------------------------------------------- nodes

# A new node $name, initialised with the other parameters (those of
# init(), e.g. allows_streaming => 1, extra => [...]), with cachier in
# shared_preload_libraries and then the lines of conf => '...' (if given)
# in postgresql.conf, and started.  With CACHIER_TEST_SHARED_CACHE set
# (make installcheck-memory-tier), the shared memory tier of that size
# is on, unless conf sets cachier.shared_cache_size itself.
sub cachier_node
{
	my ($name, %params) = @_;
	my $conf = delete $params{conf};
	my $node = PostgreSQL::Test::Cluster->new($name);
	my $memory = $ENV{CACHIER_TEST_SHARED_CACHE};
	$node->init(%params);
	$node->append_conf(
		'postgresql.conf',
		join("\n",
			"shared_preload_libraries = 'cachier'",
			$memory ? "cachier.shared_cache_size = '$memory'" : (),
			$conf // ()));
	$node->start;
	return $node;
}

# With CACHIER_TEST_SHARED_CACHE set, every node's memory-tier hits are
# recorded before it stops or restarts (which empties the area), so that
# test/scripts/memory-tier.sh can check that the tests were served from
# memory: a line "<test file> <node> <hits>" in tmp_check/memory_tier_hits.
# (Nodes made without cachier_node, e.g. a standby from a backup of a
# cachier_node, are recorded too.)
sub record_memory_hits
{
	my ($node) = @_;
	my ($out, $err) = ('', '');
	local $?;
	return unless defined $node->{_pid};
	my $rc = eval {
		$node->psql('postgres', 'SELECT hits FROM cachier_memory',
			stdout => \$out, stderr => \$err);
	};
	return unless defined $rc && $rc == 0 && $out =~ /^\d+$/;
	my $test = $0 =~ s{.*/}{}r;
	if (open(my $fh, '>>', "$PostgreSQL::Test::Utils::tmp_check/memory_tier_hits"))
	{
		print $fh "$test ", $node->name, " $out\n";
		close($fh);
	}
	return;
}

if ($ENV{CACHIER_TEST_SHARED_CACHE})
{
	no strict 'refs';
	no warnings 'redefine';
	foreach my $method (qw(stop restart))
	{
		my $original = PostgreSQL::Test::Cluster->can($method);
		*{"PostgreSQL::Test::Cluster::$method"} = sub {
			record_memory_hits($_[0]);
			return $original->(@_);
		};
	}
}

# SQL that creates the extension and the counter of executions: the
# functions under test call nextval('calls') once per execution, and
# executions() returns how many there were.
sub counting_setup
{
	return q{
CREATE EXTENSION cachier;
CREATE SEQUENCE calls;
CREATE FUNCTION executions() RETURNS bigint LANGUAGE sql
    AS $$ SELECT last_value - 1 + is_called::int FROM calls $$;
};
}

# In database $db of $node, move created_at of the entries of $fn (e.g.
# 'f(int)') for the given arguments (text forms, e.g. '(1)') back 90
# minutes: stale for a shelf life of an hour, yet younger than the default
# max_stale_age (twice the shelf life), so next_time still serves it.
# A shared memory tier does not see changes made by hand to the table: its
# copies are forgotten, as README says to do.
sub backdate
{
	my ($node, $db, $fn, @args) = @_;
	my $list = join(', ', map { "'$_'" } @args);
	$node->safe_psql(
		$db, qq{
UPDATE cachier.entries e SET created_at = e.created_at - interval '90 minutes'
  FROM cachier_entries v
 WHERE cachier.fn_id(v.function) = e.fn_id AND v.key = e.key
   AND v.function = '$fn'::regprocedure AND v.arguments IN ($list);
SELECT cachier_memory_reset();});
}

# Run SQL in database postgres of $node with cachier.verbose on (stopping
# at the first error); return (exit code, stdout, stderr).
sub verbose_psql
{
	my ($node, $sql) = @_;
	my ($stdout, $stderr);
	my $rc = $node->psql(
		'postgres',
		"SET cachier.\"verbose\" = on;\n$sql",
		stdout => \$stdout,
		stderr => \$stderr,
		on_error_stop => 1);
	return ($rc, $stdout, $stderr);
}

# ---------------------------------------------------------------- the gate

# The gate holds computations open: the test holds this advisory lock and
# the function under test takes it in share mode (pg_advisory_lock(4242):
# classid 0, objid 4242, objsubid 1 in pg_locks).
our $gate = 4242;

# A session of $node that closes the gate; open it with $session->quit.
sub close_gate
{
	my ($node) = @_;
	my $session = $node->background_psql('postgres');
	$session->query_safe("SELECT pg_advisory_lock($gate)");
	return $session;
}

# ---------------------------------------------------------------- sessions

# A background session of $node (database postgres, going on after
# errors) with the optional settings $settings applied; returns it and
# its backend pid.
sub session
{
	my ($node, $settings) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_safe($settings) if $settings;
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	return ($session, $pid);
}

# Start a statement in a session without waiting for its result.
sub start_statement
{
	my ($session, $sql) = @_;
	$session->query_until(qr/started\n/, "\\echo started\n$sql\n");
}

# start_statement, after forgetting what the session wrote to stderr so
# far: its stderr then holds this statement's messages only.
sub start_fresh_statement
{
	my ($session, $sql) = @_;
	$session->{stderr} = '';
	start_statement($session, $sql);
}

# Wait for the result line of a statement started with start_statement
# (output matching $pattern); return it and everything the session wrote
# to stderr so far.
sub finish_statement
{
	my ($session, $pattern) = @_;
	my $line = $session->query_until($pattern, '');
	# a round trip through both output streams collects all of stderr
	$session->query('SELECT 1');
	return ($line, $session->{stderr});
}

# Close a session whose backend may be gone.
sub close_session
{
	my ($session) = @_;
	eval {
		$session->{run}->pump_nb;
		if ($session->{run}->pumpable)
		{
			$session->quit;
		}
		else
		{
			$session->{run}->finish;
		}
	};
}

# ---------------------------------------------------------------- pg_locks

# A key's in-progress lock is an advisory lock in cachier's own lock space:
# pg_locks shows it with an objsubid other than 1 and 2, the two that
# pg_advisory_lock() and its variants use.  $lock_of is that condition on
# pg_locks.
our $lock_of = q{locktype = 'advisory' AND objsubid NOT IN (1, 2)};
my $at_gate =
  "locktype = 'advisory' AND objsubid = 1 AND objid = $gate AND NOT granted";

# A condition: pid computes a key, i.e. it holds a key's lock and waits at
# the gate.
sub computing_condition
{
	my ($pid) = @_;
	return
	  "EXISTS (SELECT 1 FROM pg_locks WHERE pid = $pid AND $lock_of"
	  . "        AND mode = 'ExclusiveLock' AND granted)"
	  . " AND EXISTS (SELECT 1 FROM pg_locks WHERE pid = $pid AND $at_gate)";
}

# ---------------------------------------------------------------- Redis

# The argument part of the Redis key of a call with one int argument $x:
# the SHA-256 (hex) of the keyed bytes of the argument and of the call's
# context (context_key.c), for a call made by the bootstrap superuser (role
# OID 10) of a function keyed by role (the default of VOLATILE SECURITY
# INVOKER functions) in a server with cachier.key_settings = '' (no
# settings keyed, search_path included): the argument, then the role.
sub int_arg_hash
{
	my ($x) = @_;
	return sha256_hex('v' . pack('N', 4) . pack('l>', $x) . 'r' . pack('N', 10));
}

# Run $code; return the keys it added to $redis (a RedisServer).
sub new_keys
{
	my ($redis, $code) = @_;
	my %before = map { $_ => 1 } $redis->keys('*');
	$code->();
	return grep { !$before{$_} } $redis->keys('*');
}

1;
