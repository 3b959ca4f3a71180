# RedisServer.pm: a throwaway redis-server for cachier's TAP tests, and a
# tiny binary-safe client for it.
#
#   my $redis = RedisServer->new('main');                # a free port
#   my $redis = RedisServer->new('auth', password => 'sekret');
#   $redis->url;                 # redis://[:password@]127.0.0.1:<port>
#   $redis->command('SET', $key, $bytes);    # RESP over a socket
#   $redis->keys('cachier:*');   # sorted key names
#   $redis->kill9; $redis->start;             # an outage, same port
#   $redis->stop;                # also done at exit for every server
#
# The server runs in the foreground under IPC::Run (no persistence,
# 127.0.0.1 only, DEBUG allowed from local connections) with its data and
# log in a directory under tmp_check.  Replies: a string for +status,
# :integer and $bulk replies, undef for a nil, an array reference for
# *arrays and { error => 'text' } for -error replies.

package RedisServer;

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time usleep);

my @servers;

sub new
{
	my ($class, $name, %params) = @_;
	my $self = bless {
		name => $name,
		port => $params{port} // PostgreSQL::Test::Cluster::get_free_port(),
		password => $params{password},
		dir => "$PostgreSQL::Test::Utils::tmp_check/redis_$name",
		# a unix socket path must be short: keep it out of tmp_check
		socket => PostgreSQL::Test::Utils::tempdir_short() . "/redis.sock",
	}, $class;
	mkdir $self->{dir};
	push @servers, $self;
	$self->start;
	return $self;
}

sub port { return $_[0]->{port}; }
sub socket_path { return $_[0]->{socket}; }
sub logfile { return "$_[0]->{dir}/redis.log"; }

# The URL for cachier.redis_url; password => 'x' overrides the server's.
sub url
{
	my ($self, %params) = @_;
	my $password = exists $params{password} ? $params{password} : $self->{password};
	my $auth = defined $password ? ":$password@" : '';
	$auth = "$params{user}:$password@" if defined $params{user};
	my $db = defined $params{db} ? "/$params{db}" : '';
	return "redis://${auth}127.0.0.1:$self->{port}$db";
}

sub start
{
	my ($self) = @_;
	my @cmd = (
		'redis-server', '--port', $self->{port}, '--bind', '127.0.0.1',
		'--unixsocket', $self->{socket}, '--unixsocketperm', '700',
		'--save', '', '--appendonly', 'no', '--daemonize', 'no',
		'--dir', $self->{dir}, '--enable-debug-command', 'local');
	push @cmd, '--requirepass', $self->{password} if defined $self->{password};
	$self->{sock} = undef;
	$self->{harness} = IPC::Run::start(\@cmd, '<', \undef, '>>', $self->logfile,
		'2>&1');
	# ready when it answers
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		my $reply = eval { $self->command('PING') };
		return if defined $reply && !ref $reply && $reply eq 'PONG';
		$self->{sock} = undef;
		usleep(50_000);
	}
	die "redis-server $self->{name} did not start; see " . $self->logfile;
}

# SIGKILL: an outage as abrupt as they come.
sub kill9
{
	my ($self) = @_;
	return unless $self->{harness};
	$self->{harness}->signal('KILL');
	eval { $self->{harness}->finish; };
	$self->{harness} = undef;
	$self->{sock} = undef;
}

sub stop
{
	my ($self) = @_;
	return unless $self->{harness};
	$self->{harness}->kill_kill(grace => 5);
	$self->{harness} = undef;
	$self->{sock} = undef;
}

# ---------------------------------------------------------------- client

sub _connect
{
	my ($self) = @_;
	my $sock = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $self->{port},
		Proto => 'tcp',
		Timeout => 10) or die "cannot connect to redis-server: $!";
	binmode $sock;
	$self->{sock} = $sock;
	if (defined $self->{password})
	{
		my $reply = $self->command('AUTH', $self->{password});
		die "AUTH failed: $reply->{error}" if ref $reply eq 'HASH';
	}
	return $sock;
}

sub _read_line
{
	my ($sock) = @_;
	local $/ = "\r\n";
	my $line = <$sock>;
	die "redis-server closed the connection" unless defined $line;
	chomp $line;
	return $line;
}

sub _read_reply
{
	my ($sock) = @_;
	my $line = _read_line($sock);
	my ($type, $rest) = (substr($line, 0, 1), substr($line, 1));
	return $rest if $type eq '+' || $type eq ':';
	return { error => $rest } if $type eq '-';
	if ($type eq '$')
	{
		return undef if $rest < 0;
		my $data = '';
		while (length($data) < $rest + 2)
		{
			my $n = read($sock, $data, $rest + 2 - length($data), length($data));
			die "redis-server closed the connection" unless $n;
		}
		return substr($data, 0, $rest);
	}
	if ($type eq '*')
	{
		return undef if $rest < 0;
		return [ map { _read_reply($sock) } 1 .. $rest ];
	}
	die "unexpected reply from redis-server: $line";
}

# One command, arguments as byte strings; its reply (see the top).
sub command
{
	my ($self, @args) = @_;
	my $sock = $self->{sock} // $self->_connect;
	my $request = '*' . scalar(@args) . "\r\n";
	foreach my $arg (@args)
	{
		utf8::downgrade($arg);
		$request .= '$' . length($arg) . "\r\n$arg\r\n";
	}
	print $sock $request;
	$sock->flush;
	return _read_reply($sock);
}

# Whether the server does not answer a PING within 200 ms on a new
# connection (busy, e.g. in DEBUG SLEEP).
sub unresponsive
{
	my ($self) = @_;
	my $sock = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $self->{port},
		Proto => 'tcp',
		Timeout => 10) or die "cannot connect to redis-server: $!";
	if (defined $self->{password})
	{
		print $sock "*2\r\n\$4\r\nAUTH\r\n\$" . length($self->{password})
		  . "\r\n$self->{password}\r\n";
	}
	print $sock "*1\r\n\$4\r\nPING\r\n";
	$sock->flush;
	my $answered = IO::Select->new($sock)->can_read(0.2);
	close $sock;
	return !$answered;
}

# The names of the keys matching a glob pattern, sorted (how many in
# scalar context).
sub keys
{
	my ($self, $pattern) = @_;
	my @keys = sort @{ $self->command('KEYS', $pattern) };
	return wantarray ? @keys : scalar @keys;
}

END
{
	local $?;
	foreach my $server (@servers)
	{
		eval { $server->stop; };
	}
}

1;
