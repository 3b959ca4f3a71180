# 020_hostile_tenant.pl: a hostile tenant against cachier (issue 8).
#
# One cluster (cachier preloaded, the background worker running, a real
# redis-server), two databases: db1, owned by the bootstrap superuser, where
# the victim keeps its cached functions, and db2, owned by the attacker.
# The attacker is an ordinary LOGIN role with CREATE on its schema mal and
# on public.  Each route of issue 8 is one subtest, named after the route,
# and asserts what a user relies on -- nobody escalates, nothing leaks,
# nothing is poisoned -- never an error text:
#   1. search_path: code planted in mal and public (operators =, <=, now()
#      ...) never runs as anyone but the attacker, through cachier_clear
#      under the attacker's search_path, cachier.set_options/forget called
#      directly (refused), a superuser's cachier_clear/configure/memoize
#      with public first, or the worker's cleanup under ALTER DATABASE SET
#      search_path by the attacker as database owner.
#   2. A set_config made by the attacker's function in a background refresh
#      does not reach the victim's refresh run next by the same worker.
#   3. A flood of queued refreshes and a slow refresh by the attacker do not
#      stop the victim's refresh or the cleanup of the database.
#   4. Redis: entries computed or precached in db2 are never served in db1
#      (and the other way round), the definitions being identical.
#   5. Thousands of functions wrapped by the attacker exhaust no shared
#      memory: other sessions still take their locks.
#   6. Consent: a result computed by the superuser with its privileges is
#      not served to the attacker; cachier_precache by the attacker does
#      not change what the victim is served.
#   7. Storage: cachier.max_entry_size and cachier.max_role_bytes, set by the
#      superuser, hold against the attacker, who cannot change them.
#   8. Identity: a new role with a dropped role's name does not get its
#      per_role entries; a SECURITY DEFINER function's new owner does not
#      get the entries computed as the old one.
#   9. A cachier.redis_url password never shows in WARNINGs or the log.
#  10. The views show the attacker only its own functions and entries,
#      never the victim's arguments.
# Finally the server log shows no crash.
#
# Everything that waits polls with a bound; nothing sleeps and hopes.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node);
use Hostile qw(run_as plant_sql public_plant_sql drop_public_plant_sql
  escalations reset_escalations);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisServer;
use Test::More;
use Time::HiRes qw(time usleep);

my $redis = RedisServer->new('hostile');
my $node = cachier_node(
	'hostile',
	extra => [ '--encoding=UTF8', '--locale=C' ],
	conf => qq{
max_worker_processes = 16
# a small lock table, as on a small server: growing it needs the spare
# shared memory that route 5 watches
max_connections = 10
# refreshes by time only: the attacker's mode switch is a table, whose
# changes freshness would otherwise act on (it has its own tests)
cachier.track_reads = off
cachier.redis_url = '${\ $redis->url}'});

my $su = $node->safe_psql('postgres', 'SELECT current_user');
my $log_start = -s $node->logfile;

$node->safe_psql(
	'postgres', q{
CREATE ROLE victim LOGIN;
CREATE ROLE attacker LOGIN;
CREATE DATABASE db1;
CREATE DATABASE db2 OWNER attacker;
});
$node->safe_psql(
	'db1', q{
CREATE EXTENSION cachier;
GRANT CREATE ON SCHEMA public TO victim, attacker;
CREATE SCHEMA mal AUTHORIZATION attacker;
});
$node->safe_psql('db2', 'CREATE EXTENSION cachier');

# ---------------------------------------------------------------- helpers

# Run SQL as a role in a database; die unless it succeeds; its output.
sub as_role
{
	my ($db, $role, $sql) = @_;
	my ($rc, $out, $err) = run_as($node, $db, $role, $sql);
	die "as $role in $db failed ($rc): $err\n$sql" if $rc ne '0';
	return $out;
}

# Run SQL as the superuser, going on after errors: (exit code, out, err).
sub su_try
{
	my ($db, $sql) = @_;
	return run_as($node, $db, $su, $sql, on_error_stop => 0);
}

# Move the entries of the functions (regprocedure texts) back 90 minutes:
# stale for the stale_after of an hour used here, but younger than twice
# that (the default bound after which next_time no longer serves a stale
# value), so that a stale hit still queues a background refresh.
sub backdate
{
	my ($db, @fns) = @_;
	my $list = join(', ', map { "'$_'::pg_catalog.regprocedure" } @fns);
	$node->safe_psql(
		$db, qq{
SET search_path = pg_catalog;
UPDATE cachier.entries SET created_at = created_at - interval '90 minutes'
 WHERE function_id::oid IN (SELECT f::oid FROM unnest(ARRAY[$list]) f)});
}

# A condition true once every entry of fn is younger than an hour (it was
# refreshed after backdate) and there is one.
sub refreshed_condition
{
	my ($fn) = @_;
	return qq{
SELECT pg_catalog.count(*) > 0 AND pg_catalog.bool_and(created_at > pg_catalog.now() - interval '1 hour')
  FROM cachier.entries
 WHERE function_id::oid OPERATOR(pg_catalog.=) '$fn'::pg_catalog.regprocedure::oid};
}

# Like poll_query_until, but bounded by the wall clock: whether the query
# (run as the superuser) returned $expected ('t' by default) within
# $seconds.
sub poll_bounded
{
	my ($seconds, $db, $query, $expected) = @_;
	$expected //= 't';
	my $deadline = time + $seconds;
	my $last = '';
	while (time < $deadline)
	{
		my ($rc, $out, $err) = run_as($node, $db, $su, $query);
		return 1 if $rc eq '0' && $out eq $expected;
		$last = "$out$err";
		usleep(100_000);
	}
	diag "after $seconds s, $query\nstill gives: $last";
	return 0;
}

# Nothing the attacker planted in $db ran as another role, and the
# attacker is not a superuser; then undo whatever happened.
sub no_escalation
{
	my ($db, $what) = @_;
	my ($runs, $super) = escalations($node, $db, 'attacker');
	ok(!$super, "$what: the attacker did not become a superuser");
	is($runs, '', "$what: the planted code never ran as another role");
	reset_escalations($node, 'attacker', $db);
}

# Hold db1's worker in its cleanup of blk(int) (cleaned every second): a
# transaction row-locks blk's stale entry and the worker's DELETE waits for
# it.  Returns the session (undef if the worker never came to wait).
sub block_worker
{
	my $session = $node->background_psql('db1');
	for my $attempt (1 .. 20)
	{
		$node->safe_psql('db1', 'SELECT blk_cached(1)');
		backdate('db1', 'public.blk(int)');
		my $locked = $session->query_safe(
			q{BEGIN;
SELECT count(*) FROM (SELECT 1 FROM cachier.entries
                       WHERE function_id = 'blk(int)'::regprocedure
                         AND created_at < now() - interval '1 hour'
                         FOR UPDATE) s;});
		last if $locked eq '1';
		$session->query_safe('ROLLBACK');
	}
	return $session
	  if poll_bounded(
		20, 'db1', q{
SELECT count(*) > 0 FROM pg_stat_activity
 WHERE backend_type LIKE 'cachier%' AND datname = 'db1' AND wait_event_type = 'Lock'});
	$session->query_safe('ROLLBACK');
	$session->quit;
	return undef;
}

sub unblock_worker
{
	my ($session) = @_;
	$session->query_safe('COMMIT');
	$session->quit;
}

# The attacker's kit in db1 (its schema mal exists already).
as_role('db1', 'attacker', plant_sql('attacker'));

# The victim's configured function and the attacker's wrapped one.
as_role(
	'db1', 'victim', q{
CREATE FUNCTION public.vfn(x int) RETURNS int LANGUAGE sql AS 'SELECT x * 2';
SELECT cachier_memoize('vfn(int)');
SELECT vfn_cached(i) FROM generate_series(1, 3) i;
});
as_role(
	'db1', 'attacker', q{
CREATE FUNCTION mal.afn(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1';
SELECT cachier_wrap('mal.afn', i) FROM generate_series(1, 3) i;
});
# the database's worker cleans blk every second (route 2 holds the worker
# with it, route 3 watches it being cleaned)
$node->safe_psql(
	'db1', q{
CREATE FUNCTION blk(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('blk(int)', stale_after => '1 hour',
                       cleanup_stale => true, cleanup_interval => '1 second');
});

# ---------------------------------------------------------------- 1. search_path

subtest 'route 1: planted operators and functions never run with cachier\'s privileges' => sub {
	# (a) the attacker's own calls under its search_path
	my ($rc, $out, $err) = run_as(
		$node, 'db1', 'attacker', q{
SET search_path = mal, pg_catalog;
SELECT public.cachier_clear('mal.afn', 1);
SELECT public.cachier_wrap('mal.afn', 1);
SELECT public.cachier_wrap('mal.afn', 7);
SELECT public.cachier_precache('mal.afn', 5, 4);
SELECT public.cachier_clear('mal.afn');
SELECT public.cachier_configure('mal.afn(int)', stale_after => '1 hour');
SELECT public.cachier_memoize('mal.afn(int)');
SELECT public.cachier_unmemoize('mal.afn(int)');
-- DDL fires cachier's event triggers
CREATE OR REPLACE FUNCTION mal.afn(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1 + 0';
SELECT public.cachier_wrap('mal.afn', 2);
CREATE FUNCTION mal.gone(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT public.cachier_wrap('mal.gone', 2);
DROP FUNCTION mal.gone(int);
}, on_error_stop => 0);
	no_escalation('db1',
		'(a) cachier_clear & co. and DDL with SET search_path = mal, pg_catalog');

	# (b) the helpers behind the API, called directly
	my @direct = (
		q{SELECT cachier.set_options('mal.afn(int)', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)},
		q{SELECT cachier.set_options('mal.afn(int)', 'public.vfn_cached(int)', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)},
		q{SELECT cachier.forget('public.vfn(int)')},
		q{SELECT cachier.forget('public.vfn_cached(int)')});
	foreach my $call (@direct)
	{
		# twice: the second set_options takes the ON CONFLICT path (now())
		($rc, $out, $err) = run_as($node, 'db1', 'attacker',
			"SET search_path = mal, pg_catalog;\n$call;\n$call;");
		isnt($rc, 0, "(b) refused to the attacker: $call");
	}
	is( $node->safe_psql(
			'db1',
			q{SELECT count(*) FROM cachier_functions WHERE function = 'vfn(int)'::regprocedure}),
		'1',
		'(b) the victim\'s function is still configured');
	no_escalation('db1', '(b) cachier.set_options / cachier.forget called directly');

	# (c) the superuser works in a session whose search_path puts the
	# attacker-writable public first
	as_role('db1', 'attacker', public_plant_sql());
	as_role('db1', 'victim', 'SELECT vfn_cached(i) FROM generate_series(1, 3) i');
	($rc, $out, $err) = su_try(
		'db1', q{
SET search_path = public, pg_catalog;
CREATE FUNCTION sfn(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_wrap('sfn', 1);
SELECT cachier_clear('sfn', 1);
SELECT cachier_clear('sfn');
SELECT cachier_configure('sfn(int)', stale_after => '1 hour', cleanup_stale => true);
SELECT cachier_memoize('sfn(int)');
SELECT sfn_cached(2);
SELECT cachier_precache('sfn', 3, 3);
SELECT cachier_cleanup('sfn(int)');
SELECT cachier_clear('vfn');
SELECT cachier_unmemoize('sfn(int)');
});
	as_role('db1', 'attacker', drop_public_plant_sql());
	no_escalation('db1', '(c) a superuser\'s cachier calls with public first in search_path');

	# (d) the worker's cleanup in a database whose owner is the attacker
	as_role('db2', 'attacker',
		"CREATE SCHEMA mal;\n" . plant_sql('attacker')
		  . "ALTER DATABASE db2 SET search_path = mal, pg_catalog;\n");
	$node->safe_psql(
		'db2', q{
SET search_path = pg_catalog, public;
CREATE FUNCTION public.sfn(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT public.cachier_configure('public.sfn(int)', stale_after => '1 second',
                                cleanup_stale => true, cleanup_interval => '1 second');
SELECT public.cachier_wrap('public.sfn', i) FROM generate_series(1, 5) i;
});
	ok( poll_bounded(
			30, 'db2', q{
SELECT pg_catalog.count(*) FROM cachier.entries
 WHERE function_id::oid OPERATOR(pg_catalog.=) 'public.sfn(int)'::pg_catalog.regprocedure::oid},
			'0'),
		'(d) the worker cleaned up db2 (under the owner\'s search_path)');
	as_role('db2', 'attacker', 'ALTER DATABASE db2 RESET search_path');
	no_escalation('db2', '(d) the worker\'s cleanup under ALTER DATABASE SET search_path');
};

# ---------------------------------------------------------------- 2. settings leak

subtest 'route 2: one role\'s settings do not leak into another role\'s background refresh' => sub {
	as_role(
		'db1', 'victim', q{
CREATE TABLE public.answer (v text);
INSERT INTO public.answer VALUES ('real');
CREATE FUNCTION public.lookup(x int) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT v || ' ' || x FROM answer $$;
SELECT cachier_memoize('lookup(int)', stale_after => '1 hour', next_time => true);
SELECT lookup_cached(1);
});
	as_role(
		'db1', 'attacker', q{
CREATE TABLE mal.answer (v text);
INSERT INTO mal.answer VALUES ('poisoned');
GRANT SELECT ON mal.answer TO PUBLIC;
CREATE FUNCTION mal.leaky(x int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'mal, public', false);
    RETURN 'leaky ' || x;
END $$;
SELECT cachier_memoize('mal.leaky(int)', stale_after => '1 hour', next_time => true);
SELECT mal.leaky_cached(1);
});
	# both refreshes queued while the worker is held: the attacker's first
	my $blocker = block_worker();
	ok($blocker, 'the worker is held in its cleanup') or return;
	backdate('db1', 'mal.leaky(int)', 'public.lookup(int)');
	as_role('db1', 'attacker', 'SELECT mal.leaky_cached(1)');
	is(as_role('db1', 'victim', 'SELECT lookup_cached(1)'),
		'real 1', 'the victim\'s stale hit serves its stale value');
	unblock_worker($blocker);
	ok(poll_bounded(30, 'db1', refreshed_condition('public.lookup(int)')),
		'the victim\'s entry was refreshed in the background');
	is(as_role('db1', 'victim', 'SELECT lookup_cached(1)'),
		'real 1', 'the victim is still served its own answer, not the attacker\'s view');
	no_escalation('db1', 'refreshes');
};

# ---------------------------------------------------------------- 3. fairness

subtest 'route 3: a flood and a slow refresh do not starve the victim or the cleanup' => sub {
	# a fixed server bounds each refresh (ignored where the setting is unknown)
	su_try('db1', q{ALTER SYSTEM SET cachier.refresh_timeout = '3s'; SELECT pg_reload_conf();});
	as_role(
		'db1', 'attacker', q{
CREATE TABLE mal.mode (slow boolean);
INSERT INTO mal.mode VALUES (false);
CREATE FUNCTION mal.slow(x int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := pg_catalog.clock_timestamp() + interval '90 s';
BEGIN
    WHILE (SELECT slow FROM mal.mode) AND pg_catalog.clock_timestamp() < deadline LOOP
        PERFORM pg_catalog.pg_sleep(0.1);
    END LOOP;
    RETURN 'slow ' || x;
END $$;
SELECT cachier_memoize('mal.slow(int)', stale_after => '1 hour', next_time => true);
SELECT mal.slow_cached(1);
CREATE FUNCTION mal.flood(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('mal.flood(int)', stale_after => '1 hour', next_time => true);
SELECT count(mal.flood_cached(i)) FROM generate_series(1, 1100) i;
UPDATE mal.mode SET slow = true;
});
	as_role(
		'db1', 'victim', q{
CREATE FUNCTION public.vref(x int) RETURNS text LANGUAGE sql AS $$ SELECT 'vref ' || x $$;
SELECT cachier_memoize('vref(int)', stale_after => '1 hour', next_time => true);
SELECT vref_cached(1);
});
	backdate('db1', 'mal.slow(int)', 'mal.flood(int)');
	as_role('db1', 'attacker', 'SELECT mal.slow_cached(1)');
	ok( poll_bounded(
			15, 'db1', q{
SELECT count(*) > 0 FROM pg_stat_activity
 WHERE datname = 'db1' AND backend_type LIKE 'cachier%' AND wait_event = 'PgSleep'}),
		'the attacker\'s slow refresh runs');
	as_role('db1', 'attacker',
		'SELECT count(mal.flood_cached(i)) FROM generate_series(1, 1100) i');
	backdate('db1', 'public.vref(int)');
	is(as_role('db1', 'victim', 'SELECT vref_cached(1)'),
		'vref 1', 'the victim\'s stale hit is served');
	$node->safe_psql('db1', 'SELECT blk_cached(7)');
	backdate('db1', 'public.blk(int)');
	ok(poll_bounded(20, 'db1', refreshed_condition('public.vref(int)')),
		'the victim\'s refresh happens within 20 s');
	ok( poll_bounded(
			20, 'db1', q{
SELECT count(*) FROM cachier.entries
 WHERE function_id = 'blk(int)'::regprocedure AND created_at < now() - interval '1 hour'},
			'0'),
		'the database\'s cleanup happens within 20 s');
	# let the slow refresh end
	as_role('db1', 'attacker', 'UPDATE mal.mode SET slow = false');
	poll_bounded(
		70, 'db1', q{
SELECT count(*) = 0 FROM pg_stat_activity
 WHERE datname = 'db1' AND backend_type LIKE 'cachier%' AND wait_event = 'PgSleep'});
	su_try('db1', q{ALTER SYSTEM RESET cachier.refresh_timeout; SELECT pg_reload_conf();});
	no_escalation('db1', 'fairness');
};

# ---------------------------------------------------------------- 4. Redis

subtest 'route 4: Redis entries of one database are never served in another' => sub {
	my $definition = q{
CREATE FUNCTION public.where_am_i(x int) RETURNS text LANGUAGE sql
    AS $$ SELECT current_database() || ' ' || x $$;
SELECT cachier_memoize('public.where_am_i(int)', storage => 'redis');
};
	as_role('db1', 'victim', $definition);
	as_role('db2', 'attacker', $definition);
	my $keys_before = $redis->keys('*');
	is( as_role(
			'db2', 'attacker', q{
SELECT where_am_i_cached(1);
SELECT cachier_precache('public.where_am_i', 'db1 2 poisoned'::text, 2);}),
		"db2 1\nt",
		'db2\'s owner computes and precaches in db2');
	ok($redis->keys('*') > $keys_before, 'the values went to Redis');
	is(as_role('db1', 'victim', 'SELECT where_am_i_cached(1); SELECT where_am_i_cached(2);'),
		"db1 1\ndb1 2", 'db1 is served db1\'s own results, neither computed nor precached in db2');
	is(as_role('db1', 'victim', 'SELECT where_am_i_cached(3)'), 'db1 3', 'db1 computes 3');
	is(as_role('db2', 'attacker', 'SELECT where_am_i_cached(3)'),
		'db2 3', 'db2 does not read db1\'s result');
};

# ---------------------------------------------------------------- 6. consent

subtest 'route 6: no result computed with another role\'s privileges, no poisoning' => sub {
	my $secret_dir = $node->safe_psql('db1',
		q{SELECT cachier_wrap('current_setting', 'data_directory'::text)});
	ok($secret_dir ne '', 'the superuser reads data_directory through cachier_wrap');
	my ($rc, $out, $err) = run_as($node, 'db1', 'attacker',
		q{SELECT cachier_wrap('current_setting', 'data_directory'::text)});
	unlike($out, qr/\Q$secret_dir\E/,
		'a superuser-only setting cached by the superuser is not served to the attacker');

	$node->safe_psql(
		'db1', q{
CREATE TABLE secret_t (s text);
INSERT INTO secret_t VALUES ('s3cret');
CREATE FUNCTION public.read_secret(x int) RETURNS text LANGUAGE sql STABLE SECURITY INVOKER
    AS $$ SELECT s || ' ' || x FROM secret_t $$;
SELECT cachier_wrap('read_secret', 1);
});
	($rc, $out, $err) =
	  run_as($node, 'db1', 'attacker', q{SELECT cachier_wrap('read_secret', 1)});
	unlike($out, qr/s3cret/,
		'a SECURITY INVOKER function\'s result over a table only the superuser reads is not served to the attacker'
	);

	as_role(
		'db1', 'victim', q{
CREATE FUNCTION public.price(x int) RETURNS text LANGUAGE sql AS $$ SELECT 'price ' || x $$;
SELECT cachier_memoize('price(int)');
SELECT price_cached(1);
});
	run_as(
		$node, 'db1', 'attacker', q{
SELECT cachier_precache('public.price', 'poisoned'::text, 1);
SELECT cachier_precache('public.price', 'poisoned'::text, 2);
SET cachier.overwrite_cache = on;
SELECT cachier_precache('public.price', 'poisoned'::text, 1);
}, on_error_stop => 0);
	is(as_role('db1', 'victim', 'SELECT price_cached(1); SELECT price_cached(2);'),
		"price 1\nprice 2",
		'cachier_precache by the attacker does not change what the victim is served');
	is($node->safe_psql('db1', q{SELECT cachier_wrap('price', 2)}),
		'price 2', 'nor what the superuser is served');
};

# ---------------------------------------------------------------- 7. storage

subtest 'route 7: entry size and bytes per role are capped by the superuser' => sub {
	my ($rc, $out, $err) = su_try(
		'db1', q{
ALTER SYSTEM SET cachier.max_entry_size = '100kB';
ALTER ROLE attacker SET cachier.max_role_bytes = '1MB';
SELECT pg_reload_conf();
});
	is($rc, 0, 'the superuser sets cachier.max_entry_size and cachier.max_role_bytes')
	  or diag $err;
	poll_bounded(5, 'db1',
		q{SELECT current_setting('cachier.max_entry_size', true) = '100kB'});
	($rc, $out, $err) =
	  run_as($node, 'db1', 'attacker', 'SET cachier.max_entry_size = -1');
	isnt($rc, 0, 'the attacker cannot raise cachier.max_entry_size');
	($rc, $out, $err) =
	  run_as($node, 'db1', 'attacker', 'SET cachier.max_role_bytes = -1');
	isnt($rc, 0, 'the attacker cannot raise cachier.max_role_bytes');

	as_role(
		'db1', 'attacker', q{
CREATE FUNCTION mal.big(x int) RETURNS text LANGUAGE sql
    AS $$ SELECT repeat(md5(x::text), 2000) $$;
SELECT cachier_configure('mal.big(int)', entry_size_limit => '1GB');
});
	is( as_role(
			'db1', 'attacker', q{
SELECT sum(length(cachier_wrap('mal.big', i))) FROM generate_series(1, 40) i;
SELECT length(cachier_wrap('repeat', 'x'::text, 300000));
SELECT length(cachier_wrap('repeat', 'y'::text, 300000));
}), "2560000\n300000\n300000", 'the attacker\'s calls still return their results');
	my ($largest, $total) = split /\|/,
	  $node->safe_psql(
		'db1', q{
SELECT coalesce(max(octet_length(value)), 0), coalesce(sum(octet_length(value)), 0)
  FROM cachier.entries
 WHERE function_id IN ('mal.big(int)'::regprocedure, 'repeat(text,int)'::regprocedure)});
	cmp_ok($largest, '<=', 100 * 1024, 'no stored entry exceeds cachier.max_entry_size');
	cmp_ok($total, '<=', 1024 * 1024,
		'the attacker\'s entries stay within cachier.max_role_bytes');
	su_try(
		'db1', q{
ALTER SYSTEM RESET cachier.max_entry_size;
ALTER ROLE attacker RESET cachier.max_role_bytes;
SELECT pg_reload_conf();
});
};

# ---------------------------------------------------------------- 8. identity

subtest 'route 8: entries follow role and owner identity, not names' => sub {
	$node->safe_psql(
		'db1', q{
CREATE FUNCTION public.whoami(x int) RETURNS text LANGUAGE sql VOLATILE
    AS $$ SELECT current_user || ' ' || x || ' ' || clock_timestamp() $$;
SELECT cachier_memoize('whoami(int)', per_role => true);
CREATE ROLE tenant LOGIN;
});
	my $old = as_role('db1', 'tenant', 'SELECT whoami_cached(1)');
	is(as_role('db1', 'tenant', 'SELECT whoami_cached(1)'),
		$old, 'tenant is served its per_role entry');
	$node->safe_psql('db1', 'DROP ROLE tenant; CREATE ROLE tenant LOGIN;');
	my $new = as_role('db1', 'tenant', 'SELECT whoami_cached(1)');
	isnt($new, $old, 'a new role reusing the name does not get the dropped role\'s entry');

	as_role(
		'db1', 'victim', q{
CREATE FUNCTION public.sd(x int) RETURNS text LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT current_user || ' ' || x $$;
SELECT cachier_memoize('sd(int)');
SELECT sd_cached(1);
});
	$node->safe_psql('db1', 'ALTER FUNCTION public.sd(int) OWNER TO attacker');
	is($node->safe_psql('db1', 'SELECT sd_cached(1)'),
		'attacker 1',
		'after ALTER FUNCTION OWNER TO, a SECURITY DEFINER function is not served the old owner\'s result'
	);
};

# ---------------------------------------------------------------- 9. secrets

subtest 'route 9: a Redis password never shows in WARNINGs or the log' => sub {
	my $password = 'Hunter2Sekret';
	as_role(
		'db1', 'attacker', q{
CREATE FUNCTION mal.rfn(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('mal.rfn(int)', storage => 'redis');
});
	my $bad_port = PostgreSQL::Test::Cluster::get_free_port();
	my %urls = (
		'wrong port' => "redis://:$password\@127.0.0.1:$bad_port",
		'malformed' => "redis://:$password\@127.0.0.1:notaport");
	my $arg = 1;
	foreach my $case (sort keys %urls)
	{
		my ($rc, $out, $err) = su_try('db1',
			"ALTER ROLE attacker IN DATABASE db1 SET cachier.redis_url = '$urls{$case}'");
		my $offset = -s $node->logfile;
		if ($rc == 0)
		{
			($rc, $out, $err) = run_as($node, 'db1', 'attacker',
				'SELECT mal.rfn_cached(' . $arg++ . ')');
			is($out, $arg - 1, "$case: the attacker's call still returns its value");
			like($err, qr/WARNING/, "$case: the attacker is warned about Redis");
			unlike($err, qr/\Q$password\E/, "$case: the WARNING does not show the password");
		}
		else
		{
			pass("$case: the URL is refused when it is set");
		}
		$node->safe_psql('db1', 'SELECT 1');    # flush the log
		unlike(slurp_file($node->logfile, $offset),
			qr/\Q$password\E/, "$case: the server log does not show the password");
	}
	$node->safe_psql('db1', 'ALTER ROLE attacker IN DATABASE db1 RESET cachier.redis_url');
};

# ---------------------------------------------------------------- 10. visibility

subtest 'route 10: the attacker sees only its own functions and entries' => sub {
	as_role(
		'db1', 'victim', q{
CREATE FUNCTION public.vcard(t text) RETURNS int LANGUAGE sql AS 'SELECT length(t)';
SELECT cachier_memoize('vcard(text)');
SELECT vcard_cached('4111-1111-1111-1111');
SELECT cachier_wrap('md5', 'victim-pin-8765'::text);
});
	my ($rc, $out, $err) = run_as($node, 'db1', 'attacker', 'SELECT * FROM cachier_entries');
	is($rc, 0, 'the attacker can read cachier_entries') or diag $err;
	unlike($out, qr/4111-1111|victim-pin-8765/,
		'cachier_entries never shows the victim\'s arguments');
	($rc, $out, $err) = run_as(
		$node, 'db1', 'attacker', q{
SELECT count(*) > 0,
       count(*) FILTER (WHERE p.proowner <> 'attacker'::regrole AND e.role <> 'attacker'::regrole)
  FROM cachier_entries e JOIN pg_proc p ON p.oid = e.function});
	is($out, 't|0', 'cachier_entries shows the attacker its own entries and only those')
	  or diag $err;
	foreach my $view (qw(cachier_functions cachier_stats))
	{
		($rc, $out, $err) = run_as(
			$node, 'db1', 'attacker', qq{
SELECT count(*) > 0, count(*) FILTER (WHERE p.proowner <> 'attacker'::regrole)
  FROM $view v JOIN pg_proc p ON p.oid = v.function});
		is($out, 't|0', "$view shows the attacker its own functions and only those")
		  or diag $err;
	}
	($rc, $out, $err) =
	  run_as($node, 'db1', 'attacker', 'SELECT * FROM cachier_stats; SELECT * FROM cachier_functions');
	unlike($out, qr/vcard|price|lookup|vfn/, 'no victim function is listed to the attacker');
};

# ---------------------------------------------------------------- 5. shared memory

subtest 'route 5: thousands of wrapped functions exhaust no shared memory' => sub {
	my $n = 10000;
	as_role(
		'db1', 'attacker', qq{
DO \$\$
BEGIN
    FOR i IN 1..$n LOOP
        EXECUTE format('CREATE FUNCTION mal.s_%s(x int) RETURNS int LANGUAGE sql AS %L',
                       i, 'SELECT NULL::int');
    END LOOP;
END \$\$;
});
	# A transaction with many locks grows the lock table into the spare
	# shared memory: nothing before this point took 3000 at once, and
	# nothing may eat that memory away from it.
	my $victim_sql = sub {
		my ($locks) = @_;
		return qq{
BEGIN;
SELECT count(*) FROM (SELECT pg_advisory_xact_lock(i) FROM generate_series(1, $locks) i) s;
COMMIT;
SELECT vfn_cached(11);
};
	};
	my ($rc, $out, $err) = run_as($node, 'db1', 'victim', $victim_sql->(100));
	is($out, "100\n22", 'before: a session takes 100 locks and calls its function')
	  or diag $err;
	my $offset = -s $node->logfile;
	($rc, $out, $err) = run_as($node, 'db1', 'attacker',
		join('', map { "SELECT cachier_wrap('mal.s_$_', 1);\n" } 1 .. $n),
		on_error_stop => 0);
	unlike($err, qr/out of shared memory/, 'the attacker\'s calls never run out of shared memory');
	($rc, $out, $err) = run_as($node, 'db1', 'victim', $victim_sql->(3000));
	is($out, "3000\n22", 'after: another session still takes 3000 locks and calls its function')
	  or diag $err;
	unlike(slurp_file($node->logfile, $offset),
		qr/out of shared memory/, 'the server log shows no "out of shared memory"');
};

# ---------------------------------------------------------------- the end

my $log = slurp_file($node->logfile, $log_start);
unlike($log, qr/server process .* was terminated by signal|PANIC:|TRAP:/,
	'the server log shows no crash');

$node->stop;
done_testing();
