# 002_dump_restore.pl: a database that uses cachier survives pg_dump and a
# restore into a new database, with pg_restore (custom format) and with
# psql (plain format).  After the restore:
#  - every function's options are kept, four functions with wrappers in
#    schemas pg_dump dumps (a built-in's wrapper cannot go to pg_catalog,
#    nor any wrapper to pg_temp: both are refused);
#  - the memoized wrapper exists and caches again (the second call does not
#    execute the function);
#  - the per-function options (cachier.functions, a configuration table,
#    keyed by ids that cachier.function_ids, dumped with it, maps to the
#    functions' identities) are kept, for the memoized and for the
#    only-configured function, and they name the restored functions;
#  - the wrapper still depends on the wrapped function: DROP FUNCTION of
#    the wrapped function fails without CASCADE, and with CASCADE drops the
#    wrapper and forgets the options and entries.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node counting_setup);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('main');

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', counting_setup() . q{
CREATE FUNCTION square(x int) RETURNS int LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); RETURN x * x; END $$;
SELECT cachier_memoize('square(int)', stale_after => '1 day',
                       wait_timeout => '5s', allow_null => true,
                       entry_size_limit => '1MB');

CREATE FUNCTION cube(x int) RETURNS int LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); RETURN x * x * x; END $$;
SELECT cachier_configure('cube(int)', stale_after => '2 hours', per_role => true);
-- the options of 0.5, a relation among them, are kept too (and a later
-- call that changes one keeps the others)
CREATE TABLE orders (id int);
SELECT cachier_configure('cube(int)', track_reads => false, depends_on => '{orders}',
                         on_change => 'refresh', key_settings => '{timezone, app.tenant}');

-- a function in another schema, and a built-in, memoized with wrappers in
-- a schema of the user's own
CREATE SCHEMA app;
CREATE FUNCTION app.triple(x int) RETURNS int LANGUAGE sql AS 'SELECT 3 * x';
SELECT cachier_memoize('app.triple(int)', next_time => true, cleanup_stale => true,
                       cleanup_interval => '1 hour', max_stale_age => '3 hours',
                       stale_after => '10 minutes');
SELECT cachier_memoize('pg_catalog.upper(text)', name => 'app.upper_cached',
                       stale_after => '5 minutes', entry_size_limit => '2KB');

-- some cached values in the source database
SELECT square_cached(2), cachier_wrap('cube', 2);
});

# A wrapper pg_dump would skip (in pg_catalog, the default place for a
# built-in's wrapper) or that the session drops (pg_temp) is refused, and
# leaves no options row behind that a restore could not load.
foreach my $memoize (
	q{cachier_memoize('pg_catalog.lower(text)')},
	q{cachier_memoize('pg_catalog.lower(text)', name => 'pg_catalog.lower_cached')},
	q{cachier_memoize('app.triple(int)', name => 'pg_temp.triple_cached')})
{
	my ($stdout, $stderr);
	$node->psql('src', "SELECT $memoize", stdout => \$stdout, stderr => \$stderr);
	like(
		$stderr,
		qr/ERROR:  a cachier wrapper cannot be created in schema "pg_(catalog|temp)".*HINT:  Put the wrapper in a schema of yours/s,
		"$memoize is refused with a hint");
}
is( $node->safe_psql(
		'src', q{
SELECT string_agg(function::text || '=' || coalesce(wrapper::text, '-'), ' '
                  ORDER BY function::text)
  FROM cachier_functions}),
	'app.triple(integer)=app.triple_cached(integer) cube(integer)=- '
	  . 'square(integer)=square_cached(integer) upper(text)=app.upper_cached(text)',
	'source: four functions are configured, each wrapper in a dumpable schema');

my $options_query = q{
SELECT function, wrapper, stale_after, next_time, wait_timeout, allow_null,
       entry_size_limit, cleanup_stale, cleanup_interval, per_role, storage,
       max_stale_age, updated_at, track_reads, depends_on, on_change, key_settings
  FROM cachier_functions ORDER BY function::text};
my $options_src = $node->safe_psql('src', $options_query);
like(
	$options_src,
	# per_role: t, the default of a VOLATILE SECURITY INVOKER function
	qr/^square\(integer\)\|square_cached\(integer\)\|1 day\|f\|00:00:05\|t\|1048576\|f\|1 day\|t\|/m,
	'source: the memoized function has its options');
like(
	$options_src,
	qr/^cube\(integer\)\|\|02:00:00\|f\|00:00:30\|f\|\|f\|1 day\|t\|/m,
	'source: the configured function has its options');
like(
	$options_src,
	qr/^cube\(integer\)\|.*\|f\|\{orders\}\|refresh\|\{timezone,app\.tenant\}$/m,
	'source: ... the options of 0.5 included');

my $tempdir = PostgreSQL::Test::Utils::tempdir;
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', "$tempdir/src.dump", '-d', $node->connstr('src') ],
	'pg_dump (custom format) of a database using cachier succeeds');
$node->command_ok(
	[ 'pg_dump', '-Fp', '-f', "$tempdir/src.sql", '-d', $node->connstr('src') ],
	'pg_dump (plain format) of a database using cachier succeeds');

$node->safe_psql('postgres', 'CREATE DATABASE restored_custom');
$node->command_ok(
	[
		'pg_restore', '--exit-on-error', '-d', $node->connstr('restored_custom'),
		"$tempdir/src.dump"
	],
	'pg_restore into a new database succeeds');

$node->safe_psql('postgres', 'CREATE DATABASE restored_plain');
$node->command_ok(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d',
		$node->connstr('restored_plain'), '-f', "$tempdir/src.sql"
	],
	'restoring the plain dump with psql succeeds');

foreach my $db ('restored_custom', 'restored_plain')
{
	# The wrapper exists and is still the wrapper of the restored function.
	is( $node->safe_psql(
			$db, q{
SELECT obj_description('square_cached(int)'::regprocedure, 'pg_proc'),
       cachier.wrapper_of('square(int)')}),
		'cached wrapper of public.square(integer) (cachier)|square_cached(integer)',
		"$db: the wrapper exists and is known as the wrapper of square(int)");

	is($node->safe_psql($db, $options_query),
		$options_src, "$db: the per-function options survived unchanged");

	# the sequence of ids came along: a function configured after the
	# restore gets an id of its own
	is( $node->safe_psql(
			$db, q{
CREATE FUNCTION late(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
SELECT cachier_configure('late(int)', stale_after => '1 minute');
SELECT count(*) = count(DISTINCT id) AND cachier.fn_id('late(int)') IS NOT NULL
  FROM cachier.function_ids;
DROP FUNCTION late(int);}),
		"\nt", "$db: a function configured after the restore gets a new id");

	# The wrapper and cachier_wrap cache again: the second call is a hit.
	foreach my $call ('square_cached(7)', q{cachier_wrap('cube', 3)})
	{
		my $base = $node->safe_psql($db, 'SELECT executions()');
		my ($stdout, $stderr);
		$node->psql(
			$db,
			"SELECT $call; SET cachier.\"verbose\" = on; SELECT $call;",
			stdout => \$stdout,
			stderr => \$stderr,
			on_error_stop => 1);
		my $want = $call =~ /square/ ? '49' : '27';
		is($stdout, "$want\n$want", "$db: $call returns the right value twice");
		is($node->safe_psql($db, 'SELECT executions()') - $base,
			1, "$db: $call executed the function once");
		like($stderr, qr/NOTICE:  cachier: hit: /,
			"$db: the second $call is a cache hit");
		unlike($stderr, qr/WARNING|ERROR/, "$db: $call gives no warning");
	}
	is( $node->safe_psql(
			$db, q{
SELECT string_agg(function::text || arguments, ' ' ORDER BY function::text)
  FROM cachier_entries}),
		'cube(integer)(3) square(integer)(7)',
		"$db: the new entries belong to the restored functions");

	# Dropping the wrapped function needs CASCADE: the wrapper depends on it.
	my ($stdout, $stderr);
	my $rc = $node->psql(
		$db, 'DROP FUNCTION square(int)',
		stdout => \$stdout,
		stderr => \$stderr);
	isnt($rc, 0, "$db: DROP FUNCTION of the wrapped function fails");
	like(
		$stderr,
		qr/cannot drop function square\(integer\) because other objects depend on it.*function square_cached\(integer\) depends on function square\(integer\)/s,
		"$db: ... because the wrapper depends on it");
	is($node->safe_psql($db, 'SELECT square_cached(7)'),
		'49', "$db: the wrapper still works after the failed DROP");

	$node->safe_psql($db, 'DROP FUNCTION square(int) CASCADE');
	is( $node->safe_psql(
			$db, q{
SELECT to_regprocedure('square_cached(int)') IS NULL,
       (SELECT count(*) FROM cachier.function_ids WHERE identity LIKE 'public.square%'),
       (SELECT count(*) FROM cachier.functions f JOIN cachier.function_ids i ON i.id = f.fn_id
         WHERE i.identity LIKE 'public.square%'),
       (SELECT count(*) FROM cachier.entries e
         WHERE NOT EXISTS (SELECT FROM cachier.function_ids i WHERE i.id = e.fn_id))}),
		't|0|0|0',
		"$db: DROP FUNCTION ... CASCADE drops the wrapper, its options and entries");
	is($node->safe_psql($db, q{SELECT cachier_wrap('cube', 3)}),
		'27', "$db: the other function is still cached after the drop");

	# The wrappers in schema app, of app.triple and of the built-in upper,
	# were restored with their options and cache again.
	is( $node->safe_psql(
			$db, q{
SELECT app.triple_cached(5), app.upper_cached('abc'), app.upper_cached('abc');
SELECT count(*) FROM cachier_entries
 WHERE function IN ('app.triple(int)'::regprocedure, 'upper(text)'::regprocedure)}),
		"15|ABC|ABC\n2",
		"$db: the wrappers in schema app work and cache");
}

$node->stop;
done_testing();
