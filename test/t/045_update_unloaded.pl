# 045_update_unloaded.pl: ALTER EXTENSION cachier UPDATE keeps the DBA's
# privileges and views also in a session (and a server) where cachier's
# library was not loaded before the command.  Then the update scripts
# themselves record what to keep (cachier.keep_user_objects()) and it is
# restored when the transaction commits.  sql/update_keeps.sql covers the
# other path, with the library preloaded.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('unloaded');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE reader;
CREATE EXTENSION cachier VERSION '0.3';
GRANT SELECT ON cachier_entries TO reader;
REVOKE EXECUTE ON FUNCTION cachier_memoize(regprocedure, interval, boolean,
    interval, boolean, text, boolean, interval, boolean, text, text) FROM PUBLIC;
CREATE VIEW my_entries AS SELECT function, key FROM cachier_entries;
GRANT SELECT ON my_entries TO reader;
});

# a new session: nothing of cachier's is loaded yet
is($node->safe_psql('postgres', q{
SELECT count(*) FROM pg_catalog.pg_settings WHERE name LIKE 'cachier.%'}),
	'0', 'the library is not loaded in a new session');

$node->safe_psql('postgres', 'ALTER EXTENSION cachier UPDATE');

is($node->safe_psql('postgres',
	"SELECT extversion FROM pg_extension WHERE extname = 'cachier'"),
	'0.5', 'updated to 0.5');
is($node->safe_psql('postgres', q{
SELECT has_table_privilege('reader', 'cachier_entries', 'SELECT'),
       has_table_privilege('reader', 'my_entries', 'SELECT'),
       bool_and(NOT has_function_privilege('reader', p.oid, 'EXECUTE'))
  FROM pg_proc p WHERE p.proname = 'cachier_memoize'}),
	't|t|t', 'grants, the revoke and the dependent view are kept');
is($node->safe_psql('postgres', 'SELECT count(*) FROM my_entries'), '0',
	'the dependent view works');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM pg_depend
 WHERE classid = 'pg_class'::regclass AND objid = 'my_entries'::regclass
   AND deptype = 'e'}), '0', 'the view did not become part of the extension');

$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/server process .* was terminated by signal/, 'no backend crashed');

done_testing();
