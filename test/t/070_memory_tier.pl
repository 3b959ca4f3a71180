# 070_memory_tier.pl: the shared memory tier (issue 13) in front of the
# table tier.  Checked here:
#   - a stored value is served from memory, in this and in other sessions,
#     and cachier."verbose" says so; cachier_stats and cachier_memory count it;
#   - a restart starts with an empty area that warms from the table;
#   - cachier_clear and CREATE OR REPLACE in one session reach another
#     session's very next call (that session stays connected throughout);
#   - a fill of a transaction that rolls back is never published;
#   - option shared_cache => false: the function is served from the table
#     only (no memory hits, no entry in the area) while others use the tier;
#     turned on again, its hits come from memory and are current;
#   - on_change => 'refresh': while the background worker refreshes an
#     invalidated entry the old value is served, and then the refreshed
#     one (from the table, then from memory), never the invalidated copy
#     in memory again;
#   - with the tier on and off, the same calls return the same values.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node counting_setup verbose_psql);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('mem', conf => "cachier.shared_cache_size = '8MB'");

$node->safe_psql(
	'postgres', counting_setup() . q{
CREATE FUNCTION sq(x int) RETURNS numeric LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); RETURN x * 2.5; END $$;
SELECT cachier_memoize('sq(int)');
CREATE TABLE side (x int);
-- writes: its transaction has written something the value could reflect
CREATE FUNCTION noting(x int) RETURNS int LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); INSERT INTO side VALUES (x); RETURN x + 1; END $$;
SELECT cachier_memoize('noting(int)');
});

is($node->safe_psql('postgres', 'SHOW cachier.shared_cache_size'), '8MB',
	'the area has the configured size');
is($node->safe_psql('postgres', 'SELECT enabled, size_bytes FROM cachier_memory'),
	't|8388608', 'cachier_memory shows the area');

# ---------------------------------------------------------------- hits
my ($rc, $out, $err) = verbose_psql($node, 'SELECT sq_cached(4); SELECT sq_cached(4);');
is($out, "10.0\n10.0", 'a computed value, then the same value again');
like($err, qr/miss: public\.sq\(4\).*stored: public\.sq\(4\).*hit: public\.sq\(4\)\nDETAIL:  Served from the shared memory tier\./s,
	'the second call is a hit from the memory tier (published at once: nothing was written)');

($rc, $out, $err) = verbose_psql($node, 'SELECT sq_cached(4);');
is($out, '10.0', 'another session gets the value');
like($err, qr/hit: public\.sq\(4\)\nDETAIL:  Served from the shared memory tier\./,
	'another session is served from the memory tier');
is($node->safe_psql('postgres', 'SELECT executions()'), '1', 'computed once');
is( $node->safe_psql(
		'postgres',
		q{SELECT hits, memory_hits, memory_bytes > 0 FROM cachier_stats WHERE function = 'sq(int)'::regprocedure}),
	'2|2|t',
	'cachier_stats counts the memory hits and the bytes the function holds in memory');
is($node->safe_psql('postgres', 'SELECT entries, hits >= 2 FROM cachier_memory'),
	'1|t', 'cachier_memory counts the entry and the hits');

# ---------------------------------------------------------------- restart
$node->restart;
is($node->safe_psql('postgres', 'SELECT entries FROM cachier_memory'),
	'0', 'after a restart the area is empty');
($rc, $out, $err) = verbose_psql($node, 'SELECT sq_cached(4); SELECT sq_cached(4);');
is($out, "10.0\n10.0", 'after a restart the values are the same');
like($err, qr/hit: public\.sq\(4\)\n(?!DETAIL).*hit: public\.sq\(4\)\nDETAIL:  Served from the shared memory tier\./s,
	'after a restart the first hit comes from the table and promotes the entry; the next from memory');
is($node->safe_psql('postgres', 'SELECT executions()'), '1', 'nothing was computed again');

# ---------------------------------------------------------------- invalidation from another backend
my $a = $node->background_psql('postgres');
$a->query_safe('SELECT sq_cached(7)');
is($a->query_safe('SELECT sq_cached(7)'), '17.5', 'session A is served');
my $before = $node->safe_psql('postgres', 'SELECT executions()');

$node->safe_psql('postgres', q{SELECT cachier_clear('sq')});
is($a->query_safe('SELECT sq_cached(7)'), '17.5', 'session A gets the value after B cleared');
is($node->safe_psql('postgres', 'SELECT executions()') - $before, 1,
	q{B's cachier_clear reached A's next call: it computed});

$node->safe_psql('postgres', q{
CREATE OR REPLACE FUNCTION sq(x int) RETURNS numeric LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); RETURN x * 3.5; END $$;
});
is($a->query_safe('SELECT sq_cached(7)'), '24.5',
	q{B's CREATE OR REPLACE reached A's next call: the new definition's value});

# a clear in a transaction that rolls back: over-invalidation is fine, the
# value stays right
$a->query_safe('SELECT sq_cached(7)');
$node->safe_psql('postgres', q{BEGIN; SELECT cachier_clear('sq'); ROLLBACK;});
is($a->query_safe('SELECT sq_cached(7)'), '24.5', 'a rolled-back clear changes no value');
$a->quit;

# ---------------------------------------------------------------- rollback publishes nothing
my $entries = $node->safe_psql('postgres', 'SELECT entries FROM cachier_memory');
$before = $node->safe_psql('postgres', 'SELECT executions()');
$node->safe_psql('postgres', 'BEGIN; SELECT noting_cached(1); ROLLBACK;');
is($node->safe_psql('postgres', 'SELECT entries FROM cachier_memory'),
	$entries, 'a rolled-back fill is not in the area');
($rc, $out, $err) = verbose_psql($node, 'SELECT noting_cached(1);');
is($out, '2', 'the value is computed again');
like($err, qr/miss: public\.noting\(1\)/, 'after the rollback the call misses');
is($node->safe_psql('postgres', 'SELECT executions()') - $before, 2,
	'the function ran in both transactions');

# a transaction that wrote before the call publishes at commit only
$node->safe_psql('postgres', q{
BEGIN; INSERT INTO side VALUES (0); SELECT sq_cached(100); ROLLBACK;});
($rc, $out, $err) = verbose_psql($node, 'SELECT sq_cached(100);');
like($err, qr/miss: public\.sq\(100\)/,
	'a fill in a transaction that had written and rolled back was not published');
$node->safe_psql('postgres', q{
BEGIN; INSERT INTO side VALUES (0); SELECT sq_cached(101); COMMIT;});
($rc, $out, $err) = verbose_psql($node, 'SELECT sq_cached(101);');
like($err, qr/hit: public\.sq\(101\)\nDETAIL:  Served from the shared memory tier\./,
	'the same fill in a committed transaction was published at commit');

# a table hit in a transaction that wrote is committed data: promoted at once
$node->safe_psql('postgres', q{SELECT cachier_memory_reset()});
my $b = $node->background_psql('postgres');
$b->query_safe('BEGIN');
$b->query_safe('INSERT INTO side VALUES (1)');
$b->query_safe('SELECT sq_cached(101)');
($rc, $out, $err) = verbose_psql($node, 'SELECT sq_cached(101);');
like($err, qr/hit: public\.sq\(101\)\nDETAIL:  Served from the shared memory tier\./,
	'a table hit is promoted at once, even by a transaction that has written and not committed');
$b->query_safe('ROLLBACK');
$b->quit;

# ---------------------------------------------------------------- option shared_cache
$node->safe_psql('postgres', q{
CREATE FUNCTION tb(x int) RETURNS numeric LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); RETURN x * 1.5; END $$;
SELECT cachier_memoize('tb(int)', shared_cache => false);
SELECT cachier_memory_reset();
});
# (each check reads the statistics in the session that made the calls: a
# session's own memory-tier counts are flushed when it reads them)
my $memory_hits = sub {
	my ($fn) = @_;
	return qq{SELECT coalesce(memory_hits, 0) FROM cachier_stats WHERE function = '$fn'::regprocedure};
};
# (entries: the area's count, which includes invalidated entries until the
# hand reclaims them, so the check compares before and after)
($rc, $out, $err) = verbose_psql($node, join("\n",
	"SELECT entries AS e0, (@{[ $memory_hits->('sq(int)') ]}) AS s0 FROM cachier_memory \\gset",
	'SELECT tb_cached(2); SELECT tb_cached(2); SELECT tb_cached(2);',
	'SELECT entries - :e0 AS new_entries FROM cachier_memory;',
	'SELECT sq_cached(7); SELECT sq_cached(7); SELECT sq_cached(7);',
	$memory_hits->('tb(int)') . ';',
	"SELECT (@{[ $memory_hits->('sq(int)') ]}) - :s0 >= 2 AS sq_memory_hits_grew;"));
is($out, join("\n", ('3.0') x 3, 0, ('24.5') x 3, 0, 't'),
	'shared_cache => false: no entry in the area and no memory hit for tb; sq, on, is hit from memory');
my @tb_hits = $err =~ /hit: public\.tb\(2\)\n(DETAIL:[^\n]*)?/g;
is(scalar(@tb_hits), 2, 'shared_cache => false: the later calls of tb are hits ...');
ok(!grep({ defined $_ && /memory tier/ } @tb_hits), '... served from the table');
like($err, qr/hit: public\.sq\(7\)\nDETAIL:  Served from the shared memory tier\./,
	'the other function is served from the memory tier meanwhile');
is($node->safe_psql('postgres', q{
SELECT hits >= 2, coalesce(memory_bytes, 0) FROM cachier_stats WHERE function = 'tb(int)'::regprocedure}),
	't|0', 'cachier_stats: its hits are table hits and it holds no bytes in memory');

# turned on: the next table hit is promoted and the one after is from memory
$node->safe_psql('postgres', q{SELECT cachier_configure('tb(int)', shared_cache => true)});
($rc, $out, $err) = verbose_psql($node, join(';',
	'SELECT tb_cached(2)', 'SELECT tb_cached(2)', $memory_hits->('tb(int)')));
is($out, "3.0\n3.0\n1", 'shared_cache => true: the second hit of tb is a memory hit');
like($err, qr/hit: public\.tb\(2\)\n(?!DETAIL).*hit: public\.tb\(2\)\nDETAIL:  Served from the shared memory tier\./s,
	'shared_cache => true: a table hit, promoted, then a hit from the memory tier');

# off again, the table's value changes (precache); on again, the area does
# not serve the value it held before
$node->safe_psql('postgres', q{SELECT cachier_configure('tb(int)', shared_cache => false)});
$node->safe_psql('postgres', q{SELECT cachier_precache('tb', 99, 2)});
is($node->safe_psql('postgres', 'SELECT tb_cached(2)'), '99', 'off: the precached value, from the table');
$node->safe_psql('postgres', q{SELECT cachier_configure('tb(int)', reset => '{shared_cache}')});
($rc, $out, $err) = verbose_psql($node, 'SELECT tb_cached(2); SELECT tb_cached(2);');
is($out, "99\n99", 'on again (reset): the current value, not the one the area held');
like($err, qr/Served from the shared memory tier/, 'on again: served from the memory tier');

# ---------------------------------------------------------------- on_change => 'refresh'
# (an invalidated copy in memory once shadowed the refreshed table entry:
# the old value was served for ever)
$node->safe_psql('postgres', q{
CREATE TABLE refr (v int); INSERT INTO refr VALUES (1);
CREATE FUNCTION refreshed() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT sum(v) FROM refr $$;
SELECT cachier_memoize('refreshed()', on_change => 'refresh', stale_after => '1 hour');
});
($rc, $out, $err) = verbose_psql($node, 'SELECT refreshed_cached(); SELECT refreshed_cached();');
like($err, qr/hit: public\.refreshed\(\)\nDETAIL:  Served from the shared memory tier\./,
	"on_change => 'refresh': the entry is in the memory tier");
$node->safe_psql('postgres', 'UPDATE refr SET v = 2');
is($node->safe_psql('postgres', 'SELECT refreshed_cached()'), '1',
	"on_change => 'refresh': the first call after the change gets the old value at once");
ok($node->poll_query_until('postgres', 'SELECT refreshed_cached() = 2'),
	"on_change => 'refresh': the background refresh's value is served");
($rc, $out, $err) = verbose_psql($node, 'SELECT refreshed_cached(); SELECT refreshed_cached();');
is($out, "2\n2", "on_change => 'refresh': the refreshed value stays");
like($err, qr/hit: public\.refreshed\(\)\nDETAIL:  Served from the shared memory tier\./,
	"on_change => 'refresh': the refreshed value is served from the memory tier");

# ---------------------------------------------------------------- the whole tier off
$node->safe_psql('postgres', 'SELECT cachier_memory_reset()');
my $calls = q{SELECT string_agg(sq_cached(i % 50)::text, ',' ORDER BY i) FROM generate_series(1, 400) i};
my $direct = q{SELECT string_agg(sq(i % 50)::text, ',' ORDER BY i) FROM generate_series(1, 400) i};
my $with_memory = $node->safe_psql('postgres', "$calls; $calls");
is($with_memory, join("\n", ($node->safe_psql('postgres', $direct)) x 2),
	'with the tier on, cached calls return what direct calls return');

# the same cluster with the tier off gives the same values
$node->append_conf('postgresql.conf', "cachier.shared_cache_size = 0");
$node->restart;
is($node->safe_psql('postgres', 'SELECT enabled FROM cachier_memory'), 'f',
	'shared_cache_size = 0 turns the tier off');
is($node->safe_psql('postgres', "$calls; $calls"), $with_memory,
	'with the tier off the same calls return the same values');
($rc, $out, $err) = verbose_psql($node, 'SELECT sq_cached(4);');
unlike($err, qr/memory tier/, 'with the tier off no hit comes from memory');

$node->stop;
done_testing();
