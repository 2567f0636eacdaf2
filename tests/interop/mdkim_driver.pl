#!/usr/bin/perl
# mdkim_driver.pl - verify interop messages with Perl Mail::DKIM.
#
# Usage: mdkim_driver.pl ZONEFILE LISTFILE
#
# LISTFILE names one message a line.  Each is verified with
# Mail::DKIM::Verifier in this one process; DNS never leaves it: the TXT
# lookups Mail::DKIM makes through Mail::DKIM::DNS::query (and
# query_async, which calls it) are answered from ZONEFILE.  One JSON line
# per message goes to stdout:
#   {"file":..., "result":..., "detail":...,
#    "sigs":[{"result":..., "detail":..., "d":..., "s":..., "a":...}]}
# Mail::DKIM says "fail (body has been altered)" when bh= does not match
# and "fail (message has been altered)" when the RSA signature decrypts
# to a different digest (Algorithm/Base.pm check_body_hash and
# PublicKey.pm verify_digest).
#
# Mail::DKIM wants CRLF line ends; a message with bare LFs is given CRLF
# here (the harness only feeds LF-only copies that way on purpose).

use strict;
use warnings;
use JSON::PP;
use Net::DNS;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Mail::DKIM::Canonicalization::simple;
use Mail::DKIM::Canonicalization::relaxed;
use Digest::SHA qw(sha256_base64);

my ($zone_path, $list_path) = @ARGV;
die "usage: $0 ZONEFILE LISTFILE\n" unless defined $list_path;

# ---- zone file -------------------------------------------------------------
# name [ttl] [class] TXT "s1" "s2" ..., ';' comments, ( ) across lines.

sub read_zone {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "$path: $!\n";
    local $/;
    my $text = <$fh>;
    close $fh;

    my (%zone, @rec, @tokens);
    my $depth = 0;
    my $flush = sub {
        return unless @rec;
        my @r = @rec;
        @rec = ();
        my ($k, $name) = @{ shift @r };
        die "zone: record without owner name\n" if $k ne 'word';
        while (@r && $r[0][0] eq 'word'
               && ($r[0][1] =~ /^\d+$/ || $r[0][1] =~ /^(IN|CH|HS)$/i)) {
            shift @r;
        }
        die "zone: $name: missing type\n" unless @r && $r[0][0] eq 'word';
        my (undef, $type) = @{ shift @r };
        return unless uc $type eq 'TXT';
        my @strs = map { $_->[1] } grep { $_->[0] eq 'str' } @r;
        die "zone: $name: TXT data must be quoted strings\n" if @strs != @r;
        $name = lc $name;
        $name =~ s/\.$//;
        push @{ $zone{$name} }, \@strs;
    };
    pos($text) = 0;
    while (pos($text) < length $text) {
        if ($text =~ /\G\n/gc) {
            $flush->() if $depth == 0;
        }
        elsif ($text =~ /\G[ \t\r]+/gc) { }
        elsif ($text =~ /\G;[^\n]*/gc) { }
        elsif ($text =~ /\G\(/gc) { $depth++ }
        elsif ($text =~ /\G\)/gc) {
            die "zone: unbalanced )\n" if $depth == 0;
            $depth--;
        }
        elsif ($text =~ /\G"((?:[^"\\]|\\.)*)"/gcs) {
            my $s = $1;
            $s =~ s/\\(\d{3})/chr($1)/ge;
            $s =~ s/\\(.)/$1/gs;
            push @rec, [ 'str', $s ];
        }
        elsif ($text =~ /\G([^ \t\r\n;()"]+)/gc) {
            push @rec, [ 'word', $1 ];
        }
        else {
            die "zone: cannot parse near offset " . pos($text) . "\n";
        }
    }
    die "zone: unbalanced (\n" if $depth;
    $flush->();
    return \%zone;
}

my $ZONE = read_zone($zone_path);

# ---- DNS override ------------------------------------------------------------
{
    no warnings 'redefine';

    *Mail::DKIM::DNS::query = sub {
        my ($domain, $type) = @_;
        my $name = lc $domain;
        $name =~ s/\.$//;
        if (uc $type ne 'TXT' || !$ZONE->{$name}) {
            $@ = 'NXDOMAIN';
            return;
        }
        my @rrs = map {
            Net::DNS::RR->new(name => $name, type => 'TXT', ttl => 300,
                              txtdata => [ @$_ ])
        } @{ $ZONE->{$name} };
        $@ = 'NOERROR';
        return @rrs;
    };

    *Mail::DKIM::DNS::query_async = sub {
        my ($domain, $type, %prms) = @_;
        my $cb = $prms{Callbacks} || {};
        my $ok = $cb->{Success} || sub { $_[0] };
        my $err = $cb->{Error} || sub { die $_[0] };
        return sub {
            my @resp = eval { Mail::DKIM::DNS::query($domain, $type) };
            return $err->($@) if !@resp && $@ && $@ ne 'NXDOMAIN' && $@ ne 'NOERROR';
            return $ok->(@resp);
        };
    };
}

# ---- Mail::DKIM's own body canonicalization --------------------------------
# The body hash Mail::DKIM computes for a signature (its c= body method and
# its l=), fed the way Mail::DKIM::MessageParser feeds it: everything up to
# the last CRLF, then the unterminated rest.  The harness compares it with
# its RFC 6376 reference to tell a Mail::DKIM canonicalization quirk from a
# signer bug.

sub own_body_hash {
    my ($sig, $body) = @_;
    my $method = ($sig->canonicalization)[1] // 'simple';
    my $class = $method eq 'relaxed' ? 'Mail::DKIM::Canonicalization::relaxed'
              : $method eq 'simple'  ? 'Mail::DKIM::Canonicalization::simple'
              : return '';
    my $canon = $class->new(Signature => $sig);
    my $j = rindex($body, "\015\012");
    if ($j >= 0) {
        $canon->add_body(substr($body, 0, $j + 2));
        $body = substr($body, $j + 2);
    }
    $canon->add_body($body) if $body ne '';
    $canon->finish_body;
    my $b64 = sha256_base64($canon->result);
    $b64 .= '=' while length($b64) % 4;
    return $b64;
}

sub message_body {
    my ($data) = @_;
    return substr($data, 2) if substr($data, 0, 2) eq "\015\012";
    my $i = index($data, "\015\012\015\012");
    return '' if $i < 0;
    return substr($data, $i + 4);
}

# ---- verification --------------------------------------------------------------
my $json = JSON::PP->new->canonical(1);
open my $list, '<', $list_path or die "$list_path: $!\n";
binmode STDOUT;
$| = 1;
while (my $path = <$list>) {
    chomp $path;
    next if $path eq '';
    my %out = (file => $path);
    my $ok = eval {
        open my $fh, '<:raw', $path or die "$path: $!\n";
        my $data = do { local $/; <$fh> };
        close $fh;
        $data =~ s/(?<!\r)\n/\r\n/g;
        my $v = Mail::DKIM::Verifier->new();
        $v->PRINT($data);
        $v->CLOSE;
        $out{result} = $v->result;
        $out{detail} = $v->result_detail;
        my $body = message_body($data);
        $out{sigs} = [
            map {
                my $sig = $_;
                my $bh = eval { own_body_hash($sig, $body) } // '';
                {
                    result => $sig->result // '',
                    detail => $sig->result_detail // '',
                    d      => $sig->domain // '',
                    s      => $sig->selector // '',
                    a      => $sig->algorithm // '',
                    bh_computed => $bh,
                }
            } $v->signatures
        ];
        1;
    };
    if (!$ok) {
        my $e = $@;
        chomp $e;
        $out{result} = 'error';
        $out{detail} = $e;
        $out{sigs} = [];
    }
    print $json->encode(\%out), "\n";
}
close $list;
