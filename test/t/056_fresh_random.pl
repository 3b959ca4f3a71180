# 056_fresh_random.pl: the randomized freshness test of issue 10 for a
# minute (test/scripts/fresh_random.sh; `make bench` runs it longer):
# writer sessions change tables in every way they know while reader
# sessions compare cached calls with direct calls in the same snapshot
# (under locks that keep writers out, under REPEATABLE READ, inside writing
# transactions, and, with no lock, against a function that only grows:
# direct <= cached <= direct).  It passes with 0 differences, no failed
# client, and some hits (a cache that never serves anything proves
# nothing).

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seconds = $ENV{FRESH_RANDOM_SECONDS} // 60;
my $node = cachier_node('main',
	conf => "max_connections = 40\nlog_min_messages = warning\ndeadlock_timeout = 100ms");
my $script = "$FindBin::RealBin/../scripts/fresh_random.sh";

local $ENV{PATH} = $node->config_data('--bindir') . ":$ENV{PATH}";
local $ENV{PGHOST} = $node->host;
local $ENV{PGPORT} = $node->port;
local $ENV{PGDATABASE} = 'postgres';

my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run([ 'bash', $script, $seconds, 3, 4 ], '>', \$stdout, '2>', \$stderr);
note $stdout;
note $stderr if $stderr ne '';
ok($ok, "fresh_random: $seconds s of writers and cached readers, no difference, no failed client")
  or diag $stdout;
my ($checks, $diffs, $hits) =
  $stdout =~ /fresh_random: (\d+) checks .*, (\d+) differences, .* failed transactions, (\d+) hits/;
ok(defined $checks && $checks > 1000, 'fresh_random: more than 1,000 comparisons ran')
  or diag "checks: " . ($checks // 'none');
is($diffs, 0, 'fresh_random: 0 differences between cached and direct results');
ok(defined $hits && $hits > 0, 'fresh_random: the cache served hits under the load');
ok(!$node->log_contains(qr/server process .* was terminated|TRAP:/), 'fresh_random: no backend crashed');

$node->stop;
done_testing();
