# 051_fresh_reads.pl: what a computation reads is captured however it
# reads it (issue 10, item 1), and reads cachier cannot track make results
# unstorable (item 5).
#  1. Read paths: PL/pgSQL static and dynamic (EXECUTE) queries, a table
#     named by an argument, a FOR loop over a query, a BEGIN ATOMIC body, a
#     view, a view over a view, a plain function called inside, a
#     set-returning function in FROM, a LATERAL subquery, a SECURITY
#     DEFINER function, cachier_wrap instead of a wrapper, and nested cached
#     functions (the outer computation is served the inner entry, so it
#     must inherit the inner entry's dependencies, through the wrapper and
#     through cachier_wrap).  Each: an entry is served, the table under it
#     changes, the cached call equals the direct call.
#  2. One session keeps its plans and caches: it is served an entry, another
#     session changes the table, the same session's next call is new.
#  3. Temporary tables, foreign tables (postgres_fdw) and system catalogs:
#     the result is right after a change, nothing is stored, and a WARNING
#     comes once per session (the first session's and a second one's).
#  4. cachier.verbose says why an entry was not served ("invalidated"),
#     naming the changed table; cachier_stats counts invalidations;
#     cachier_dependencies lists captured relations (the base table of a
#     view, the root of a partition).
#  5. A function that reads nothing keeps its entry across changes.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node);
use FreshTest qw(outcome warm_until_hit);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('main');
$node->safe_psql('postgres', q{
CREATE EXTENSION cachier;
CREATE EXTENSION postgres_fdw;
CREATE TABLE t (k int, v int);
INSERT INTO t VALUES (1, 10), (2, 20);
CREATE FUNCTION bump_t() RETURNS void LANGUAGE sql AS 'INSERT INTO t VALUES (3, 30)';
});

# One read path: %p: name, setup (creates function FN and memoizes it;
# "FN" is replaced by the function's name), cached, direct (calls; "FN"
# likewise),
# write (the change).
my $n = 0;
sub read_path
{
	my (%p) = @_;
	$n++;
	my $f = "rp$n";
	my ($setup, $cached, $direct) = map { (my $s = $_) =~ s/FN/$f/g; $s } @p{qw(setup cached direct)};
	$node->safe_psql('postgres', $setup);
	my ($hit, $warm) = warm_until_hit($node, $cached);
	ok($hit, "$p{name}: an entry is served");
	my ($before) = outcome($node, $direct);
	is($warm, $before, "$p{name}: it is the direct result");
	$node->safe_psql('postgres', $p{write});
	my ($after) = outcome($node, $direct);
	isnt($after, $before, "$p{name}: the change changes the direct result");
	my ($got) = outcome($node, $cached);
	is($got, $after, "$p{name}: after the change, cached = direct");
}

my $agg = q{count(*) || ':' || coalesce(sum(v), 0)};
(my $agg_q = $agg) =~ s/'/''/g;

# ---------------------------------------------------------------- 1. read paths

$node->safe_psql('postgres', q{
CREATE TABLE s1 (k int, v int); INSERT INTO s1 VALUES (1, 1);
CREATE TABLE s2 (k int, v int); INSERT INTO s2 VALUES (1, 1);
CREATE TABLE s3 (k int, v int); INSERT INTO s3 VALUES (1, 1);
CREATE TABLE s4 (k int, v int); INSERT INTO s4 VALUES (1, 1);
CREATE TABLE s5 (k int, v int); INSERT INTO s5 VALUES (1, 1);
CREATE TABLE s6 (k int, v int); INSERT INTO s6 VALUES (1, 1);
CREATE TABLE s7 (k int, v int); INSERT INTO s7 VALUES (1, 1);
CREATE TABLE s8 (k int, v int); INSERT INTO s8 VALUES (1, 1);
CREATE TABLE s9 (k int, v int); INSERT INTO s9 VALUES (1, 1);
CREATE TABLE s10 (k int, v int); INSERT INTO s10 VALUES (1, 1);
CREATE TABLE s11 (k int, v int); INSERT INTO s11 VALUES (1, 1);
CREATE TABLE s12 (k int, v int); INSERT INTO s12 VALUES (1, 1);
CREATE VIEW s5_v AS SELECT k, v FROM s5 WHERE v > 0;
CREATE VIEW s6_v AS SELECT k, v FROM s6;
CREATE VIEW s6_vv AS SELECT k, v * 2 AS v FROM s6_v;
CREATE FUNCTION plain_s7() RETURNS bigint LANGUAGE plpgsql STABLE
    AS $$ BEGIN RETURN (SELECT sum(v) FROM s7); END $$;
CREATE FUNCTION rows_s8() RETURNS SETOF s8 LANGUAGE plpgsql STABLE
    AS $$ BEGIN RETURN QUERY SELECT * FROM s8; END $$;
});

read_path(name => 'PL/pgSQL static query', write => 'INSERT INTO s1 VALUES (2, 2)',
	setup => qq{CREATE FUNCTION FN() RETURNS text LANGUAGE plpgsql STABLE AS \$\$
DECLARE r text; BEGIN SELECT $agg INTO r FROM s1; RETURN r; END \$\$;
SELECT cachier_memoize('FN()');},
	cached => 'SELECT FN_cached()', direct => 'SELECT FN()');
read_path(name => 'PL/pgSQL EXECUTE', write => 'INSERT INTO s2 VALUES (2, 2)',
	setup => qq{CREATE FUNCTION FN() RETURNS text LANGUAGE plpgsql STABLE AS \$\$
DECLARE r text; BEGIN EXECUTE format('SELECT $agg_q FROM %I', 's' || 2) INTO r; RETURN r; END \$\$;
SELECT cachier_memoize('FN()');},
	cached => 'SELECT FN_cached()', direct => 'SELECT FN()');
read_path(name => 'PL/pgSQL EXECUTE of a table named by the argument',
	write => 'UPDATE s3 SET v = 5',
	setup => qq{CREATE FUNCTION FN(tab text) RETURNS text LANGUAGE plpgsql STABLE AS \$\$
DECLARE r text; BEGIN EXECUTE format('SELECT $agg_q FROM %I', tab) INTO r; RETURN r; END \$\$;
SELECT cachier_memoize('FN(text)');},
	cached => q{SELECT FN_cached('s3')}, direct => q{SELECT FN('s3')});
read_path(name => 'PL/pgSQL FOR loop over a query', write => 'DELETE FROM s4',
	setup => q{CREATE FUNCTION FN() RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE r record; total bigint := 0;
BEGIN FOR r IN SELECT v FROM s4 LOOP total := total + r.v + 1; END LOOP; RETURN total; END $$;
SELECT cachier_memoize('FN()');},
	cached => 'SELECT FN_cached()', direct => 'SELECT FN()');
read_path(name => 'a view', write => 'INSERT INTO s5 VALUES (2, 2)',
	setup => qq{CREATE FUNCTION FN() RETURNS text LANGUAGE sql STABLE AS \$\$ SELECT $agg FROM s5_v \$\$;
SELECT cachier_memoize('FN()');},
	cached => 'SELECT FN_cached()', direct => 'SELECT FN()');
read_path(name => 'a view over a view', write => 'UPDATE s6 SET v = 7',
	setup => qq{CREATE FUNCTION FN() RETURNS text LANGUAGE sql STABLE AS \$\$ SELECT $agg FROM s6_vv \$\$;
SELECT cachier_memoize('FN()');},
	cached => 'SELECT FN_cached()', direct => 'SELECT FN()');
read_path(name => 'a plain function called inside', write => 'UPDATE s7 SET v = 8',
	setup => q{CREATE FUNCTION FN() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT plain_s7() + 1 $$;
SELECT cachier_memoize('FN()');},
	cached => 'SELECT FN_cached()', direct => 'SELECT FN()');
read_path(name => 'a set-returning function in FROM', write => 'INSERT INTO s8 VALUES (2, 2)',
	setup => qq{CREATE FUNCTION FN() RETURNS text LANGUAGE sql STABLE AS \$\$ SELECT $agg FROM rows_s8() \$\$;
SELECT cachier_memoize('FN()');},
	cached => 'SELECT FN_cached()', direct => 'SELECT FN()');
read_path(name => 'a LATERAL subquery', write => 'INSERT INTO s9 VALUES (1, 9)',
	setup => q{CREATE FUNCTION FN() RETURNS bigint LANGUAGE sql STABLE AS $$
SELECT sum(x.s) FROM generate_series(1, 2) g, LATERAL (SELECT sum(v) AS s FROM s9 WHERE k = g) x $$;
SELECT cachier_memoize('FN()');},
	cached => 'SELECT FN_cached()', direct => 'SELECT FN()');
read_path(name => 'a BEGIN ATOMIC body', write => 'INSERT INTO s10 VALUES (2, 2)',
	setup => q{CREATE FUNCTION FN() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT sum(v) FROM s10; END;
SELECT cachier_memoize('FN()');},
	cached => 'SELECT FN_cached()', direct => 'SELECT FN()');
read_path(name => 'a SECURITY DEFINER function', write => 'INSERT INTO s11 VALUES (2, 2)',
	setup => qq{CREATE FUNCTION FN() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public AS \$\$ SELECT $agg FROM s11 \$\$;
SELECT cachier_memoize('FN()');},
	cached => 'SELECT FN_cached()', direct => 'SELECT FN()');
read_path(name => 'cachier_wrap without a wrapper', write => 'INSERT INTO s12 VALUES (2, 2)',
	setup => qq{CREATE FUNCTION FN(x int) RETURNS text LANGUAGE sql STABLE AS \$\$ SELECT x || '/' || $agg FROM s12 \$\$;},
	cached => q{SELECT cachier_wrap('FN', 1)}, direct => 'SELECT FN(1)');

# ---------------------------------------------------------------- nested cached functions

$node->safe_psql('postgres', q{
CREATE TABLE inner_t (v int); INSERT INTO inner_t VALUES (1);
CREATE TABLE outer_t (v int); INSERT INTO outer_t VALUES (100);
CREATE FUNCTION inner_f(x int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT x * 1000 + sum(v) FROM inner_t $$;
SELECT cachier_memoize('inner_f(int)');
CREATE FUNCTION outer_f(x int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT inner_f_cached(x) + (SELECT sum(v) FROM outer_t) $$;
SELECT cachier_memoize('outer_f(int)');
CREATE FUNCTION outer_direct(x int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT inner_f(x) + (SELECT sum(v) FROM outer_t) $$;
CREATE FUNCTION outer_wrap(x int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT cachier_wrap('inner_f', x)::bigint + 1 $$;
SELECT cachier_memoize('outer_wrap(int)');
CREATE FUNCTION deepest(x int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT outer_f_cached(x) * 10 $$;
SELECT cachier_memoize('deepest(int)');
});

for my $round (1 .. 3)
{
	# the inner entry is served first, so that the outer computations are
	# served it instead of reading inner_t
	my ($hit) = warm_until_hit($node, 'SELECT inner_f_cached(1)');
	ok($hit, "nested, round $round: the inner entry is served");
	ok((warm_until_hit($node, 'SELECT outer_f_cached(1)'))[0],
		"nested, round $round: the outer entry is served");
	ok((warm_until_hit($node, 'SELECT outer_wrap_cached(1)'))[0],
		"nested, round $round: the entry of the function calling cachier_wrap is served");
	ok((warm_until_hit($node, 'SELECT deepest_cached(1)'))[0],
		"nested, round $round: the entry two levels up is served");
	my $write = $round == 2 ? 'UPDATE outer_t SET v = v + 100' : 'UPDATE inner_t SET v = v + 1';
	$node->safe_psql('postgres', $write);
	my ($direct) = outcome($node, 'SELECT outer_direct(1)');
	is((outcome($node, 'SELECT outer_f_cached(1)'))[0], $direct,
		"nested, round $round ($write): outer cached = direct");
	is((outcome($node, 'SELECT outer_wrap_cached(1)'))[0],
		(outcome($node, 'SELECT inner_f(1) + 1'))[0],
		"nested, round $round ($write): the function calling cachier_wrap, cached = direct");
	is((outcome($node, 'SELECT deepest_cached(1)'))[0],
		(outcome($node, 'SELECT outer_direct(1) * 10'))[0],
		"nested, round $round ($write): two levels up, cached = direct");
}

# ---------------------------------------------------------------- 2. one long session

{
	$node->safe_psql('postgres', q{
CREATE TABLE long_t (v int); INSERT INTO long_t VALUES (1);
CREATE FUNCTION long_f() RETURNS bigint LANGUAGE plpgsql STABLE
    AS $$ BEGIN RETURN (SELECT sum(v) FROM long_t); END $$;
SELECT cachier_memoize('long_f()');});
	my $session = $node->background_psql('postgres');
	$session->query_safe('SET cachier."verbose" = on');
	my $served = 0;
	for (1 .. 5)
	{
		$session->query('SELECT long_f_cached()');
		if ($session->{stderr} =~ /cachier: hit/) { $served = 1; last; }
	}
	ok($served, 'one session: it is served the entry');
	for my $v (2 .. 4)
	{
		$node->safe_psql('postgres', "UPDATE long_t SET v = $v");
		is($session->query('SELECT long_f_cached()'), $v,
			"one session: after another session set $v, the same session's call gives $v");
		is($session->query('SELECT long_f_cached()'), $v,
			"one session: and again ($v)");
	}
	$session->quit;
}

# ---------------------------------------------------------------- 3. untrackable reads

# A new session runs $sql (calls of the function over an untrackable
# relation, changes between them); returns (stdout, the WARNINGs).
sub untrackable_session
{
	my ($sql) = @_;
	my ($stdout, $stderr) = ('', '');
	$node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr, on_error_stop => 1);
	my @warnings = $stderr =~ /^(?:psql:[^\n]*)?WARNING:\s+([^\n]*)/mg;
	return ($stdout, \@warnings, $stderr);
}

$node->safe_psql('postgres', qq{
CREATE TABLE remote_base (k int, v int); INSERT INTO remote_base VALUES (1, 10);
CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '${\ $node->host}', port '${\ $node->port}', dbname 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER loopback;
CREATE FOREIGN TABLE remote (k int, v int) SERVER loopback OPTIONS (table_name 'remote_base');
CREATE FUNCTION from_temp() RETURNS text LANGUAGE plpgsql STABLE
    AS \$\$ BEGIN RETURN (SELECT $agg FROM temp_t); END \$\$;
SELECT cachier_memoize('from_temp()');
CREATE FUNCTION from_foreign() RETURNS text LANGUAGE sql STABLE
    AS \$\$ SELECT $agg FROM remote \$\$;
SELECT cachier_memoize('from_foreign()');
CREATE FUNCTION from_catalog() RETURNS bigint LANGUAGE sql STABLE
    AS \$\$ SELECT count(*) FROM pg_class WHERE relname LIKE 'zz%' \$\$;
SELECT cachier_memoize('from_catalog()');
});

my %untrackable = (
	'temporary table' => {
		fn => 'from_temp()',
		prepare => 'CREATE TEMP TABLE temp_t (k int, v int); INSERT INTO temp_t VALUES (1, 1);',
		change => 'INSERT INTO temp_t VALUES (2, 2);',
		call => 'SELECT from_temp_cached() = from_temp();',
	},
	'foreign table' => {
		fn => 'from_foreign()',
		change => 'INSERT INTO remote_base VALUES (2, 2);',
		call => 'SELECT from_foreign_cached() = from_foreign();',
	},
	'system catalog' => {
		fn => 'from_catalog()',
		change => 'CREATE TABLE zz_<n> ();',
		call => 'SELECT from_catalog_cached() = from_catalog();',
	});
my $zz = 0;
for my $kind (sort keys %untrackable)
{
	my $u = $untrackable{$kind};
	for my $session (1, 2)
	{
		my $sql = $u->{prepare} // '';
		for (1 .. 3)
		{
			(my $change = $u->{change}) =~ s/<n>/$zz++/e;
			$sql .= "$u->{call}\n$u->{call}\n$change\n";
		}
		$sql .= $u->{call};
		my ($stdout, $warnings, $stderr) = untrackable_session($sql);
		is($stdout, join("\n", ('t') x 7), "$kind, session $session: every call equals the direct call")
		  or diag $stderr;
		is(scalar @$warnings, 1, "$kind, session $session: one WARNING in the session")
		  or diag $stderr;
		like($warnings->[0] // '', qr/not cached|not stored|cannot/i,
			"$kind, session $session: the WARNING says the result is not cached");
	}
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM cachier_entries WHERE function = '$u->{fn}'::regprocedure"),
		'0', "$kind: nothing is stored");
}

# ---------------------------------------------------------------- 4. visibility

$node->safe_psql('postgres', q{
CREATE TABLE vis_base (k int, v int); INSERT INTO vis_base VALUES (1, 1);
CREATE VIEW vis_view AS SELECT * FROM vis_base;
CREATE TABLE vis_part (k int, v int) PARTITION BY LIST (k);
CREATE TABLE vis_part_1 PARTITION OF vis_part FOR VALUES IN (1);
INSERT INTO vis_part VALUES (1, 1);
CREATE FUNCTION vis() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT (SELECT sum(v) FROM vis_view) + (SELECT sum(v) FROM vis_part_1) $$;
SELECT cachier_memoize('vis()');
});
ok((warm_until_hit($node, 'SELECT vis_cached()'))[0], 'visibility: an entry is served');
is( $node->safe_psql('postgres', q{
SELECT string_agg(relation::text || ' ' || how, ', ' ORDER BY relation::text)
  FROM cachier_dependencies WHERE function = 'vis()'::regprocedure
   AND relation IN ('vis_base'::regclass, 'vis_part'::regclass)}),
	'vis_base captured, vis_part captured',
	'cachier_dependencies: the base table of the view and the root of the partition are captured');
my $inval_before = $node->safe_psql('postgres',
	q{SELECT coalesce(sum(invalidations), 0) FROM cachier_stats WHERE function = 'vis()'::regprocedure});
$node->safe_psql('postgres', 'INSERT INTO vis_part_1 VALUES (1, 5)');
my ($rc, $stdout, $stderr) = CachierTest::verbose_psql($node, 'SELECT vis_cached();');
is($stdout, '7', 'visibility: after a change to the partition the call gives the new value');
like($stderr, qr/invalidated.*vis_part/is,
	'verbose: the entry was invalidated because vis_part changed');
unlike($stderr, qr/cachier: hit/, 'verbose: it was not a hit');
cmp_ok($node->safe_psql('postgres',
		q{SELECT coalesce(sum(invalidations), 0) FROM cachier_stats WHERE function = 'vis()'::regprocedure}),
	'>', $inval_before, 'cachier_stats counts the invalidation');

# ---------------------------------------------------------------- 5. pure functions

$node->safe_psql('postgres', q{
CREATE FUNCTION pure(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * x';
SELECT cachier_memoize('pure(int)');});
ok((warm_until_hit($node, 'SELECT pure_cached(12)'))[0], 'a function that reads nothing: its entry is served');
$node->safe_psql('postgres', 'INSERT INTO t VALUES (9, 9); TRUNCATE s1; DROP TABLE s2 CASCADE');
my ($out, $hit) = outcome($node, 'SELECT pure_cached(12)');
is($out, 'value: 144', 'a function that reads nothing: right value after unrelated changes');
ok($hit, 'a function that reads nothing: still served from its entry');

$node->stop;
done_testing();
