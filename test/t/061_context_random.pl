# 061_context_random.pl: sessions with random settings, roles and
# collations call cached functions and the same functions directly, side by
# side, concurrently, for at least 30 seconds: every cached answer (value,
# or error SQLSTATE and message) must be the direct one.  0 differences.
#
# The functions depend on each part of the context: TimeZone, DateStyle,
# extra_float_digits and a collation (fmt, shared with per_role => false),
# a collation only (lt, IMMUTABLE), the role (who), the search path (path_x),
# row-level security by role and by app.tenant (tenant_sum, with app.tenant
# in cachier.key_settings), SELECT privilege (total; one role has none),
# SECURITY DEFINER (total_definer) and xmloption (to_x).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $duration = $ENV{CACHIER_CONTEXT_RANDOM_SECONDS} // 30;
my $sessions = 3;
my $per_script = 150;

my $node = cachier_node('main', conf => 'max_worker_processes = 16');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION cachier;
ALTER DATABASE postgres SET cachier.key_settings =
    'TimeZone, DateStyle, IntervalStyle, search_path, extra_float_digits, xmloption, app.tenant';
CREATE ROLE r1; CREATE ROLE r2; CREATE ROLE r3;
CREATE SCHEMA s1; CREATE SCHEMA s2;
GRANT USAGE ON SCHEMA s1, s2 TO PUBLIC;
CREATE TABLE s1.t (x int); INSERT INTO s1.t VALUES (1);
CREATE TABLE s2.t (x int); INSERT INTO s2.t VALUES (2);
GRANT SELECT ON s1.t, s2.t TO PUBLIC;
CREATE TABLE orders (amount int); INSERT INTO orders VALUES (10), (20), (30);
GRANT SELECT ON orders TO r1, r2;
CREATE TABLE tenant_rows (tenant text, owner name, v int);
INSERT INTO tenant_rows VALUES ('t1', 'r1', 1), ('t1', 'r2', 2), ('t2', 'r1', 40), ('t2', 'r3', 300);
ALTER TABLE tenant_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON tenant_rows
    USING (tenant = current_setting('app.tenant', true) AND owner = current_user);
GRANT SELECT ON tenant_rows TO PUBLIC;
CREATE TABLE differences (label text, stmt text, cached text, direct text,
                          role name, settings text);
GRANT INSERT ON differences TO PUBLIC;

CREATE FUNCTION fmt(t timestamptz, s text) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT t::text || ' ' || (s < 'b')::text || ' ' || (0.1::float8 * 3)::text $$;
CREATE FUNCTION lt(a text, b text) RETURNS boolean LANGUAGE sql IMMUTABLE
    AS $$ SELECT a < b $$;
CREATE FUNCTION who(x int) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT current_user || x $$;
SET check_function_bodies = off;
CREATE FUNCTION path_x(k int) RETURNS int LANGUAGE sql STABLE
    AS $$ SELECT x + k FROM t $$;
RESET check_function_bodies;
CREATE FUNCTION tenant_sum(k int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT coalesce(sum(v), 0) + k FROM public.tenant_rows $$;
CREATE FUNCTION total(k int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT sum(amount) + k FROM public.orders $$;
CREATE FUNCTION total_definer(k int) RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT sum(amount) + k FROM public.orders $$;
CREATE FUNCTION to_x(s text) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT s::xml::text $$;
SELECT cachier_memoize('fmt(timestamptz,text)', per_role => false);
SELECT cachier_memoize(f) FROM unnest(ARRAY['lt(text,text)', 'who(int)', 'path_x(int)',
    'tenant_sum(int)', 'total(int)', 'total_definer(int)', 'to_x(text)']::regprocedure[]) f;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO PUBLIC;

-- the answer of one statement: its value, or its error
CREATE FUNCTION answer(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE 'SELECT ' || stmt INTO r;
    RETURN coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN 'ERROR ' || SQLSTATE || ' ' || SQLERRM;
END $$;
CREATE FUNCTION cmp(label text, cached text, direct text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE c text := answer(cached); d text := answer(direct);
BEGIN
    IF c IS DISTINCT FROM d THEN
        INSERT INTO public.differences VALUES (label, cached, c, d, current_user,
            concat_ws(' ', current_setting('TimeZone'), current_setting('DateStyle'),
                      current_setting('extra_float_digits'), current_setting('xmloption'),
                      current_setting('app.tenant', true), current_setting('search_path')));
    END IF;
END $$;
GRANT EXECUTE ON FUNCTION answer(text), cmp(text, text, text) TO PUBLIC;
});

my @timezones = ('UTC', 'Asia/Tokyo', 'America/New_York');
my @datestyles = ('ISO, MDY', 'German', 'SQL, DMY');
my @digits = (0, 1, 3);
my @xmloptions = ('content', 'document');
my @tenants = ('t1', 't2', '');
my @paths = ('s1, public', 's2, public');
my @roles = ('r1', 'r2', 'r3');
my @collations = ('', ' COLLATE "C"', ' COLLATE "und-x-icu"');

sub pick { return $_[ int(rand(@_)) ]; }

# One random statement pair (cached, direct), as SQL literals for cmp().
sub random_call
{
	my $c = pick(@collations);
	my @calls = (
		sprintf(q{fmt('2024-0%d-02 12:00+00', '%s'%s)}, 1 + int(rand(3)), pick('a', 'B', 'c'), $c),
		sprintf(q{lt('%s'%s, '%s')::text}, pick('a', 'B'), $c, pick('b', 'A')),
		sprintf(q{who(%d)}, int(rand(3))),
		sprintf(q{path_x(%d)}, int(rand(3))),
		sprintf(q{tenant_sum(%d)}, int(rand(3))),
		sprintf(q{total(%d)}, int(rand(3))),
		sprintf(q{total_definer(%d)}, int(rand(3))),
		sprintf(q{to_x('%s')}, pick('a<b/>', '<a/>')),);
	my $direct = pick(@calls);
	(my $cached = $direct) =~ s/^(\w+)\(/$1_cached(/;
	s/'/''/g for ($cached, $direct);
	return ($cached, $direct);
}

sub random_script
{
	my ($n) = @_;
	my $sql = '';
	for my $i (1 .. $n)
	{
		if (rand() < 0.3)
		{
			$sql .= "RESET ROLE;\n";
			$sql .= sprintf("SET TimeZone = '%s';\n", pick(@timezones)) if rand() < 0.5;
			$sql .= sprintf("SET DateStyle = '%s';\n", pick(@datestyles)) if rand() < 0.5;
			$sql .= sprintf("SET extra_float_digits = %d;\n", pick(@digits)) if rand() < 0.3;
			$sql .= sprintf("SET xmloption = %s;\n", pick(@xmloptions)) if rand() < 0.3;
			$sql .= sprintf("SET app.tenant = '%s';\n", pick(@tenants)) if rand() < 0.5;
			$sql .= sprintf("SET search_path = %s;\n", pick(@paths)) if rand() < 0.5;
			$sql .= sprintf("SET ROLE %s;\n", pick(@roles));
		}
		my ($cached, $direct) = random_call();
		$sql .= "SELECT public.cmp('$i', '$cached', '$direct');\n";
	}
	return $sql;
}

my $start = time();
my ($rounds, $checks) = (0, 0);
while (time() - $start < $duration)
{
	my @runs;
	for my $s (1 .. $sessions)
	{
		my $script = "SET ROLE r1;\n" . random_script($per_script);
		my ($out, $err) = ('', '');
		my $h = IPC::Run::start(
			[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-f', '-' ],
			'<', \$script, '>', \$out, '2>', \$err);
		push @runs, [ $h, \$err ];
	}
	foreach my $run (@runs)
	{
		$run->[0]->finish;
		die "a session failed: ${$run->[1]}" if ${ $run->[1] } =~ /ERROR|FATAL/;
	}
	$rounds++;
	$checks += $sessions * $per_script;
}
note "$rounds rounds, $checks comparisons in " . int(time() - $start) . ' s';

my $differences = $node->safe_psql('postgres',
	"SELECT string_agg(format('%s | %s | %s | %s | %s', role, settings, stmt, cached, direct), E'\\n') FROM differences");
is($differences, '', "no cached answer differed from the direct one ($checks comparisons)");
ok($checks >= 1000, 'enough comparisons were made');
cmp_ok(
	$node->safe_psql('postgres', 'SELECT sum(hits) FROM cachier_stats'),
	'>', 0, 'the cache served hits');

done_testing();
