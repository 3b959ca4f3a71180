# 050_fresh_writes.pl: every write path of issue 10, item 3.
#
# For each way of changing a relation a cached function reads (INSERT,
# UPDATE, DELETE, MERGE, INSERT ... ON CONFLICT, COPY FROM, TRUNCATE,
# foreign-key cascades, writes through a partitioned or inheritance parent
# and directly into a child, partition ATTACH/DETACH/DROP, REFRESH
# MATERIALIZED VIEW (plain and CONCURRENTLY), ALTER TABLE, DROP TABLE,
# GRANT/REVOKE, row-level security policies, CREATE OR REPLACE VIEW,
# writable CTEs, updatable views, triggers, rules, dynamic SQL, procedures
# that commit) the test:
#  1. calls the function's wrapper until an entry is served (a hit), so
#     there is an entry that could go stale;
#  2. makes the change in a transaction and, before it ends, compares the
#     cached call with a direct call there (own writes), then rolls back:
#     the next call is a hit again with the old value (a rolled-back change
#     leaves the entries valid);
#  3. makes the change for good and checks that the direct result changed
#     (so the scenario means something) and that the cached call now
#     returns exactly what the direct call returns, value or error, twice.
# Over-invalidation is allowed: nothing checks that unrelated entries stay.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node);
use FreshTest qw(outcome warm_until_hit try_function_sql);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('main', conf => 'max_prepared_transactions = 2');
$node->safe_psql('postgres',
	"CREATE EXTENSION cachier; CREATE ROLE alice;\n" . try_function_sql());

my $copy_file = PostgreSQL::Test::Utils::tempdir() . '/copy.data';
PostgreSQL::Test::Utils::append_to_file($copy_file, "7\t70\n8\t80\n");
chmod 0644, $copy_file;

# A table $t(k int, v int) with rows (1, 10), (2, 20), and the usual body
# of a function over relation $r: its row count and sum.
sub table { my ($t) = @_; return "CREATE TABLE $t (k int, v int); INSERT INTO $t VALUES (1, 10), (2, 20);\n"; }
sub agg { my ($r) = @_; return "SELECT count(*) || ':' || coalesce(sum(v), 0) FROM $r"; }

my $n = 0;

# One write path.  %p: name, setup (SQL run once), body (of a LANGUAGE sql
# STABLE function returning text), write (the change), role (calls run as
# this role; the function is then per_role), no_txn (the write cannot run
# in a transaction block: step 2 is skipped).
sub write_path
{
	my (%p) = @_;
	$n++;
	my $f = "wp$n";
	my $name = $p{name};
	my %as = $p{role} ? (role => $p{role}) : ();
	my $opts = $p{role} ? ', per_role => true' : '';
	$node->safe_psql('postgres', $p{setup}
		  . "\nCREATE FUNCTION $f() RETURNS text LANGUAGE sql STABLE AS \$fn\$ $p{body} \$fn\$;\n"
		  . "GRANT EXECUTE ON FUNCTION $f() TO PUBLIC;\n"
		  . "SELECT cachier_memoize('$f()'$opts);\n"
		  . "GRANT EXECUTE ON FUNCTION ${f}_cached() TO PUBLIC;");
	my $cached = "SELECT ${f}_cached();";
	my $direct = "SELECT $f();";

	my ($hit, $warm) = warm_until_hit($node, $cached, %as);
	ok($hit, "$name: an entry is served before the change");
	my ($before) = outcome($node, $direct, %as);
	is($warm, $before, "$name: the served entry is the direct result");

	unless ($p{no_txn})
	{
		my $role = $p{role} ? "SET LOCAL ROLE $p{role};" : '';
		my $same = $node->safe_psql('postgres', qq{
BEGIN;
$p{write};
$role
SELECT fresh_try('SELECT ${f}_cached()') || ' | ' || fresh_try('SELECT $f()');
ROLLBACK;});
		# the last line: a write such as a writable CTE prints rows too
		my ($c, $d) = split / \| /, (split /\n/, $same)[-1], 2;
		is($c, $d, "$name: inside the writing transaction, cached = direct");
		my ($again, $again_hit) = outcome($node, $cached, %as);
		is($again, $before, "$name: after ROLLBACK the cached call gives the old value");
		ok($again_hit, "$name: ... from the entry, which a rolled-back change leaves valid");
	}

	$node->safe_psql('postgres', $p{write});
	my ($after) = outcome($node, $direct, %as);
	isnt($after, $before, "$name: the change changes the direct result ($before -> $after)");
	for my $round (1, 2)
	{
		my ($got) = outcome($node, $cached, %as);
		is($got, $after, "$name: after the change, cached = direct (call $round)");
	}
}

# ---------------------------------------------------------------- DML

write_path(name => 'INSERT', setup => table('t_ins'), body => agg('t_ins'),
	write => 'INSERT INTO t_ins VALUES (3, 30)');
write_path(name => 'INSERT ... SELECT', setup => table('t_inss'), body => agg('t_inss'),
	write => 'INSERT INTO t_inss SELECT i, i FROM generate_series(1, 100) i');
write_path(name => 'UPDATE', setup => table('t_upd'), body => agg('t_upd'),
	write => 'UPDATE t_upd SET v = v + 1 WHERE k = 1');
write_path(name => 'UPDATE ... FROM (joined)', setup => table('t_updj') . table('t_updj_src'),
	body => agg('t_updj'),
	write => 'UPDATE t_updj SET v = s.v * 5 FROM t_updj_src s WHERE s.k = t_updj.k');
write_path(name => 'DELETE', setup => table('t_del'), body => agg('t_del'),
	write => 'DELETE FROM t_del WHERE k = 1');
write_path(name => 'MERGE', setup => table('t_merge'), body => agg('t_merge'),
	write => q{MERGE INTO t_merge t USING (VALUES (1, 100), (5, 500)) s(k, v) ON t.k = s.k
WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.k, s.v)});
write_path(name => 'MERGE (delete only)', setup => table('t_merged'), body => agg('t_merged'),
	write => q{MERGE INTO t_merged t USING (VALUES (2)) s(k) ON t.k = s.k WHEN MATCHED THEN DELETE});
write_path(name => 'INSERT ON CONFLICT DO UPDATE',
	setup => table('t_ups') . 'ALTER TABLE t_ups ADD PRIMARY KEY (k);',
	body => agg('t_ups'),
	write => 'INSERT INTO t_ups VALUES (1, 111) ON CONFLICT (k) DO UPDATE SET v = excluded.v');
write_path(name => 'INSERT ON CONFLICT DO NOTHING (a new row)',
	setup => table('t_upn') . 'ALTER TABLE t_upn ADD PRIMARY KEY (k);',
	body => agg('t_upn'),
	write => 'INSERT INTO t_upn VALUES (1, 1), (9, 90) ON CONFLICT DO NOTHING');
write_path(name => 'COPY FROM a file', setup => table('t_copy'), body => agg('t_copy'),
	write => "COPY t_copy FROM '$copy_file'");
write_path(name => 'COPY FROM STDIN', setup => table('t_copyin'), body => agg('t_copyin'),
	no_txn => 1, write => "COPY t_copyin FROM STDIN;\n5\t50\n\\.\n");
write_path(name => 'TRUNCATE', setup => table('t_trunc'), body => agg('t_trunc'),
	write => 'TRUNCATE t_trunc');
write_path(name => 'writable CTE', setup => table('t_cte'), body => agg('t_cte'),
	write => 'WITH d AS (DELETE FROM t_cte WHERE k = 1 RETURNING *) SELECT count(*) FROM d');
write_path(name => 'UPDATE through an updatable view',
	setup => table('t_uv') . 'CREATE VIEW t_uv_v AS SELECT * FROM t_uv WHERE k > 0;',
	body => agg('t_uv'), write => 'UPDATE t_uv_v SET v = v + 5');
write_path(name => 'a trigger writes it',
	setup => table('t_trg') . q{
CREATE TABLE t_trg_src (k int);
CREATE FUNCTION t_trg_copy() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO t_trg VALUES (NEW.k, NEW.k * 10); RETURN NEW; END $$;
CREATE TRIGGER t_trg_src_copy AFTER INSERT ON t_trg_src FOR EACH ROW EXECUTE FUNCTION t_trg_copy();},
	body => agg('t_trg'), write => 'INSERT INTO t_trg_src VALUES (4)');
write_path(name => 'a rule writes it',
	setup => table('t_rule') . q{
CREATE TABLE t_rule_src (k int, v int);
CREATE RULE t_rule_also AS ON INSERT TO t_rule_src DO ALSO INSERT INTO t_rule VALUES (NEW.k, NEW.v);},
	body => agg('t_rule'), write => 'INSERT INTO t_rule_src VALUES (6, 60)');
write_path(name => 'dynamic SQL in a DO block', setup => table('t_dyn'), body => agg('t_dyn'),
	write => q{DO $$ BEGIN EXECUTE format('UPDATE %I SET v = v * 2', 't_dyn'); END $$});
write_path(name => 'a procedure that commits between writes',
	setup => table('t_proc') . q{
CREATE PROCEDURE t_proc_fill() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO t_proc VALUES (3, 30);
    COMMIT;
    INSERT INTO t_proc VALUES (4, 40);
END $$;},
	body => agg('t_proc'), no_txn => 1, write => 'CALL t_proc_fill()');
write_path(name => 'a loopback foreign table writes it (postgres_fdw)',
	setup => table('t_fdw') . qq{
CREATE EXTENSION postgres_fdw;
CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '${\ $node->host}', port '${\ $node->port}', dbname 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER loopback;
CREATE FOREIGN TABLE t_fdw_remote (k int, v int) SERVER loopback OPTIONS (table_name 't_fdw');},
	body => agg('t_fdw'), no_txn => 1, write => 'INSERT INTO t_fdw_remote VALUES (3, 30)');

# ---------------------------------------------------------------- foreign keys

my $fk = sub {
	my ($p, $c, $action) = @_;
	return qq{CREATE TABLE $p (id int PRIMARY KEY);
INSERT INTO $p VALUES (1), (2);
CREATE TABLE $c (k int, v int, pid int REFERENCES $p $action);
INSERT INTO $c VALUES (1, 10, 1), (2, 20, 1), (3, 30, 2);};
};
write_path(name => 'FK ON DELETE CASCADE', setup => $fk->('fk1_p', 'fk1_c', 'ON DELETE CASCADE'),
	body => agg('fk1_c'), write => 'DELETE FROM fk1_p WHERE id = 1');
write_path(name => 'FK ON UPDATE CASCADE', setup => $fk->('fk2_p', 'fk2_c', 'ON UPDATE CASCADE'),
	body => q{SELECT string_agg(k || '>' || pid, ',' ORDER BY k) FROM fk2_c},
	write => 'UPDATE fk2_p SET id = 10 WHERE id = 1');
write_path(name => 'FK ON DELETE SET NULL', setup => $fk->('fk3_p', 'fk3_c', 'ON DELETE SET NULL'),
	body => q{SELECT count(pid)::text FROM fk3_c},
	write => 'DELETE FROM fk3_p WHERE id = 2');
write_path(name => 'TRUNCATE ... CASCADE of the referenced table',
	setup => $fk->('fk4_p', 'fk4_c', ''),
	body => agg('fk4_c'), write => 'TRUNCATE fk4_p CASCADE');

# ---------------------------------------------------------------- partitions

my $parts = sub {
	my ($t) = @_;
	return qq{CREATE TABLE $t (k int, v int) PARTITION BY LIST (k);
CREATE TABLE ${t}_1 PARTITION OF $t FOR VALUES IN (1);
CREATE TABLE ${t}_2 PARTITION OF $t FOR VALUES IN (2);
INSERT INTO $t VALUES (1, 10), (2, 20);};
};
write_path(name => 'partitioned: INSERT through the parent', setup => $parts->('pa'),
	body => agg('pa'), write => 'INSERT INTO pa VALUES (1, 5)');
write_path(name => 'partitioned: INSERT directly into a partition', setup => $parts->('pb'),
	body => agg('pb'), write => 'INSERT INTO pb_2 VALUES (2, 7)');
write_path(name => 'partitioned: UPDATE through the parent, function reads one partition',
	setup => $parts->('pc'), body => agg('pc_1'), write => 'UPDATE pc SET v = v + 1');
write_path(name => 'partitioned: UPDATE moves a row to another partition, function reads it',
	setup => $parts->('pd'), body => agg('pd_2'), write => 'UPDATE pd SET k = 2 WHERE k = 1');
write_path(name => 'partitioned: DELETE directly in a partition, function reads the parent',
	setup => $parts->('pe'), body => agg('pe'), write => 'DELETE FROM pe_1');
write_path(name => 'partitioned: TRUNCATE of a partition', setup => $parts->('pf'),
	body => agg('pf'), write => 'TRUNCATE pf_2');
write_path(name => 'partitioned: DETACH PARTITION', setup => $parts->('pg'),
	body => agg('pg'), write => 'ALTER TABLE pg DETACH PARTITION pg_2');
write_path(name => 'partitioned: ATTACH PARTITION',
	setup => $parts->('ph') . 'CREATE TABLE ph_3 (k int, v int); INSERT INTO ph_3 VALUES (3, 30);',
	body => agg('ph'), write => 'ALTER TABLE ph ATTACH PARTITION ph_3 FOR VALUES IN (3)');
write_path(name => 'partitioned: DROP of a partition', setup => $parts->('pi'),
	body => agg('pi'), write => 'DROP TABLE pi_2');
write_path(name => 'sub-partitioned: INSERT into a leaf',
	setup => q{CREATE TABLE pj (k int, v int) PARTITION BY RANGE (k);
CREATE TABLE pj_low PARTITION OF pj FOR VALUES FROM (0) TO (100) PARTITION BY LIST (k);
CREATE TABLE pj_low_1 PARTITION OF pj_low FOR VALUES IN (1);
CREATE TABLE pj_low_2 PARTITION OF pj_low FOR VALUES IN (2);
INSERT INTO pj VALUES (1, 10), (2, 20);},
	body => agg('pj'), write => 'INSERT INTO pj_low_2 VALUES (2, 22)');

# ---------------------------------------------------------------- inheritance

my $inh = sub {
	my ($t) = @_;
	return table($t) . "CREATE TABLE ${t}_c () INHERITS ($t); INSERT INTO ${t}_c VALUES (3, 30);\n";
};
write_path(name => 'inheritance: INSERT directly into the child, function reads the parent',
	setup => $inh->('ia'), body => agg('ia'), write => 'INSERT INTO ia_c VALUES (4, 40)');
write_path(name => 'inheritance: UPDATE through the parent, function reads the child',
	setup => $inh->('ib'), body => agg('ib_c'), write => 'UPDATE ib SET v = v + 1');
write_path(name => 'inheritance: NO INHERIT', setup => $inh->('ic'), body => agg('ic'),
	write => 'ALTER TABLE ic_c NO INHERIT ic');

# ---------------------------------------------------------------- materialized views

write_path(name => 'REFRESH MATERIALIZED VIEW',
	setup => table('mv_base') . 'CREATE MATERIALIZED VIEW mv1 AS SELECT * FROM mv_base;'
	  . 'INSERT INTO mv_base VALUES (3, 30);',
	body => agg('mv1'), write => 'REFRESH MATERIALIZED VIEW mv1');
write_path(name => 'REFRESH MATERIALIZED VIEW CONCURRENTLY',
	setup => table('mv_base2') . 'CREATE MATERIALIZED VIEW mv2 AS SELECT * FROM mv_base2;'
	  . 'CREATE UNIQUE INDEX ON mv2 (k); INSERT INTO mv_base2 VALUES (3, 30);',
	body => agg('mv2'), no_txn => 1, write => 'REFRESH MATERIALIZED VIEW CONCURRENTLY mv2');

# ---------------------------------------------------------------- DDL

write_path(name => 'ALTER TABLE ... ALTER COLUMN TYPE', setup => table('a_type'),
	body => q{SELECT string_agg(v::text, ',' ORDER BY k) FROM a_type},
	write => 'ALTER TABLE a_type ALTER COLUMN v TYPE numeric USING v / 4.0');
write_path(name => 'ALTER TABLE ... ADD COLUMN with a default', setup => table('a_add'),
	body => q{SELECT string_agg(t::text, ',' ORDER BY k) FROM a_add t},
	write => 'ALTER TABLE a_add ADD COLUMN w int DEFAULT 5');
write_path(name => 'ALTER TABLE ... RENAME (two tables swap names)',
	setup => table('a_ren') . 'CREATE TABLE a_ren_new (k int, v int); INSERT INTO a_ren_new VALUES (9, 90);',
	body => agg('a_ren'),
	write => 'ALTER TABLE a_ren RENAME TO a_ren_old; ALTER TABLE a_ren_new RENAME TO a_ren');
write_path(name => 'CREATE OR REPLACE VIEW',
	setup => table('v_base') . 'CREATE VIEW v_view AS SELECT k, v FROM v_base;',
	body => agg('v_view'),
	write => 'CREATE OR REPLACE VIEW v_view AS SELECT k, v * 10 AS v FROM v_base');
write_path(name => 'DROP TABLE (the call then fails)', setup => table('d_gone'),
	body => agg('d_gone'), write => 'DROP TABLE d_gone');
write_path(name => 'DROP TABLE and CREATE TABLE of the same name', setup => table('d_again'),
	body => agg('d_again'),
	write => 'DROP TABLE d_again; CREATE TABLE d_again AS SELECT 9 AS k, 99 AS v');

# ---------------------------------------------------------------- privileges and policies

write_path(name => 'REVOKE SELECT (the call then fails)',
	setup => table('g_rev') . 'GRANT SELECT ON g_rev TO alice;',
	body => agg('g_rev'), role => 'alice', write => 'REVOKE SELECT ON g_rev FROM alice');
write_path(name => 'REVOKE of a column privilege',
	setup => table('g_col') . 'GRANT SELECT (k, v) ON g_col TO alice;',
	body => agg('g_col'), role => 'alice', write => 'REVOKE SELECT (v) ON g_col FROM alice');
write_path(name => 'row-level security enabled with a policy',
	setup => table('r_rls') . 'GRANT SELECT ON r_rls TO alice; CREATE POLICY only_one ON r_rls FOR SELECT TO alice USING (k = 1);',
	body => agg('r_rls'), role => 'alice', write => 'ALTER TABLE r_rls ENABLE ROW LEVEL SECURITY');
write_path(name => 'ALTER POLICY',
	setup => table('r_pol') . 'GRANT SELECT ON r_pol TO alice; ALTER TABLE r_pol ENABLE ROW LEVEL SECURITY;'
	  . 'CREATE POLICY everything ON r_pol FOR SELECT TO alice USING (true);',
	body => agg('r_pol'), role => 'alice', write => 'ALTER POLICY everything ON r_pol USING (k = 2)');

$node->stop;
done_testing();
