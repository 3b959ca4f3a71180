# 009_worker_fairness.pl: no role can keep the background worker from
# others (issue 8, route 3; with shared_preload_libraries = 'cachier').
#  1. A slow refresh does not stop the cleanup: while alice's refresh
#     sleeps, the stale entries of a function with cleanup_stale are
#     removed.
#  2. cachier.refresh_timeout bounds a refresh (a timed-out refresh is a
#     failed one, with a WARNING), and the refresh worker takes the roles
#     in turn: bob's refresh, queued after five slow ones of alice's, is
#     done before alice's have all timed out.
#  3. A role holds at most its share of the refresh queue (1/16 of it, 64
#     slots): of alice's 100 stale hits 64 queue a refresh, the others are
#     served and queue nothing; bob can still queue his.
#
# Progress is observed in cachier_stats, cachier.entries and
# pg_stat_activity; the refresh worker is held at a gate (an advisory lock)
# where a test needs refreshes to stay queued.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw($gate cachier_node counting_setup backdate close_gate);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# refreshes by time only: the slowness switch is a table, whose changes
# freshness would otherwise act on (it has its own tests)
my $node = cachier_node('main', conf => "max_worker_processes = 16\ncachier.track_reads = off");

$node->safe_psql(
	'postgres', counting_setup() . qq{
CREATE ROLE alice;
CREATE ROLE bob;
CREATE FUNCTION gated(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM pg_advisory_xact_lock_shared($gate);
    RETURN x || ':' || clock_timestamp();
END
\$\$;
-- sleeps while slowness.on (the test turns it on once the entries exist)
CREATE TABLE slowness (on_ boolean NOT NULL);
INSERT INTO slowness VALUES (false);
GRANT SELECT ON slowness TO PUBLIC;
CREATE FUNCTION slow(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    IF (SELECT on_ FROM slowness) THEN
        PERFORM pg_sleep(300);
    END IF;
    RETURN x || ':' || clock_timestamp();
END
\$\$;
CREATE FUNCTION quick(x int) RETURNS text LANGUAGE sql
    AS \$\$ SELECT x || ':' || clock_timestamp() \$\$;
CREATE FUNCTION tidy(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize(f, stale_after => '1 hour', next_time => true)
  FROM unnest('{gated(int),slow(int),quick(int)}'::regprocedure[]) f;
SELECT cachier_memoize('tidy(int)', stale_after => '1 hour',
                       cleanup_stale => true, cleanup_interval => '1 second');
});

# ---------------------------------------------------------------- helpers

sub counter
{
	my ($fn, $counter) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(max($counter), 0) FROM cachier_stats WHERE function = '$fn'::regprocedure"
	);
}

sub stat_condition
{
	my ($fn, $counter, $op, $value) = @_;
	return
	  "SELECT coalesce(max($counter), 0) $op $value FROM cachier_stats WHERE function = '$fn'::regprocedure";
}

my $sleeping = q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'cachier worker' AND query = 'refreshing a stale cache entry'
   AND wait_event = 'PgSleep'};

sub slowness
{
	my ($on) = @_;
	$node->safe_psql('postgres', "UPDATE slowness SET on_ = $on");
}

sub stale_hits_as
{
	my ($role, $fn, @args) = @_;
	backdate($node, 'postgres', "$fn(int)", map { "($_)" } @args);
	$node->safe_psql('postgres',
		"SET ROLE $role; " . join('', map { "SELECT ${fn}_cached($_);\n" } @args));
}

# ------------------------------------------- 1. cleanup during a slow refresh

$node->safe_psql('postgres', 'SET ROLE alice; SELECT slow_cached(1)');
slowness('true');
stale_hits_as('alice', 'slow', 1);
ok($node->poll_query_until('postgres', $sleeping),
	'cleanup: alice\'s slow refresh is running');
$node->safe_psql('postgres', 'SELECT tidy_cached(i) FROM generate_series(1, 5) i');
backdate($node, 'postgres', 'tidy(int)', map { "($_)" } 1 .. 5);
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 0 FROM cachier.entries WHERE function_id = 'tidy(int)'::regprocedure}),
	'cleanup: the stale entries are removed meanwhile');
is($node->safe_psql('postgres', $sleeping), 't', 'cleanup: while the slow refresh still runs');

my $log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	   WHERE backend_type = 'cachier worker' AND wait_event = 'PgSleep'});
ok($node->poll_query_until('postgres', stat_condition('slow(int)', 'refreshes_failed', '=', 1)),
	'cleanup: a cancelled refresh is a failed refresh');

# ------------------------------------------- 2. refresh_timeout, roles in turn

$node->safe_psql('postgres',
	"ALTER SYSTEM SET cachier.refresh_timeout = '1s'; SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres', 'SHOW cachier.refresh_timeout', '1s'),
	'timeout: cachier.refresh_timeout is 1s');
slowness('false');
$node->safe_psql('postgres',
	'SET ROLE alice; SELECT slow_cached(i) FROM generate_series(2, 6) i');
slowness('true');
$node->safe_psql('postgres', 'SET ROLE bob; SELECT quick_cached(1)');
stale_hits_as('alice', 'slow', 2 .. 6);
stale_hits_as('bob', 'quick', 1);
ok($node->poll_query_until('postgres', stat_condition('quick(int)', 'refreshes_done', '=', 1)),
	'timeout: bob\'s refresh, queued after five slow ones of alice\'s, is done');
cmp_ok(counter('slow(int)', 'refreshes_failed') - 1,
	'<', 5, 'timeout: before alice\'s have all timed out');
ok( $node->poll_query_until(
		'postgres', stat_condition('slow(int)', 'refreshes_failed', '=', 6)),
	'timeout: each of alice\'s slow refreshes fails after refresh_timeout');
ok( $node->log_contains(
		qr/WARNING:  background refresh of (?:public\.)?slow\(integer\) failed\n.*DETAIL:  canceling statement due to statement timeout/,
		$log_offset),
	'timeout: the WARNING says the refresh timed out');
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET cachier.refresh_timeout; SELECT pg_reload_conf()');

# ------------------------------------------- 3. a role's share of the queue

$node->safe_psql('postgres',
	'SET ROLE alice; SELECT quick_cached(i) FROM generate_series(1, 100) i');
$node->safe_psql('postgres', 'SELECT gated_cached(1)');
backdate($node, 'postgres', 'gated(int)', '(1)');
my $gate_session = close_gate($node);
$node->safe_psql('postgres', 'SELECT gated_cached(1)');
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'cachier worker' AND query = 'refreshing a stale cache entry'
   AND wait_event = 'advisory'}),
	'share: the refresh worker is held at the gate');

my $queued = counter('quick(int)', 'refreshes_queued');
$node->safe_psql('postgres',
	q{UPDATE cachier.entries SET created_at = created_at - interval '90 minutes'
	   WHERE function_id = 'quick(int)'::regprocedure});
is( $node->safe_psql(
		'postgres', q{
SET ROLE alice;
SELECT count(*) FROM generate_series(1, 100) i WHERE quick_cached(i) IS NOT NULL}),
	'100',
	'share: alice\'s 100 stale hits are all served');
is(counter('quick(int)', 'refreshes_queued') - $queued,
	64, 'share: 64 of them queued a refresh, alice\'s share of the queue');
$node->safe_psql('postgres', 'SELECT quick_cached(101)');
backdate($node, 'postgres', 'quick(int)', '(101)');
$node->safe_psql('postgres', 'SET ROLE bob; SELECT quick_cached(101)');
is(counter('quick(int)', 'refreshes_queued') - $queued,
	65, 'share: bob can still queue his');
$gate_session->quit;
ok( $node->poll_query_until(
		'postgres', stat_condition('quick(int)', 'refreshes_done', '>=', 66)),
	'share: the queued refreshes are done once the gate opens');

done_testing();
