#!/usr/bin/perl
# dns-delay.pl [LISTEN_ADDR:]LISTEN_PORT UPSTREAM_PORT DELAY_MS
# A UDP DNS relay on 127.0.0.1 (or LISTEN_ADDR, another loopback address,
# e.g. 127.53.0.1:53 for a resolver that only speaks to port 53) that
# answers every query DELAY_MS late: the
# answer comes from the upstream server on 127.0.0.1, held back before it is
# sent on. For benchmarks of a DNSBL that is slow but alive. Runs until killed.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);

my ($listen_port, $up_port, $delay_ms) = @ARGV;
die "usage: dns-delay.pl [LISTEN_ADDR:]LISTEN_PORT UPSTREAM_PORT DELAY_MS\n" unless defined $delay_ms;
$listen_port = "127.0.0.1:$listen_port" unless $listen_port =~ /:/;
my $front = IO::Socket::INET->new(LocalAddr => $listen_port, Proto => 'udp')
	or die "listen: $!\n";
my $back = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$up_port", Proto => 'udp')
	or die "upstream: $!\n";
my $sel = IO::Select->new($front, $back);
my %client;   # query id => [peer address, time]
my @held;     # [due, peer, packet]
$| = 1;
while (1) {
	my $wait = @held ? $held[0][0] - time : 1;
	$wait = 0 if $wait < 0;
	for my $fh ($sel->can_read($wait)) {
		my $pkt;
		my $peer = $fh->recv($pkt, 65535) // next;
		next if length($pkt) < 2;
		my $id = unpack('n', $pkt);
		if ($fh == $front) {
			$client{$id} = $peer;
			$back->send($pkt);
		} elsif (exists $client{$id}) {
			push @held, [time + $delay_ms / 1000, delete $client{$id}, $pkt];
		}
	}
	while (@held && $held[0][0] <= time) {
		my ($due, $peer, $pkt) = @{shift @held};
		$front->send($pkt, 0, $peer);
	}
}
