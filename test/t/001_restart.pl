# 001_restart.pl: cached entries and per-function options are ordinary,
# WAL-logged table rows, so they outlive a clean restart and a crash
# (immediate shutdown followed by crash recovery).  After either, the
# values computed before are served as hits: the functions are not run
# again, and the entries are the very same rows (same created_at).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node counting_setup);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('main');

# calls counts executions outside of transactions (a sequence); a crash may
# make it jump ahead, so only differences taken after a restart are compared.
$node->safe_psql(
	'postgres', counting_setup() . q{
-- memoized: calls go through the wrapper square_cached(int)
CREATE FUNCTION square(x int) RETURNS int LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); RETURN x * x; END $$;
SELECT cachier_memoize('square(int)', stale_after => '1 day',
                       wait_timeout => '5s', entry_size_limit => '1MB');

-- configured only: calls go through cachier_wrap('greet', ...)
CREATE FUNCTION greet(name text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); RETURN 'hello ' || name; END $$;
SELECT cachier_configure('greet(text)', stale_after => '2 hours',
                         allow_null => true);
});

# The calls every check makes, and what they must return.
my $calls = q{
SELECT string_agg(square_cached(i)::text, ',' ORDER BY i) FROM generate_series(1, 3) i;
SELECT cachier_wrap('greet', 'ann'::text) || ' / ' || cachier_wrap('greet', 'bob'::text);
};
my $expected_values = "1,4,9\nhello ann / hello bob";

my $entries_query = q{
SELECT function, arguments, created_at, stale, processing, size_bytes
  FROM cachier_entries ORDER BY function::text, arguments};
my $options_query = q{
SELECT function, wrapper, stale_after, wait_timeout, allow_null,
       entry_size_limit, updated_at
  FROM cachier_functions ORDER BY function::text};

# First calls compute and store.
is($node->safe_psql('postgres', $calls), $expected_values,
	'first calls return the right values');
is($node->safe_psql('postgres', 'SELECT executions()'),
	'5', 'first calls ran each function once per key');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cachier.entries'),
	'5', 'five entries are stored');

my $entries_before = $node->safe_psql('postgres', $entries_query);
my $options_before = $node->safe_psql('postgres', $options_query);
like(
	$options_before,
	qr/^square\(integer\)\|square_cached\(integer\)\|1 day\|00:00:05\|f\|1048576\|/m,
	'options of the memoized function are set');
like(
	$options_before,
	qr/^greet\(text\)\|\|02:00:00\|00:00:30\|t\|\|/m,
	'options of the configured function are set');

# After a (re)start: same entries, same options, and every call is a hit.
sub check_served_from_cache
{
	my ($when) = @_;

	is($node->safe_psql('postgres', $entries_query),
		$entries_before, "$when: the entries are still there, unchanged");
	is($node->safe_psql('postgres', $options_query),
		$options_before, "$when: the per-function options are kept");

	my $base = $node->safe_psql('postgres', 'SELECT executions()');
	my ($stdout, $stderr);
	my $rc = $node->psql(
		'postgres',
		"SET cachier.\"verbose\" = on;\n$calls",
		stdout => \$stdout,
		stderr => \$stderr);
	is($rc, 0, "$when: cached calls succeed");
	is($stdout, $expected_values, "$when: cached calls return the stored values");
	is($node->safe_psql('postgres', 'SELECT executions()'),
		$base, "$when: no function was executed again");
	my @hits = $stderr =~ /NOTICE:  cachier: hit: /g;
	is(scalar @hits, 5, "$when: all five calls are reported as hits");
	unlike($stderr, qr/miss|stale|WARNING|ERROR/,
		"$when: no miss, stale entry, warning or error");
	is($node->safe_psql('postgres', $entries_query),
		$entries_before, "$when: serving hits rewrote no entry");
}

$node->restart;
check_served_from_cache('after a clean restart');

# A crash: stop without a checkpoint; the start runs crash recovery.
$node->stop('immediate');
my $log_offset = -s $node->logfile;
$node->start;
ok( $node->log_contains(
		qr/database system was not properly shut down; automatic recovery in progress/,
		$log_offset),
	'the start after the immediate shutdown ran crash recovery');
check_served_from_cache('after crash recovery');

# The cache keeps working after recovery: a new key is computed once and
# then hit.
my $base = $node->safe_psql('postgres', 'SELECT executions()');
is( $node->safe_psql(
		'postgres',
		'SELECT square_cached(12); SELECT square_cached(12)'),
	"144\n144",
	'after crash recovery a new key computes the right value');
is($node->safe_psql('postgres', 'SELECT executions()') - $base,
	1, 'after crash recovery a new key is computed once, then hit');

$node->stop;
done_testing();
