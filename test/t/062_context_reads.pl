# 062_context_reads.pl: what a computation read decides who may be served
# its entry (issue 11, items 4 and 5), for functions whose entries are
# shared (per_role => false), where keying by role does not already do it:
#  1. privileges: a role without SELECT on orders gets "permission denied
#     for table orders" from total_cached(), as from total(); a REVOKE
#     takes effect at the next call, a GRANT gives the hit back;
#  2. row-level security by current_setting('app.tenant') through one
#     login role: the entry is keyed by role and by app.tenant although
#     cachier.key_settings does not name it;
#  3. a policy that calls a function: computed directly, never served;
#  4. a session that keeps its backend (whose privilege check is
#     remembered between calls) sees a relation another backend's
#     computation read for the first time, a REVOKE and a GRANT at its next
#     call;
#  5. a function whose computations read more relations than cachier
#     records per function (32): what it reads cannot all be checked, so it
#     computes directly, and a role without SELECT on the last table gets
#     the direct call's error.
#
# The relations a function read come from the freshness work's captured
# reads (cachier_function_reads); until that is in, this test skips.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node verbose_psql);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('main');
$node->safe_psql('postgres', 'CREATE EXTENSION cachier');
if ($node->safe_psql('postgres',
		"SELECT to_regclass('cachier_dependencies') IS NULL") eq 't')
{
	plan skip_all => 'the relations a computation reads are not captured yet';
}

$node->safe_psql(
	'postgres', q{
CREATE ROLE rr1; CREATE ROLE rr2;
CREATE TABLE orders (amount int); INSERT INTO orders VALUES (10), (20);
GRANT SELECT ON orders TO rr1;
CREATE FUNCTION total() RETURNS bigint LANGUAGE sql STABLE
    AS 'SELECT sum(amount) FROM public.orders';
SELECT cachier_memoize('total()', per_role => false);
CREATE TABLE tenant_rows (tenant text, v int);
INSERT INTO tenant_rows VALUES ('t1', 1), ('t2', 30);
ALTER TABLE tenant_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON tenant_rows USING (tenant = current_setting('app.tenant', true));
GRANT SELECT ON tenant_rows TO rr1;
CREATE FUNCTION tsum() RETURNS bigint LANGUAGE sql STABLE
    AS 'SELECT sum(v) FROM public.tenant_rows';
SELECT cachier_memoize('tsum()', per_role => false);
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO PUBLIC;
});

# the owner's calls: the first captures what total() reads, the next store
$node->safe_psql('postgres', 'SELECT total_cached()') for 1 .. 3;

sub as_role
{
	my ($role, $sql) = @_;
	my ($rc, $out, $err) = verbose_psql($node, "SET ROLE $role; $sql");
	return ($out, $err);
}

# ------------------------------------------------------------ 1. privileges
my ($out, $err) = as_role('rr1', 'SELECT total_cached()');
is($out, '30', 'privileges: a role with SELECT gets the value');
like($err, qr/cachier: hit: public\.total\(\)/, '... from the shared entry');

($out, $err) = as_role('rr2', 'SELECT total_cached()');
like($err, qr/ERROR:  permission denied for table orders/,
	'privileges: a role without SELECT gets the direct call\'s error');
unlike($err, qr/cachier: hit/, '... and no hit');

$node->safe_psql('postgres', 'REVOKE SELECT ON orders FROM rr1');
($out, $err) = as_role('rr1', 'SELECT total_cached()');
like($err, qr/ERROR:  permission denied for table orders/,
	'privileges: a REVOKE takes effect at the next call');
$node->safe_psql('postgres', 'GRANT SELECT ON orders TO rr1');
$node->safe_psql('postgres', 'SELECT total_cached()') for 1 .. 2;
($out, $err) = as_role('rr1', 'SELECT total_cached()');
is($out, '30', 'privileges: after GRANT the role is served again');

# ------------------------------------------------------------ 2. row-level security
my %got;
for my $round (1 .. 3)
{
	for my $tenant ('t1', 't2')
	{
		($out, $err) = as_role('rr1',
			"SET app.tenant = '$tenant'; SELECT tsum_cached() || ' ' || tsum()");
		$got{$tenant} = $out;
	}
}
is($got{t1}, '1 1', 'rls: tenant t1 gets its own sum, cached and direct');
is($got{t2}, '30 30', 'rls: tenant t2 gets its own sum, cached and direct');
like(
	$node->safe_psql('postgres',
		"SELECT string_agg(context, E'\\n' ORDER BY context) FROM cachier_entries WHERE function = 'tsum()'::regprocedure"
	),
	qr/role rr1, .*app\.tenant=t1/,
	'rls: the entry is keyed by the role and by app.tenant');

# ------------------------------------------------------------ 3. a policy calling a function
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION cur_tenant() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT current_setting('app.tenant', true) $$;
DROP POLICY p ON tenant_rows;
CREATE POLICY p2 ON tenant_rows USING (tenant = cur_tenant());
});
($out, $err) = as_role('rr1', "SET app.tenant = 't2'; SELECT tsum_cached()");
is($out, '30', 'opaque policy: the value is the direct one');
like($err, qr/bypassed: public\.tsum\(\)\nDETAIL:  A row-level security policy of tenant_rows calls a function/,
	'opaque policy: computed directly, and verbose says why');

# ------------------------------------------------------------ 4. a long-lived session
# pick(1) reads nothing; pick(2) reads secrets, which rr1 may not read.
# rr1's session checks pick's reads once and remembers the outcome; the
# owner's computation of pick(2), in another backend, adds secrets to what
# pick reads, and rr1's next call must see it.
$node->safe_psql(
	'postgres', q{
CREATE TABLE secrets (v int); INSERT INTO secrets VALUES (7);
CREATE FUNCTION pick(i int) RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF i = 1 THEN RETURN 1; END IF;
    RETURN (SELECT v FROM public.secrets);
END $$;
SELECT cachier_memoize('pick(int)', per_role => false);
SELECT pick_cached(1);
});
my ($s, $spid) = CachierTest::session($node, 'SET ROLE rr1');
is($s->query_safe('SELECT pick_cached(1); SELECT pick_cached(1)'), "1\n1",
	'long session: served while it reads nothing rr1 may not read');
$node->safe_psql('postgres', 'SELECT pick_cached(2)') for 1 .. 2;
is($node->safe_psql('postgres',
		"SELECT count(*) FROM cachier_entries WHERE function = 'pick(int)'::regprocedure"),
	'2', 'long session: the owner stored pick(2), which read secrets');
my $direct = $s->query('SELECT pick(2)');
my $direct_err = $s->{stderr};
$s->{stderr} = '';
my $cached = $s->query('SELECT pick_cached(2)');
like($direct_err, qr/permission denied for table secrets/,
	'long session: the direct call is refused');
like($s->{stderr}, qr/permission denied for table secrets/,
	'long session: the cached call gets the same error, not the owner\'s value');
is($cached, '', '... and no value');
$s->{stderr} = '';
is($s->query('SELECT pick_cached(1)'), '1',
	'long session: pick(1) is computed directly and still answers');
$node->safe_psql('postgres', 'GRANT SELECT ON secrets TO rr1');
is($s->query_safe('SELECT pick_cached(2)'), '7',
	'long session: after a GRANT the session is served at its next call');
$node->safe_psql('postgres', 'REVOKE SELECT ON secrets FROM rr1');
$s->{stderr} = '';
$s->query('SELECT pick_cached(2)');
like($s->{stderr}, qr/permission denied for table secrets/,
	'long session: a REVOKE takes effect at its next call');
$s->quit;

# ------------------------------------------------------------ 5. more reads than recorded
$node->safe_psql(
	'postgres', q{
DO $$ BEGIN
    FOR i IN 1..33 LOOP
        EXECUTE format('CREATE TABLE wide%s (v int)', i);
        EXECUTE format('INSERT INTO wide%s VALUES (1)', i);
        EXECUTE format('GRANT SELECT ON wide%s TO rr1', i);
    END LOOP;
END $$;
REVOKE SELECT ON wide33 FROM rr1;
CREATE FUNCTION wide() RETURNS int LANGUAGE plpgsql STABLE AS $$
DECLARE total int := 0; n int;
BEGIN
    FOR i IN 1..33 LOOP
        EXECUTE format('SELECT count(*) FROM public.wide%s', i) INTO n;
        total := total + n;
    END LOOP;
    RETURN total;
END $$;
SELECT cachier_memoize('wide()', per_role => false);
});
$node->safe_psql('postgres', 'SELECT wide_cached()') for 1 .. 3;
($out, $err) = as_role('rr1', 'SELECT wide_cached()');
like($err, qr/ERROR:  permission denied for table wide33/,
	'more reads than recorded: a role without SELECT on one of them gets the direct call\'s error');
is($out, '', '... and not the owner\'s value');
(undef, $out, $err) = verbose_psql($node, 'SELECT wide_cached()');
is($out, '33', 'more reads than recorded: the owner gets the right value');
like($err, qr/bypassed: public\.wide\(\)\nDETAIL:  Its computations read more than 32 relations/,
	'... computed directly, and verbose says why');

done_testing();
