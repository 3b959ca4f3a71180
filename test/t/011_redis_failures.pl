# 011_redis_failures.pl: a Redis that fails never makes a cached call fail,
# hang or return a wrong value.
#  1. Redis killed: calls compute the right values at once, with one WARNING
#     per backend (at most one in 10 s), and storage 'both' still caches in
#     the table; Redis restarted on the same port: the same backend uses it
#     again by itself after about a second.
#  2. Redis slow (DEBUG SLEEP): with cachier.redis_timeout = 100 a call
#     returns the right value long before Redis answers, with the WARNING,
#     for a connected backend and for a new one; with a deadline longer
#     than the sleep, pg_cancel_backend ends the wait at once; once Redis
#     answers again the backends' replies are their own (no late reply is
#     mistaken for one).
#  3. Poisoned values written on the exact key (a generated corpus: every
#     truncation of a valid value, flipped bytes at every position, other
#     type names and forms, garbage, invalid UTF-8 and NUL in text, broken
#     numeric and array forms, a key of another Redis type): the call
#     returns the right value with a WARNING and the key holds a valid value
#     again; values whose bytes cannot be checked (time stamps, compute
#     times) still give the right value; flipped bytes in numeric and array
#     send forms never make the call fail; the backend never crashes.
#     Corrupt compute times (NaN, infinite, negative) do not reach the
#     statistics.  A key of another Redis type (a list) is a malformed value:
#     it is overwritten, and other keys are still served from Redis.
#  4. A session waiting for another server's Redis lock (wait_timeout = 1h)
#     is cancelled by pg_cancel_backend at once, and by statement_timeout.
#  5. A computation that fails (an error, a cancel) gives its Redis lock back
#     at once: the next caller computes and stores without waiting.
#  6. A value created in the future: less than 10 s ahead (clock skew
#     between servers) it is served; further ahead it is a miss plus a
#     WARNING and is overwritten.
#  7. No secret in any message: an unprivileged role whose cachier.redis_url
#     (set by a superuser with ALTER ROLE) has a wrong password, a user
#     name, an unreachable port or a malformed form gets the right values
#     and WARNINGs with an SQLSTATE that name host and port only (or say
#     the URL is invalid without showing it); neither its messages nor the
#     server log's WARNINGs show the password or the user name, and the
#     role cannot read the setting.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw($gate cachier_node counting_setup close_gate session
  start_fresh_statement int_arg_hash new_keys);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RedisServer;
use Test::More;
use Time::HiRes qw(time usleep);

my $redis = RedisServer->new('failures');

my $node = cachier_node(
	'main',
	extra => [ '--encoding=UTF8', '--locale=C' ],
	conf => "cachier.redis_url = '${\ $redis->url}'\n"
	  . "cachier.key_settings = ''  # so that int_arg_hash() computes the keys");

$node->safe_psql(
	'postgres', counting_setup() . qq{
CREATE FUNCTION f(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM nextval('calls');
    RETURN 'value of ' || x;
END \$\$;
SELECT cachier_memoize('f(int)', storage => 'redis');
CREATE FUNCTION fb(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM nextval('calls');
    RETURN 'both value of ' || x;
END \$\$;
SELECT cachier_memoize('fb(int)', storage => 'both');

-- the poison corpus: fast-path and receive-function types
CREATE FUNCTION pint(x int) RETURNS int LANGUAGE sql AS \$\$ SELECT x * 1000 + 7 \$\$;
SELECT cachier_memoize('pint(int)', storage => 'redis');
CREATE FUNCTION ptext(x int) RETURNS text LANGUAGE sql AS \$\$ SELECT 'välue of ' || x \$\$;
SELECT cachier_memoize('ptext(int)', storage => 'redis');
CREATE FUNCTION pnum(x int) RETURNS numeric LANGUAGE sql AS \$\$ SELECT x + 0.25 \$\$;
SELECT cachier_memoize('pnum(int)', storage => 'redis');
CREATE FUNCTION parr(x int) RETURNS int[] LANGUAGE sql AS \$\$ SELECT ARRAY[x, x + 1, x + 2] \$\$;
SELECT cachier_memoize('parr(int)', storage => 'redis');
CREATE FUNCTION pstat(x int) RETURNS int LANGUAGE sql AS \$\$ SELECT x \$\$;
SELECT cachier_memoize('pstat(int)', storage => 'redis');
CREATE FUNCTION pkind(x int) RETURNS int LANGUAGE sql AS \$\$ SELECT x \$\$;
SELECT cachier_memoize('pkind(int)', storage => 'redis');

-- failed computations: an error when test.fail is on, or a wait at the gate
CREATE FUNCTION fails(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    IF current_setting('test.fail', true) = 'on' THEN
        RAISE EXCEPTION 'boom';
    END IF;
    RETURN 'survived ' || x;
END \$\$;
SELECT cachier_memoize('fails(int)', storage => 'redis');
CREATE FUNCTION gated(x int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM pg_advisory_xact_lock_shared($gate);
    RETURN 'gated ' || x;
END \$\$;
SELECT cachier_memoize('gated(int)', storage => 'redis');
});

# ---------------------------------------------------------------- helpers

# Run SQL in a session; (stdout, stderr of this statement, seconds taken).
sub call
{
	my ($session, $sql) = @_;
	$session->{stderr} = '';
	my $start = time;
	my $out = $session->query($sql);
	return ($out, $session->{stderr}, time - $start);
}

# The Redis key of fn(x), from the key of one stored call.
my %prefix;

sub key_of
{
	my ($fn, $x) = @_;
	if (!$prefix{$fn})
	{
		my ($key) = new_keys($redis,
			sub { $node->safe_psql('postgres', "SELECT ${fn}_cached(0)") });
		($prefix{$fn}) = $key =~ /^(cachier:v3:[^:]+:[0-9a-f]{32}:)/
		  or die "no key for $fn";
	}
	return $prefix{$fn} . int_arg_hash($x);
}

# microseconds since 2000-01-01, PostgreSQL's timestamp epoch
sub pg_now_us
{
	return int((time() - 946684800) * 1_000_000);
}

# A value: "CCH1", flags, created_at, compute_ms, type name, payload.
sub make_value
{
	my (%v) = @_;
	return pack('a4 C q> d> n', 'CCH1', $v{flags} // 0,
		$v{created} // pg_now_us(),
		$v{compute_ms} // 1.5, length($v{type}))
	  . $v{type} . $v{payload};
}

# -------------------------------------------------------- 1. Redis killed

my ($s1) = session($node, 'SET cachier."verbose" = on');
my ($out, $err, $secs) = call($s1, 'SELECT f_cached(1)');
like($err, qr/cachier: stored in Redis: public\.f\(1\)/, 'before the outage: f(1) is stored');
($out, $err) = call($s1, 'SELECT f_cached(1)');
like($err, qr/cachier: hit: public\.f\(1\)/, 'before the outage: f(1) is a hit');

$redis->kill9;
my $slowest = 0;
my @outage_calls = (
	[ 'SELECT f_cached(2)', 'value of 2' ],
	[ 'SELECT f_cached(1)', 'value of 1' ],
	[ 'SELECT f_cached(2)', 'value of 2' ],
	[ 'SELECT pg_sleep(1.1)', '' ],    # past the second without Redis
	[ 'SELECT f_cached(3)', 'value of 3' ],
	[ 'SELECT f_cached(1)', 'value of 1' ]);
my @wrong;
my $stderr_all = '';
foreach my $c (@outage_calls)
{
	($out, $err, $secs) = call($s1, $c->[0]);
	push @wrong, "$c->[0]: $out" if $out ne $c->[1];
	$stderr_all .= $err;
	$slowest = $secs if $secs > $slowest && $c->[0] !~ /pg_sleep/;
}
is_deeply(\@wrong, [], 'Redis killed: a connected backend computes the right values');
like(
	$stderr_all,
	qr/WARNING:  Redis at 127\.0\.0\.1:${\ $redis->port} is unavailable\nDETAIL:  .*\nHINT:  Calls use the table or compute until it answers again\./,
	'Redis killed: a WARNING says that Redis is unavailable');
is(scalar(() = $stderr_all =~ /WARNING/g), 1,
	'Redis killed: one WARNING in the backend for six calls over more than a second');
unlike($stderr_all, qr/ERROR|FATAL/, 'Redis killed: no error');
ok($slowest < 5, 'Redis killed: no call hangs') or diag "slowest call: ${slowest}s";

my ($s2) = session($node, 'SET cachier."verbose" = on');
my $base = $node->safe_psql('postgres', 'SELECT executions()');
$stderr_all = '';
@wrong = ();
$slowest = 0;
foreach my $c (
	[ 'SELECT f_cached(4)', 'value of 4' ],
	[ 'SELECT fb_cached(1)', 'both value of 1' ],
	[ 'SELECT fb_cached(1)', 'both value of 1' ])
{
	($out, $err, $secs) = call($s2, $c->[0]);
	push @wrong, "$c->[0]: $out" if $out ne $c->[1];
	$stderr_all .= $err;
	$slowest = $secs if $secs > $slowest;
}
is_deeply(\@wrong, [], 'Redis killed: a new backend computes the right values');
is(scalar(() = $stderr_all =~ /WARNING:  Redis at \S+ is unavailable/g),
	1, 'Redis killed: the new backend gives its own WARNING, once');
like($stderr_all, qr/cachier: hit: public\.fb\(1\)/,
	"Redis killed: storage 'both' still caches in the table");
is($node->safe_psql('postgres', 'SELECT executions()') - $base,
	2, "Redis killed: f(4) and fb(1) ran once each");
ok($slowest < 5, 'Redis killed: no call of the new backend hangs')
  or diag "slowest call: ${slowest}s";

# Restarted on the same port: the first backend finds it again by itself.
$redis->start;
my $restarted = time;
my $back = 0;
$stderr_all = '';
while (time - $restarted < 10)
{
	($out, $err) = call($s1, 'SELECT f_cached(5)');
	$stderr_all .= $err;
	if ($err =~ /cachier: (stored in Redis|hit): public\.f\(5\)/)
	{
		$back = 1;
		last;
	}
	usleep(100_000);
}
ok($back, 'Redis restarted: the backend stores in Redis again by itself');
ok(time - $restarted < 5, 'Redis restarted: ... within seconds')
  or diag 'after ' . (time - $restarted) . 's';
($out, $err) = call($s1, 'SELECT f_cached(5)');
is($out, 'value of 5', 'Redis restarted: the right value');
like($err, qr/cachier: hit: public\.f\(5\)/, 'Redis restarted: ... is a hit');
unlike($stderr_all . $err, qr/WARNING|ERROR/,
	'Redis restarted: no further warning (at most one in 10 s) and no error');

# ---------------------------------------------------------- 2. Redis slow

my ($s3) = session($node,
	q{SET cachier."verbose" = on; SET cachier.redis_timeout = 100});
($out, $err) = call($s3, 'SELECT f_cached(10)');
like($err, qr/stored in Redis: public\.f\(10\)/, 'before the slowdown: f(10) is stored');

# connected, with a deadline longer than the sleep: for a cancel
my ($sc, $pidc) = session($node,
	q{SET cachier."verbose" = on; SET cachier.redis_timeout = 10000});
($out, $err) = call($sc, 'SELECT f_cached(10)');
like($err, qr/hit: public\.f\(10\)/, 'another session is connected');

my ($sleep_out, $sleep_err) = ('', '');
my $sleeper = IPC::Run::start(
	[ 'redis-cli', '-p', $redis->port, 'DEBUG', 'SLEEP', '3' ],
	'>', \$sleep_out, '2>', \$sleep_err);
my $slept = time;
usleep(10_000) until $redis->unresponsive || time - $slept > 2;
ok(time - $slept < 2, 'Redis sleeps (DEBUG SLEEP 3)');
($out, $err, $secs) = call($s3, 'SELECT f_cached(11)');
is($out, 'value of 11', 'Redis asleep: a connected backend returns the right value');
ok($secs < 1.5, 'Redis asleep: ... long before Redis answers')
  or diag "took ${secs}s";
like(
	$err,
	qr/WARNING:  Redis at \S+ is unavailable\nDETAIL:  It did not answer within cachier\.redis_timeout\./,
	'Redis asleep: ... with a WARNING that Redis did not answer in time');
($out, $err, $secs) = call($s3, 'SELECT f_cached(10)');
is($out, 'value of 10', 'Redis asleep: the next call returns the right value');
ok($secs < 1, '... without waiting for Redis again') or diag "took ${secs}s";
unlike($err, qr/WARNING/, '... and without another warning');

my ($s4) = session($node, 'SET cachier.redis_timeout = 100');
($out, $err, $secs) = call($s4, 'SELECT f_cached(12)');
is($out, 'value of 12', 'Redis asleep: a new backend returns the right value');
ok($secs < 1.5, '... long before Redis answers') or diag "took ${secs}s";
like($err, qr/WARNING:  Redis at \S+ is unavailable/, '... with a WARNING');

# redis_timeout = 10s: the call waits for Redis, and a cancel ends the wait
start_fresh_statement($sc, 'SELECT f_cached(14);');
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event_type = 'Extension' AND state = 'active'"
		  . " FROM pg_stat_activity WHERE pid = $pidc"),
	'Redis asleep, redis_timeout = 10s: a call waits for Redis');
my $cancelled = time;
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pidc)");
ok( pump_until(
		$sc->{run}, $sc->{timeout},
		\$sc->{stderr}, qr/canceling statement due to user request/),
	'... pg_cancel_backend ends the wait: "canceling statement due to user request"');
ok(time - $cancelled < 1, '... at once') or diag 'after ' . (time - $cancelled) . 's';
ok(time - $slept < 3, 'those calls were made while Redis slept');

$sleeper->finish;
is($sleep_out, "OK\n", 'DEBUG SLEEP ended');
($out, $err) = call($s3, 'SELECT pg_sleep(1.1); SELECT f_cached(10); SELECT f_cached(13)');
is($out, "\nvalue of 10\nvalue of 13",
	'Redis awake: the backend reads its own replies (right values)');
like($err, qr/cachier: hit: public\.f\(10\)/, 'Redis awake: f(10) is a hit again');
like($err, qr/cachier: stored in Redis: public\.f\(13\)/, 'Redis awake: f(13) is stored');
unlike($err, qr/WARNING|ERROR/, 'Redis awake: no warning or error');
($out, $err) = call($sc, 'SELECT f_cached(14)');
is($out, 'value of 14', 'Redis awake: the cancelled session returns the right value');
like($err, qr/cachier: stored in Redis: public\.f\(14\)/, '... and stores it');
unlike($err, qr/WARNING|ERROR/, '... no warning or error');
$sc->quit;
$_->quit for ($s1, $s2, $s3, $s4);

# --------------------------------------------------------- 3. poisoned values

my ($sp) = session($node, 'SET cachier."verbose" = on');

my $warning =
  qr/WARNING:  (the value of Redis key "[^"]*" is malformed; recomputing it|(cachier: )?the cached value of \S+ could not be read; recomputing it)/;

# Each case writes bytes on the key of fn(1) and calls fn_cached(1).
#  warn:    the right value, a WARNING, and the key holds a valid value again
#  correct: the right value (the bytes are a valid value with other
#           metadata: time stamps, compute times)
#  survive: any value (flipped bytes in a numeric or array send form may
#           make another valid value: the format has no checksum)
# Always the statement must succeed and the backend survive.
my %failures;
my %counts;
my %expected;    # what fn_cached(1) returns

sub poison
{
	my ($fn, $category, $expect, $bytes, $what) = @_;
	my $key = key_of($fn, 1);
	my $valid = $redis->command('GET', $key);
	my $expected = $expected{$fn};
	my $reply = $redis->command('SET', $key, $bytes);
	die "SET failed" unless defined $reply && $reply eq 'OK';
	my ($result, $stderr) = call($sp, "SELECT ${fn}_cached(1)");
	my @why;
	push @why, "returned '$result'" if $result ne $expected && $expect ne 'survive';
	push @why, 'failed or lost the connection'
	  if $stderr =~ /ERROR|FATAL|PANIC|server closed|connection to server/;
	if ($expect eq 'warn')
	{
		push @why, 'no WARNING' unless $stderr =~ $warning;
		my $now = $redis->command('GET', $key);
		push @why, 'the key does not hold a valid value again'
		  unless defined $now && ref $now eq '' && length($now) == length($valid)
		  && substr($now, 0, 5) eq substr($valid, 0, 5)
		  && substr($now, 21) eq substr($valid, 21);
	}
	$counts{"$fn $category"}++;
	push @{ $failures{"$fn $category"} }, "$what: " . join(', ', @why) if @why;
	# a valid value for the next case
	$redis->command('SET', $key, $valid);
}

# the valid value of fn(1), and what the call returns
my %valid;
foreach my $fn (qw(pint ptext pnum parr pstat pkind))
{
	$node->safe_psql('postgres', "SELECT cachier_clear('$fn')");
	$expected{$fn} = $node->safe_psql('postgres', "SELECT ${fn}_cached(1)");
	$valid{$fn} = $redis->command('GET', key_of($fn, 1));
}
is($expected{ptext}, 'välue of 1', 'ptext(1) is stored');
is( substr($valid{pint}, 21),
	pack('n', 7) . 'integer' . pack('l>', 1007),
	'the valid value of pint(1): type "integer" and the int4 send form');

srand(20240611);
foreach my $fn (qw(pint ptext pnum parr))
{
	my $v = $valid{$fn};
	my $tlen = unpack('n', substr($v, 21, 2));
	my $header = 23 + $tlen;    # through the type name

	# every truncation (for text, a shorter payload is a valid shorter text:
	# only the header, and a cut through a two-byte character)
	my $last = $fn eq 'ptext' ? $header - 1 : length($v) - 1;
	poison($fn, 'truncated', 'warn', substr($v, 0, $_), "first $_ bytes") for 0 .. $last;
	poison($fn, 'truncated', 'warn', substr($v, 0, $header + 2),
		'cut inside a two-byte character')
	  if $fn eq 'ptext';

	# flipped bytes at every position
	for my $pos (0 .. length($v) - 1)
	{
		for my $mask (0x01, 0x80, 0xFF)
		{
			my $bytes = $v;
			substr($bytes, $pos, 1) = chr(ord(substr($v, $pos, 1)) ^ $mask);
			my $what = sprintf('byte %d ^ 0x%02x', $pos, $mask);
			if ($pos >= 5 && $pos < 21)
			{
				# created_at and compute_ms: any bytes are a valid value,
				# except a created_at more than 10 s in the future
				my $ahead = unpack('q>', substr($bytes, 5, 8)) - pg_now_us();
				my $expect =
				    $ahead > 15_000_000 ? 'warn'
				  : $ahead < 5_000_000 ? 'correct'
				  :                      'survive';
				poison($fn, 'flipped', $expect, $bytes, $what);
			}
			elsif ($pos < $header)
			{
				poison($fn, 'flipped', 'warn', $bytes, $what);
			}
			elsif ($fn eq 'ptext' && $mask != 0x01)
			{
				# the payload: a high bit flipped in UTF-8 text is invalid
				poison($fn, 'flipped', 'warn', $bytes, $what);
			}
			elsif ($fn eq 'pnum' || $fn eq 'parr')
			{
				# the payload of a receive function: it must not crash
				poison($fn, 'flipped payload', 'survive', $bytes, $what);
			}
		}
	}

	# another type, another form, trailing bytes, garbage
	my $payload = substr($v, $header);
	my $type = substr($v, 23, $tlen);
	poison($fn, 'type', 'warn', make_value(type => $_, payload => $payload), "type '$_'")
	  for grep { $_ ne $type } ('integer', 'bigint', 'pg_catalog.int4', 'public.integer',
		'text', 'pg_catalog.text', 'integer[]', 'numeric', 'pg_catalog.numeric', '',
		'x' x 300, $type . ' ', uc $type);
	poison($fn, 'type', 'warn', make_value(flags => 2, type => $type,
			payload => $expected{$fn}), 'flags: text form');
	poison($fn, 'type', 'warn', make_value(flags => 1, type => $type,
			payload => $payload), 'flags: NULL with bytes');
	poison($fn, 'type', 'warn', make_value(flags => 4, type => $type,
			payload => $payload), 'flags: unknown bit');
	poison($fn, 'type', 'warn', substr($v, 0, 21) . pack('n', 0xFFFF) . substr($v, 23),
		'type name length 65535');
	poison($fn, 'garbage', 'warn', $v . "\0", 'a trailing NUL byte');
	poison($fn, 'garbage', 'warn', $v . 'x', 'a trailing byte') unless $fn eq 'ptext';
	poison($fn, 'garbage', 'warn', 'CCH2' . substr($v, 4), 'magic CCH2');
	poison($fn, 'garbage', 'warn', '', 'empty');
	poison($fn, 'garbage', 'warn', 'x' x 1_000_000, '1 MB of x');
	for my $i (1 .. 10)
	{
		my $garbage = join('', map { chr(int(rand(256))) } 1 .. int(rand(64)));
		poison($fn, 'garbage', 'warn', $garbage, 'random bytes ' . unpack('H*', $garbage));
		poison($fn, 'garbage', 'warn', 'CCH1' . $garbage,
			'CCH1 and random bytes ' . unpack('H*', $garbage));
	}
}

# the header and type name of a valid value
sub head
{
	my ($fn) = @_;
	return substr($valid{$fn}, 0, 23 + unpack('n', substr($valid{$fn}, 21, 2)));
}

# text: invalid UTF-8 and NUL
my $text_head = head('ptext');
foreach my $bad ("\xff", "v\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	"v\x00alue", "value\x00", "\x00", "\xc3\x28", "\xe2\x82")
{
	poison('ptext', 'encoding', 'warn', $text_head . $bad,
		'payload ' . unpack('H*', $bad));
}

# numeric and array send forms that their receive functions reject
my $num_head = head('pnum');
foreach my $bad (
	[ pack('n4', 1, 0, 0x1234, 2) . pack('n', 1),        'invalid sign' ],
	[ pack('n4', 1, 0, 0, 2) . pack('n', 10000),         'digit 10000' ],
	[ pack('n4', 0xFFFF, 0, 0, 2),                       'ndigits 65535' ],
	[ pack('n4', 1, 0, 0, 0x4000) . pack('n', 1),        'dscale 16384' ])
{
	poison('pnum', 'receive', 'warn', $num_head . $bad->[0], $bad->[1]);
}
my $arr_head = head('parr');
my $elems = join('', map { pack('l> l>', 4, $_) } 1 .. 3);
foreach my $bad (
	[ pack('l> l> L> l> l>', 1, 0, 25, 3, 1) . $elems,  'element type text' ],
	[ pack('l> l> L> l> l>', 7, 0, 23, 3, 1) . $elems,  '7 dimensions' ],
	[ pack('l> l> L> l> l>', -1, 0, 23, 3, 1) . $elems, '-1 dimensions' ],
	[ pack('l> l> L> l> l>', 1, 0, 23, -3, 1) . $elems, 'dimension -3' ],
	[ pack('l> l> L> l> l>', 1, 0, 23, 0x7FFFFFFF, 1) . $elems, 'dimension 2^31-1' ],
	[ pack('l> l> L> l> l>', 1, 0, 23, 3, 0x7FFFFFFF) . $elems, 'lower bound 2^31-1' ],
	[ pack('l> l> L> l> l>', 1, 0, 23, 3, 1) . pack('l> l>', 8, 1) . $elems, 'element of 8 bytes' ],
	[ pack('l> l> L> l> l>', 1, 0, 23, 3, 1) . pack('l>', 0x7FFFFFFF), 'element of 2^31-1 bytes' ])
{
	poison('parr', 'receive', 'warn', $arr_head . $bad->[0], $bad->[1]);
}

foreach my $case (sort keys %counts)
{
	is_deeply($failures{$case} // [], [], "poisoned $case values ($counts{$case} cases)");
}
my $total = 0;
$total += $_ for values %counts;
cmp_ok($total, '>=', 300, "the corpus has $total cases");

# corrupt compute times: the right value, and no damage to the statistics
$node->safe_psql('postgres', 'SELECT cachier_stats_reset()');
my $pstat_type = substr($valid{pstat}, 23, unpack('n', substr($valid{pstat}, 21, 2)));
foreach my $ms ('NaN', 'Inf', '-Inf', -1e300, 1e308)
{
	poison('pstat', 'compute_ms', 'correct',
		make_value(type => $pstat_type, payload => pack('l>', 1), compute_ms => $ms),
		"compute_ms $ms");
}
is_deeply($failures{'pstat compute_ms'} // [], [],
	'values with compute_ms NaN, infinite, negative: the right value');
is( $node->safe_psql(
		'postgres',
		q{SELECT saved_ms >= 0 AND saved_ms < 'Infinity' FROM cachier_stats
		   WHERE function = 'pstat(int)'::regprocedure}),
	't',
	'... and saved_ms stays a finite, non-negative number')
  or diag $node->safe_psql('postgres', 'SELECT * FROM cachier_stats');

# a key of another Redis type
my $kind_key = key_of('pkind', 1);
$redis->command('DEL', $kind_key);
$redis->command('RPUSH', $kind_key, 'x', 'y');
my ($sk) = session($node, 'SET cachier."verbose" = on');
($out, $err) = call($sk, 'SELECT pkind_cached(1)');
is($out, '1', 'a key holding a list: the right value');
like($err, qr/WARNING:  the value of Redis key "[^"]*" is malformed/, '... with a WARNING');
is($redis->command('TYPE', $kind_key), 'string',
	'... and the key holds a value again');
($out, $err) = call($sk, 'SELECT pint_cached(1)');
like($err, qr/cachier: hit: public\.pint\(1\)/,
	'... and other keys are still served from Redis');
$sk->quit;
$redis->command('DEL', $kind_key);

($out, $err) = call($sp, 'SELECT 1');
is($out, '1', 'the poisoned session is alive');
$sp->quit;
ok(!$node->log_contains(qr/terminated by signal|server process .* was terminated/),
	'no backend crashed');

# --------------------------------- 4. cancel a wait for another server's lock

my $f20 = key_of('f', 20);
$redis->command('SET', "$f20:lock", 'another server', 'PX', 60000);
my ($s5, $pid5) = session($node,
	q{SET cachier."verbose" = on; SET cachier.wait_timeout = '1h'});
start_fresh_statement($s5, 'SELECT f_cached(20);');
ok( $node->poll_query_until(
		'postgres',
		"SELECT waits > 0 FROM cachier_stats WHERE function = 'f(int)'::regprocedure"),
	"a session waits for another server's lock of f(20)");
$cancelled = time;
is($node->safe_psql('postgres', "SELECT pg_cancel_backend($pid5)"),
	't', 'the waiting session is cancelled');
ok( pump_until(
		$s5->{run}, $s5->{timeout},
		\$s5->{stderr}, qr/canceling statement due to user request/),
	'the wait ends with "canceling statement due to user request"');
ok(time - $cancelled < 5, '... at once') or diag 'after ' . (time - $cancelled) . 's';
# statement_timeout ends such a wait too
($out, $err, $secs) = call($s5,
	"SET statement_timeout = '300ms'; SELECT f_cached(20); RESET statement_timeout;");
like($err, qr/ERROR:  canceling statement due to statement timeout/,
	'statement_timeout ends a wait for the lock');
ok($secs < 5, '... in time') or diag "took ${secs}s";
$redis->command('DEL', "$f20:lock");
($out, $err) = call($s5, 'SELECT f_cached(20)');
is($out, 'value of 20', 'the cancelled session works: the right value');
like($err, qr/cachier: stored in Redis: public\.f\(20\)/, '... stored in Redis');
unlike($err, qr/WARNING|ERROR/, '... no warning or error');
$s5->quit;

# ------------------------------------ 5. a failed computation frees the lock

my ($s6, $pid6) = session($node, q{SET test.fail = 'on'});
($out, $err) = call($s6, 'SELECT fails_cached(1)');
like($err, qr/ERROR:  boom/, 'a computation fails with an error');
is($redis->command('EXISTS', key_of('fails', 1) . ':lock'),
	0, '... and leaves no lock in Redis');
my ($s7) = session($node,
	q{SET cachier."verbose" = on; SET cachier.wait_timeout = '2s'});
($out, $err, $secs) = call($s7, 'SELECT fails_cached(1)');
is($out, 'survived 1', 'the next call returns the right value');
ok($secs < 1.5, '... without waiting') or diag "took ${secs}s";
like($err, qr/cachier: stored in Redis: public\.fails\(1\)/, '... and stores it');

my $gated_lock = key_of('gated', 1) . ':lock';
my $gate_session = close_gate($node);
start_fresh_statement($s6, 'SELECT gated_cached(1);');
ok( $node->poll_query_until(
		'postgres',
		"SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $pid6 AND locktype = 'advisory'"
		  . " AND objid = $gate AND objsubid = 1 AND NOT granted)"),
	'a session computes gated(1), held at the gate');
is($redis->command('EXISTS', $gated_lock), 1, '... holding its lock in Redis');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid6)");
ok( pump_until(
		$s6->{run}, $s6->{timeout},
		\$s6->{stderr}, qr/canceling statement due to user request/),
	'the computation is cancelled');
is($redis->command('EXISTS', $gated_lock), 0, '... and leaves no lock in Redis');
$gate_session->quit;
($out, $err, $secs) = call($s7, 'SELECT gated_cached(1)');
is($out, 'gated 1', 'the next call returns the right value');
ok($secs < 1.5, '... without waiting') or diag "took ${secs}s";
like($err, qr/cachier: stored in Redis: public\.gated\(1\)/, '... and stores it');
$_->quit for ($s6, $s7);

# ----------------------------------------- 6. a value created in the future

my $future_key = key_of('pint', 2);
my ($s8) = session($node, 'SET cachier."verbose" = on');
$redis->command('SET', $future_key,
	make_value(type => 'integer', payload => pack('l>', 4242), created => pg_now_us() + 3_000_000));
($out, $err) = call($s8, 'SELECT pint_cached(2)');
is($out, '4242', 'created 3 s in the future (clock skew): the value is served');
like($err, qr/cachier: hit: public\.pint\(2\)/, '... as a hit');
unlike($err, qr/WARNING/, '... without a warning');

$redis->command('SET', $future_key,
	make_value(type => 'integer', payload => pack('l>', 4242), created => pg_now_us() + 3_600_000_000));
($out, $err) = call($s8, 'SELECT pint_cached(2)');
is($out, '2007', 'created an hour in the future: the value is not served, the call computes');
like(
	$err,
	qr/WARNING:  the value of Redis key "\Q$future_key\E" is malformed; recomputing it\nDETAIL:  It was created in the future\./,
	'... with a WARNING that it was created in the future');
my $rewritten = $redis->command('GET', $future_key);
ok(abs(unpack('q>', substr($rewritten, 5, 8)) - pg_now_us()) < 60_000_000
	  && substr($rewritten, -4) eq pack('l>', 2007),
	'... and the key holds the recomputed value, created now');
$s8->quit;

# ------------------------------------------- 7. no secret in any message

my $locked = RedisServer->new('locked', password => 'C0rrect-Pw-0');
my $lport = $locked->port;
my $closed_port = PostgreSQL::Test::Cluster::get_free_port();
$node->safe_psql('postgres',
	'CREATE ROLE tenant LOGIN; GRANT USAGE ON SEQUENCE calls TO tenant');
my $unavailable = sub {
	my ($port) = @_;
	return qr/WARNING:  08001: Redis at 127\.0\.0\.1:$port is unavailable\nDETAIL:  .+\nHINT:  Calls use the table or compute until it answers again\./;
};
my $malformed =
  qr/WARNING:  22023: cachier\.redis_url is not a valid Redis address\nDETAIL:  It must be redis:\/\/\[user:password\@\]host\[:port\]\[\/db\] or an absolute unix socket path; it is not shown because it may contain a password\.\nHINT:  /;
my @url_cases = (
	[ 'wrong password', "redis://:Wr0ng-Pw-1\@127.0.0.1:$lport", $unavailable->($lport), 'Wr0ng-Pw-1' ],
	[ 'user name and wrong password', "redis://alice:Wr0ng-Pw-2\@127.0.0.1:$lport",
		$unavailable->($lport), 'Wr0ng-Pw-2', 'alice' ],
	[ 'unreachable port', "redis://:Unr3ach-Pw-3\@127.0.0.1:$closed_port/2",
		$unavailable->($closed_port), 'Unr3ach-Pw-3' ],
	[ 'no scheme', "//:M4lformed-Pw-4\@127.0.0.1:$lport", $malformed, 'M4lformed-Pw-4' ],
	[ 'no @ after the password', "redis://:M4lformed-Pw-5 127.0.0.1:$lport", $malformed, 'M4lformed-Pw-5' ],
	[ 'a port that is not a number', "redis://:M4lformed-Pw-6\@127.0.0.1:63x9", $malformed, 'M4lformed-Pw-6' ],
	[ 'another scheme', "rediss://bob:M4lformed-Pw-7\@127.0.0.1:$lport", $malformed, 'M4lformed-Pw-7', 'bob' ]);
my $log_offset = -s $node->logfile;
my $n = 40;
foreach my $case (@url_cases)
{
	my ($what, $url, $expected, @secrets) = @$case;
	$node->safe_psql('postgres', "ALTER ROLE tenant SET cachier.redis_url = '$url'");
	$n++;
	my ($stdout, $stderr);
	$node->psql(
		'postgres', "\\set VERBOSITY verbose\nSELECT f_cached($n);\nSELECT f_cached($n);",
		stdout => \$stdout,
		stderr => \$stderr,
		extra_params => [ '-U', 'tenant' ]);
	is($stdout, "value of $n\nvalue of $n", "$what: an unprivileged role gets the right values");
	like($stderr, $expected, "$what: ... and a WARNING with an SQLSTATE naming host and port only");
	is(scalar(() = $stderr =~ /WARNING/g), 1, "$what: ... once");
	unlike($stderr, qr/\Q$_\E/, "$what: ... that does not show '$_'") for @secrets;
}
my ($rc, $stdout, $stderr) = $node->psql('postgres', 'SHOW cachier.redis_url',
	extra_params => [ '-U', 'tenant' ]);
like($stderr, qr/ERROR:  must be superuser or have privileges of pg_read_all_settings/,
	'the unprivileged role cannot read cachier.redis_url');
my @log_messages = grep { /WARNING|DETAIL|HINT/ }
  split /\n/, slurp_file($node->logfile, $log_offset);
ok(scalar(grep { /unavailable|not a valid Redis address/ } @log_messages) >= scalar @url_cases,
	"the server log has the WARNINGs too");
is_deeply([ grep { /Pw-\d|alice|bob/ } @log_messages ], [],
	'... and none of them shows a password or a user name');
$node->safe_psql('postgres', 'ALTER ROLE tenant RESET cachier.redis_url');
$locked->stop;

$node->stop;
$redis->stop;
done_testing();
