# 010_redis.pl: the Redis tier shared by several servers.
#  0. Namespaces.  By default a key holds this cluster's system identifier
#     and this database's OID: two independent clusters A and B with the
#     same function definitions, and two databases of one cluster, never
#     read each other's entries.  A non-superuser cannot set
#     cachier.redis_namespace.  A database of A and the cluster B given the
#     same namespace by a superuser (ALTER DATABASE ... SET, ALTER SYSTEM)
#     share, and the namespace is encoded in the key (':', ' ' and '*' as
#     %XX), while A's other database still does not.
#  1. Two independent clusters A and B (not replicas) in one namespace
#     (cachier.redis_namespace) share one Redis: a value computed on A is a hit on B and
#     the other way round (keys are made of the signature, the definition
#     and the argument bytes, never of OIDs), through the wrapper and
#     through cachier_wrap; with storage 'both' too (B's table misses, Redis
#     hits).  A different definition is a different key.  The key and the
#     value have the documented format.
#  2. A streaming hot standby, in the default namespace (which it shares
#     with its primary: same system identifier, same database OID): a miss of a 'redis' or 'both' function
#     computes and stores in Redis without an error and without writing the
#     table; the next call on the standby is a hit; values cross between
#     the primary and the standby through Redis in both directions.
#  3. The TTL of a key follows the shelf life (never more than
#     cachier.redis_max_ttl, which keys without one get): stale_after, twice that with
#     next_time, none without stale_after.
#  4. cachier_clear removes the function's keys from Redis (all, or the one
#     of the given arguments), never another function's; with a
#     cachier.redis_key_prefix made of glob characters it removes the keys
#     under that prefix and no key that the prefix would match as a pattern.
#  5. Connection URLs: a password (alone or with the user name), a database
#     number and a unix socket path; a wrong or missing password is a
#     WARNING and calls still return the right values; a corrected URL is
#     used at once.
#  6. One computation per key across servers: sessions on A and B calling the
#     same cold key run the function once in all, and both return its
#     value; the one that waited says 'hit after waiting'.
#
# Executions are counted per node by a sequence (calls) or a table (runs),
# or seen in the value itself (clock_timestamp() and random(), on the
# standby, where nothing can be written).  Each node has its name in the
# setting test.node, which the functions put in their values.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw($gate cachier_node counting_setup verbose_psql close_gate
  session start_fresh_statement finish_statement int_arg_hash new_keys);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisServer;
use Test::More;
use Time::HiRes qw(time);

my $redis = RedisServer->new('shared');

sub new_node
{
	my ($name, %params) = @_;
	return cachier_node(
		$name, %params,
		extra => [ '--encoding=UTF8', '--locale=C' ],
		conf => qq{
cachier.redis_url = '${\ $redis->url}'
test.node = '$name'
# no settings in the keys, so that int_arg_hash() can compute them
cachier.key_settings = ''});
}

my $node_a = new_node('A', allows_streaming => 1);
my $node_b = new_node('B');

# The same definitions on both clusters.
my $setup = counting_setup() . qq{
CREATE FUNCTION shared(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM nextval('calls');
    RETURN 'shared ' || x || ' from ' || current_setting('test.node');
END \$\$;
SELECT cachier_memoize('shared(int)', storage => 'redis');
CREATE FUNCTION layered(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM nextval('calls');
    RETURN 'layered ' || x || ' from ' || current_setting('test.node');
END \$\$;
SELECT cachier_memoize('layered(int)', storage => 'both');

-- every execution gives a new value (for the standby, which cannot count)
CREATE FUNCTION stamp(x int) RETURNS text LANGUAGE sql VOLATILE AS \$\$
    SELECT x || ' on ' || current_setting('test.node') || ' at '
           || clock_timestamp() || ' #' || random() \$\$;
SELECT cachier_memoize('stamp(int)', storage => 'redis');
CREATE FUNCTION stamp_both(x int) RETURNS text LANGUAGE sql VOLATILE AS \$\$
    SELECT x || ' on ' || current_setting('test.node') || ' at '
           || clock_timestamp() || ' #' || random() \$\$;
SELECT cachier_memoize('stamp_both(int)', storage => 'both');

CREATE FUNCTION ttl_short(x int) RETURNS int LANGUAGE sql AS \$\$ SELECT x \$\$;
SELECT cachier_memoize('ttl_short(int)', storage => 'redis', stale_after => '10 seconds');
CREATE FUNCTION ttl_next(x int) RETURNS int LANGUAGE sql AS \$\$ SELECT x \$\$;
SELECT cachier_memoize('ttl_next(int)', storage => 'redis', stale_after => '10 seconds',
                       next_time => true);
CREATE FUNCTION ttl_never(x int) RETURNS int LANGUAGE sql AS \$\$ SELECT x \$\$;
SELECT cachier_memoize('ttl_never(int)', storage => 'redis');

CREATE FUNCTION clear_f(x int) RETURNS int LANGUAGE sql AS \$\$ SELECT x * 10 \$\$;
SELECT cachier_memoize('clear_f(int)', storage => 'redis');
CREATE FUNCTION clear_g(x int) RETURNS int LANGUAGE sql AS \$\$ SELECT x * 10 \$\$;
SELECT cachier_memoize('clear_g(int)', storage => 'redis');

CREATE FUNCTION secret(x int) RETURNS text LANGUAGE sql AS \$\$ SELECT 'secret ' || x \$\$;
SELECT cachier_memoize('secret(int)', storage => 'redis');

-- single flight across servers: each execution leaves a row in runs
CREATE TABLE runs (fn text, node text);
CREATE FUNCTION flight(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO runs VALUES ('flight', current_setting('test.node'));
    PERFORM pg_advisory_xact_lock_shared($gate);  -- waits at the gate
    RETURN 'flight ' || x || ' from ' || current_setting('test.node');
END \$\$;
SELECT cachier_memoize('flight(int)', storage => 'redis');
CREATE FUNCTION flight_sleep(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO runs VALUES ('flight_sleep', current_setting('test.node'));
    PERFORM pg_sleep(1);
    RETURN 'flight_sleep ' || x || ' from ' || current_setting('test.node');
END \$\$;
SELECT cachier_memoize('flight_sleep(int)', storage => 'redis');
};
$node_a->safe_psql('postgres', $setup);
$node_b->safe_psql('postgres', $setup);

# ---------------------------------------------------------------- helpers

sub executions
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT executions()');
}

# "cachier:v3:<namespace>:<identity>:" of a key
sub function_prefix
{
	my ($key) = @_;
	return $key =~ /^(cachier:v3:(?:db\.\d+\.\d+|ns\.[A-Za-z0-9_.%-]+):[0-9a-f]{32}:)[0-9a-f]{64}$/
	  ? $1
	  : undef;
}

# The default namespace of a database: "db.<system identifier>.<OID>".
sub default_namespace
{
	my ($node, $db) = @_;
	return 'db.'
	  . $node->safe_psql($db,
		q{SELECT system_identifier || '.' || d.oid FROM pg_control_system(), pg_database d
		   WHERE d.datname = current_database()});
}

# Run SQL in database $db of $node with cachier.verbose on; (stdout, stderr).
sub verbose_in
{
	my ($node, $db, $sql) = @_;
	my ($stdout, $stderr);
	$node->psql(
		$db, "SET cachier.\"verbose\" = on;\n$sql",
		stdout => \$stdout,
		stderr => \$stderr,
		on_error_stop => 1);
	return ($stdout, $stderr);
}

# A value read from Redis, split into its fields.
sub parse_value
{
	my ($bytes) = @_;
	return undef if !defined $bytes || length($bytes) < 23;
	my ($magic, $flags, $created, $ms, $tlen) = unpack('a4 C q> d> n', $bytes);
	return {
		magic => $magic,
		flags => $flags,
		created => $created,
		compute_ms => $ms,
		type => substr($bytes, 23, $tlen),
		payload => substr($bytes, 23 + $tlen),
	};
}

# microseconds since 2000-01-01, PostgreSQL's timestamp epoch
sub pg_now_us
{
	return int((time() - 946684800) * 1_000_000);
}

# ------------------------------------------------------- 0. namespaces

my @keys;
my $value;
my ($out0, $err0);
my $ns_a = default_namespace($node_a, 'postgres');
my $ns_b = default_namespace($node_b, 'postgres');
isnt($ns_a, $ns_b, 'A and B have different default namespaces');

@keys = new_keys($redis,
	sub { $node_a->safe_psql('postgres', 'SELECT shared_cached(100)') });
my $hash100 = int_arg_hash(100);
my ($identity) =
  (scalar @keys == 1 ? $keys[0] : '') =~ /^cachier:v3:\Q$ns_a\E:([0-9a-f]{32}):$hash100$/;
ok(defined $identity,
	'default namespace: the key is <prefix>v3:db.<system identifier>.<database OID>:...')
  or diag "keys: @keys";

($out0, $err0) = verbose_in($node_b, 'postgres', 'SELECT shared_cached(100)');
is($out0, 'shared 100 from B', 'default namespace: B computes shared(100) itself');
like($err0, qr/cachier: miss: public\.shared\(100\)/, "... as a miss: A's entry is not B's");
ok($redis->command('EXISTS', "cachier:v3:$ns_b:$identity:" . int_arg_hash(100)),
	"... and stores it in B's namespace");

$node_a->safe_psql('postgres', 'CREATE DATABASE db2');
$node_a->safe_psql('db2', $setup);
isnt(default_namespace($node_a, 'db2'), $ns_a, 'db2 of A has its own default namespace');
($out0, $err0) = verbose_in($node_a, 'db2', 'SELECT shared_cached(100)');
like($err0, qr/cachier: miss: public\.shared\(100\)/,
	"default namespace: another database of A misses the entry of A's postgres");
is($node_a->safe_psql('db2', 'SELECT executions()'), 1, '... and computes it');

# only a superuser sets the namespace
$node_a->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
my ($rc0, $o0, $e0) = $node_a->psql('postgres',
	"SET cachier.redis_namespace = 'mine'", extra_params => [ '-U', 'plain' ]);
like($e0, qr/permission denied to set parameter "cachier\.redis_namespace"/,
	'a non-superuser cannot set cachier.redis_namespace');

# shared on purpose: A's db2 (ALTER DATABASE) and B (ALTER SYSTEM)
my $fleet = 'fleet: east*';
my $fleet_ns = 'ns.fleet%3A%20east%2A';
$node_a->safe_psql('postgres', "ALTER DATABASE db2 SET cachier.redis_namespace = '$fleet'");
$node_b->safe_psql('postgres', "ALTER SYSTEM SET cachier.redis_namespace = '$fleet'");
$node_b->reload;
@keys = new_keys($redis,
	sub { $node_b->safe_psql('postgres', 'SELECT shared_cached(101)') });
is_deeply(\@keys, [ "cachier:v3:$fleet_ns:$identity:" . int_arg_hash(101) ],
	"namespace '$fleet': the key holds it encoded, 'ns.fleet%3A%20east%2A'");
($out0, $err0) = verbose_in($node_a, 'db2', 'SELECT shared_cached(101)');
is($out0, 'shared 101 from B', "same namespace: A's db2 returns B's value");
like($err0, qr/cachier: hit: public\.shared\(101\)/, '... as a hit');
($out0, $err0) = verbose_in($node_a, 'postgres', 'SELECT shared_cached(101)');
like($err0, qr/cachier: miss: public\.shared\(101\)/,
	"... while A's postgres, in its default namespace, does not share it");
is( $node_a->safe_psql('db2', q{SELECT cachier_clear('shared')}),
	1, "cachier_clear in A's db2 removes the namespace's one key of shared");
is($redis->command('EXISTS', "cachier:v3:$ns_a:$identity:" . int_arg_hash(101)),
	1, "... and not the key of A's postgres");

# From here on A and B share one namespace; start from an empty Redis.
$node_a->safe_psql('postgres', "ALTER SYSTEM SET cachier.redis_namespace = '$fleet'");
$node_a->reload;
$redis->command('FLUSHALL');
$_->safe_psql('postgres', 'ALTER SEQUENCE calls RESTART') for ($node_a, $node_b);

# ------------------------------------------ 1. two clusters, one Redis

@keys = new_keys(
	$redis,
	sub {
		$value = $node_a->safe_psql('postgres', 'SELECT shared_cached(1)');
	});
is($value, 'shared 1 from A', 'A: shared_cached(1) is computed on A');
is(executions($node_a), 1, 'A: the function ran once');
is(scalar @keys, 1, 'A: the value went to Redis under one key');
my $shared_prefix = function_prefix($keys[0]);
ok(defined $shared_prefix,
	'the key is <prefix>v3:<namespace>:<32 hex identity>:<64 hex argument hash>')
  or diag "key: $keys[0]";
is($keys[0], $shared_prefix . int_arg_hash(1),
	'the argument part of the key is the SHA-256 of the keyed argument bytes');

my $fields = parse_value($redis->command('GET', $keys[0]));
is_deeply(
	[ @{$fields}{qw(magic flags type payload)} ],
	[ 'CCH1', 0, 'pg_catalog.text', 'shared 1 from A' ],
	'the value is "CCH1", flags 0, the qualified type name "pg_catalog.text" and the binary form of the text'
);
ok(abs(pg_now_us() - $fields->{created}) < 60_000_000,
	'the value holds created_at in microseconds since 2000 (big-endian)')
  or diag "created_at: $fields->{created}, now: " . pg_now_us();
ok($fields->{compute_ms} >= 0 && $fields->{compute_ms} < 60_000,
	'the value holds the compute time in milliseconds (float8, big-endian)')
  or diag "compute_ms: $fields->{compute_ms}";
my $pttl = $redis->command('PTTL', $keys[0]);
ok($pttl > 29 * 86_400_000 && $pttl <= 30 * 86_400_000,
	'without stale_after the key gets cachier.redis_max_ttl (30 days)')
  or diag "PTTL: $pttl";

my ($rc, $stdout, $stderr) = verbose_psql($node_b,
	q{SELECT shared_cached(1); SELECT cachier_wrap('shared', 1);});
is($stdout, "shared 1 from A\nshared 1 from A",
	"B: the wrapper and cachier_wrap return A's value");
is(scalar(() = $stderr =~ /cachier: hit: public\.shared\(1\)/g),
	2, 'B: both calls are hits');
unlike($stderr, qr/miss|WARNING|ERROR/, 'B: no miss, warning or error');
is(executions($node_b), 0, 'B: the function did not run');

# and the other way round
is($node_b->safe_psql('postgres', 'SELECT shared_cached(2)'),
	'shared 2 from B', 'B: shared_cached(2) is computed on B');
($rc, $stdout, $stderr) = verbose_psql($node_a, 'SELECT shared_cached(2)');
is($stdout, 'shared 2 from B', "A: shared_cached(2) returns B's value");
like($stderr, qr/cachier: hit: public\.shared\(2\)/, 'A: ... as a hit');
is(executions($node_a), 1, 'A: the function did not run again');
is_deeply([ $redis->keys("${shared_prefix}*") ],
	[ sort map { $shared_prefix . int_arg_hash($_) } 1, 2 ],
	'A and B use the same identity in their keys');

# storage 'both': stored in A's table and in Redis; B misses its table and
# hits Redis
($rc, $stdout, $stderr) = verbose_psql($node_a, 'SELECT layered_cached(1)');
is($stdout, 'layered 1 from A', "A: layered_cached(1) (storage 'both') is computed");
like(
	$stderr,
	qr/cachier: stored: public\.layered\(1\).*cachier: stored in Redis: public\.layered\(1\)/s,
	"A: storage 'both' stores in the table and in Redis");
is( $node_a->safe_psql(
		'postgres',
		q{SELECT count(*) FROM cachier_entries WHERE function = 'layered(int)'::regprocedure}
	),
	1,
	"A: the table has the entry");
my $base_b = executions($node_b);
($rc, $stdout, $stderr) = verbose_psql($node_b, 'SELECT layered_cached(1)');
is($stdout, 'layered 1 from A', "B: storage 'both' returns A's value");
like($stderr, qr/cachier: hit: public\.layered\(1\)/, 'B: ... as a hit');
unlike($stderr, qr/miss|WARNING|ERROR/, 'B: no miss, warning or error');
is(executions($node_b), $base_b, 'B: the function did not run');

# another definition is another key
$node_b->safe_psql(
	'postgres', q{
CREATE OR REPLACE FUNCTION shared(x int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('calls');  -- redefined
    RETURN 'shared ' || x || ' from ' || current_setting('test.node');
END $$;
});
($rc, $stdout, $stderr) = verbose_psql($node_b, 'SELECT shared_cached(1)');
is($stdout, 'shared 1 from B',
	'B: after a change of definition the key is computed again');
like($stderr, qr/cachier: miss: public\.shared\(1\)/, 'B: ... as a miss');
is($node_a->safe_psql('postgres', 'SELECT shared_cached(1)'),
	'shared 1 from A', "A: the old definition's value is still served on A");

# ---------------------------------------------- 2. a streaming hot standby

$node_a->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('S');
$standby->init_from_backup($node_a, 'backup', has_streaming => 1);
$standby->append_conf('postgresql.conf', "test.node = 'S'");
$standby->start;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');

# A and the standby inherited namespace 'fleet: east*' (ALTER SYSTEM): go
# back to the default one, which the standby shares with its primary.
my $default_ns = "SET cachier.redis_namespace = '';";
is(default_namespace($standby, 'postgres'), $ns_a,
	"the standby's default namespace is its primary's");
foreach my $fn ('stamp', 'stamp_both')
{
	@keys = new_keys($redis,
		sub { ($rc, $stdout, $stderr) = verbose_psql($standby, "$default_ns SELECT ${fn}_cached(1)"); });
	like($keys[0] // '', qr/^cachier:v3:\Q$ns_a\E:/,
		"standby: $fn(1) is stored in the primary's default namespace");
	is($rc, 0, "standby: a miss of $fn succeeds");
	like($stdout, qr/^1 on S at /, "standby: $fn(1) is computed on the standby");
	my $v1 = $stdout;
	like(
		$stderr,
		qr/cachier: miss: public\.$fn\(1\).*cachier: stored in Redis: public\.$fn\(1\)/s,
		"standby: $fn(1) is stored in Redis");
	unlike($stderr, qr/cachier: stored: |WARNING|ERROR/,
		"standby: $fn(1) is not stored in the table; no warning or error");

	($rc, $stdout, $stderr) = verbose_psql($standby, "$default_ns SELECT ${fn}_cached(1)");
	is($stdout, $v1, "standby: a second call of $fn(1) returns the same value");
	like($stderr, qr/cachier: hit: public\.$fn\(1\)/, 'standby: ... as a hit');

	($rc, $stdout, $stderr) = verbose_psql($node_a, "$default_ns SELECT ${fn}_cached(1)");
	is($stdout, $v1, "primary: $fn(1) returns the value computed on the standby");
	like($stderr, qr/cachier: hit: public\.$fn\(1\)/, 'primary: ... as a hit');

	my $v2 = $node_a->safe_psql('postgres', "$default_ns SELECT ${fn}_cached(2)");
	like($v2, qr/^2 on A at /, "primary: $fn(2) is computed on the primary");
	($rc, $stdout, $stderr) = verbose_psql($standby, "$default_ns SELECT ${fn}_cached(2)");
	is($stdout, $v2, "standby: $fn(2) returns the primary's value");
	like($stderr, qr/cachier: hit: public\.$fn\(2\)/, 'standby: ... as a hit');
}
$node_a->wait_for_catchup($standby, 'replay', $node_a->lsn('insert'));
is( $standby->safe_psql(
		'postgres',
		q{SELECT string_agg(function || arguments, ' ' ORDER BY 1)
		    FROM cachier_entries WHERE function::text LIKE 'stamp%'}),
	'stamp_both(integer)(2)',
	"only the primary's call of stamp_both(2) is in the table");
$standby->stop;

# ---------------------------------------------------------------- 3. TTL

my %ttl;
foreach my $fn ('ttl_short', 'ttl_next', 'ttl_never')
{
	@keys = new_keys($redis,
		sub { $node_a->safe_psql('postgres', "SELECT ${fn}_cached(1)"); });
	is(scalar @keys, 1, "$fn(1) is stored under one key");
	$ttl{$fn} = $redis->command('PTTL', $keys[0]);
}
ok($ttl{ttl_short} > 5000 && $ttl{ttl_short} <= 10000,
	"stale_after '10 seconds': the key expires in at most 10 s")
  or diag "PTTL: $ttl{ttl_short}";
ok($ttl{ttl_next} > 10000 && $ttl{ttl_next} <= 20000,
	"stale_after '10 seconds' with next_time: the key expires in at most 20 s")
  or diag "PTTL: $ttl{ttl_next}";
ok($ttl{ttl_never} > 29 * 86_400_000 && $ttl{ttl_never} <= 30 * 86_400_000,
	'no stale_after: the key expires after cachier.redis_max_ttl (30 days)')
  or diag "PTTL: $ttl{ttl_never}";
$node_a->safe_psql('postgres',
	q{ALTER SYSTEM SET cachier.redis_max_ttl = '5s'; SELECT pg_reload_conf();});
$node_a->poll_query_until('postgres', q{SELECT current_setting('cachier.redis_max_ttl') = '5s'})
  or die 'the reload did not take';
foreach my $fn ('ttl_short', 'ttl_never')
{
	@keys = new_keys($redis,
		sub { $node_a->safe_psql('postgres', "SELECT ${fn}_cached(2)"); });
	$ttl{$fn} = $redis->command('PTTL', $keys[0]);
	ok($ttl{$fn} > 0 && $ttl{$fn} <= 5000,
		"$fn: cachier.redis_max_ttl '5s' caps the TTL")
	  or diag "PTTL: $ttl{$fn}";
}
$node_a->safe_psql('postgres',
	q{ALTER SYSTEM RESET cachier.redis_max_ttl; SELECT pg_reload_conf();});
$node_a->poll_query_until('postgres', q{SELECT current_setting('cachier.redis_max_ttl') = '30d'})
  or die 'the reload did not take';
is_deeply([ $redis->keys('*:lock') ], [], 'no lock key is left behind');

# ---------------------------------------------------------- 4. cachier_clear

@keys = new_keys($redis,
	sub { $node_a->safe_psql('postgres', 'SELECT clear_f_cached(1)'); });
my $f_prefix = function_prefix($keys[0]);
@keys = new_keys($redis,
	sub { $node_a->safe_psql('postgres', 'SELECT clear_g_cached(1)'); });
my $g_prefix = function_prefix($keys[0]);
$node_a->safe_psql('postgres',
	'SELECT clear_f_cached(2), clear_f_cached(3), clear_g_cached(2)');
# keys of earlier sections that live seconds may expire meanwhile: count
# only those that outlive the test
sub lasting_keys
{
	return scalar grep {
		my $ttl = $redis->command('PTTL', $_);
		$ttl == -1 || $ttl > 600_000
	} $redis->keys('cachier:*');
}
my $total = lasting_keys();
is(scalar $redis->keys("${f_prefix}*"), 3, 'clear_f has three keys in Redis');
is(scalar $redis->keys("${g_prefix}*"), 2, 'clear_g has two keys in Redis');

is($node_a->safe_psql('postgres', q{SELECT cachier_clear('clear_f', 2)}),
	1, q{cachier_clear('clear_f', 2) removes one entry});
is_deeply(
	[ $redis->keys("${f_prefix}*") ],
	[ sort map { $f_prefix . int_arg_hash($_) } 1, 3 ],
	'... the key of clear_f(2)');
is($node_a->safe_psql('postgres', q{SELECT cachier_clear('clear_f', 2)}),
	0, q{cachier_clear('clear_f', 2) again removes nothing});
is($node_a->safe_psql('postgres', q{SELECT cachier_clear('clear_f')}),
	2, q{cachier_clear('clear_f') removes the other two});
is(scalar $redis->keys("${f_prefix}*"), 0, '... clear_f has no key left');
is(scalar $redis->keys("${g_prefix}*"), 2, "... clear_g's keys are still there");
is(lasting_keys(), $total - 3,
	'... the number of cachier keys dropped by three');

# cachier.redis_key_prefix, with glob characters that SCAN must not expand
my $odd_prefix = 'pre[fix]*:';
($rc, $stdout, $stderr) = verbose_psql($node_a,
	"SET cachier.redis_key_prefix = '$odd_prefix'; SELECT clear_g_cached(5);");
like($stderr, qr/cachier: stored in Redis: public\.clear_g\(5\)/,
	'another key prefix: the value is stored');
(my $g_id = $g_prefix) =~ s/^cachier://;
is_deeply([ $redis->keys("pre\\[fix\\]\\**") ], [ $odd_prefix . $g_id . int_arg_hash(5) ],
	'... under that prefix');
my $lookalike = "prefX:${g_id}not-a-cachier-key";
$redis->command('SET', $lookalike, 'x');
is( $node_a->safe_psql(
		'postgres',
		"SET cachier.redis_key_prefix = '$odd_prefix'; SELECT cachier_clear('clear_g');"),
	1,
	'... cachier_clear removes the key under that prefix');
is($redis->command('EXISTS', $lookalike), 1,
	'... and not a key that its prefix would match as a glob pattern');
is(scalar $redis->keys("${g_prefix}*"), 2, "... nor the keys under the default prefix");
$redis->command('DEL', $lookalike);

($rc, $stdout, $stderr) = verbose_psql($node_a, 'SELECT clear_f_cached(1), clear_g_cached(1)');
is($stdout, '10|10', 'after clearing, calls return the right values');
like($stderr, qr/cachier: miss: public\.clear_f\(1\)/, '... a cleared key is a miss');
like($stderr, qr/cachier: hit: public\.clear_g\(1\)/, '... the other function still hits');

# ---------------------------------------------------------- 5. URLs, passwords

my $secure = RedisServer->new('auth', password => 'sekret');

# Run calls of secret_cached in a new session with the given URL.
sub with_url
{
	my ($url, $sql) = @_;
	return verbose_psql($node_a, "SET cachier.redis_url = '$url';\n$sql");
}

($rc, $stdout, $stderr) = with_url($secure->url,
	'SELECT secret_cached(1); SELECT secret_cached(1);');
is($stdout, "secret 1\nsecret 1", 'password in the URL: the calls return the right values');
like(
	$stderr,
	qr/cachier: stored in Redis: public\.secret\(1\).*cachier: hit: public\.secret\(1\)/s,
	'password in the URL: the value is stored in Redis, then hit');
unlike($stderr, qr/WARNING|ERROR/, 'password in the URL: no warning or error');
is(scalar $secure->keys('cachier:*'), 1, 'the key is in the Redis with the password');

($rc, $stdout, $stderr) = with_url($secure->url(user => 'default'), 'SELECT secret_cached(1)');
is($stdout, 'secret 1', 'user and password in the URL: the right value');
like($stderr, qr/cachier: hit: public\.secret\(1\)/, '... a hit');
unlike($stderr, qr/WARNING|ERROR/, '... no warning or error');

($rc, $stdout, $stderr) = with_url($secure->url(password => 'wrong'),
	'SELECT secret_cached(2); SELECT secret_cached(2); SELECT secret_cached(1);');
is($rc, 0, 'wrong password: the calls succeed');
is($stdout, "secret 2\nsecret 2\nsecret 1", 'wrong password: the right values');
like(
	$stderr,
	qr/WARNING:  Redis at 127\.0\.0\.1:\d+ is unavailable\nDETAIL:  Authentication failed: /,
	'wrong password: a WARNING says that authentication failed');
is(scalar(() = $stderr =~ /WARNING/g), 1, 'wrong password: one WARNING for three calls');
unlike($stderr, qr/ERROR/, 'wrong password: no error');

($rc, $stdout, $stderr) = with_url($secure->url(password => 'wrong'),
	"SELECT secret_cached(2);\nSET cachier.redis_url = '${\ $secure->url}';\nSELECT secret_cached(2);"
);
is($stdout, "secret 2\nsecret 2", 'wrong password, then the right one: the right values');
like(
	$stderr,
	qr/WARNING:  Redis at \S+ is unavailable.*cachier: stored in Redis: public\.secret\(2\)/s,
	'... the new URL is used at once, not a second later');

($rc, $stdout, $stderr) = with_url($secure->url(password => undef), 'SELECT secret_cached(3)');
is($stdout, 'secret 3', 'no password: the right value');
like($stderr, qr/WARNING:  Redis at \S+ is unavailable/, 'no password: a WARNING');
unlike($stderr, qr/ERROR/, 'no password: no error');

($rc, $stdout, $stderr) = with_url($redis->url(db => 3),
	'SELECT secret_cached(4); SELECT secret_cached(4);');
is($stdout, "secret 4\nsecret 4", 'database number in the URL: the right values');
like($stderr, qr/cachier: stored in Redis: .*cachier: hit: /s, '... stored, then hit');
unlike($stderr, qr/WARNING|ERROR/, '... no warning or error');
$redis->command('SELECT', 3);
my @db3 = $redis->keys('cachier:*');
$redis->command('SELECT', 0);
is(scalar @db3, 1, '... the key is in database 3');

($rc, $stdout, $stderr) = with_url($redis->socket_path, 'SELECT shared_cached(1)');
is($stdout, 'shared 1 from A', 'unix socket path: the value stored over TCP');
like($stderr, qr/cachier: hit: public\.shared\(1\)/, '... is a hit');
unlike($stderr, qr/WARNING|ERROR/, '... no warning or error');
$secure->stop;

# ------------------------------------ 6. one computation per key, across servers

# 6a. A computes (held at the gate); B waits for it in Redis.
my $gate_session = close_gate($node_a);
my ($session_a, $pid_a) = session($node_a, 'SET cachier."verbose" = on');
my ($session_b, $pid_b) = session($node_b, 'SET cachier."verbose" = on');
start_fresh_statement($session_a, q{SELECT 'A got ' || flight_cached(1);});
ok( $node_a->poll_query_until(
		'postgres',
		"SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $pid_a AND locktype = 'advisory'"
		  . " AND objid = $gate AND objsubid = 1 AND NOT granted)"),
	'A is computing flight(1), held at the gate');
my @locks = grep { /:lock$/ } $redis->keys('cachier:*');
is(scalar @locks, 1, "A holds the key's lock in Redis");
start_fresh_statement($session_b, q{SELECT 'B got ' || flight_cached(1);});
ok( $node_b->poll_query_until(
		'postgres',
		"SELECT waits > 0 FROM cachier_stats WHERE function = 'flight(int)'::regprocedure"),
	'B waits for it (cachier_stats counts the wait)');
$gate_session->quit;
my ($line_a, $stderr_a) = finish_statement($session_a, qr/A got .*\n/);
my ($line_b, $stderr_b) = finish_statement($session_b, qr/B got .*\n/);
like($line_a, qr/^A got flight 1 from A$/m, 'A returns the value it computed');
like($line_b, qr/^B got flight 1 from A$/m, "B returns A's value");
like(
	$stderr_b,
	qr/cachier: hit after waiting: public\.flight\(1\)\nDETAIL:  Another server computed it\./,
	"B says 'hit after waiting'");
unlike($stderr_a . $stderr_b, qr/WARNING|ERROR/, 'no warning or error');

sub runs
{
	my ($fn) = @_;
	return join(
		',',
		map { $_->safe_psql('postgres', "SELECT count(*) FROM runs WHERE fn = '$fn'") }
		  ($node_a, $node_b));
}
is(runs('flight'), '1,0', 'flight(1) ran once in all, on A');

# 6b. both start at once (the function sleeps for a second)
start_fresh_statement($session_a,
	q{SELECT 'A got ' || flight_sleep_cached(1);});
start_fresh_statement($session_b,
	q{SELECT 'B got ' || flight_sleep_cached(1);});
($line_a, $stderr_a) = finish_statement($session_a, qr/A got .*\n/);
($line_b, $stderr_b) = finish_statement($session_b, qr/B got .*\n/);
like($line_a, qr/^A got flight_sleep 1 from [AB]$/m, 'at once: A returns a value');
my ($value_a) = $line_a =~ /A got (.*)/;
my ($value_b) = $line_b =~ /B got (.*)/;
is($value_b, $value_a, 'at once: A and B return the same value');
my $runs = runs('flight_sleep');
ok($runs eq '1,0' || $runs eq '0,1', 'at once: the function ran once in all')
  or diag "runs on A, B: $runs";
my $winner = $runs eq '1,0' ? 'A' : 'B';
is($value_a, "flight_sleep 1 from $winner",
	'at once: the value is the one computed where the function ran');
my $waiter_stderr = $winner eq 'A' ? $stderr_b : $stderr_a;
like(
	$waiter_stderr,
	qr/cachier: hit after waiting: public\.flight_sleep\(1\)/,
	"at once: the other one says 'hit after waiting'");
unlike($stderr_a . $stderr_b, qr/WARNING|ERROR/, 'at once: no warning or error');
is_deeply([ $redis->keys('*:lock') ], [], 'no lock key is left behind');

$session_a->quit;
$session_b->quit;
$node_a->stop;
$node_b->stop;
$redis->stop;
done_testing();
