# 059_fresh_logical.pl: changes applied by logical replication (issue 10,
# item 3: "invalidation on every committed change").  The apply worker of
# a subscription writes the subscriber's tables without going through the
# executor's usual entry points, so cachier counts every transaction it
# applies as a change of every relation of the database (over-invalidation,
# allowed; under-invalidation never).  So, for an INSERT, UPDATE, DELETE and
# TRUNCATE replicated from the publisher:
#  - the subscriber's cached call equals its direct call by itself;
#  - and after cachier_invalidate('t') on the subscriber, it still does.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node);
use FreshTest qw(outcome warm_until_hit);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $publisher = PostgreSQL::Test::Cluster->new('publisher');
$publisher->init(allows_streaming => 'logical');
$publisher->start;
my $subscriber = cachier_node('subscriber');

for my $node ($publisher, $subscriber)
{
	$node->safe_psql('postgres', 'CREATE TABLE t (k int PRIMARY KEY, v int)');
}
$publisher->safe_psql('postgres',
	'INSERT INTO t VALUES (1, 10), (2, 20); CREATE PUBLICATION pub FOR TABLE t');
$subscriber->safe_psql('postgres', q{
CREATE EXTENSION cachier;
CREATE FUNCTION f() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT count(*) || ':' || coalesce(sum(v), 0) FROM t $$;
SELECT cachier_memoize('f()');
});
my $connstr = $publisher->connstr . ' dbname=postgres';
$subscriber->safe_psql('postgres', "CREATE SUBSCRIPTION sub CONNECTION '$connstr' PUBLICATION pub");
$subscriber->wait_for_subscription_sync($publisher, 'sub');

for my $change ('INSERT INTO t VALUES (3, 30)', 'UPDATE t SET v = v + 1', 'DELETE FROM t WHERE k = 1',
	'TRUNCATE t')
{
	ok((warm_until_hit($subscriber, 'SELECT f_cached()'))[0], "$change: the entry is served on the subscriber");
	my ($before) = outcome($subscriber, 'SELECT f()');
	$publisher->safe_psql('postgres', $change);
	$publisher->wait_for_catchup('sub');
	my ($after) = outcome($subscriber, 'SELECT f()');
	isnt($after, $before, "$change: replicated, it changes the direct result on the subscriber");
	is((outcome($subscriber, 'SELECT f_cached()'))[0], $after,
		"$change: cached = direct on the subscriber, without help");
	$subscriber->safe_psql('postgres', q{SELECT cachier_invalidate('t')});
	is((outcome($subscriber, 'SELECT f_cached()'))[0], $after,
		"$change: after cachier_invalidate('t'), cached = direct on the subscriber");
}

$subscriber->stop;
$publisher->stop;
done_testing();
