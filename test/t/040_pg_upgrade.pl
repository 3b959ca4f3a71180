# 040_pg_upgrade.pl: a cluster where cachier is used survives pg_upgrade
# (15 to 15, same binaries), copying (the default) and with --link.
#
# pg_upgrade refuses user tables with regprocedure columns, and it does not
# keep function OIDs, so cachier's storage names functions by an id whose
# identity is the schema-qualified signature.  Here the old cluster burns
# OIDs before creating the functions, so that every function gets another
# OID in the new cluster (checked), and then:
#  - pg_upgrade --check says the clusters are compatible;
#  - after a real pg_upgrade the options (old and new ones, non-default),
#    the wrappers and the entries are intact: cachier_functions and
#    cachier_entries show the same rows as before;
#  - the entries are served as hits (the counter of executions does not
#    move), from the wrapper and from cachier_wrap, shared and per role --
#    but for square's: square depends on orders (depends_on), so its
#    entries carry an epoch, which no restart keeps (freshness: epochs
#    start elsewhere after a restart, and pg_upgrade is one), and they are
#    computed again;
#  - the wrappers work (a new key is computed once, then hit), and the
#    storage follows a rename made after the upgrade.

use strict;
use warnings;

use Cwd;
use File::Path qw(rmtree);
use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(counting_setup);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

sub new_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'cachier'");
	return $node;
}

my $old = new_node('old');
$old->start;

# Burn OIDs first: the functions of the old cluster get OIDs that the new
# one (which restores them without the gaps) does not give them.
$old->safe_psql(
	'postgres', q{
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXECUTE format('CREATE FUNCTION burn%s() RETURNS int LANGUAGE sql AS ''SELECT 1''', i);
        EXECUTE format('DROP FUNCTION burn%s()', i);
    END LOOP;
END
$$;
});

$old->safe_psql(
	'postgres', counting_setup() . q{
CREATE ROLE upgrade_user LOGIN;
CREATE TABLE orders (id int);
CREATE FUNCTION square(x int) RETURNS int LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); RETURN x * x; END $$;
SELECT cachier_memoize('square(int)', stale_after => '1 day', wait_timeout => '5s',
                       allow_null => true, entry_size_limit => '1MB',
                       track_reads => false, depends_on => '{orders}',
                       on_change => 'refresh', key_settings => '{timezone}');
-- a later call changes one option and keeps the others
SELECT cachier_memoize('square(int)', max_stale_age => '3 days');

CREATE FUNCTION cube(x int) RETURNS int LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('calls'); RETURN x * x * x; END $$;
SELECT cachier_configure('cube(int)', stale_after => '2 hours', per_role => true);
GRANT EXECUTE ON FUNCTION cube(int) TO upgrade_user;
GRANT USAGE, SELECT ON SEQUENCE calls TO upgrade_user;

CREATE SCHEMA app;
CREATE FUNCTION app.triple(x int) RETURNS int LANGUAGE plpgsql
    AS $$ BEGIN PERFORM nextval('public.calls'); RETURN 3 * x; END $$;
SELECT cachier_memoize('app.triple(int)', name => 'public.triple_cached',
                       next_time => true, cleanup_stale => true,
                       cleanup_interval => '1 hour', stale_after => '10 minutes');

SELECT square_cached(2), square_cached(3), cachier_wrap('cube', 2), triple_cached(5);
});
$old->safe_psql('postgres', q{SET ROLE upgrade_user; SELECT cachier_wrap('cube', 2)});

my $options_query = q{
SELECT function, wrapper, stale_after, next_time, wait_timeout, allow_null,
       entry_size_limit, cleanup_stale, cleanup_interval, per_role, storage,
       max_stale_age, updated_at, track_reads, depends_on, on_change, key_settings
  FROM cachier_functions ORDER BY function::text};
my $entries_query = q{
SELECT function, key, arguments, created_at, size_bytes, compute_ms, role
  FROM cachier_entries ORDER BY function::text, arguments, role::text};
my $oids_query = q{
SELECT string_agg(oid::text, ',' ORDER BY proname) FROM pg_proc
 WHERE proname IN ('square', 'cube', 'triple', 'square_cached', 'triple_cached')};

my $options_old = $old->safe_psql('postgres', $options_query);
my $entries_old = $old->safe_psql('postgres', $entries_query);
my $executions_old = $old->safe_psql('postgres', 'SELECT executions()');
my $oids_old = $old->safe_psql('postgres', $oids_query);
# (per_role shows t: square is VOLATILE SECURITY INVOKER, keyed by role by
# default since 0.5)
like(
	$options_old,
	qr/^square\(integer\)\|square_cached\(integer\)\|1 day\|f\|00:00:05\|t\|1048576\|f\|1 day\|t\|table\|3 days\|[^|]+\|f\|\{orders\}\|refresh\|\{timezone\}$/m,
	'old cluster: square has its options, old and new');
is($entries_old =~ tr/\n//, 4, 'old cluster: five entries (cube per role twice)');
is($executions_old, 5, 'old cluster: five executions');
$old->stop;

my $bindir = $old->config_data('--bindir');
my $cwd = getcwd();

# PostgreSQL 15's pg_upgrade copies by default (its --copy came in 16)
foreach my $mode ('copy', 'link')
{
	my @method = $mode eq 'link' ? ('--link') : ();
	my $new = new_node("new_$mode");
	my $workdir = PostgreSQL::Test::Utils::tempdir;
	chdir $workdir;

	my @upgrade = (
		'pg_upgrade', '--no-sync',
		'-d', $old->data_dir, '-D', $new->data_dir,
		'-b', $bindir, '-B', $bindir,
		'-s', $new->host, '-p', $old->port, '-P', $new->port);
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ @upgrade, '--check' ], '>', \$stdout, '2>', \$stderr);
	ok($ok, "$mode: pg_upgrade --check succeeds");
	like($stdout, qr/Clusters are compatible/, "$mode: --check: the clusters are compatible");
	like($stdout, qr/Checking for reg\* data types in user tables\s+ok/,
		"$mode: --check finds no reg* column in user tables");
	diag($stdout . $stderr) unless $ok;

	$ok = IPC::Run::run([ @upgrade, @method ], '>', \$stdout, '2>', \$stderr);
	ok($ok, "$mode: pg_upgrade succeeds");
	diag($stdout . $stderr) unless $ok;
	chdir $cwd;
	rmtree($new->data_dir . '/pg_upgrade_output.d');

	$new->start;
	isnt($new->safe_psql('postgres', $oids_query),
		$oids_old, "$mode: the functions have other OIDs in the new cluster");
	is($new->safe_psql('postgres', $options_query),
		$options_old, "$mode: the options are intact");
	is($new->safe_psql('postgres', $entries_query),
		$entries_old, "$mode: cachier_entries shows the same rows");
	is($new->safe_psql('postgres', 'SELECT executions()'),
		$executions_old, "$mode: the counter of executions came along");

	# every stored entry is served: hits, no execution -- but square's two,
	# which depend on orders and so carry an epoch that the restart made
	# invalid: computed again, once each
	my $calls = q{
SET cachier."verbose" = on;
SELECT square_cached(2), square_cached(3), cachier_wrap('cube', 2), triple_cached(5);
SET ROLE upgrade_user;
SELECT cachier_wrap('cube', 2);};
	$new->psql('postgres', $calls, stdout => \$stdout, stderr => \$stderr,
		on_error_stop => 1);
	is($stdout, "4|9|8|15\n8", "$mode: the cached calls return the right values");
	is(() = $stderr =~ /NOTICE:  cachier: hit: /g, 3, "$mode: cube's and triple's calls are hits");
	unlike($stderr, qr/hit: public\.square/, "$mode: square's entries, with an epoch, are not served");
	unlike($stderr, qr/WARNING|ERROR|miss: public\.(?:cube|triple)/, "$mode: no other miss, no warning");
	my $executions_new = $executions_old + 2;
	is($new->safe_psql('postgres', 'SELECT executions()'),
		$executions_new, "$mode: only square's two keys were executed");

	# the wrappers work: a new key is computed once and then hit
	is($new->safe_psql('postgres', 'SELECT square_cached(7), square_cached(7), triple_cached(7)'),
		'49|49|21', "$mode: the wrappers compute new keys");
	is($new->safe_psql('postgres', 'SELECT executions()') - $executions_new,
		2, "$mode: each new key was computed once");
	is($new->safe_psql('postgres', 'SELECT cachier.wrapper_of(\'square(int)\')'),
		'square_cached(integer)', "$mode: the wrapper is recorded for its function");

	# the storage follows a rename after the upgrade (the OID hints were
	# those of the old cluster)
	$new->safe_psql('postgres', 'ALTER FUNCTION cube(int) RENAME TO kube');
	is( $new->safe_psql(
			'postgres',
			q{SELECT function, stale_after, per_role FROM cachier_functions
			   WHERE function = 'kube(int)'::regprocedure}),
		'kube(integer)|02:00:00|t',
		"$mode: options follow a rename after the upgrade");
	is( $new->safe_psql(
			'postgres',
			q{SELECT count(*) FROM cachier.function_ids
			   WHERE cachier.function_identity(fn) IS DISTINCT FROM identity}),
		'0', "$mode: every OID hint is right again after the rename");
	$new->stop;
}

done_testing();
