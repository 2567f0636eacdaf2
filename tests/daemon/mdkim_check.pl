#!/usr/bin/perl
# mdkim_check.pl - Perl Mail::DKIM's opinion of delivered messages.
#
#   mdkim_check.pl ZONE.json LISTFILE
#
# ZONE.json maps an owner name to its TXT records, each a list of strings
# (dlib.py writes it from the same records unbound serves).  Mail::DKIM
# asks for keys through Mail::DKIM::DNS::query (query_async wraps it); both
# are replaced here by look-ups in that table, so nothing leaves the
# process.  For every file named in LISTFILE one JSON line is printed:
#   {"file":F, "dkim":[{"d":..,"s":..,"result":..,"detail":..}],
#    "arc":"pass|fail|none|...", "arc_detail":.., "error":..}

use strict;
use warnings;
use JSON::PP;
use Net::DNS;
use Mail::DKIM::DNS;
use Mail::DKIM::Verifier;
use Mail::DKIM::ARC::Verifier;

my ($zone_file, $list_file) = @ARGV;
die "usage: $0 ZONE.json LISTFILE\n" unless defined $list_file;

my $zone = do {
    open my $fh, '<:raw', $zone_file or die "$zone_file: $!\n";
    local $/;
    decode_json(<$fh>);
};

{
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ($name, $type) = @_;
        (my $key = lc $name) =~ s/\.\z//;
        my $recs = $zone->{$key};
        unless (uc($type) eq 'TXT' && $recs && @$recs) {
            $@ = 'NXDOMAIN';
            return;
        }
        $@ = 'NOERROR';
        return map {
            Net::DNS::RR->new(name => $key, type => 'TXT', ttl => 300,
                              txtdata => [map { utf8::downgrade(my $c = $_); $c } @$_])
        } @$recs;
    };
    *Mail::DKIM::DNS::query_async = sub {
        my ($name, $type, %args) = @_;
        my $cb = $args{Callbacks} || {};
        my $ok = $cb->{Success} || sub { $_[0] };
        my $err = $cb->{Error} || sub { die $_[0] };
        return sub {
            my @ans = eval { Mail::DKIM::DNS::query($name, $type) };
            return $err->($@) if !@ans && $@ && $@ ne 'NXDOMAIN' && $@ ne 'NOERROR';
            return $ok->(@ans);
        };
    };
}

sub flat { my $s = shift // ''; $s =~ s/\s+/ /g; $s =~ s/^ | $//g; $s }

my $json = JSON::PP->new->canonical(1);
binmode STDOUT;
$| = 1;
open my $list, '<', $list_file or die "$list_file: $!\n";
while (my $file = <$list>) {
    chomp $file;
    next unless length $file;
    my %out = (file => $file, dkim => [], arc => '');
    my $ok = eval {
        open my $in, '<:raw', $file or die "$file: $!\n";
        my $raw = do { local $/; <$in> };
        close $in;

        my $v = Mail::DKIM::Verifier->new();
        $v->PRINT($raw);
        $v->CLOSE();
        for my $sig ($v->signatures) {
            push @{ $out{dkim} }, {
                d => lc($sig->domain // ''), s => ($sig->selector // ''),
                result => ($sig->result // ''), detail => flat($sig->result_detail),
            };
        }

        my $a = Mail::DKIM::ARC::Verifier->new();
        $a->PRINT($raw);
        $a->CLOSE();
        $out{arc} = $a->result // '';
        $out{arc_detail} = flat($a->result_detail);
        1;
    };
    $out{error} = flat($@) unless $ok;
    print $json->encode(\%out), "\n";
}
