# 012_backend_memory.pl: what a backend knows about cached functions stays
# bounded and right under catalog churn (issue 9, item 2).
#  1. a session that has called a few cached functions runs 2,000 CREATE
#     TEMP TABLE / DROP cycles of its own and 1,500 of another session's,
#     calling the functions in between: CacheMemoryContext (and its
#     children) grows by less than 200 kB, and so it does over 700 ALTER
#     FUNCTION of the cached functions (each one read again);
#  2. a cached function that calls itself through its wrapper, creating a
#     temp table and altering itself (so the inner call prepares again while
#     the outer one runs), returns the right values;
#  3. after CREATE OR REPLACE FUNCTION and ALTER FUNCTION ... SET, in another
#     session and in the same one, the old entries are misses and the
#     wrapper returns the new function's value.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node counting_setup session);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('main');
$node->safe_psql(
	'postgres', counting_setup() . q{
CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql
    AS $$ SELECT x + 1 + 0 * nextval('calls')::int
              + coalesce(nullif(current_setting('memtest.k', true), '')::int, 0) $$;
CREATE FUNCTION g(t text) RETURNS text LANGUAGE sql
    AS $$ SELECT upper(t) $$;
CREATE FUNCTION h(a int, b numeric) RETURNS numeric LANGUAGE sql
    AS $$ SELECT a * b $$;
SELECT cachier_memoize('f(int)');
SELECT cachier_memoize('g(text)');
SELECT cachier_memoize('h(int,numeric)');
-- fact calls itself through its wrapper; each level creates a temp table
-- and alters fact (COST does not change what it returns), so the inner
-- call finds fact changed and prepares again while the outer call runs
CREATE FUNCTION fact(n int) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TEMP TABLE fact_%s (x int)', n);
    EXECUTE format('ALTER FUNCTION fact(int) COST %s', 100 + n);
    IF n <= 1 THEN
        RETURN 1;
    END IF;
    RETURN n * fact_cached(n - 1);
END $$;
SELECT cachier_memoize('fact(int)');
});

my $calls = q{SELECT f_cached(1), g_cached('a'), h_cached(2, 1.5);};
my $cache_bytes = q{
SELECT sum(total_bytes) FROM pg_backend_memory_contexts
 WHERE name = 'CacheMemoryContext' OR parent = 'CacheMemoryContext';};

my ($a) = session($node);
my ($b) = session($node);

# ------------------------------------------------------------ 1. memory

my $temp_cycle = q{CREATE TEMP TABLE churn (x int); DROP TABLE churn;};

# warm up: first-time allocations of the session and of its temp schema
$a->query_safe(($temp_cycle . $calls) x 50);
is($a->query_safe($calls), '2|A|3.0', 'the cached functions return their values');
my $before = $a->query_safe($cache_bytes);

# the session's own cycles, each in its own transaction, with calls between
$a->query_safe(($temp_cycle . $calls) x 2000);
# another session's cycles, with calls of the first session between
for my $round (1 .. 300)
{
	$b->query_safe($temp_cycle x 5);
	$a->query_safe($calls);
}
is($a->query_safe($calls), '2|A|3.0', 'the values are the same after the churn');
my $after = $a->query_safe($cache_bytes);
my $growth = $after - $before;
note("CacheMemoryContext and children: $before bytes before, $after after "
	  . "3,500 temp-table cycles (growth $growth bytes)");
cmp_ok($growth, '<', 200 * 1024,
	'CacheMemoryContext grows by less than 200 kB over 3,500 temp-table cycles');

# changes of a cached function itself: the entry is read again each time,
# and what it replaced is freed
$before = $a->query_safe($cache_bytes);
$a->query_safe(
	join('', map { "ALTER FUNCTION h(int,numeric) COST $_; $calls" } 101 .. 600));
for my $cost (601 .. 800)
{
	$b->query_safe("ALTER FUNCTION g(text) COST $cost");
	$a->query_safe($calls);
}
is($a->query_safe($calls), '2|A|3.0', 'the values are the same after the changes');
$after = $a->query_safe($cache_bytes);
$growth = $after - $before;
note("CacheMemoryContext and children: $before bytes before, $after after "
	  . "700 changes of cached functions (growth $growth bytes)");
cmp_ok($growth, '<', 200 * 1024,
	'CacheMemoryContext grows by less than 200 kB over 700 changes of cached functions');

# ------------------------------------------------------------ 2. recursion

is($a->query_safe('SELECT fact_cached(6)'), '720',
	'a cached function calling itself while it changes computes 6! = 720');
is($a->query_safe('SELECT fact_cached(6), fact_cached(4)'), '720|24',
	'and serves its results afterwards');
$a->query_safe('DISCARD TEMP');

# ------------------------------------------------------------ 3. new definitions

is($a->query_safe('SELECT f_cached(1), executions()'), '2|1',
	'f(1) was computed once and is served from the cache');
$b->query_safe(q{
CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql
    AS $$ SELECT x + 100 + 0 * nextval('calls')::int
              + coalesce(nullif(current_setting('memtest.k', true), '')::int, 0) $$;});
is($a->query_safe('SELECT f_cached(1), executions()'), '101|2',
	'after CREATE OR REPLACE in another session: a miss, the new value');
is($a->query_safe('SELECT f_cached(1), executions()'), '101|2',
	'then a hit');
$b->query_safe(q{ALTER FUNCTION f(int) SET memtest.k = '7'});
is($a->query_safe('SELECT f_cached(1), executions()'), '108|3',
	'after ALTER FUNCTION ... SET in another session: a miss, the new value');
$a->query_safe(q{ALTER FUNCTION f(int) RESET memtest.k});
# the ddl_end trigger removed the entries of f: the older definition again
# is a miss too
is($a->query_safe('SELECT f_cached(1), executions()'), '101|4',
	'after ALTER FUNCTION ... RESET in the same session: a miss, the older value');
$a->query_safe(q{
CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql
    AS $$ SELECT x + 1000 + 0 * nextval('calls')::int $$;});
is($a->query_safe('SELECT f_cached(1), executions()'), '1001|5',
	'after CREATE OR REPLACE in the same session: a miss, the new value');
# a and b have made temporary tables, so their entries of f (which does
# not pin its search_path) are their own (README, Security model); two
# sessions without a temporary schema share one
my ($c) = session($node);
my ($d) = session($node);
is($c->query_safe('SELECT f_cached(1), executions()'), '1001|6',
	'a session without a temporary schema computes the new definition once');
is($d->query_safe('SELECT f_cached(1), executions()'), '1001|6',
	'and another such session is served that entry');
$c->quit;
$d->quit;
$b->query_safe(q{ALTER FUNCTION g(text) RENAME TO g2});
is($a->query_safe(q{SELECT g_cached('b')}), 'B',
	'a renamed function is still called by its wrapper');

$a->quit;
$b->quit;
done_testing();
