# 060_context_refresh.pl: a background refresh (next_time) computes under
# the context its entry was keyed with, so the refreshed value is what a
# direct call in the caller's session gives (issue 11, items 1 and 2):
#  1. collation: a call under ICU's root collation is refreshed under it;
#  2. settings: TimeZone, DateStyle, xmloption and a custom setting named
#     in cachier.key_settings (app.tenant, set per database) are restored;
#  3. search_path: a caller's path over a same-named table in another
#     schema is restored;
#  4. role: a per-role entry is refreshed as its role.
# Each function returns "<context part> | <clock_timestamp()>": the refresh
# must change the time (it really ran) and keep the context part equal to
# that of a direct call made in the caller's session.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node backdate);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('main', conf => 'max_worker_processes = 16');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION cachier;
ALTER DATABASE postgres SET cachier.key_settings =
    'TimeZone, DateStyle, xmloption, search_path, app.tenant';
CREATE ROLE ctx_alice;
CREATE SCHEMA s1;
CREATE SCHEMA s2;
GRANT USAGE ON SCHEMA s1, s2 TO ctx_alice;
CREATE TABLE s1.t (x text);
CREATE TABLE s2.t (x text);
INSERT INTO s1.t VALUES ('from s1');
INSERT INTO s2.t VALUES ('from s2');
GRANT SELECT ON s1.t, s2.t TO ctx_alice;
CREATE FUNCTION ctx_lt(a text, b text) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT (a < b)::text || ' | ' || clock_timestamp() $$;
CREATE FUNCTION ctx_settings(x int) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT '2024-01-02 12:00+00'::timestamptz::text || ' '
        || coalesce(current_setting('app.tenant', true), '-') || ' '
        || current_setting('xmloption') || ' ' || current_user || ' ' || x
        || ' | ' || clock_timestamp() $$;
SET check_function_bodies = off;
CREATE FUNCTION ctx_path(x int) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT (SELECT x FROM t) || ' | ' || clock_timestamp() $$;
RESET check_function_bodies;
SELECT cachier_memoize(f, stale_after => '1 hour', next_time => true)
  FROM unnest(ARRAY['ctx_lt(text,text)', 'ctx_settings(int)', 'ctx_path(int)']::regprocedure[]) f;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO ctx_alice;
});

# the caller's session: these settings, then the statement
my $session = q{
SET ROLE ctx_alice;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'German';
SET xmloption = document;
SET app.tenant = 'acme';
SET search_path = s2, public;
};

sub in_session
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $session . $sql);
}

sub context_part { my ($v) = @_; $v =~ s/ \| .*//; return $v; }

sub refreshes_done
{
	my ($fn) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(max(refreshes_done), 0) FROM cachier_stats WHERE function = '$fn'::regprocedure"
	);
}

my @cases = (
	[ 'collation', 'ctx_lt(text,text)', q{ctx_lt('a' COLLATE "und-x-icu", 'B')},
		q{''a'', ''B''} ],
	[ 'settings and role', 'ctx_settings(int)', 'ctx_settings(1)', '1' ],
	[ 'search_path', 'ctx_path(int)', 'ctx_path(1)', '1' ],);

foreach my $case (@cases)
{
	my ($what, $fn, $call, $args) = @$case;
	(my $cached_call = $call) =~ s/\(/_cached(/;

	my $first  = in_session("SELECT $cached_call");
	my $direct = in_session("SELECT $call");
	is(context_part($first), context_part($direct),
		"$what: the first cached call gives what a direct call gives");

	backdate($node, 'postgres', $fn, "($args)");
	my $before = refreshes_done($fn);
	is(in_session("SELECT $cached_call"), $first,
		"$what: the stale value is served while a refresh is queued");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT coalesce(max(refreshes_done), 0) > $before FROM cachier_stats WHERE function = '$fn'::regprocedure"
		),
		"$what: the background refresh is done");

	my $refreshed = in_session("SELECT $cached_call");
	isnt($refreshed, $first, "$what: the refresh computed a new value");
	is(context_part($refreshed), context_part($direct),
		"$what: the refreshed value was computed in the caller's context");
}

# the refreshed entries are still keyed by the caller's context: a call in
# another context does not find them
my $other = $node->safe_psql('postgres',
	"SET ROLE ctx_alice; SET search_path = s1, public; SELECT ctx_path_cached(1)");
like($other, qr/^from s1 \| /, 'another search path gets its own value');

unlike(slurp_file($node->logfile), qr/background refresh of .* failed/,
	'the server log has no failed refresh');

done_testing();
