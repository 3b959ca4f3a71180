# 015_stats_eviction.pl: the statistics table is bounded (issue 8 route 5,
# issue 9.7).  With cachier.max_tracked_functions = 100:
#  1. an ordinary role wrapping 400 different functions from 4 sessions at
#     once never gets an error; the table holds at most 100 functions and
#     cachier_stats_info counts the evictions;
#  2. eviction takes the least used first: a function called often keeps
#     its counters through the churn;
#  3. the background worker goes on working under that load: a next_time
#     refresh is done and counted, a cleanup removes stale entries;
#  4. the server log shows no "out of shared memory" and no crash.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node backdate);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node(
	'main', conf => q{
max_worker_processes = 16
cachier.max_tracked_functions = 100});

is($node->safe_psql('postgres', 'SHOW cachier.max_tracked_functions'),
	'100', 'the table has 100 entries');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION cachier;
CREATE FUNCTION hot(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1';
SELECT cachier_memoize('hot(int)', stale_after => '1 hour', next_time => true);
CREATE FUNCTION tidy(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_memoize('tidy(int)', stale_after => '1 hour',
                       cleanup_stale => true, cleanup_interval => '1 second');
SELECT hot_cached(1) FROM generate_series(1, 60);
SELECT tidy_cached(i) FROM generate_series(1, 3) i;
-- the churn: a role with CONNECT and its own schema
CREATE ROLE tenant LOGIN;
CREATE SCHEMA churn AUTHORIZATION tenant;
});
$node->safe_psql(
	'postgres', q{
DO $$
BEGIN
    FOR i IN 1 .. 400 LOOP
        EXECUTE format('CREATE FUNCTION churn.f%s(x int) RETURNS int
                        LANGUAGE sql AS ''SELECT x + %s''', i, i);
    END LOOP;
END $$;
},
	extra_params => [ '-U', 'tenant' ]);
my $hot_before = $node->safe_psql('postgres',
	q{SELECT hits FROM cachier_stats WHERE function = 'hot(int)'::regprocedure});
is($hot_before, '59', 'hot has 59 hits before the churn');

# ------------------------------------------------------------ the churn

# 4 clients x 250 calls of random functions among 400, in the background
my $script = "${PostgreSQL::Test::Utils::tmp_check}/churn.sql";
open my $fh, '>', $script or die "could not write $script: $!";
print $fh "\\set i random(1, 400)\n"
  . "SELECT cachier_wrap('churn.f' || :i, 1);\n";
close $fh;
my ($stdout, $stderr) = ('', '');
my $churn = IPC::Run::start(
	[
		$node->config_data('--bindir') . '/pgbench',
		'-n', '-c', 4, '-j', 4, '-t', 250, '-f', $script,
		'-h', $node->host, '-p', $node->port, '-U', 'tenant', 'postgres'
	],
	'>', \$stdout, '2>', \$stderr,
	IPC::Run::timeout(120));

# meanwhile the worker refreshes hot(1) and cleans tidy up
backdate($node, 'postgres', 'hot(int)', '(1)');
backdate($node, 'postgres', 'tidy(int)', '(1)', '(2)');
$node->safe_psql('postgres', 'SELECT hot_cached(1)');
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 0 FROM cachier.entries
 WHERE fn_id = cachier.fn_id('tidy(int)')
   AND created_at < now() - interval '1 hour'}),
	'the worker cleans up during the churn');
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 1 FROM cachier.entries
 WHERE fn_id = cachier.fn_id('hot(int)')
   AND created_at > now() - interval '1 hour'}),
	'the worker refreshes a next_time entry during the churn');

ok($churn->finish, 'pgbench finished');
my ($processed) =
  $stdout =~ /number of transactions actually processed: (\d+)/;
is($processed, 1000, 'every one of the 1000 wrapped calls succeeded');
unlike($stderr, qr/error|aborted/i, 'no client saw an error');

# ------------------------------------------------------------ the bound

cmp_ok(
	$node->safe_psql('postgres',
		q{SELECT count(*) FROM cachier_stats WHERE computations > 0}),
	'<=', 100, 'at most 100 functions have counters');
my $evictions = $node->safe_psql('postgres', 'SELECT evictions FROM cachier_stats_info');
cmp_ok($evictions, '>=', 300,
	'evictions are counted (400 functions and more went through 100 entries)');
is( $node->safe_psql(
		'postgres',
		q{SELECT hits >= 59 FROM cachier_stats WHERE function = 'hot(int)'::regprocedure}),
	't',
	'the often used function kept its counters');
is( $node->safe_psql(
		'postgres',
		q{SELECT refreshes_done FROM cachier_stats WHERE function = 'hot(int)'::regprocedure}),
	'1',
	'its refresh was counted');

# the tenant sees the statistics of its own functions only
my $tenant_sees = $node->safe_psql(
	'postgres',
	q{SELECT count(*) FILTER (WHERE function::text LIKE 'churn.%') = count(*)
        FROM cachier_stats},
	extra_params => [ '-U', 'tenant' ]);
is($tenant_sees, 't', 'the tenant sees only its own functions');

# a reset dates itself and zeroes the evictions
$node->safe_psql('postgres', 'SELECT cachier_stats_reset()');
is( $node->safe_psql(
		'postgres',
		q{SELECT evictions = 0 AND stats_reset > now() - interval '1 minute'
            FROM cachier_stats_info}),
	't',
	'cachier_stats_reset zeroes the evictions and dates the reset');

# ------------------------------------------------------------ the log

my $log = slurp_file($node->logfile);
unlike($log, qr/out of shared memory/, 'no "out of shared memory"');
unlike($log, qr/terminated by signal/, 'no process crashed');

$node->stop;
done_testing();
