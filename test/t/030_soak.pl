# 030_soak.pl: the short version of the soak (issue 9): 20 seconds of
# hits, misses that store, temporary-table churn, invalidations, background
# refreshes and cleanups from 8 clients (test/scripts/soak.sh; `make bench`
# runs it for 10 minutes).  It passes when no client gets an error, no
# backend's private memory grows by more than 2 MB, hits use no transaction
# IDs and the server log shows no crash.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use CachierTest qw(cachier_node);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = cachier_node('main', conf => "max_connections = 40\nlog_min_messages = warning");
my $script = "$FindBin::RealBin/../scripts/soak.sh";

local $ENV{PATH} = $node->config_data('--bindir') . ":$ENV{PATH}";
local $ENV{PGHOST} = $node->host;
local $ENV{PGPORT} = $node->port;
local $ENV{PGDATABASE} = 'postgres';
local $ENV{SOAK_LOG} = $node->logfile;
local $ENV{SOAK_MAX_GROWTH_KB} = 2048;

my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run([ 'bash', $script, '20' ], '>', \$stdout, '2>', \$stderr);
note $stdout;
note $stderr if $stderr ne '';
ok($ok, 'soak: 20 s of mixed load: no client error, bounded memory, no XID per hit, no crash')
  or diag $stdout;
like($stdout, qr/soak: .* 0 failed, 0 client errors/, 'soak: the clients got no error');

done_testing();
