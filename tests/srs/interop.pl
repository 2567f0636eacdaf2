#!/usr/bin/perl
# interop.pl - policy/srs.c (through srs_tool) against Perl's Mail::SRS
# 0.31 (Debian libmail-srs-perl), Mail::SRS::Guarded with the defaults.
#
# Usage: interop.pl SRS_TOOL
#
# Mail::SRS reads the clock with time(); it is overridden below before the
# module is loaded, so both sides work at the same fixed instants and the
# forward results can be compared byte for byte. For ~50 generated
# senders (plain, odd local parts, other forwarders' SRS0 and SRS1,
# SMTPUTF8), at a different day each:
#   - our forward equals Mail::SRS's;
#   - Mail::SRS reverses ours, we reverse Mail::SRS's, to the same result;
#   - both still reverse the case-smashed address, 21 days later too;
#   - both refuse it a day after max_age (SRS0), and with one hash
#     character changed.
# Then rotation, other Mail::SRS parameters we must read (separator '+',
# HashLength 8), our own domain, junk, and each difference listed in
# README.md, asserted as the README states it.
# The last line is "N passed, M failed"; exit status 0 only if none failed.
use strict;
use warnings;

our $NOW;
BEGIN {
	*CORE::GLOBAL::time = sub () {
		return defined $main::NOW ? $main::NOW : CORE::time();
	};
}

my $DOMAIN = 'fwd.example.net';
my $SECRET = 'interop-secret';
my $DAY = 86400;
my ($passed, $failed) = (0, 0);

@ARGV == 1 or die "usage: $0 SRS_TOOL\n";
my $TOOL = $ARGV[0];

unless (eval { require Mail::SRS::Guarded; 1 }) {
	print STDERR "srs_interop: Mail::SRS missing (libmail-srs-perl): $@";
	print "0 passed, 1 failed\n";
	exit 1;
}

# tool - run srs_tool; its one output line (result or rc name).
sub tool {
	my ($op, $secret, $now, $addr) = @_;
	open(my $fh, '-|', $TOOL, $op, $secret, $DOMAIN, $now, $addr)
	    or die "cannot run $TOOL: $!";
	my $out = <$fh>;
	close($fh);
	die "$TOOL died (status $?)\n" if ($? >> 8) > 1 || ($? & 127);
	$out = '' unless defined $out;
	chomp $out;
	return $out;
}

# perl_do - a Mail::SRS call at time $now; its result, or "ERR reason".
sub perl_do {
	my ($now, $code) = @_;
	local $NOW = $now;
	local $SIG{__WARN__} = sub { };	# "Someone smashed case", undef
	my $r = eval { $code->() };
	if (!defined $r) {
		(my $e = $@ || 'undef') =~ s/ at \S+ line \d+.*//s;
		return "ERR $e";
	}
	return $r;
}

# check - count and report one comparison.
sub check {
	my ($what, $got, $want) = @_;
	if ($got eq $want) {
		$passed++;
		return 1;
	}
	$failed++;
	print "FAIL $what\n  got:  $got\n  want: $want\n";
	return 0;
}

# fails - both sides refused: Perl died, and ours gives an rc name.
sub fails {
	my ($what, $perl, $ours, $want_rc) = @_;
	check("$what: Mail::SRS refuses", $perl =~ /^ERR/ ? 'ERR' : $perl,
	    'ERR');
	check("$what: srs_tool refuses", $ours, $want_rc);
}

sub guarded {
	return Mail::SRS::Guarded->new(Secret => $SECRET, MaxAge => 21,
	    HashLength => 4, AlwaysRewrite => 1, @_);
}

my $srs = guarded();

# ----------------------------------------------------- the sender list

srand(20040601);
my @uchars = ('a'..'z', 'A'..'Z', '0'..'9', split(//, ".=+-_/!#\$%&'*^`{|}~"));
my @hchars = ('a'..'z', '0'..'9', '-');

sub pick { return $_[int(rand(@_))] }
sub word {
	my ($chars, $min, $max) = @_;
	my $n = $min + int(rand($max - $min + 1));
	return join('', map { pick(@$chars) } 1 .. $n);
}
sub host {
	my @l = map { word(\@hchars, 1, 10) } 1 .. 1 + int(rand(3));
	$_ = "x$_" for grep { /^-/ } @l;
	return join('.', @l, pick(qw(com org net example EXAMPLE Test)));
}

my @senders = (
	'user@example.com', 'Alice.Smith@Example.COM', 'a=b@example.org',
	'a+tag@example.org', 'a=b+c=d@sub.example.net', '=@example.com',
	'==x==@example.com', 'root@[192.0.2.1]',
	"j\xc3\xb6rg\@b\xc3\xbccher.example",
	'SRS2=x@example.com', 'SRS0x@example.com',
);
push(@senders, word(\@uchars, 1, 30) . '@' . host()) for 1 .. 26;

# Other forwarders' addresses, made by Mail::SRS with other secrets.
my $first = guarded(Secret => 'first-hop-secret');
my $plus = guarded(Secret => 'plus-hop-secret', Separator => '+');
my $second = guarded(Secret => 'second-hop-secret');
for my $i (1 .. 4) {
	my $orig = word(\@uchars, 1, 12) . '@' . host();
	my $t = 1600000000 + $i * 7 * $DAY;
	my $s0 = perl_do($t, sub { $first->forward($orig, "hop$i.example") });
	my $p0 = perl_do($t, sub { $plus->forward($orig, "plus$i.example") });
	push(@senders, $s0, lc $s0, $p0,
	    perl_do($t, sub { $second->forward($s0, "two$i.example") }),
	    perl_do($t, sub { $second->forward($p0, "two$i.example") }));
}
# An SRS1 whose hash we cannot check (Guarded does not either).
push(@senders, 'SRS1=xxxx=hop.example==ABCD=G3=orig.example=bob@two.example');

# srs_tool's reasons (stderr) are not compared; keep them out of the log.
open(STDERR, '>', '/dev/null') or die "/dev/null: $!";
print scalar(@senders), " senders\n";
print "  $_\n" for $ENV{SRS_INTEROP_VERBOSE} ? @senders : ();

# --------------------------------------------------- per-sender checks

my $i = 0;
for my $s (@senders) {
	my $t = 1700000000 + $i * 37 * $DAY + $i * 977;
	$i++;
	my $tag = "#$i <$s>";

	my $pf = perl_do($t, sub { $srs->forward($s, $DOMAIN) });
	my $of = tool('forward', $SECRET, $t, $s);
	check("$tag: forward", $of, $pf) or next;

	my $is0 = $of =~ /^SRS0=/;
	my $pr = perl_do($t, sub { $srs->reverse($of) });
	my $or = tool('reverse', $SECRET, $t, $of);
	check("$tag: reverse of ours", $or, $pr);
	check("$tag: reverse of Mail::SRS's", tool('reverse', $SECRET, $t, $pf),
	    $pr);
	check("$tag: SRS0 reverses to the sender", $or, $s) if $is0;

	my $late = $t + 21 * $DAY;
	check("$tag: 21 days later, ours", tool('reverse', $SECRET, $late, $of),
	    $pr);
	check("$tag: 21 days later, Mail::SRS",
	    perl_do($late, sub { $srs->reverse($of) }), $pr);

	my $up = uc $of;
	check("$tag: case smashed", tool('reverse', $SECRET, $t, $up),
	    perl_do($t, sub { $srs->reverse($up) }));

	if ($is0) {
		my $t22 = $t + 22 * $DAY;
		fails("$tag: 22 days later",
		    perl_do($t22, sub { $srs->reverse($of) }),
		    tool('reverse', $SECRET, $t22, $of), 'expired');
	}
	(my $forged = $of) =~ s/^(SRS.=.)(.)/$1 . (lc $2 eq 'q' ? 'R' : 'Q')/e;
	fails("$tag: forged hash", perl_do($t, sub { $srs->reverse($forged) }),
	    tool('reverse', $SECRET, $t, $forged), 'bad-hash');
}

# ---------------------------------------------------------- other cases

my $t = 1712345678;

# Rotation both ways: the old secret listed second still verifies.
{
	my $rot = guarded(Secret => ['new-secret', 'old-secret']);
	my $old = guarded(Secret => 'old-secret');
	my $ours = tool('forward', 'old-secret', $t, 'rot@example.com');
	check('rotation: Mail::SRS [new, old] reverses ours made with old',
	    perl_do($t, sub { $rot->reverse($ours) }), 'rot@example.com');
	my $theirs = perl_do($t, sub { $old->forward('rot@example.com',
	    $DOMAIN) });
	check('rotation: we reverse with new,old what Mail::SRS made with old',
	    tool('reverse', 'new-secret,old-secret', $t, $theirs),
	    'rot@example.com');
	check('rotation: new alone refuses it',
	    tool('reverse', 'new-secret', $t, $theirs), 'bad-hash');
	check('rotation: the first secret signs',
	    tool('forward', 'new-secret,old-secret', $t, 'rot@example.com'),
	    perl_do($t, sub { $rot->forward('rot@example.com', $DOMAIN) }));
}

# Parameters other Mail::SRS installations may use with our secret.
for my $opts ([Separator => '+'], [Separator => '-'], [HashLength => 8],
    [HashLength => 27]) {
	my $o = guarded(@$opts);
	my $a = perl_do($t, sub { $o->forward('opt@example.com', $DOMAIN) });
	check("Mail::SRS @$opts: we reverse $a",
	    tool('reverse', $SECRET, $t, $a), 'opt@example.com');
	my $a1 = perl_do($t, sub { $o->forward(
	    'SRS0=abcd=G3=orig.example=bob@hop.example', $DOMAIN) });
	check("Mail::SRS @$opts: we reverse $a1",
	    tool('reverse', $SECRET, $t, $a1),
	    'SRS0=abcd=G3=orig.example=bob@hop.example');
}

# Our own domain: unchanged, as Mail::SRS without AlwaysRewrite.
{
	my $plain = Mail::SRS::Guarded->new(Secret => $SECRET);
	for my $s ('user@' . $DOMAIN, 'SRS0=abcd=G3=x.example=y@FWD.example.NET') {
		check("own domain <$s>", tool('forward', $SECRET, $t, $s),
		    perl_do($t, sub { $plain->forward($s, $DOMAIN) }));
	}
}

# Junk both refuse.
for my $j (['SRS0=abcd=G3=example.com=user@', 'bad-hash'],
    ['SRS1=abcd=hop.example==abcd=G3=x.example=y@', 'bad-hash'],
    ['SRS0=abc=G3=example.com=user@', 'malformed'],
    ['SRS0=abcd=G3@', 'malformed'], ['SRS0=@', 'malformed'],
    ['SRS1=@', 'malformed'], ['SRS0=abcd=G3=example.com=user', 'malformed']) {
	my $a = $j->[0] . ($j->[0] =~ /\@$/ ? $DOMAIN : '');
	fails("junk <$a>", perl_do($t, sub { $srs->reverse($a) }),
	    tool('reverse', $SECRET, $t, $a), $j->[1]);
}
for my $s ('<>', 'no-at-sign', 'a@b@example.com') {
	fails("junk sender <$s>", perl_do($t, sub { $srs->forward($s, $DOMAIN) }),
	    tool('forward', $SECRET, $t, $s), 'bad-input');
}
check('not SRS: srs_tool', tool('reverse', $SECRET, $t, 'a@example.com'),
    'not-srs');

# ------------------------------------- the differences of README.md
# Each: Mail::SRS accepts, we refuse, for the reason the README gives.

# 1. Empty local part, '=' in the domain, quotes, no sender at all.
for my $s ('@example.com', 'user@exa=mple.com', '"a b"@example.com') {
	my $p = perl_do($t, sub { $srs->forward($s, $DOMAIN) });
	check("difference 1 <$s>: Mail::SRS rewrites it",
	    $p =~ /^SRS0=/ ? 'SRS0' : $p, 'SRS0');
	check("difference 1 <$s>: we refuse it",
	    tool('forward', $SECRET, $t, $s), 'bad-input');
}
# 2. SRS1 that does not split: Mail::SRS makes an SRS1 of it, we an SRS0
#    that gives the sender back as it was.
{
	my $s = 'SRS1=junk@example.com';
	my $p = perl_do($t, sub { $srs->forward($s, $DOMAIN) });
	check("difference 2: Mail::SRS makes SRS1", $p =~ /^SRS1=/ ? 'SRS1' : $p,
	    'SRS1');
	my $o = tool('forward', $SECRET, $t, $s);
	check("difference 2: we make SRS0", $o =~ /^SRS0=/ ? 'SRS0' : $o, 'SRS0');
	check("difference 2: it reverses to the sender",
	    tool('reverse', $SECRET, $t, $o), $s);
}
# 3. Timestamps other than two base32 characters, made with the secret.
{
	my $h = perl_do($t, sub { $srs->hash_create('G', 'example.com', 'u') });
	my $a = "SRS0=$h=G=example.com=u\@$DOMAIN";
	my $day10 = 10 * $DAY;	# "G" is day 6
	my $p = perl_do($day10, sub { $srs->reverse($a) });
	check("difference 3: Mail::SRS takes a one-character timestamp", $p,
	    'u@example.com');
	check("difference 3: we refuse it",
	    tool('reverse', $SECRET, $day10, $a), 'malformed');
}

print "$passed passed, $failed failed\n";
exit($failed ? 1 : 0);
