# 057_fresh_redis.pl: the Redis tier with two servers (issue 10, item 8).
# Two independent clusters A and B share one redis-server and one
# namespace (cachier.redis_namespace), so they read each other's entries,
# and have the same tables (their data then drift apart).  An entry whose
# function read tables is never served on a server where that data
# differs: after B's table changes, B's cached call equals B's direct
# call, though A's entry (from A's data) is in Redis; after A's table
# changes, A's cached call equals A's direct call; after A restarts and its
# table changes before any call, A does not serve what it stored in Redis
# before the restart.  Storage 'redis' and 'both'.  An entry of a function
# that reads nothing is still shared: computed on A, a hit on B.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node);
use FreshTest qw(outcome warm_until_hit);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisServer;
use Test::More;

my $redis = RedisServer->new('fresh');

sub new_node
{
	my ($name) = @_;
	return cachier_node(
		$name,
		extra => [ '--encoding=UTF8', '--locale=C' ],
		conf => qq{
cachier.redis_url = '${\ $redis->url}'
cachier.redis_namespace = 'fresh'});
}

my $node_a = new_node('A');
my $node_b = new_node('B');
for my $node ($node_a, $node_b)
{
	$node->safe_psql('postgres', q{
CREATE EXTENSION cachier;
CREATE TABLE t (v int); INSERT INTO t VALUES (1);
CREATE FUNCTION in_redis(x int) RETURNS bigint LANGUAGE sql STABLE AS 'SELECT x * 1000 + sum(v) FROM t';
SELECT cachier_memoize('in_redis(int)', storage => 'redis');
CREATE FUNCTION in_both(x int) RETURNS bigint LANGUAGE sql STABLE AS 'SELECT x * 1000 + sum(v) FROM t';
SELECT cachier_memoize('in_both(int)', storage => 'both');
CREATE FUNCTION pure(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 3';
SELECT cachier_memoize('pure(int)', storage => 'redis');
});
}

my %v = (A => 1, B => 1);
my %node = (A => $node_a, B => $node_b);

sub same
{
	my ($name, $fn, $label) = @_;
	my ($c) = outcome($node{$name}, "SELECT ${fn}_cached(1)");
	my ($d) = outcome($node{$name}, "SELECT $fn(1)");
	is($c, $d, "$label: cached = direct on $name");
	is($d, 'value: ' . (1000 + $v{$name}), "$label: ... the value of $name\'s data");
}

sub change
{
	my ($name) = @_;
	$v{$name} += 10;
	$node{$name}->safe_psql('postgres', "UPDATE t SET v = $v{$name}");
}

for my $fn ('in_redis', 'in_both')
{
	ok((warm_until_hit($node_a, "SELECT ${fn}_cached(1)"))[0], "$fn: A's entry is served on A");
	cmp_ok(scalar($redis->keys('*')), '>', 0, "$fn: there are keys in Redis");
	same('B', $fn, "$fn, first call on B (A's entry is in Redis)");

	# B's data differs from the data A's entry came from
	change('B');
	same('B', $fn, "$fn, B changed");
	same('B', $fn, "$fn, B changed (again)");

	# A's own entry after A's change
	ok((warm_until_hit($node_a, "SELECT ${fn}_cached(1)"))[0], "$fn: A's entry is served on A again");
	change('A');
	same('A', $fn, "$fn, A changed");
	same('B', $fn, "$fn, B after A changed");

	# A stores, restarts, changes before any call
	ok((warm_until_hit($node_a, "SELECT ${fn}_cached(1)"))[0], "$fn: A's entry is served before A restarts");
	$node_a->restart;
	change('A');
	same('A', $fn, "$fn, A restarted and changed");
}

# a function that reads nothing is shared through Redis
ok((warm_until_hit($node_a, 'SELECT pure_cached(8)'))[0], 'pure: served on A');
my ($out, $hit) = outcome($node_b, 'SELECT pure_cached(8)');
is($out, 'value: 24', 'pure: right value on B');
ok($hit, "pure: B is served A's entry (it depends on no data)");

$node_a->stop;
$node_b->stop;
done_testing();
