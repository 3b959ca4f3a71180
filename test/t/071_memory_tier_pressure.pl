# 071_memory_tier_pressure.pl: the shared memory tier under pressure and
# on a hot standby (issue 13).
#   - a 1MB area and 20,000 keys of ~300-byte values: the area stays within
#     its size, CLOCK evicts (and says how many), entries larger than the
#     admission limit are refused, and every call still returns the value
#     a direct call returns;
#   - hot keys survive a scan of cold ones (a hit sets the reference bit);
#   - eviction weighs cost: entries that were dear to compute survive a
#     scan of cheap keys that evicts cheap entries of the same age;
#   - a hot standby fills its own area from the replicated table, and a
#     cachier_clear on the primary reaches the standby's memory tier once
#     replayed.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node counting_setup verbose_psql);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node(
	'primary',
	allows_streaming => 1,
	conf => "cachier.shared_cache_size = '1MB'");

$node->safe_psql(
	'postgres', counting_setup() . q{
CREATE FUNCTION pad(x int) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); RETURN repeat(md5(x::text), 9); END $$;
SELECT cachier_memoize('pad(int)');
CREATE FUNCTION big(x int) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN RETURN repeat('x', 300000); END $$;
SELECT cachier_memoize('big(int)');
-- for the standby: no nextval, which a standby cannot run
CREATE FUNCTION plain(x int) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT md5(x::text) $$;
SELECT cachier_memoize('plain(int)');
});

my $size = $node->safe_psql('postgres', 'SELECT size_bytes FROM cachier_memory');
is($size, 1048576, 'a 1MB area');

# ---------------------------------------------------------------- bounded
my $check = q{
SELECT count(*) FILTER (WHERE pad_cached(i) IS DISTINCT FROM pad(i))
  FROM generate_series(1, 20000) i};
is($node->safe_psql('postgres', $check), '0',
	'20,000 keys through a 1MB area: every value is right (computing)');
is($node->safe_psql('postgres', $check), '0',
	'and again, partly from the table, partly from memory');
my ($used, $entries, $evictions) = split /\|/,
  $node->safe_psql('postgres', 'SELECT used_bytes, entries, evictions FROM cachier_memory');
cmp_ok($used, '<=', $size, "the area stays within its size ($used bytes used)");
cmp_ok($entries, '<', 20000, "it holds only part of the keys ($entries)");
cmp_ok($evictions, '>', 0, "CLOCK evicted entries ($evictions)");
cmp_ok(
	$node->safe_psql('postgres',
		q{SELECT memory_evictions FROM cachier_stats WHERE function = 'pad(int)'::regprocedure}),
	'>', 0, 'cachier_stats counts the function\'s evictions');

# an entry larger than an eighth of a partition is not admitted
my $rejected = $node->safe_psql('postgres', 'SELECT rejected FROM cachier_memory');
my ($rc, $out, $err) = verbose_psql($node, 'SELECT length(big_cached(1)); SELECT length(big_cached(1));');
is($out, "300000\n300000", 'a large value is cached and returned whole');
unlike($err, qr/memory tier/, 'a large value is served from the table, not from memory');
cmp_ok($node->safe_psql('postgres', 'SELECT rejected FROM cachier_memory'),
	'>', $rejected, 'the large value was refused by the area');

# ---------------------------------------------------------------- hot keys survive a cold scan
$node->safe_psql('postgres', q{SELECT cachier_memory_reset()});
$node->safe_psql('postgres', q{SELECT count(pad_cached(i)) FROM generate_series(1, 50) i});
for my $round (1 .. 3)
{
	# hot keys are hit, then a scan of cold keys goes through the area
	$node->safe_psql('postgres', q{SELECT count(pad_cached(i)) FROM generate_series(1, 50) i});
	$node->safe_psql('postgres',
		qq{SELECT count(pad_cached(i)) FROM generate_series(1000 + $round * 1500, 1000 + $round * 1500 + 1400) i});
}
($rc, $out, $err) = verbose_psql($node, q{SELECT count(pad_cached(i)) FROM generate_series(1, 50) i});
my @mem = $err =~ /Served from the shared memory tier/g;
cmp_ok(scalar @mem, '>=', 40, scalar(@mem) . ' of 50 hot keys are still in memory after cold scans');

# ---------------------------------------------------------------- dear entries outlive cheap ones
# 20 entries that took 30 ms each and 20 that took next to nothing, none
# hit after it was stored; then cold cheap keys fill the area (one
# partition) and move its hand about one turn.  Plain CLOCK would
# evict both kinds alike; weighing cost keeps the dear ones.
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION dear(x int) RETURNS text LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN PERFORM pg_sleep(0.03); RETURN md5(x::text); END $$;
SELECT cachier_memoize('dear(int)');
CREATE FUNCTION cheap(x int) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT md5(x::text) $$;
SELECT cachier_memoize('cheap(int)');
});
# a restart empties the area: the hand starts its first turn at the
# entries below, as in a new area
$node->restart;
$node->safe_psql('postgres',
	'SELECT count(dear_cached(i)) + count(cheap_cached(i)) FROM generate_series(1, 20) i');
# cold keys until the area is full (the first eviction), then as many
# and a half again as it holds entries: the hand passes every entry at
# least once and none more than twice
my $next = 100000;
my $ev0 = $node->safe_psql('postgres', 'SELECT evictions FROM cachier_memory');
while ($node->safe_psql('postgres', 'SELECT evictions FROM cachier_memory') == $ev0
	&& $next < 200000)
{
	$node->safe_psql('postgres',
		"SELECT count(cheap_cached(i)) FROM generate_series($next, $next + 499) i");
	$next += 500;
}
my $held = $node->safe_psql('postgres', 'SELECT entries FROM cachier_memory');
$node->safe_psql('postgres',
	"SELECT count(cheap_cached(i)) FROM generate_series($next, $next + $held * 3 / 2) i");
($rc, $out, $err) = verbose_psql($node,
	q{SELECT count(dear_cached(i)) + count(cheap_cached(i)) FROM generate_series(1, 20) i});
my @dear = $err =~ /hit: public\.dear\(\d+\)\nDETAIL:  Served from the shared memory tier/g;
my @cheap = $err =~ /hit: public\.cheap\(\d+\)\nDETAIL:  Served from the shared memory tier/g;
cmp_ok(scalar @dear, '>=', 18, scalar(@dear) . ' of 20 dear entries are still in memory');
cmp_ok(scalar @cheap, '<=', 2, scalar(@cheap) . ' of 20 cheap entries of the same age are');

# ---------------------------------------------------------------- hot standby
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
$node->safe_psql('postgres', q{SELECT plain_cached(77777)});
$node->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT entries FROM cachier_memory'), '0',
	'the standby has its own, empty area');
($rc, $out, $err) = verbose_psql($standby,
	'SELECT plain_cached(77777) = plain(77777); SELECT plain_cached(77777) = plain(77777);');
is($out, "t\nt", 'the standby serves the right value');
like($err, qr/hit: public\.plain\(77777\)\n(?!DETAIL).*hit: public\.plain\(77777\)\nDETAIL:  Served from the shared memory tier\./s,
	'the standby promotes a table hit to its own memory tier');

# a session that stays connected on the standby, served from memory
my $s = $standby->background_psql('postgres');
$s->query_safe('SET cachier."verbose" = on');
$s->query('SELECT plain_cached(77777)');	# its first use forgets the area
$s->{stderr} = '';
$s->query('SELECT plain_cached(77777)');
like($s->{stderr}, qr/Served from the shared memory tier/,
	'a standby session connected before the clear is served from memory');
$s->{stderr} = '';

$node->safe_psql('postgres', q{SELECT cachier_clear('plain')});
$node->wait_for_catchup($standby);
$s->query('SELECT plain_cached(77777)');
like($s->{stderr}, qr/miss: public\.plain\(77777\)/,
	'the primary\'s clear reached the connected standby session\'s next call');
$s->quit;
($rc, $out, $err) = verbose_psql($standby, 'SELECT plain_cached(77777) = plain(77777);');
is($out, 't', 'after the clear the standby still returns the right value');
like($err, qr/miss: public\.plain\(77777\)/,
	'and a new standby session misses too');

$standby->stop;
$node->stop;
done_testing();
