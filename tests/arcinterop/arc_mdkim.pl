#!/usr/bin/perl
# arc_mdkim.pl - check ARC chains with Perl Mail::DKIM::ARC::Verifier.
#
# Usage: arc_mdkim.pl ZONE.json LISTFILE
#
# ZONE.json is {"owner name": [["string", ...], ...], ...}: every TXT record
# the run publishes, written by arc_harness.py from zone.txt so that this
# script and the Python side read exactly the same records.  LISTFILE names
# one message a line.  All messages are checked in this one process, and no
# DNS query leaves it: Mail::DKIM::DNS::query and ::query_async, through
# which Mail::DKIM fetches keys, are replaced by look-ups in ZONE.json.
#
# One JSON line per message goes to stdout:
#   {"file": ..., "result": "pass|fail|invalid|none|error", "detail": ...,
#    "sets": [{"type": "as"|"ams", "i": N, "d": ..., "result": ...,
#              "detail": ...}, ...]}

use strict;
use warnings;
use JSON::PP;
use Net::DNS;
use Mail::DKIM::DNS;
use Mail::DKIM::ARC::Verifier;

my ($zone_json, $list_path) = @ARGV;
die "usage: $0 ZONE.json LISTFILE\n" unless defined $list_path;

my $records = do {
    open my $fh, '<:raw', $zone_json or die "$zone_json: $!\n";
    local $/;
    my $text = <$fh>;
    close $fh;
    JSON::PP->new->decode($text);
};

{
    no warnings 'redefine';

    # Answer TXT questions from the table; anything else does not exist.
    *Mail::DKIM::DNS::query = sub {
        my ($qname, $qtype) = @_;
        my $key = lc $qname;
        $key =~ s/\.\z//;
        my $found = $records->{$key};
        if (uc($qtype) ne 'TXT' || !$found || !@$found) {
            $@ = 'NXDOMAIN';
            return;
        }
        $@ = 'NOERROR';
        return map {
            Net::DNS::RR->new(name => $key, type => 'TXT', ttl => 60,
                              txtdata => [@$_])
        } @$found;
    };

    # The asynchronous form hands back a closure that, when called, runs
    # the synchronous look-up above and passes its answer to the caller's
    # Success (or Error) callback.
    *Mail::DKIM::DNS::query_async = sub {
        my ($qname, $qtype, %args) = @_;
        my $callbacks = $args{Callbacks} || {};
        my $on_ok = $callbacks->{Success} || sub { return $_[0] };
        my $on_err = $callbacks->{Error} || sub { die $_[0] };
        return sub {
            my @answer = eval { Mail::DKIM::DNS::query($qname, $qtype) };
            if (!@answer && $@ && $@ ne 'NXDOMAIN' && $@ ne 'NOERROR') {
                return $on_err->($@);
            }
            return $on_ok->(@answer);
        };
    };
}

sub one_line {
    my ($s) = @_;
    $s = '' unless defined $s;
    $s =~ s/\s+/ /g;
    $s =~ s/ \z//;
    return $s;
}

my $json = JSON::PP->new->canonical(1);
binmode STDOUT;
$| = 1;

open my $list, '<', $list_path or die "$list_path: $!\n";
while (my $file = <$list>) {
    chomp $file;
    next if $file eq '';
    my %rec = (file => $file);
    my $ok = eval {
        open my $in, '<:raw', $file or die "$file: $!\n";
        my $raw = do { local $/; <$in> };
        close $in;
        my $arc = Mail::DKIM::ARC::Verifier->new();
        $arc->PRINT($raw);
        $arc->CLOSE();
        $rec{result} = $arc->result;
        $rec{detail} = one_line($arc->result_detail);
        my @sets;
        for my $sig ($arc->signatures) {
            push @sets, {
                type => ($sig->isa('Mail::DKIM::ARC::Seal') ? 'as' : 'ams'),
                i => ($sig->instance // ''),
                d => ($sig->domain // ''),
                result => ($sig->result // ''),
                detail => one_line($sig->result_detail),
            };
        }
        $rec{sets} = \@sets;
        1;
    };
    unless ($ok) {
        $rec{result} = 'error';
        $rec{detail} = one_line($@);
        $rec{sets} = [];
    }
    print $json->encode(\%rec), "\n";
}
close $list;
