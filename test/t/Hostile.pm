# Hostile.pm: helpers for 020_hostile_tenant.pl, the test that plays a
# hostile tenant against cachier (issue 8).
#
#   use Hostile qw(run_as plant_sql public_plant_sql escalations reset_escalations);
#
# None of these helpers runs a test: they connect as a role, build the SQL
# an attacker plants, and read what the planted code recorded.

package Hostile;

use strict;
use warnings;

use Exporter 'import';

our @EXPORT_OK = qw(run_as plant_sql public_plant_sql drop_public_plant_sql
  escalations reset_escalations);

# Run $sql in database $db of $node connected as $role (trust
# authentication, as the test clusters use); never dies.  Returns (exit
# code, stdout, stderr); a statement that does not return within 60 s is a
# failure.
sub run_as
{
	my ($node, $db, $role, $sql, %opts) = @_;
	my ($stdout, $stderr, $timed_out) = ('', '');
	my $rc = $node->psql(
		$db, $sql,
		stdout => \$stdout,
		stderr => \$stderr,
		timeout => $opts{timeout} // 60,
		timed_out => \$timed_out,
		on_error_stop => $opts{on_error_stop} // 1,
		extra_params => [ '-U', $role ]);
	$rc = 'timed out' if $timed_out;
	return ($rc, $stdout, $stderr);
}

# The attacker's kit, created by the attacker (role $attacker) in its own
# schema mal (which must exist and be the attacker's): a log table that
# everyone may write, mal.evil(via) which records who runs it and, when
# that is anyone but the attacker, tries to make the attacker a superuser;
# and shadows of what SQL run by cachier may use: operators = for
# (regprocedure, regprocedure), (bigint, bigint), (oid, oid), (tid, tid),
# (regprocedure, bigint), <= for timestamptz, and the functions now(),
# clock_timestamp(), statement_timestamp() and transaction_timestamp().  Each shadow calls
# mal.evil and then gives the right answer, so the victim notices nothing.
sub plant_sql
{
	my ($attacker) = @_;
	my $sql = qq{
CREATE TABLE mal.log (who text, sess text, db text, via text);
GRANT USAGE ON SCHEMA mal TO PUBLIC;
GRANT INSERT, SELECT ON mal.log TO PUBLIC;
CREATE FUNCTION mal.evil(via text) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO mal.log VALUES (current_user::text, session_user::text,
                                pg_catalog.current_database()::text, via);
    IF current_user::text OPERATOR(pg_catalog.<>) '$attacker' THEN
        BEGIN
            EXECUTE 'ALTER ROLE $attacker SUPERUSER';
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
    END IF;
END \$\$;
};
	my @ops = (
		[ 'eq_rp', 'regprocedure', 'regprocedure', '=', 'oid' ],
		[ 'eq_rp_i8', 'regprocedure', 'bigint', '=', undef ],
		[ 'eq_i8', 'bigint', 'bigint', '=', 'bigint' ],
		[ 'eq_oid', 'oid', 'oid', '=', 'oid' ],
		[ 'eq_tid', 'tid', 'tid', '=', 'tid' ],
		[ 'le_tz', 'timestamptz', 'timestamptz', '<=', 'timestamptz' ],
		[ 'lt_tz', 'timestamptz', 'timestamptz', '<', 'timestamptz' ]);
	foreach my $op (@ops)
	{
		my ($name, $l, $r, $sym, $cast) = @$op;
		my $body =
		  defined $cast
		  ? "\$1::$cast OPERATOR(pg_catalog.$sym) \$2::$cast"
		  : "\$1::oid::bigint OPERATOR(pg_catalog.=) \$2";
		$sql .= qq{
CREATE FUNCTION mal.$name($l, $r) RETURNS boolean LANGUAGE plpgsql AS \$\$
BEGIN PERFORM mal.evil('$sym $l'); RETURN $body; END \$\$;
CREATE OPERATOR mal.$sym (LEFTARG = $l, RIGHTARG = $r, FUNCTION = mal.$name);
};
	}
	foreach my $fn (qw(now clock_timestamp statement_timestamp transaction_timestamp))
	{
		$sql .= qq{
CREATE FUNCTION mal.$fn() RETURNS timestamptz LANGUAGE plpgsql AS \$\$
BEGIN PERFORM mal.evil('$fn()'); RETURN pg_catalog.$fn(); END \$\$;
};
	}
	return $sql;
}

# The part of the kit that works from a writable public even behind an
# implicit pg_catalog: pg_catalog has no = for (regprocedure,
# regprocedure), so an exact one in public wins over oid = oid.
sub public_plant_sql
{
	return q{
CREATE FUNCTION public.eq_rp(regprocedure, regprocedure) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM mal.evil('public = regprocedure'); RETURN $1::oid OPERATOR(pg_catalog.=) $2::oid; END $$;
CREATE OPERATOR public.= (LEFTARG = regprocedure, RIGHTARG = regprocedure, FUNCTION = public.eq_rp);
};
}

sub drop_public_plant_sql
{
	return q{
DROP OPERATOR public.= (regprocedure, regprocedure);
DROP FUNCTION public.eq_rp(regprocedure, regprocedure);
};
}

# What the planted code recorded in database $db: its runs as any role
# other than $attacker ("who/session/via" lines), or '' when none; and
# whether $attacker is a superuser now.  $node->safe_psql runs as the
# bootstrap superuser with a search_path that no tenant can shadow.
sub escalations
{
	my ($node, $db, $attacker) = @_;
	my $runs = $node->safe_psql(
		$db, qq{
SET search_path = pg_catalog;
SELECT string_agg(DISTINCT who || '/' || sess || ' via ' || via, '; ')
  FROM mal.log WHERE who OPERATOR(pg_catalog.<>) '$attacker'});
	my $super = $node->safe_psql(
		$db, qq{
SET search_path = pg_catalog;
SELECT rolsuper FROM pg_roles WHERE rolname OPERATOR(pg_catalog.=) '$attacker'});
	return ($runs, $super eq 't');
}

# Undo an escalation so the next route is judged on its own.
sub reset_escalations
{
	my ($node, $attacker, @dbs) = @_;
	$node->safe_psql('postgres', "ALTER ROLE $attacker NOSUPERUSER");
	$node->safe_psql($_, 'SET search_path = pg_catalog; TRUNCATE mal.log') for @dbs;
}

1;
