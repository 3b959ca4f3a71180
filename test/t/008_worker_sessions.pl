# 008_worker_sessions.pl: each background refresh runs as a clean session of
# its role would, and the worker's own SQL is immune to the search_path it
# runs under (with shared_preload_libraries = 'cachier').
#  1. Settings do not leak between roles (issue 8, route 2): alice's
#     refreshed function changes search_path and a custom setting with
#     set_config(..., false); bob's refresh, run next by the same worker,
#     sees neither: it computes under bob's own settings, those a new
#     session of bob would have (ALTER ROLE bob SET, ALTER DATABASE SET).
#     A role's own ALTER ROLE ... SET role does not take effect in its
#     refresh (a login would have checked it against the role itself; the
#     worker, a superuser, must not): no other role's rights, no
#     session_user that row-level security policies would trust.
#  2. now() inside a refresh is the refresh's own time, not the worker's
#     start (issue 9, item 9).
#  3. The worker's cleanup under a hostile search_path (issue 8, route 1,
#     worker variant): the owner of a database points its search_path at
#     a schema with a malicious = and <=; the cleanup, run as the storage
#     owner (a superuser), removes the stale entries and never calls them.
#
# Several refreshes run in one worker process: the refresh worker of a
# database takes every queued refresh until none is left, so the test
# holds it at a gate (an advisory lock) while it queues the others.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw($gate cachier_node counting_setup backdate close_gate);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('main', conf => 'max_worker_processes = 16');

$node->safe_psql(
	'postgres', counting_setup() . qq{
CREATE ROLE alice;
CREATE ROLE bob;
ALTER ROLE bob SET test.greeting = 'hello bob';
ALTER DATABASE postgres SET test.dbwide = 'postgres';
CREATE SCHEMA attacker_schema;
-- holds the refresh worker: waits at the gate
CREATE FUNCTION gated(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM pg_advisory_xact_lock_shared($gate);
    RETURN x || ':' || clock_timestamp();
END
\$\$;
-- alice's: leaves settings behind
CREATE FUNCTION leak(x int) RETURNS text LANGUAGE sql AS \$\$
    SELECT set_config('search_path', 'attacker_schema, public', false)
        || set_config('test.greeting', 'poisoned by alice', false)
        || x || clock_timestamp()
\$\$;
-- bob's: shows the settings it runs under
CREATE FUNCTION settings(x int) RETURNS text LANGUAGE sql AS \$\$
    SELECT current_setting('search_path') || ' | '
        || coalesce(current_setting('test.greeting', true), '') || ' | '
        || coalesce(current_setting('test.dbwide', true), '') || ' | ' || x
        || ' | ' || clock_timestamp()
\$\$;
-- now() of the transaction that computes it
CREATE FUNCTION stamp(x int) RETURNS text LANGUAGE sql AS 'SELECT now()::text';
SELECT cachier_memoize(f, stale_after => '1 hour', next_time => true)
  FROM unnest('{gated(int),leak(int),settings(int),stamp(int)}'::regprocedure[]) f;
});

# ---------------------------------------------------------------- helpers

sub wait_stat
{
	my ($fn, $counter, $value) = @_;
	return $node->poll_query_until('postgres',
		"SELECT coalesce(max($counter), 0) >= $value FROM cachier_stats WHERE function = '$fn'::regprocedure"
	);
}

sub stored
{
	my ($fn) = @_;
	return $node->safe_psql('postgres',
		"SELECT convert_from(value, 'UTF8') FROM cachier.entries WHERE fn_id = cachier.fn_id('$fn')"
	);
}

my $at_gate = q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'cachier worker' AND query = 'refreshing a stale cache entry'
   AND wait_event_type = 'Lock' AND wait_event = 'advisory'};

# Hold the refresh worker at the gate (refreshing gated(1)); returns the
# session that closes the gate.
sub hold_refresh_worker
{
	$node->safe_psql('postgres', 'SELECT gated_cached(1)');
	backdate($node, 'postgres', 'gated(int)', '(1)');
	my $gate_session = close_gate($node);
	$node->safe_psql('postgres', 'SELECT gated_cached(1)');
	$node->poll_query_until('postgres', $at_gate)
	  or die 'the refresh worker did not come to the gate';
	return $gate_session;
}

# ------------------------------------------------- 1. no leak between roles

$node->safe_psql('postgres', 'SET ROLE alice; SELECT leak_cached(1)');
$node->safe_psql('postgres', 'SET ROLE bob; SELECT settings_cached(1)');
backdate($node, 'postgres', 'leak(int)',     '(1)');
backdate($node, 'postgres', 'settings(int)', '(1)');

my $gate_session = hold_refresh_worker();
# queued in this order: alice's refresh runs before bob's, in the same worker
$node->safe_psql('postgres', 'SET ROLE alice; SELECT leak_cached(1)');
$node->safe_psql('postgres', 'SET ROLE bob; SELECT settings_cached(1)');
$gate_session->quit;
ok(wait_stat('leak(int)', 'refreshes_done', 1), 'leak: alice\'s refresh is done');
ok(wait_stat('settings(int)', 'refreshes_done', 1), 'leak: bob\'s refresh is done');

like(
	stored('settings(int)'),
	qr/^"\$user", public \| hello bob \| postgres \| 1 \| /,
	'leak: bob\'s refresh ran under bob\'s own settings: the default search_path, '
	  . 'ALTER ROLE bob SET and ALTER DATABASE SET, nothing of alice\'s');

# Bob's settings do not stay behind either: the next refresh of alice's,
# a role without test.greeting, does not see bob's.
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION greeting(x int) RETURNS text LANGUAGE sql
    AS $$ SELECT coalesce(current_setting('test.greeting', true), '(none)') || x || clock_timestamp() $$;
SELECT cachier_memoize('greeting(int)', stale_after => '1 hour', next_time => true);
});
$node->safe_psql('postgres', 'SET ROLE alice; SELECT greeting_cached(1)');
backdate($node, 'postgres', 'settings(int)', '(1)');
backdate($node, 'postgres', 'greeting(int)', '(1)');
$gate_session = hold_refresh_worker();
$node->safe_psql('postgres', 'SET ROLE bob; SELECT settings_cached(1)');
$node->safe_psql('postgres', 'SET ROLE alice; SELECT greeting_cached(1)');
$gate_session->quit;
ok(wait_stat('greeting(int)', 'refreshes_done', 1), 'leak: alice\'s second refresh is done');
like(stored('greeting(int)'), qr/^\(none\)1/,
	'leak: alice\'s refresh does not see bob\'s role setting');

# A role's own role setting: refused in the refresh's restricted context.
$node->safe_psql(
	'postgres', q{
CREATE ROLE carol;
ALTER ROLE carol SET role = 'bob';
CREATE FUNCTION whoami(x int) RETURNS text LANGUAGE sql AS $$
    SELECT current_user || ' ' || current_setting('role') || ' '
        || x || ' ' || clock_timestamp() $$;
SELECT cachier_memoize('whoami(int)', stale_after => '1 hour', next_time => true);
});
$node->safe_psql('postgres', 'SET ROLE carol; SELECT whoami_cached(1)');
backdate($node, 'postgres', 'whoami(int)', '(1)');
$node->safe_psql('postgres', 'SET ROLE carol; SELECT whoami_cached(1)');
ok(wait_stat('whoami(int)', 'refreshes_done', 1), 'role setting: carol\'s refresh is done');
like(stored('whoami(int)'), qr/^carol none 1 /,
	'role setting: carol\'s refresh ran as carol, without her role setting');

# ------------------------------------------------- 2. now() in a refresh

$node->safe_psql('postgres', 'SELECT stamp_cached(1)');
backdate($node, 'postgres', 'stamp(int)', '(1)');
$gate_session = hold_refresh_worker();
$node->safe_psql('postgres', 'SELECT stamp_cached(1)');
# the worker has been running for a while when the gate opens
$node->poll_query_until('postgres',
	q{SELECT now() - backend_start > interval '2 seconds' FROM pg_stat_activity
	   WHERE backend_type = 'cachier worker' AND query = 'refreshing a stale cache entry'})
  or die 'the refresh worker is gone';
my $opened = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
$gate_session->quit;
ok(wait_stat('stamp(int)', 'refreshes_done', 1), 'now(): the refresh is done');
is( $node->safe_psql(
		'postgres', qq{
SELECT convert_from(value, 'UTF8')::timestamptz >= '$opened'
  FROM cachier.entries WHERE fn_id = cachier.fn_id('stamp(int)')}),
	't',
	'now(): inside a refresh it is the time of the refresh, not the worker\'s start');

# ------------------------------------------------- 3. cleanup under a hostile search_path

$node->safe_psql(
	'postgres', q{
CREATE ROLE mallory LOGIN;
CREATE DATABASE maldb OWNER mallory;
});
$node->safe_psql(
	'maldb', q{
CREATE EXTENSION cachier;
CREATE FUNCTION tidy(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('tidy(int)', stale_after => '1 hour',
                       cleanup_stale => true, cleanup_interval => '1 second');
SELECT tidy_cached(i) FROM generate_series(1, 5) i;
});
$node->safe_psql(
	'maldb', q{
SET ROLE mallory;
CREATE SCHEMA mal;
CREATE TABLE mal.calls (who name, op text);
GRANT INSERT ON mal.calls TO PUBLIC;
-- tries to make mallory a superuser, notes who ran it, then compares
CREATE FUNCTION mal.pwn(text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mal.calls VALUES (pg_catalog.current_user(), $1);
    BEGIN
        ALTER ROLE mallory SUPERUSER;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
END
$$;
CREATE FUNCTION mal.eq(regprocedure, regprocedure) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM mal.pwn('='); RETURN pg_catalog.oideq($1, $2); END $$;
CREATE FUNCTION mal.le(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM mal.pwn('<='); RETURN pg_catalog.timestamptz_le($1, $2); END $$;
CREATE FUNCTION mal.tideq(tid, tid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM mal.pwn('= tid'); RETURN pg_catalog.tideq($1, $2); END $$;
CREATE OPERATOR mal.= (FUNCTION = mal.eq, LEFTARG = regprocedure, RIGHTARG = regprocedure);
CREATE OPERATOR mal.<= (FUNCTION = mal.le, LEFTARG = timestamptz, RIGHTARG = timestamptz);
CREATE OPERATOR mal.= (FUNCTION = mal.tideq, LEFTARG = tid, RIGHTARG = tid);
ALTER DATABASE maldb SET search_path = mal, pg_catalog;
});
# From here on every session in maldb starts with mallory's search_path:
# the test's own SQL there names its functions and operators in full.
$node->safe_psql(
	'maldb', q{
UPDATE cachier.entries SET created_at = created_at OPERATOR(pg_catalog.-) interval '1 day'
 WHERE fn_id OPERATOR(pg_catalog.=) cachier.fn_id('public.tidy(int)')});
ok( $node->poll_query_until(
		'maldb', q{
SELECT pg_catalog.count(*) OPERATOR(pg_catalog.=) 0 FROM cachier.entries
 WHERE fn_id OPERATOR(pg_catalog.=) cachier.fn_id('public.tidy(int)')}),
	'hostile search_path: the cleanup removes the stale entries');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}),
	'f', 'hostile search_path: mallory did not become a superuser');
is($node->safe_psql('maldb', 'SELECT count(*) FROM mal.calls'),
	'0', 'hostile search_path: the cleanup called none of mallory\'s operators');

done_testing();
