# 013_drop_while_cleaning.pl: DROP EXTENSION cachier CASCADE while the
# cleanup worker is removing stale entries never deadlocks with it.
#
# DROP EXTENSION locks the extension, then each of its tables; a worker
# that locked the tables in another order could hold one DROP wanted while
# waiting for one DROP held, and the deadlock detector then cancelled one
# of them (seen in the suite: the DROP of sql/cleanup.sql failed).  The
# workers now lock the extension in share mode before touching its tables.
#
# Each round fills 20,000 entries with a 1 ms shelf life and
# cleanup_stale, lets them go stale, wakes the cleanup worker with a
# configuration change and drops the extension at a random moment of its
# work.  Before the fix about one round in fifteen deadlocked on a 2-core
# machine; 30 rounds take about 20 seconds.  Every round must succeed, and
# the server log must show no deadlock and no error of a worker.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $rounds = 30;
my $node = cachier_node('main', conf => "deadlock_timeout = 200ms\n");
my $log_start = -s $node->logfile;

my $round = <<'SQL';
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cachier CASCADE;	-- (left by a failed round)
DROP FUNCTION IF EXISTS f(int);
RESET client_min_messages;
CREATE EXTENSION cachier;
CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('f(int)', stale_after => '1 ms', cleanup_stale => true,
                       cleanup_interval => '1 ms') \g /dev/null
SELECT count(f_cached(i)) FROM generate_series(1, 20000) i \g /dev/null
SELECT pg_sleep(0.05) \g /dev/null
SELECT cachier_configure('f(int)', cleanup_interval => '2 ms') \g /dev/null
SELECT pg_sleep(random() * 0.1) \g /dev/null
DROP EXTENSION cachier CASCADE;
DROP FUNCTION f(int);
SQL

my $failed = 0;
for my $i (1 .. $rounds)
{
	my ($ret, $stdout, $stderr) = $node->psql('postgres', $round,
		extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
	if ($ret != 0)
	{
		$failed++;
		diag("round $i: $stderr");
	}
}
is($failed, 0, "$rounds rounds of DROP EXTENSION while the cleanup worker runs all succeed");

my $log = slurp_file($node->logfile, $log_start);
unlike($log, qr/deadlock detected/, 'the server log shows no deadlock');
# (log_line_prefix '%m [%p] %q%a ': a process without a client, such as a
# worker, logs its pid right before the level)
unlike($log, qr/\[\d+\] ERROR/,
	'no worker reported an error (it sees the extension gone and stops)');

# the same set-up without the DROP: the worker does clean the entries up,
# so the rounds above raced it for real
$node->safe_psql('postgres', $round =~ s/DROP EXTENSION cachier CASCADE.*//sr);
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM cachier.entries WHERE fn_id = cachier.fn_id('f(int)')"),
	'without the DROP, the cleanup worker removes the stale entries');

done_testing();
