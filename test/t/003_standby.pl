# 003_standby.pl: cachier on a streaming hot standby and in read-only
# transactions.
#  - Entries computed on the primary reach the standby by replication and
#    are served there as hits: the standby returns the primary's value and
#    does not run the function.
#  - A miss on the standby (nothing can be written there) returns the right
#    value with no error and no warning, and stores nothing.
#  - On the primary, a read-only transaction is served hits and computes
#    misses correctly, and stores nothing.
# Nothing can be written on a standby (not even nextval), so executions are
# seen through a function whose every execution gives a new value
# (clock_timestamp() and random()) and through cachier.verbose notices.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node verbose_psql);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = cachier_node('primary', allows_streaming => 1);

$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION cachier;
-- a new value at every execution
CREATE FUNCTION stamp(x int) RETURNS text LANGUAGE sql VOLATILE
    AS $$ SELECT x || ' at ' || clock_timestamp() || ' #' || random() $$;
SELECT cachier_memoize('stamp(int)');
-- a deterministic function, to check the values of misses
CREATE FUNCTION square(x int) RETURNS int LANGUAGE sql
    AS $$ SELECT x * x $$;
SELECT cachier_memoize('square(int)');
});

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;

# Compute on the primary: one entry through the wrapper, one through
# cachier_wrap.
my $v1 = $primary->safe_psql('postgres', 'SELECT stamp_cached(1)');
my $v2 = $primary->safe_psql('postgres', q{SELECT cachier_wrap('stamp', 2)});
like($v1, qr/^1 at /, 'primary: stamp_cached(1) computed a value');
is($primary->safe_psql('postgres', 'SELECT stamp_cached(1)'),
	$v1, 'primary: a second call returns the stored value');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM cachier.entries'),
	'2', 'primary: two entries are stored');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM cachier.entries'),
	'2', 'standby: the two entries arrived by replication');

# Hits on the standby.
my ($rc, $stdout, $stderr) = verbose_psql($standby,
	q{SELECT stamp_cached(1); SELECT cachier_wrap('stamp', 2);});
is($rc, 0, 'standby: cached calls succeed');
is($stdout, "$v1\n$v2",
	"standby: the wrapper and cachier_wrap return the primary's values");
like(
	$stderr,
	qr/cachier: hit: public\.stamp\(1\).*cachier: hit: public\.stamp\(2\)/s,
	'standby: both calls are reported as hits');
unlike($stderr, qr/miss|WARNING|ERROR/,
	'standby: no miss, warning or error on hits');

# Misses on the standby: right value, no error or warning, nothing stored.
($rc, $stdout, $stderr) = verbose_psql($standby,
	q{SELECT square_cached(7); SELECT cachier_wrap('square', 8);});
is($rc, 0, 'standby: missed calls succeed');
is($stdout, "49\n64", 'standby: missed calls return the right values');
unlike($stderr, qr/WARNING|ERROR/, 'standby: a miss gives no warning or error');
like(
	$stderr,
	qr/cachier: not stored: public\.square\(7\)\nDETAIL:  Nothing is stored: the server is a hot standby\./,
	'standby: verbose explains that nothing is stored on a standby');

# The same key missed twice on the standby is computed twice.
($rc, $stdout, $stderr) = verbose_psql($standby,
	'SELECT stamp_cached(100) <> stamp_cached(100);');
is($stdout, 't',
	'standby: a missed key is computed at every call (nothing was stored)');
my @misses = $stderr =~ /cachier: miss: public\.stamp\(100\)/g;
is(scalar @misses, 2, 'standby: both calls of the missed key are misses');
unlike($stderr, qr/WARNING|ERROR/, 'standby: repeated misses give no warning');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM cachier.entries'),
	'2', 'standby: misses stored nothing');

# The standby's misses left nothing behind on the primary either.
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is($primary->safe_psql('postgres', 'SELECT count(*) FROM cachier.entries'),
	'2', 'primary: still two entries after the misses on the standby');

# Read-only transactions on the primary.
($rc, $stdout, $stderr) = verbose_psql(
	$primary, q{
SET default_transaction_read_only = on;
SELECT stamp_cached(1);
SELECT square_cached(9);
SELECT cachier_wrap('square', 10);
SELECT stamp_cached(200) <> stamp_cached(200);
});
is($rc, 0, 'read-only primary session: cached calls succeed');
is($stdout, "$v1\n81\n100\nt",
	'read-only primary session: a hit gives the stored value, misses the right values, '
	  . 'a repeated miss is computed again');
like(
	$stderr,
	qr/cachier: hit: public\.stamp\(1\)/,
	'read-only primary session: the stored entry is a hit');
like(
	$stderr,
	qr/cachier: not stored: public\.square\(9\)\nDETAIL:  Nothing is stored: the transaction is read-only\./,
	'read-only primary session: verbose explains that nothing is stored');
unlike($stderr, qr/WARNING|ERROR/,
	'read-only primary session: no warning or error');

($rc, $stdout, $stderr) = verbose_psql(
	$primary, q{
BEGIN READ ONLY;
SELECT square_cached(11);
COMMIT;
});
is($stdout, '121', 'BEGIN READ ONLY: a miss returns the right value');
unlike($stderr, qr/WARNING|ERROR/, 'BEGIN READ ONLY: no warning or error');

is( $primary->safe_psql(
		'postgres',
		'SELECT string_agg(arguments, \' \' ORDER BY arguments) FROM cachier_entries'
	),
	'(1) (2)',
	'primary: read-only transactions stored nothing');

# A later read-write call stores as usual.
is($primary->safe_psql('postgres', 'SELECT square_cached(9)'),
	'81', 'primary: a read-write call of the same key works');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM cachier.entries'),
	'3', 'primary: ... and stores it');

$standby->stop;
$primary->stop;
done_testing();
