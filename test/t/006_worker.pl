# 006_worker.pl: what cachier's background worker does (with
# shared_preload_libraries = 'cachier').
#  1. Cleanup: the stale entries of a function with cleanup_stale are
#     removed every cleanup_interval, and only those: neither its fresh
#     entries nor the stale entries of a function without cleanup_stale.
#     A function configured on a running server (after CREATE EXTENSION) is
#     cleaned within its cleanup_interval, without a restart.
#  2. next_time: a stale hit returns the stale value at once (even while
#     the function could not run) and the key is refreshed once in the
#     background; while that refresh is queued or running, any number of
#     concurrent stale hits return the stale value and queue nothing.
#  3. A refresh runs as the role whose call queued it (current_user is that
#     role), and fails if that role has lost EXECUTE meanwhile.
#  4. A failing refresh keeps the stale value (callers still get it), logs
#     a WARNING and counts in refreshes_failed; once the function works
#     again, the next stale hit refreshes the entry.
#  5. cachier.max_age exceeded: the call recomputes synchronously even with
#     next_time, and queues nothing.
#  6. cachier_stats after a scripted sequence shows exactly its counts.
#  7. Without preloading, next_time recomputes synchronously, the NOTICE
#     saying so appears once per session, and cachier_stats is an error
#     whose hint names shared_preload_libraries.
#
# Nothing is timed: progress is observed in the tables, in cachier_stats,
# in pg_stat_activity and in the server log.  Entries are made stale by
# moving their created_at back a day (stale_after is an hour).  Two ways of
# holding the worker still:
#  - the gate: an advisory lock that the test holds and a function takes in
#    share mode after counting its execution, so a refresh stays running;
#  - the blocker: the test row-locks a stale entry of a function that is
#    cleaned every second, so the database's cleanup worker waits in its
#    cleanup; with cachier.max_workers = 1 no refresh worker can start
#    meanwhile, so a queued refresh stays queued.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw($gate cachier_node counting_setup backdate close_gate);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node(
	'main', conf => q{
max_worker_processes = 16
# one database worker at a time: the blocker (below) holds refreshes queued
cachier.max_workers = 1
# refreshes by time only: the gates below are tables, whose changes would
# otherwise invalidate (freshness has its own tests)
cachier.track_reads = off
# the start and exit of every background worker are logged at DEBUG1
log_min_messages = debug1});

# The launcher lists the databases at once and starts a worker for
# "postgres", which finds no extension there yet.  Wait for it to be done,
# so that everything below happens on a server whose worker has run.
$node->wait_for_log(
	qr/background worker "cachier worker" \(PID \d+\) exited with exit code 0/);
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'cachier launcher'}),
	'1',
	'the launcher runs');

$node->safe_psql(
	'postgres', counting_setup() . qq{
-- cleanup: tidy is cleaned every second, keep never
CREATE FUNCTION tidy(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
CREATE FUNCTION keep(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('tidy(int)', stale_after => '1 hour',
                       cleanup_stale => true, cleanup_interval => '1 second');
SELECT cachier_memoize('keep(int)', stale_after => '1 hour');
SELECT tidy_cached(i), keep_cached(i) FROM generate_series(1, 6) i;
});

# ---------------------------------------------------------------- helpers

sub executions
{
	return $node->safe_psql('postgres', 'SELECT executions()');
}

my @counters = qw(hits misses stale_hits waits wait_timeouts computations
  refreshes_queued refreshes_done refreshes_failed entries bytes);

# The counters of fn in cachier_stats, as a hash.
sub stats
{
	my ($fn) = @_;
	my $row = $node->safe_psql('postgres',
		    'SELECT '
		  . join(', ', @counters)
		  . " FROM cachier_stats WHERE function = '$fn'::regprocedure");
	my %s;
	@s{@counters} = $row eq '' ? (0) x @counters : split(/\|/, $row);
	return \%s;
}

# The differences of the counters (not entries and bytes) of fn since
# $before (a stats() result), as "name=value" for those that changed.
sub stats_delta
{
	my ($fn, $before) = @_;
	my $now = stats($fn);
	return join(' ',
		map { "$_=" . ($now->{$_} - $before->{$_}) }
		grep { $now->{$_} != $before->{$_} } @counters[0 .. 8]);
}

# Wait until fn's counter has grown by $n since $before, and then until
# the worker that counted it has exited: only then is the key's refresh
# out of the queue, so that a new stale hit queues a new one.
sub wait_counter
{
	my ($fn, $counter, $before, $n) = @_;
	my $target = $before->{$counter} + $n;
	return $node->poll_query_until('postgres',
		"SELECT $counter >= $target FROM cachier_stats WHERE function = '$fn'::regprocedure"
	  )
	  && $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity
 WHERE backend_type = 'cachier worker' AND datname = 'postgres'});
}

# The stored text value and created_at of fn's entry for the arguments.
sub entry
{
	my ($fn, $args) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT convert_from(e.value, 'UTF8') || ' @ ' || e.created_at
  FROM cachier.entries e JOIN cachier_entries v
       ON v.function = e.function_id AND v.key = e.key
 WHERE v.function = '$fn'::regprocedure AND v.arguments = '$args'});
}

# Run SQL with cachier.verbose on; return (exit code, stdout, stderr).
# A statement that does not return within 30 s counts as a failure.
sub verbose_psql
{
	my ($sql, %opts) = @_;
	my ($stdout, $stderr, $timed_out);
	my $rc = $node->psql(
		'postgres',
		"SET cachier.\"verbose\" = on;\n$sql",
		stdout => \$stdout,
		stderr => \$stderr,
		timeout => 30,
		timed_out => \$timed_out,
		%opts);
	$rc = 'timed out' if $timed_out;
	return ($rc, $stdout, $stderr);
}

# The worker of this database waits at the gate, refreshing.
my $worker_at_gate = q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'cachier worker' AND datname = 'postgres'
   AND wait_event_type = 'Lock' AND wait_event = 'advisory'};

# Hold the database's worker in its cleanup of blk (cleaned every second):
# a transaction row-locks blk's stale entry, the worker's DELETE waits for
# it.  Returns the session; unblock_worker() lets the worker go on.
sub block_worker
{
	my $session = $node->background_psql('postgres');
	for my $attempt (1 .. 20)
	{
		$node->safe_psql('postgres', 'SELECT blk_cached(1)');
		backdate($node, 'postgres', 'blk(int)', '(1)');
		# the worker may have removed it in between: then try again
		my $locked = $session->query_safe(
			q{BEGIN;
SELECT count(*) FROM (SELECT 1 FROM cachier.entries
                       WHERE function_id = 'blk(int)'::regprocedure
                         AND created_at < now() - interval '1 hour'
                         FOR UPDATE) s;});
		last if $locked eq '1';
		$session->query_safe('ROLLBACK');
	}
	$node->poll_query_until(
		'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'cachier worker' AND datname = 'postgres'
   AND wait_event_type = 'Lock' AND query = 'removing stale cache entries'})
	  or die 'the worker did not come to wait for the blocker';
	return $session;
}

sub unblock_worker
{
	my ($session) = @_;
	$session->query_safe('COMMIT');
	$session->quit;
}

# Run $clients concurrent sessions calling $sql $times each (pgbench);
# return whether all of them succeeded, and pgbench's output.
sub concurrent_calls
{
	my ($clients, $times, $sql) = @_;
	my $script = "${PostgreSQL::Test::Utils::tmp_check}/calls.sql";
	open my $fh, '>', $script or die "could not write $script: $!";
	print $fh "$sql\n";
	close $fh;
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run(
		[
			$node->config_data('--bindir') . '/pgbench',
			'-n', '-c', $clients, '-j', $clients, '-t', $times, '-f', $script,
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$stdout, '2>', \$stderr,
		IPC::Run::timeout(60));
	my ($processed) =
	  $stdout =~ /number of transactions actually processed: (\d+)/;
	$ok &&= defined $processed && $processed == $clients * $times;
	$ok &&= $stderr !~ /error|aborted/i;
	return ($ok, "$stdout\n$stderr");
}

# ---------------------------------------------------------------- 1. cleanup

backdate($node, 'postgres', $_, '(1)', '(2)', '(3)')
  for ('tidy(int)', 'keep(int)');

my $listing = q{
SELECT string_agg(function || arguments
                  || CASE WHEN created_at < now() - interval '1 hour'
                          THEN ' stale' ELSE '' END,
                  ', ' ORDER BY function::text, arguments)
  FROM cachier_entries
 WHERE function IN ('tidy(int)'::regprocedure, 'keep(int)'::regprocedure)};
my $tidy_has_stale = q{
SELECT count(*) FROM cachier.entries
 WHERE function_id = 'tidy(int)'::regprocedure
   AND created_at < now() - interval '1 hour'};
my $keep_all = join(', ',
	(map { "keep(integer)($_) stale" } 1 .. 3),
	(map { "keep(integer)($_)" } 4 .. 6));

# The database's worker ran before the extension existed.  The new
# function's cleanup_interval is one second: give it ten.
my $cleaned_without_restart;
{
	local $PostgreSQL::Test::Utils::timeout_default = 10;
	$cleaned_without_restart =
	  $node->poll_query_until('postgres', $tidy_has_stale, '0');
}
ok($cleaned_without_restart,
	'cleanup: a function configured with cleanup_interval 1s after CREATE EXTENSION '
	  . 'on a running server is cleaned within 10 s, without a restart');

# Databases known when the launcher starts are due at once.
$node->restart unless $cleaned_without_restart;
ok($node->poll_query_until('postgres', $tidy_has_stale, '0'),
	'cleanup: the stale entries of the function with cleanup_stale are removed');
is( $node->safe_psql('postgres', $listing),
	join(', ', $keep_all, map { "tidy(integer)($_)" } 4 .. 6),
	'cleanup: exactly those went: the fresh entries and the other function\'s stale ones stay'
);

# It happens again every cleanup_interval.
backdate($node, 'postgres', 'tidy(int)', '(4)');
ok($node->poll_query_until('postgres', $tidy_has_stale, '0'),
	'cleanup: an entry that goes stale later is removed by a later cleanup');
is( $node->safe_psql('postgres', $listing),
	join(', ', $keep_all, map { "tidy(integer)($_)" } 5 .. 6),
	'cleanup: again only that entry went');

# ---------------------------------------------------------------- 2. next_time

$node->safe_psql(
	'postgres', qq{
-- counts its execution, then waits at the gate
CREATE FUNCTION gated(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM nextval('calls');
    PERFORM pg_advisory_xact_lock_shared($gate);
    RETURN x || ':' || currval('calls');
END
\$\$;
SELECT cachier_memoize('gated(int)', stale_after => '1 hour', next_time => true);
-- the blocker: cleaned every second
CREATE FUNCTION blk(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('blk(int)', stale_after => '1 hour',
                       cleanup_stale => true, cleanup_interval => '1 second');
});

my $v1 = $node->safe_psql('postgres', 'SELECT gated_cached(1)');
my $v2 = $node->safe_psql('postgres', 'SELECT gated_cached(2)');
my $entry1 = entry('gated(int)', '(1)');

# A stale hit while the function cannot run (the gate is closed).
my $gate_session = close_gate($node);
backdate($node, 'postgres', 'gated(int)', '(1)');
my $before = stats('gated(int)');
my $base = executions();
my ($rc, $stdout, $stderr) = verbose_psql('SELECT gated_cached(1);');
is($rc, 0, 'next_time: a stale hit returns at once while the function is held at the gate');
is($stdout, $v1, 'next_time: the stale hit returns the stale value');
like(
	$stderr,
	qr/NOTICE:  cachier: stale, served: public\.gated\(1\)\nDETAIL:  .*a background refresh is queued/,
	'next_time: verbose says the stale value was served and a refresh queued');
ok($node->poll_query_until('postgres', $worker_at_gate),
	'next_time: a worker refreshes the key in the background (it waits at the gate)');
is( $node->safe_psql(
		'postgres',
		q{SELECT processing FROM cachier_entries
		   WHERE function = 'gated(int)'::regprocedure AND arguments = '(1)'}),
	't',
	'next_time: the entry is shown as processing while the worker computes it');

# Dedup while the refresh runs: 10 sessions x 5 stale hits.
my ($ok, $out) = concurrent_calls(10, 5,
	"SELECT 1 / (gated_cached(1) = '$v1')::int;    -- fails on another value");
ok($ok, 'dedup (running): 50 concurrent stale hits all return the stale value at once')
  or diag $out;
is( stats_delta('gated(int)', $before),
	'stale_hits=51 refreshes_queued=1',
	'dedup (running): 51 stale hits, one refresh queued');
is(executions() - $base, 1, 'dedup (running): the function ran once (the refresh)');

$gate_session->quit;
ok(wait_counter('gated(int)', 'refreshes_done', $before, 1),
	'next_time: the refresh completes once the gate opens');
is(executions() - $base, 1, 'next_time: still one execution in all');
isnt(entry('gated(int)', '(1)'), $entry1, 'next_time: the entry was rewritten');
my $new1 = $node->safe_psql('postgres', 'SELECT gated_cached(1)');
like($new1, qr/^1:\d+$/, 'next_time: the next call returns the refreshed value');
isnt($new1, $v1, 'next_time: which is a new value');
is( stats_delta('gated(int)', $before),
	'hits=1 stale_hits=51 computations=1 refreshes_queued=1 refreshes_done=1',
	'next_time: counters: 51 stale hits, 1 refresh queued and done, 1 computation, 1 hit');

# Dedup while the refresh is queued: the worker is held in its cleanup.
my $blocker = block_worker();
backdate($node, 'postgres', 'gated(int)', '(2)');
my $entry2 = entry('gated(int)', '(2)');
$before = stats('gated(int)');
$base = executions();
($ok, $out) = concurrent_calls(10, 5,
	"SELECT 1 / (gated_cached(2) = '$v2')::int;    -- fails on another value");
ok($ok, 'dedup (queued): 50 concurrent stale hits all return the stale value')
  or diag $out;
is( stats_delta('gated(int)', $before),
	'stale_hits=50 refreshes_queued=1',
	'dedup (queued): 50 stale hits, one refresh queued');
is(executions() - $base, 0, 'dedup (queued): nothing ran yet');
unblock_worker($blocker);
ok(wait_counter('gated(int)', 'refreshes_done', $before, 1),
	'dedup (queued): the refresh runs once the worker goes on');
is(executions() - $base, 1, 'dedup (queued): the function ran exactly once');
isnt(entry('gated(int)', '(2)'), $entry2, 'dedup (queued): the entry was refreshed');

# ---------------------------------------------------------------- 3. roles

$node->safe_psql(
	'postgres', q{
CREATE ROLE alice;
CREATE ROLE bob;
CREATE FUNCTION who(x int) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT current_user || ' ' || x $$;
SELECT cachier_memoize('who(int)', stale_after => '1 hour', next_time => true,
                       per_role => false);
});
my $me = $node->safe_psql('postgres', 'SELECT current_user');
is($node->safe_psql('postgres', 'SELECT who_cached(1)'),
	"$me 1", 'roles: the first call stores the superuser\'s result');
backdate($node, 'postgres', 'who(int)', '(1)');
$before = stats('who(int)');
is($node->safe_psql('postgres', 'SET ROLE alice; SELECT who_cached(1)'),
	"$me 1", 'roles: alice\'s stale hit returns the stale value');
ok(wait_counter('who(int)', 'refreshes_done', $before, 1),
	'roles: the background refresh is done');
is( $node->safe_psql(
		'postgres',
		q{SELECT convert_from(value, 'UTF8') FROM cachier.entries
		   WHERE function_id = 'who(int)'::regprocedure}),
	'alice 1',
	'roles: the background refresh ran as alice, whose call queued it');
is(stats_delta('who(int)', $before),
	'stale_hits=1 computations=1 refreshes_queued=1 refreshes_done=1',
	'roles: one refresh, done');

# per_role: each role's entry is refreshed as that role.
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION mine(x int) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT current_user || ' ' || x || ' ' || clock_timestamp() $$;
SELECT cachier_memoize('mine(int)', stale_after => '1 hour', next_time => true,
                       per_role => true);
});
my %mine;
$mine{$_} = $node->safe_psql('postgres', "SET ROLE $_; SELECT mine_cached(1)")
  for qw(alice bob);
$node->safe_psql('postgres',
	q{UPDATE cachier.entries SET created_at = created_at - interval '90 minutes'
	   WHERE function_id = 'mine(int)'::regprocedure});
$before = stats('mine(int)');
is( join(', ',
		map { $node->safe_psql('postgres', "SET ROLE $_; SELECT mine_cached(1)") }
		  qw(alice bob)),
	"$mine{alice}, $mine{bob}",
	'per_role: each role\'s stale hit returns its own stale value');
ok(wait_counter('mine(int)', 'refreshes_done', $before, 2),
	'per_role: two refreshes are done');
my $mine_now = $node->safe_psql(
	'postgres', q{
SELECT string_agg(convert_from(value, 'UTF8'), ', ' ORDER BY 1)
  FROM cachier.entries WHERE function_id = 'mine(int)'::regprocedure});
like($mine_now, qr/^alice 1 \S+ \S+, bob 1 \S+ \S+$/,
	'per_role: each entry was recomputed as its own role');
unlike($mine_now, qr/\Q$mine{alice}\E|\Q$mine{bob}\E/,
	'per_role: both entries hold new values');

# bob queues a refresh, then loses EXECUTE before the worker runs it.
$blocker = block_worker();
backdate($node, 'postgres', 'who(int)', '(1)');
my $who_entry = entry('who(int)', '(1)');
$before = stats('who(int)');
is($node->safe_psql('postgres', 'SET ROLE bob; SELECT who_cached(1)'),
	'alice 1', 'roles: bob\'s stale hit returns the stale value');
is(stats_delta('who(int)', $before),
	'stale_hits=1 refreshes_queued=1', 'roles: bob\'s call queued a refresh');
$node->safe_psql('postgres', 'REVOKE EXECUTE ON FUNCTION who(int) FROM PUBLIC');
my $log_offset = -s $node->logfile;
unblock_worker($blocker);
ok(wait_counter('who(int)', 'refreshes_failed', $before, 1),
	'roles: the refresh queued by bob fails once bob may no longer execute who()');
ok( $node->log_contains(
		qr/WARNING:  background refresh of (?:public\.)?who\(integer\) failed\n.*DETAIL:  permission denied for function who/,
		$log_offset),
	'roles: the failure is logged as a permission error');
is(entry('who(int)', '(1)'), $who_entry,
	'roles: the entry keeps the value computed for alice');
is(stats_delta('who(int)', $before),
	'stale_hits=1 refreshes_queued=1 refreshes_failed=1',
	'roles: nothing was computed');

# ---------------------------------------------------------------- 4. failures

$node->safe_psql(
	'postgres', q{
CREATE TABLE flag (fail boolean NOT NULL);
INSERT INTO flag VALUES (false);
CREATE FUNCTION fragile(x int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('calls');
    IF (SELECT fail FROM flag) THEN
        RAISE EXCEPTION 'fragile is broken today';
    END IF;
    RETURN x || ':' || currval('calls');
END
$$;
SELECT cachier_memoize('fragile(int)', stale_after => '1 hour', next_time => true);
});
my $f1 = $node->safe_psql('postgres', 'SELECT fragile_cached(1)');
$node->safe_psql('postgres', 'UPDATE flag SET fail = true');
backdate($node, 'postgres', 'fragile(int)', '(1)');
my $fragile_entry = entry('fragile(int)', '(1)');
$before = stats('fragile(int)');
$base = executions();
$log_offset = -s $node->logfile;

is($node->safe_psql('postgres', 'SELECT fragile_cached(1)'),
	$f1, 'failure: the stale hit returns the stale value');
ok(wait_counter('fragile(int)', 'refreshes_failed', $before, 1),
	'failure: the background refresh fails');
$node->wait_for_log(
	qr/WARNING:  background refresh of (?:public\.)?fragile\(integer\) failed\n.*DETAIL:  fragile is broken today\n.*HINT:  The stale value stays in the cache\./,
	$log_offset);
ok(1, 'failure: the WARNING names the function and the error');
is(entry('fragile(int)', '(1)'), $fragile_entry,
	'failure: the stale entry is kept as it was');
is(stats_delta('fragile(int)', $before),
	'stale_hits=1 refreshes_queued=1 refreshes_failed=1',
	'failure: counted in refreshes_failed, not in refreshes_done');

($rc, $stdout, $stderr) = verbose_psql('SELECT fragile_cached(1);');
is($stdout, $f1, 'failure: later callers still get the stale value');
unlike($stderr, qr/ERROR|WARNING/, 'failure: and no error or warning');
ok(wait_counter('fragile(int)', 'refreshes_failed', $before, 2),
	'failure: their stale hit queued another refresh, which fails too');

$node->safe_psql('postgres', 'UPDATE flag SET fail = false');
is($node->safe_psql('postgres', 'SELECT fragile_cached(1)'),
	$f1, 'failure: after the repair the stale hit still returns the stale value');
ok(wait_counter('fragile(int)', 'refreshes_done', $before, 1),
	'failure: and the refresh it queued succeeds');
my $f2 = $node->safe_psql('postgres', 'SELECT fragile_cached(1)');
isnt($f2, $f1, 'failure: the refreshed value is served');
is(executions() - $base, 3, 'failure: three executions: two failed, one stored');
is( stats_delta('fragile(int)', $before),
	'hits=1 stale_hits=3 computations=1 refreshes_queued=3 refreshes_done=1 refreshes_failed=2',
	'failure: counters of the whole story');

# ---------------------------------------------------------------- 5. max_age

my $m1 = $node->safe_psql('postgres', 'SELECT gated_cached(5)');
$before = stats('gated(int)');
$base = executions();
($rc, $stdout, $stderr) = verbose_psql(
	q{SET cachier.max_age = '1 ms';
SELECT pg_sleep(0.01);  -- the entry is older than 1 ms
SELECT gated_cached(5);});
is($rc, 0, 'max_age: the call succeeds');
my ($m2) = $stdout =~ /^(5:\d+)$/m;
ok(defined $m2 && $m2 ne $m1,
	'max_age: with next_time, an entry older than cachier.max_age is recomputed: a new value');
is(executions() - $base, 1,
	'max_age: computed synchronously, within the call');
like($stderr, qr/NOTICE:  cachier: stale: public\.gated\(5\)\nDETAIL:  Older than cachier\.max_age/,
	'max_age: verbose says why');
is( stats_delta('gated(int)', $before),
	'stale_hits=1 computations=1',
	'max_age: no refresh was queued');
is($node->safe_psql('postgres', 'SELECT gated_cached(5)'),
	$m2, 'max_age: the recomputed value was stored');

# ---------------------------------------------------------------- 6. statistics

$node->safe_psql(
	'postgres', q{
CREATE FUNCTION sq(x int) RETURNS int LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); RETURN x * x; END $$;
SELECT cachier_memoize('sq(int)', stale_after => '1 hour', next_time => true);
SELECT cachier_stats_reset();
});
$node->safe_psql(
	'postgres', q{
SELECT sq_cached(1); SELECT sq_cached(2); SELECT sq_cached(3);   -- 3 misses
SELECT sq_cached(1); SELECT sq_cached(1); SELECT sq_cached(2);   -- 5 hits
SELECT sq_cached(2); SELECT sq_cached(3);
});
backdate($node, 'postgres', 'sq(int)', '(1)');
is($node->safe_psql('postgres', 'SELECT sq_cached(1)'),
	'1', 'statistics: a stale hit is served');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT refreshes_done FROM cachier_stats WHERE function = 'sq(int)'::regprocedure},
		'1'),
	'statistics: the refresh is done');
is( $node->safe_psql(
		'postgres', q{
SELECT hits, misses, stale_hits, waits, wait_timeouts, computations,
       refreshes_queued, refreshes_done, refreshes_failed, entries, bytes,
       total_compute_ms > 0, saved_ms > 0
  FROM cachier_stats WHERE function = 'sq(int)'::regprocedure}),
	'5|3|1|0|0|4|1|1|0|3|12|t|t',
	'statistics: 5 hits, 3 misses, 1 stale hit, 4 computations, 1 refresh queued and done, '
	  . '3 entries of 4 bytes');
$node->safe_psql('postgres', 'SELECT cachier_stats_reset()');
is( $node->safe_psql(
		'postgres', q{
SELECT hits + misses + stale_hits + waits + wait_timeouts + computations
       + refreshes_queued + refreshes_done + refreshes_failed,
       total_compute_ms, saved_ms, entries, bytes
  FROM cachier_stats WHERE function = 'sq(int)'::regprocedure}),
	'0|0|0|3|12',
	'statistics: cachier_stats_reset() zeroes the counters; entries and bytes stay');

$node->stop;

# ------------------------------------------------------- 7. without preloading

my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql(
	'postgres', counting_setup() . q{
CREATE FUNCTION stamp(x int) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN RETURN x || ':' || nextval('calls'); END $$;
SELECT cachier_memoize('stamp(int)', stale_after => '1 hour', next_time => true);
SELECT stamp_cached(i) FROM generate_series(1, 3) i;
UPDATE cachier.entries SET created_at = created_at - interval '90 minutes';
});
is( $plain->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'cachier%'}),
	'0',
	'without preloading: no launcher runs');
$base = $plain->safe_psql('postgres', 'SELECT executions()');
($rc, $stdout, $stderr) = (undef, '', '');
$rc = $plain->psql(
	'postgres',
	'SELECT stamp_cached(1); SELECT stamp_cached(2); SELECT stamp_cached(3);',
	stdout => \$stdout,
	stderr => \$stderr);
is($rc, 0, 'without preloading: stale next_time calls succeed');
is($stdout, "1:4\n2:5\n3:6",
	'without preloading: they return values recomputed synchronously');
is($plain->safe_psql('postgres', 'SELECT executions()') - $base,
	3, 'without preloading: each stale call ran the function');
my @notices = $stderr =~
  /NOTICE:  cachier: next_time refreshes stale values synchronously in this server/g;
is(scalar @notices, 1, 'without preloading: the NOTICE appears once in the session');
like($stderr, qr/HINT:  .*shared_preload_libraries/,
	'without preloading: its hint names shared_preload_libraries');
is( $plain->safe_psql(
		'postgres',
		q{SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY created_at)
		    FROM cachier.entries WHERE created_at > now() - interval '1 hour'}),
	'1:4,2:5,3:6',
	'without preloading: the recomputed values were stored');

$stderr = '';
$rc = $plain->psql('postgres', 'SELECT * FROM cachier_stats', stderr => \$stderr);
isnt($rc, 0, 'without preloading: reading cachier_stats fails');
like($stderr, qr/ERROR:  .*shared_preload_libraries.*\n(?:.*\n)*HINT:  .*shared_preload_libraries/,
	'without preloading: the error and its hint name shared_preload_libraries');
$stderr = '';
$rc = $plain->psql('postgres', 'SELECT cachier_stats_reset()', stderr => \$stderr);
like($stderr, qr/HINT:  .*shared_preload_libraries/,
	'without preloading: cachier_stats_reset() fails with the same hint');

$plain->stop;
done_testing();
