# 058_fresh_definitions.pl: definitions, plans and ages (issue 10, items 10
# and 11).
#  - A wrapper follows its function: after CREATE OR REPLACE with a new
#    default, g_cached(1) = g(1); after ALTER FUNCTION ... VOLATILE,
#    PARALLEL UNSAFE, CALLED ON NULL INPUT the wrapper has the same
#    volatility and parallel safety, and a NULL argument gives what the
#    direct call gives (the function is no longer strict).
#  - A prepared statement and a PL/pgSQL function whose plan folded an
#    IMMUTABLE wrapper's value do not keep serving it after CREATE OR
#    REPLACE of the function, after cachier_clear + cachier_precache of
#    another value, and after a change to a table the function reads.
#  - Honest ages: a REPEATABLE READ transaction that computes and stores
#    after other work stores the entry with the time its snapshot was taken
#    (its data's age), not the time it stored it.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node);
use FreshTest qw(outcome warm_until_hit);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('main');
$node->safe_psql('postgres', q{
CREATE EXTENSION cachier;
CREATE FUNCTION g(a int, b int DEFAULT 2) RETURNS int LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS 'SELECT coalesce(a, -1) * 10 + b';
SELECT cachier_memoize('g(int,int)');
});
sub value { return (outcome($node, $_[0]))[0]; }

# ---------------------------------------------------------------- the wrapper follows

is(value('SELECT g_cached(1)'), 'value: 12', 'g_cached(1) with the default 2');
$node->safe_psql('postgres', q{CREATE OR REPLACE FUNCTION g(a int, b int DEFAULT 5) RETURNS int
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT coalesce(a, -1) * 10 + b'});
is(value('SELECT g_cached(1)'), value('SELECT g(1)'), 'after a new default: g_cached(1) = g(1)');
$node->safe_psql('postgres', 'ALTER FUNCTION g(int, int) VOLATILE PARALLEL UNSAFE CALLED ON NULL INPUT');
is( $node->safe_psql('postgres', q{
SELECT format('%s%s', w.provolatile, w.proparallel) FROM pg_proc w WHERE w.oid = 'g_cached(int,int)'::regprocedure}),
	'vu', 'after ALTER FUNCTION: the wrapper is VOLATILE and PARALLEL UNSAFE');
is(value('SELECT g_cached(NULL)'), value('SELECT g(NULL)'), 'after ALTER FUNCTION: g_cached(NULL) = g(NULL)');

# ---------------------------------------------------------------- folded plans

$node->safe_psql('postgres', q{
CREATE TABLE ht (v int); INSERT INTO ht VALUES (1);
-- IMMUTABLE (hr although it reads a table): an IMMUTABLE wrapper would be
-- folded into a constant at plan time
CREATE FUNCTION h() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1';
SELECT cachier_memoize('h()');
CREATE FUNCTION hr() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT sum(v)::int FROM ht';
SELECT cachier_memoize('hr()');
CREATE FUNCTION via_plpgsql() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN h_cached(); END $$;
CREATE FUNCTION via_plpgsql_r() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN hr_cached(); END $$;
});
my $session = $node->background_psql('postgres');
$session->query_safe('PREPARE p AS SELECT h_cached(); PREPARE pr AS SELECT hr_cached();');
for (1 .. 6)    # past the custom plans: the generic plan is cached
{
	$session->query_safe('EXECUTE p');
	$session->query_safe('EXECUTE pr');
	$session->query_safe('SELECT via_plpgsql(), via_plpgsql_r()');
}
is($session->query_safe('EXECUTE p'), '1', 'prepared: 1');
$node->safe_psql('postgres', q{CREATE OR REPLACE FUNCTION h() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 2'});
is($session->query_safe('EXECUTE p'), '2', 'prepared: after CREATE OR REPLACE, 2');
is($session->query_safe('SELECT via_plpgsql()'), '2', 'PL/pgSQL: after CREATE OR REPLACE, 2');
$node->safe_psql('postgres', q{SELECT cachier_clear('h'); SELECT cachier_precache('h', 3)});
is($session->query_safe('EXECUTE p'), '3', 'prepared: after cachier_clear and cachier_precache of 3, 3');
is($session->query_safe('SELECT via_plpgsql()'), '3', 'PL/pgSQL: after cachier_clear and cachier_precache, 3');
is($session->query_safe('EXECUTE pr'), '1', 'prepared over a table: 1');
$node->safe_psql('postgres', 'UPDATE ht SET v = 7');
is($session->query_safe('EXECUTE pr'), '7', 'prepared over a table: after the change, 7');
is($session->query_safe('SELECT via_plpgsql_r()'), '7', 'PL/pgSQL over a table: after the change, 7');
$session->quit;

# ---------------------------------------------------------------- honest ages

$node->safe_psql('postgres', q{
CREATE FUNCTION sq(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * x';
SELECT cachier_memoize('sq(int)', stale_after => '1 hour');
});
my $rr = $node->background_psql('postgres');
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$rr->query_safe('SELECT count(*) FROM pg_class');    # the snapshot
my $snapshot_at = $rr->query_safe('SELECT now()');
# time passes: wait until the clock is at least a second past the snapshot
ok($node->poll_query_until('postgres', "SELECT clock_timestamp() > '$snapshot_at'::timestamptz + interval '1 second'"),
	'a second passed since the snapshot');
my $marker = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
is($rr->query_safe('SELECT sq_cached(9)'), '81', 'the old snapshot computes sq(9)');
$rr->query_safe('COMMIT');
$rr->quit;
is( $node->safe_psql('postgres',
		"SELECT created_at < '$marker'::timestamptz FROM cachier_entries WHERE function = 'sq(int)'::regprocedure"),
	't', "honest age: the entry's created_at is its snapshot's time, before the marker");

$node->stop;
done_testing();
