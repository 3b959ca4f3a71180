# 054_fresh_standby.pl: a hot standby (issue 10, item 8).  Entries whose
# function read tables are never served stale there: after a change on the
# primary reaches the standby, the standby's cached call equals its direct
# call, whether the standby had called the function before or not.  An
# entry of a function that reads nothing is still served there.  After the
# standby is promoted, entries stored on the old primary are not served
# when the data changed after them.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node);
use FreshTest qw(outcome warm_until_hit);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = cachier_node('primary', allows_streaming => 1);
$primary->safe_psql('postgres', q{
CREATE EXTENSION cachier;
CREATE TABLE t (k int, v int); INSERT INTO t VALUES (1, 1);
CREATE TABLE u (v int); INSERT INTO u VALUES (1);
CREATE FUNCTION f(x int) RETURNS bigint LANGUAGE sql STABLE
    AS 'SELECT x * 1000 + sum(v) FROM t';
SELECT cachier_memoize('f(int)');
CREATE FUNCTION g() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT sum(v) FROM u';
SELECT cachier_memoize('g()');
CREATE FUNCTION pure(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 3';
SELECT cachier_memoize('pure(int)');
});
$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;

sub catch_up { $primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert')); }
sub same
{
	my ($node, $call, $direct, $label) = @_;
	my ($c) = outcome($node, $call);
	my ($d) = outcome($node, $direct);
	is($c, $d, $label);
	return $d;
}

# entries stored on the primary and replicated
ok((warm_until_hit($primary, "SELECT f_cached($_)"))[0], "primary: f($_) is served") for 1, 2;
ok((warm_until_hit($primary, 'SELECT pure_cached(4)'))[0], 'primary: pure(4) is served');
catch_up();
same($standby, 'SELECT f_cached(1)', 'SELECT f(1)', 'standby, before a change: f(1) cached = direct');

for my $round (1 .. 3)
{
	$primary->safe_psql('postgres', "UPDATE t SET v = v + 1");
	catch_up();
	# f(1) was called on the standby before, f(2) only on the primary
	for my $k (1, 2)
	{
		my $d = same($standby, "SELECT f_cached($k)", "SELECT f($k)",
			"standby, round $round: f($k) cached = direct after the change");
		is($d, 'value: ' . ($k * 1000 + 1 + $round), "standby, round $round: f($k) is the new value");
	}
	same($primary, 'SELECT f_cached(1)', 'SELECT f(1)', "primary, round $round: f(1) cached = direct");
	ok((warm_until_hit($primary, "SELECT f_cached($_)"))[0], "primary, round $round: f($_) is served again")
	  for 1, 2;
	catch_up();
}

my ($out, $hit) = outcome($standby, 'SELECT pure_cached(4)');
is($out, 'value: 12', 'standby: pure(4)');
ok($hit, 'standby: the entry of a function that reads nothing is served');

# promotion: g's entry stored on the primary, then u changes; the promoted
# standby must not serve the entry
ok((warm_until_hit($primary, 'SELECT g_cached()'))[0], 'primary: g() is served');
$primary->safe_psql('postgres', 'UPDATE u SET v = 2');
catch_up();
$primary->stop;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()');
is((outcome($standby, 'SELECT g_cached()'))[0], 'value: 2', 'promoted: g() is the new value');
ok((warm_until_hit($standby, 'SELECT g_cached()'))[0], 'promoted: g() is stored and served there');
$standby->safe_psql('postgres', 'UPDATE u SET v = 3');
is((outcome($standby, 'SELECT g_cached()'))[0], 'value: 3', 'promoted: after a change there, the new value');
same($standby, 'SELECT f_cached(1)', 'SELECT f(1)', 'promoted: f(1) cached = direct');

$standby->stop;
done_testing();
