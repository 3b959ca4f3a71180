# 052_fresh_options.pl: the options and functions of issue 10 (items 1, 2,
# 5, 6, 7).
#  - track_reads => false: a function over a table (or a foreign table, or
#    a catalog) is stored and served for its shelf life, without a WARNING;
#    the cachier.track_reads setting is its default.
#  - depends_on: a function over an untrackable relation (foreign table,
#    catalog) with depends_on is stored, and a change to a declared relation
#    invalidates it (cached = direct again); cachier_dependencies shows the
#    declared relation as 'declared'.
#  - cachier_invalidate(rel) invalidates every entry that depends on rel,
#    captured or declared, and says how many (here: 2 and 1); a role that
#    may not change rel may not use it.
#  - on_change => 'refresh' (with the background worker): after a change the
#    next call gets the old value at once and one refresh runs; calls then
#    get the new value; an old value older than stale_after is never
#    served.
#  - Without shared_preload_libraries: a function that read tables is
#    computed and not stored, with one WARNING per session whose hint names
#    shared_preload_libraries and track_reads; a function that reads
#    nothing and one with track_reads => false are stored.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node backdate verbose_psql);
use FreshTest qw(outcome warm_until_hit);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('main');
$node->safe_psql('postgres', qq{
CREATE EXTENSION cachier;
CREATE EXTENSION postgres_fdw;
CREATE ROLE bob LOGIN;
CREATE TABLE t (k int, v int); INSERT INTO t VALUES (1, 10);
CREATE TABLE remote_base (k int, v int); INSERT INTO remote_base VALUES (1, 10);
CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '${\ $node->host}', port '${\ $node->port}', dbname 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER loopback;
CREATE FOREIGN TABLE remote (k int, v int) SERVER loopback OPTIONS (table_name 'remote_base');
});

sub value { my ($sql) = @_; return (outcome($node, $sql))[0]; }

# ---------------------------------------------------------------- track_reads => false

$node->safe_psql('postgres', q{
CREATE FUNCTION untracked(x int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT x + sum(v) FROM t $$;
SELECT cachier_memoize('untracked(int)', track_reads => false);
CREATE FUNCTION untracked_remote() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT sum(v) FROM remote $$;
SELECT cachier_memoize('untracked_remote()', track_reads => false);
CREATE FUNCTION by_setting(x int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT x + sum(v) FROM t $$;
SELECT cachier_memoize('by_setting(int)');
});
ok((warm_until_hit($node, 'SELECT untracked_cached(1)'))[0],
	'track_reads => false: the entry of a function over a table is served');
$node->safe_psql('postgres', 'UPDATE t SET v = 11');
my ($out, $hit) = outcome($node, 'SELECT untracked_cached(1)');
is($out, 'value: 11', 'track_reads => false: after a change the entry is still served (its shelf life rules)');
ok($hit, 'track_reads => false: ... as a hit');
my ($rc, $stdout, $stderr) = verbose_psql($node, 'SELECT untracked_remote_cached(); SELECT untracked_remote_cached();');
unlike($stderr, qr/WARNING/, 'track_reads => false over a foreign table: no WARNING');
like($stderr, qr/cachier: hit/, 'track_reads => false over a foreign table: the entry is served');

($rc, $stdout, $stderr) = verbose_psql($node,
	"SET cachier.track_reads = off; SELECT by_setting_cached(5); SELECT by_setting_cached(5);");
like($stderr, qr/cachier: hit/, 'cachier.track_reads = off is the default of the option: stored and served');

# ---------------------------------------------------------------- depends_on

$node->safe_psql('postgres', q{
CREATE TABLE decl (v int); INSERT INTO decl VALUES (1);
CREATE FUNCTION over_remote() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT count(*) || ':' || sum(v) FROM remote $$;
SELECT cachier_memoize('over_remote()', depends_on => ARRAY['remote_base'::regclass]);
CREATE FUNCTION over_catalog() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT count(*) FROM pg_class WHERE relname LIKE 'zz%' $$;
SELECT cachier_memoize('over_catalog()', depends_on => ARRAY['decl'::regclass]);
});
($rc, $stdout, $stderr) = verbose_psql($node, 'SELECT over_remote_cached(); SELECT over_remote_cached();');
unlike($stderr, qr/WARNING/, 'depends_on over a foreign table: no WARNING');
ok((warm_until_hit($node, 'SELECT over_remote_cached()'))[0], 'depends_on over a foreign table: its entry is served');
$node->safe_psql('postgres', 'INSERT INTO remote_base VALUES (2, 20)');
is(value('SELECT over_remote_cached()'), value('SELECT over_remote()'),
	'depends_on: a change to the declared relation invalidates: cached = direct');
is(value('SELECT over_remote_cached()'), 'value: 2:30', 'depends_on: the new value');

ok((warm_until_hit($node, 'SELECT over_catalog_cached()'))[0], 'depends_on over a catalog: its entry is served');
$node->safe_psql('postgres', 'CREATE TABLE zz_1 (); INSERT INTO decl VALUES (2)');
is(value('SELECT over_catalog_cached()'), 'value: 1',
	'depends_on over a catalog: after a change to the declared relation, the new value');
is( $node->safe_psql('postgres', q{
SELECT string_agg(function::text || ' ' || relation::text || ' ' || how, ', ' ORDER BY function::text, relation::text)
  FROM cachier_dependencies WHERE how = 'declared'}),
	'over_catalog() decl declared, over_remote() remote_base declared',
	'cachier_dependencies lists the declared relations');

# ---------------------------------------------------------------- cachier_invalidate

$node->safe_psql('postgres', q{
CREATE TABLE inv (v int); INSERT INTO inv VALUES (1);
CREATE FUNCTION reads_inv(x int) RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT x + sum(v) FROM inv $$;
SELECT cachier_memoize('reads_inv(int)');
CREATE FUNCTION declares_inv() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT 42::bigint $$;
SELECT cachier_memoize('declares_inv()', depends_on => ARRAY['inv'::regclass]);
CREATE TABLE other (v int);
GRANT SELECT ON inv TO bob;
});
ok((warm_until_hit($node, "SELECT reads_inv_cached($_)"))[0], "cachier_invalidate: reads_inv($_) is served")
  for 1, 2;
ok((warm_until_hit($node, 'SELECT declares_inv_cached()'))[0], 'cachier_invalidate: declares_inv() is served');
is($node->safe_psql('postgres', q{SELECT cachier_invalidate('inv')}), '3',
	'cachier_invalidate: 3 entries depended on inv (2 captured, 1 declared)');
for my $call ('reads_inv_cached(1)', 'reads_inv_cached(2)', 'declares_inv_cached()')
{
	($out, $hit) = outcome($node, "SELECT $call");
	ok(!$hit, "cachier_invalidate: $call is computed again");
}
is($node->safe_psql('postgres', q{SELECT cachier_invalidate('other')}), '0',
	'cachier_invalidate of a relation nothing depends on: 0');
($rc, $stdout, $stderr) = $node->psql('postgres', q{SELECT cachier_invalidate('inv')},
	extra_params => [ '-U', 'bob' ]);
isnt($rc, 0, 'cachier_invalidate: a role that may only read the relation may not invalidate');
like($stderr, qr/permission denied/, 'cachier_invalidate: ... permission denied');

# ---------------------------------------------------------------- on_change => 'refresh'

$node->safe_psql('postgres', q{
CREATE TABLE refr (v int); INSERT INTO refr VALUES (1);
CREATE FUNCTION refreshed() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT sum(v) FROM refr $$;
SELECT cachier_memoize('refreshed()', on_change => 'refresh', stale_after => '1 hour');
});
ok((warm_until_hit($node, 'SELECT refreshed_cached()'))[0], "on_change => 'refresh': the entry is served");
$node->safe_psql('postgres', 'UPDATE refr SET v = 2');
is(value('SELECT refreshed_cached()'), 'value: 1',
	"on_change => 'refresh': the first call after the change gets the old value at once");
ok($node->poll_query_until('postgres', 'SELECT refreshed_cached() = 2'),
	"on_change => 'refresh': the background refresh brings the new value");
ok((warm_until_hit($node, 'SELECT refreshed_cached()'))[0], "on_change => 'refresh': the new entry is served");
# an old value older than stale_after is never served
backdate($node, 'postgres', 'refreshed()', '()');
$node->safe_psql('postgres', 'UPDATE refr SET v = 3');
is(value('SELECT refreshed_cached()'), 'value: 3',
	"on_change => 'refresh': an invalidated entry older than stale_after is not served");

$node->stop;

# ---------------------------------------------------------------- not preloaded

my $bare = PostgreSQL::Test::Cluster->new('bare');
$bare->init;
$bare->start;
$bare->safe_psql('postgres', q{
CREATE EXTENSION cachier;
CREATE TABLE t (v int); INSERT INTO t VALUES (1);
CREATE FUNCTION reads_t() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT sum(v) FROM t $$;
SELECT cachier_memoize('reads_t()');
CREATE FUNCTION reads_t_untracked() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT sum(v) FROM t $$;
SELECT cachier_memoize('reads_t_untracked()', track_reads => false);
CREATE FUNCTION reads_nothing(x int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT x * 2 $$;
SELECT cachier_memoize('reads_nothing(int)');
});
for my $session (1, 2)
{
	($stdout, $stderr) = ('', '');
	$bare->psql('postgres', qq{
SELECT reads_t_cached();
UPDATE t SET v = v + 1;
SELECT reads_t_cached() = reads_t();
SELECT reads_t_cached() = reads_t();},
		stdout => \$stdout, stderr => \$stderr, on_error_stop => 1);
	is($stdout, ($session == 1 ? "1\nt\nt" : "2\nt\nt"),
		"not preloaded, session $session: right values after a change");
	my @warnings = $stderr =~ /WARNING:/g;
	is(scalar @warnings, 1, "not preloaded, session $session: one WARNING") or diag $stderr;
	like($stderr, qr/HINT:[^\n]*shared_preload_libraries[^\n]*track_reads/,
		"not preloaded, session $session: the hint names shared_preload_libraries and track_reads");
}
is($bare->safe_psql('postgres',
		q{SELECT count(*) FROM cachier_entries WHERE function = 'reads_t()'::regprocedure}),
	'0', 'not preloaded: nothing is stored for the function that read a table');
ok((warm_until_hit($bare, 'SELECT reads_nothing_cached(4)'))[0],
	'not preloaded: a function that reads nothing is stored and served');
ok((warm_until_hit($bare, 'SELECT reads_t_untracked_cached()'))[0],
	'not preloaded: a function with track_reads => false is stored and served');
$bare->stop;

done_testing();
