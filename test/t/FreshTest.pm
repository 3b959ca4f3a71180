# FreshTest.pm: helpers for the freshness tests (issue 10), test/t/05x_fresh_*.pl.
#
# The freshness promise is "a cached call returns what a direct call of the
# function would return at that moment, in that transaction".  These
# helpers run a call and say what it gave (a value or an error), whether
# cachier reported it as a hit, and keep calling until an entry is served,
# so that a test knows there is an entry that could be stale before it
# changes the data.  None of them runs a test (ok, is, ...).

package FreshTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Utils;

our @EXPORT_OK = qw(outcome warm_until_hit try_function_sql);

# Run $sql (one statement returning one value) in database $db of $node,
# as role $role if given, with cachier.verbose on.  Returns ($outcome, $hit):
# $outcome is "value: <text>" or "error: <the ERROR line>", $hit whether
# cachier reported a hit.
sub outcome
{
	my ($node, $sql, %params) = @_;
	my $db = $params{db} // 'postgres';
	my $prefix = 'SET cachier."verbose" = on;';
	$prefix .= " SET ROLE $params{role};" if $params{role};
	$prefix .= " $params{settings}" if $params{settings};
	my ($stdout, $stderr) = ('', '');
	my $rc = $node->psql(
		$db, "$prefix\n$sql",
		stdout => \$stdout,
		stderr => \$stderr,
		on_error_stop => 1);
	my $hit = ($stderr =~ /cachier: hit/) ? 1 : 0;
	if ($rc != 0)
	{
		my ($error) = $stderr =~ /^(?:psql:[^\n]*?)?ERROR:\s+([^\n]*)/m;
		return ('error: ' . ($error // "exit $rc: $stderr"), $hit);
	}
	return ("value: $stdout", $hit);
}

# Call $sql (a cached call) until cachier reports a hit, at most $tries
# times (default 5): under the freshness model the first computation of a
# function may only register what it read, and a later one stores.
# Returns (whether a hit came, the last outcome).
sub warm_until_hit
{
	my ($node, $sql, %params) = @_;
	my $tries = delete $params{tries} // 5;
	my ($out, $hit);
	for (1 .. $tries)
	{
		($out, $hit) = outcome($node, $sql, %params);
		return (1, $out) if $hit;
	}
	return (0, $out);
}

# SQL creating fresh_try(q text): runs query q (one value) and returns
# 'value: <text>' or 'error: <message>', so that a cached and a direct call
# can be compared inside one transaction even when they fail.
sub try_function_sql
{
	return q{
CREATE FUNCTION fresh_try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    EXECUTE q INTO r;
    RETURN 'value: ' || coalesce(r, '<NULL>');
EXCEPTION WHEN OTHERS THEN
    RETURN 'error: ' || SQLERRM;
END $$;
};
}

1;
