# 053_fresh_restart.pl: restarts and crashes (issue 10, item 8).  After a
# crash (a backend killed with SIGKILL, so every backend restarts), a
# clean restart and an immediate shutdown, no entry that may have missed a
# change is served: entries with dependencies stored before are not served
# when the table changed after the restart, before anything called the
# function again (nothing is registered yet).  A function that reads
# nothing keeps its entry.  A transaction prepared before a restart and
# committed after it invalidates what was stored in between.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node session close_session);
use FreshTest qw(outcome warm_until_hit);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# the test framework turns restart_after_crash off; a crash must restart
# all backends
my $node = cachier_node('main',
	conf => "restart_after_crash = on\nmax_prepared_transactions = 2");
$node->safe_psql('postgres', q{
CREATE EXTENSION cachier;
CREATE TABLE t (v int); INSERT INTO t VALUES (1);
CREATE FUNCTION f() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT sum(v) FROM t';
SELECT cachier_memoize('f()');
CREATE FUNCTION pure(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 3';
SELECT cachier_memoize('pure(int)');
});

my $v = 1;

# Serve f's entry; run $how (the restart); change t before any call of f;
# f's cached call must be the new value.
sub across
{
	my ($label, $how) = @_;
	ok((warm_until_hit($node, 'SELECT f_cached()'))[0], "$label: f's entry is served before");
	ok((warm_until_hit($node, 'SELECT pure_cached(5)'))[0], "$label: pure's entry is served before");
	$how->();
	$v++;
	$node->safe_psql('postgres', "UPDATE t SET v = $v");
	is((outcome($node, 'SELECT f_cached()'))[0], "value: $v",
		"$label: after the restart and a change, f's cached call is the new value");
	is((outcome($node, 'SELECT f_cached()'))[0], "value: $v", "$label: and again");
	my ($out, $hit) = outcome($node, 'SELECT pure_cached(5)');
	is($out, 'value: 15', "$label: pure's value");
	ok($hit, "$label: pure's entry (it reads nothing) is still served");
}

across('crash (SIGKILL of a backend)', sub {
	my ($session, $pid) = session($node);
	my $offset = -s $node->logfile;
	kill 'KILL', $pid;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$node->wait_for_log(qr/database system is ready to accept connections/, $offset);
	close_session($session);
});
across('clean restart', sub { $node->restart; });
across('immediate shutdown', sub { $node->stop('immediate'); $node->start; });

# A crash right after a change: the change committed (and bumped the epoch
# in shared memory), then the crash; after it nothing stale is served.
ok((warm_until_hit($node, 'SELECT f_cached()'))[0], 'change then crash: the entry is served');
$v++;
$node->safe_psql('postgres', "UPDATE t SET v = $v");
{
	my ($session, $pid) = session($node);
	my $offset = -s $node->logfile;
	kill 'KILL', $pid;
	$node->wait_for_log(qr/database system is ready to accept connections/, $offset);
	close_session($session);
}
is((outcome($node, 'SELECT f_cached()'))[0], "value: $v", 'change then crash: the new value');

# Two-phase commit across a restart.
$v++;
$node->safe_psql('postgres', "BEGIN; UPDATE t SET v = $v; PREPARE TRANSACTION 'across'");
$node->restart;
ok((warm_until_hit($node, 'SELECT f_cached()'))[0],
	'prepared before a restart: an entry is stored and served while it is prepared');
is((outcome($node, 'SELECT f_cached()'))[0], 'value: ' . ($v - 1), 'prepared: the old value meanwhile');
$node->safe_psql('postgres', "COMMIT PREPARED 'across'");
is((outcome($node, 'SELECT f_cached()'))[0], "value: $v",
	'COMMIT PREPARED after the restart: the new value');

$node->stop;
done_testing();
