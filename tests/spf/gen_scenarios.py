"""gen_scenarios.py - random SPF scenarios for the pyspf comparison.

Each scenario is a small DNS zone (one file, the zone-file subset that
relay/zonefile.c reads) holding a tree of SPF records below one base domain,
plus a list of queries (identity, client IP, HELO, MAIL FROM). The trees mix
every mechanism and modifier, macros, include and redirect chains (loops
too), records that run into the RFC 7208 section 4.6.4 limits, void lookups,
SERVFAIL names and syntax errors.

The generator predicts a few macro expansions only to publish names that
make mechanisms match; whether it predicts right changes coverage, never the
verdict, because both evaluators read the same zone.

Deterministic: scenarios(seed, count) always yields the same data.
"""

import ipaddress
import random

V4 = ["192.0.2.%d" % n for n in range(1, 13)] + \
     ["198.51.100.%d" % n for n in range(1, 9)] + ["203.0.113.77"]
V6 = ["2001:db8::%x" % n for n in range(1, 9)] + \
     ["2001:db8:1:2::%x" % n for n in (0xa, 0xcb01)]
MAPPED = ["::ffff:192.0.2.%d" % n for n in (1, 2, 5)]
LOCALS = ["strong-bad", "user", "a.b-c+d", "postmaster", "x_y", "alice",
          "bob.smith", "jack&jill=up"]

BAD_TERMS = [
    "ip4:192.0.2.1/33", "ip4:192.0.2", "ip4:01.2.3.4", "ip4:192.0.2.1//32",
    "ip6:2001:db8::/129", "ip6:2001:db8::zz", "ip6", "a:foo", "a/33",
    "a//129", "a:host.example/24/64", "mx:example.-com", "mx:abc.123",
    "exists:", "include:", "exists", "include", "ptr/24", "exists:h.example/24",
    "exists:%{z}.x.example", "exists:%(ir).x.example", "a:foo%.example",
    "a:%{d0}.example", "foo", "-all.", "all/8", "-all:x", "=all",
    "1up=foo", "redirect=", "exp=", "exp=-all", "redirect=-all",
    "include:ip5.example/24", "a:1.2.3.4", "moo.cow/far_out=man:dog",
    "exists:%{c}.example", "mx:%{t}.x.example", "a:%{d}.",
]
MOTIFS = ["redirect-count", "p-per-domain", "exp-ip6", "exp-sender",
          "exp-delimiters"]
UNKNOWN_MODS = ["moo=bar", "x-y.z=%{d}", "default=pass", "op=a.b",
                "v2=%{ir}.%{v}"]


def ip_kind(ip):
    a = ipaddress.ip_address(ip)
    if a.version == 6 and a.ipv4_mapped:
        return 4, ipaddress.ip_address(str(a.ipv4_mapped))
    return a.version, a


def rev_name(ip):
    """The PTR owner of a client address (mapped ones as IPv4)."""
    v, a = ip_kind(ip)
    return a.reverse_pointer


def macro_i_rev(ip):
    v, a = ip_kind(ip)
    if v == 4:
        return ".".join(reversed(str(a).split("."))), "in-addr"
    nib = a.exploded.replace(":", "")
    return ".".join(reversed(nib)), "ip6"


class Zone:
    def __init__(self):
        self.lines = []
        self.names = set()

    def add(self, name, rtype, data):
        self.names.add(name.lower())
        self.lines.append("%s. %s %s" % (name, rtype, data))

    def txt(self, name, text, split=False):
        def q(s):
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if split and len(text) > 12:
            cut = len(text) // 2
            self.add(name, "TXT", q(text[:cut]) + " " + q(text[cut:]))
        else:
            self.add(name, "TXT", q(text))

    def servfail(self, name):
        self.names.add(name.lower())
        self.lines.append("%s. SERVFAIL" % name)

    def text(self):
        return "\n".join(self.lines) + "\n"


class Scenario:
    """One zone and its queries."""

    def __init__(self, idx, rng):
        self.idx = idx
        self.r = rng
        # some bases carry a '-' so that custom macro delimiters matter
        self.base = ("s%d-x.example" if rng.random() < 0.3 else
                     "s%d.example") % idx
        self.zone = Zone()
        self.counter = 0
        self.hosts = []
        self.records = {}       # domain -> record text (to pick targets)
        self.ips = self.pick_ips()
        self.heavy = rng.random() < 0.15    # run into the 4.6.4 limits
        self.voidy = rng.random() < 0.2     # many void lookups
        self.errory = rng.random() < 0.2    # syntax errors somewhere
        # every tenth scenario is a motif: a record shaped to reach one
        # corner where implementations are known to differ
        self.motif = MOTIFS[(idx // 10) % len(MOTIFS)] \
            if idx % 10 == 9 else None
        if self.motif == "exp-delimiters" and "-" not in self.base:
            self.base = "s%d-x.example" % idx
        self.make_hosts()
        self.make_ptrs()
        if self.motif:
            getattr(self, "motif_" + self.motif.replace("-", "_"))()
        else:
            self.build(self.base, 3, top=True)
        self.make_helo()
        self.queries = self.make_queries()

    # -- helpers
    def name(self, prefix):
        self.counter += 1
        return "%s%d.%s" % (prefix, self.counter, self.base)

    def pick_ips(self):
        r = self.r
        ips = r.sample(V4, 4) + r.sample(V6, 2)
        if r.random() < 0.3:
            ips.append(r.choice(MAPPED))
        return ips

    def make_hosts(self):
        r = self.r
        for _ in range(r.randint(2, 5)):
            h = self.name("h")
            addrs = r.sample(self.ips, r.randint(1, 3))
            for ip in addrs:
                v, a = ip_kind(ip)
                self.zone.add(h, "A" if v == 4 else "AAAA", str(a))
            if r.random() < 0.3:
                self.zone.add(h, "A", r.choice(V4))
            self.hosts.append(h)
        # an MX set or two
        self.mxdoms = []
        for _ in range(r.randint(1, 2)):
            d = self.name("m")
            k = r.choice([1, 2, 3, 3, 11]) if self.heavy else \
                r.randint(1, 3)
            for j in range(k):
                if k > 10:
                    target = self.hosts[j % len(self.hosts)] \
                        if j < len(self.hosts) else self.name("mxh")
                else:
                    target = r.choice(self.hosts + [self.name("nohost")])
                self.zone.add(d, "MX", "%d %s." % (r.randint(0, 20),
                                                  target))
            self.mxdoms.append(d)

    def make_ptrs(self):
        r = self.r
        for ip in self.ips:
            if r.random() < 0.45:
                rn = rev_name(ip)
                if r.random() < 0.08:
                    self.zone.servfail(rn)
                    continue
                for _ in range(r.choice([1, 1, 1, 2, 12])):
                    # a host of ours (validates if it has the address) or
                    # a name below the base
                    if r.random() < 0.7:
                        t = r.choice(self.hosts)
                    else:
                        t = self.name("rev")
                        if r.random() < 0.5:
                            v, a = ip_kind(ip)
                            self.zone.add(t, "A" if v == 4 else "AAAA",
                                          str(a))
                        elif r.random() < 0.2:
                            self.zone.servfail(t)
                    self.zone.add(rn, "PTR", t + ".")

    # -- terms
    def qual(self):
        return self.r.choice(["", "", "", "+", "-", "~", "?"])

    def macro_spec(self, domain):
        """A domain-spec with macros, sometimes published so it matches."""
        r = self.r
        ip = r.choice(self.ips)
        kind = r.randint(0, 9)
        if kind == 0:
            spec = "%{ir}.%{v}.bl." + self.base
            irev, v = macro_i_rev(ip)
            self.zone.add("%s.%s.bl.%s" % (irev, v, self.base), "A",
                          "127.0.0.2")
        elif kind == 1:
            spec = "%{l}.users." + self.base
            self.zone.add("%s.users.%s" % (r.choice(LOCALS), self.base),
                          "A", "127.0.0.2")
        elif kind == 2:
            spec = "%{l1r-}.lp.%{d2}"
            self.zone.add("%s.lp.%s" % (r.choice(LOCALS).split("-")[0],
                                        ".".join(domain.split(".")[-2:])),
                          "A", "127.0.0.2")
        elif kind == 3:
            spec = r.choice(["%{d2}", "%{d2}.dd." + self.base,
                             "%{d3}.dd." + self.base,
                             "%{d1}.dd." + self.base])
            if spec != "%{d2}":
                k = int(spec[3])
                self.zone.add("%s.dd.%s" % (".".join(domain.split(".")[-k:]),
                                            self.base), "A", "127.0.0.2")
        elif kind == 4:
            spec = r.choice(["%{o}", "%{o}.oo." + self.base,
                             "%{or}.oo." + self.base])
            o = self.base
            self.zone.add("%s.oo.%s" % (o if "r}" not in spec else
                                        ".".join(reversed(o.split("."))),
                                        self.base), "A", "127.0.0.2")
        elif kind == 5:
            spec = r.choice(["%{h}", "%{h}.hh." + self.base,
                             "%{h2r}.hh." + self.base])
            h = "mail." + self.base
            if "2r" in spec:
                h = ".".join(list(reversed(h.split(".")))[-2:])
            self.zone.add("%s.hh.%s" % (h, self.base), "A", "127.0.0.2")
        elif kind == 6:
            spec = "%{p}.ptr." + self.base
            self.zone.add("%s.ptr.%s" % (r.choice(self.hosts), self.base),
                          "A", "127.0.0.3")
        elif kind == 7:
            spec = r.choice(["%{dr}", "%{d1r}.rev." + self.base,
                             "%{o-}.dash." + self.base,
                             "%{d2-.}.x." + self.base,
                             "%{d3r-}.y." + self.base,
                             "%{lr+-}.plus." + self.base,
                             "%{S}.url." + self.base,
                             "%{L}.url." + self.base, "%{h2}.helo.example",
                             "%{h-}.hd." + self.base,
                             "%{ir}.%{v}._spf.%{d2}"])
            # publish what RFC 7208 7.3 says these expand to
            if spec.startswith("%{o-}"):
                self.zone.add("%s.dash.%s" % (self.base.replace("-", "."),
                                              self.base), "A", "127.0.0.4")
            elif spec.startswith("%{d2-.}"):
                parts = domain.replace("-", ".").split(".")
                self.zone.add("%s.x.%s" % (".".join(parts[-2:]), self.base),
                              "A", "127.0.0.4")
            elif spec.startswith("%{d3r-}"):
                parts = list(reversed(domain.split("-")))
                self.zone.add("%s.y.%s" % (".".join(parts[-3:]), self.base),
                              "A", "127.0.0.4")
            elif spec.startswith("%{h-}"):
                self.zone.add("%s.hd.%s" % (("mail." + self.base).replace(
                    "-", "."), self.base), "A", "127.0.0.4")
        elif kind == 8:
            spec = "%%.%_.%-.odd." + self.base
        else:
            spec = "%{i}.ip." + self.base
            v, a = ip_kind(ip)
            iv = str(a) if v == 4 else ".".join(a.exploded.replace(":", ""))
            self.zone.add("%s.ip.%s" % (iv, self.base), "A", "127.0.0.2")
        return spec

    def void_name(self):
        return self.name("void")

    def a_term(self, domain):
        r = self.r
        choice = r.random()
        if choice < 0.3:
            t = "a"
        elif choice < 0.7:
            t = "a:" + r.choice(self.hosts)
        elif choice < 0.85:
            t = "a:" + self.void_name()
        else:
            t = "a:" + self.macro_spec(domain)
        if r.random() < 0.3:
            t += "/%d" % r.choice([0, 8, 16, 24, 28, 30, 32])
        if r.random() < 0.25:
            t += "//%d" % r.choice([0, 32, 48, 64, 96, 112, 128])
        if t == "a" and r.random() < 0.5:
            # make the domain itself have addresses
            for ip in r.sample(self.ips, 2):
                v, a = ip_kind(ip)
                self.zone.add(domain, "A" if v == 4 else "AAAA", str(a))
        return t

    def mx_term(self, domain):
        r = self.r
        c = r.random()
        if c < 0.6:
            t = "mx:" + r.choice(self.mxdoms)
        elif c < 0.8:
            t = "mx:" + self.void_name()
        else:
            t = "mx"
            if r.random() < 0.6:
                self.zone.add(domain, "MX", "10 %s." % r.choice(self.hosts))
        if r.random() < 0.3:
            t += "/%d" % r.choice([16, 24, 32])
        if r.random() < 0.2:
            t += "//%d" % r.choice([48, 64, 128])
        return t

    def ip_term(self):
        r = self.r
        ip = r.choice(self.ips + V4[:3] + V6[:2])
        v, a = ip_kind(ip)
        if v == 4:
            plen = r.choice([None, 32, 31, 24, 16, 8, 0, 30])
            if r.random() < 0.1 and ip in MAPPED:
                return "ip6:%s" % ip        # never matches an IPv4 client
            net = ipaddress.ip_network("%s/%d" % (a, plen if plen is not None
                                                  else 32), strict=False)
            addr = str(net.network_address) if r.random() < 0.6 else str(a)
            return "ip4:%s" % addr + ("" if plen is None else "/%d" % plen)
        plen = r.choice([None, 128, 127, 64, 48, 32, 0])
        net = ipaddress.ip_network("%s/%d" % (a, plen if plen is not None
                                              else 128), strict=False)
        addr = str(net.network_address) if r.random() < 0.6 else str(a)
        if r.random() < 0.2:
            addr = addr.upper()
        return "ip6:%s" % addr + ("" if plen is None else "/%d" % plen)

    def exists_term(self, domain):
        r = self.r
        c = r.random()
        if c < 0.5:
            return "exists:" + self.macro_spec(domain)
        if c < 0.7:
            return "exists:" + r.choice(self.hosts)
        if c < 0.8:
            n = self.name("sf")
            self.zone.servfail(n)
            return "exists:" + n
        return "exists:" + self.void_name()

    def ptr_term(self, domain):
        r = self.r
        c = r.random()
        if c < 0.4:
            return "ptr"
        if c < 0.8:
            return "ptr:" + self.base
        return "ptr:" + r.choice(self.hosts)

    def target(self, depth, parents):
        """A domain for include: or redirect=, often with a record."""
        r = self.r
        c = r.random()
        if c < 0.05 and parents:
            return r.choice(parents)            # a loop
        if c < 0.08:
            return "%{d}"                       # itself, via a macro
        if c < 0.13:
            return self.void_name()             # no record: none
        if c < 0.17:
            n = self.name("sf")
            self.zone.servfail(n)
            return n
        if c < 0.20:
            n = self.name("txt")
            self.zone.txt(n, "v=spf10 not spf")
            self.zone.txt(n, "some other text")
            return n
        if c < 0.23:
            n = self.name("two")
            self.zone.txt(n, "v=spf1 +all")
            self.zone.txt(n, "v=spf1 -all")
            return n
        if c < 0.28 and self.records:
            return r.choice(sorted(self.records))
        n = self.name("i")
        self.build(n, depth - 1, parents=parents)
        return n

    def build(self, domain, depth, top=False, parents=()):
        """Publish an SPF record at domain (sometimes none at all)."""
        r = self.r
        parents = tuple(parents) + (domain,)
        if depth < 0:
            self.zone.txt(domain, "v=spf1 " + self.ip_term() + " ?all")
            self.records[domain] = True
            return
        terms = []
        nterms = r.randint(0, 6) if not self.heavy else r.randint(5, 12)
        redirect = exp = None
        has_all = False
        for _ in range(nterms):
            c = r.random()
            if self.heavy and c < 0.6:
                c = r.choice([0.05, 0.15, 0.25, 0.35, 0.45])
            if self.voidy and r.random() < 0.3:
                terms.append(self.qual() + r.choice(["a:", "exists:", "mx:"])
                             + self.void_name())
                continue
            if c < 0.12:
                terms.append(self.qual() + self.a_term(domain))
            elif c < 0.22:
                terms.append(self.qual() + self.mx_term(domain))
            elif c < 0.32 and depth > 0:
                terms.append(self.qual() + "include:" +
                             self.target(depth, parents))
            elif c < 0.40:
                terms.append(self.qual() + self.exists_term(domain))
            elif c < 0.45:
                terms.append(self.qual() + self.ptr_term(domain))
            elif c < 0.75:
                terms.append(self.qual() + self.ip_term())
            elif c < 0.80:
                terms.append(r.choice(UNKNOWN_MODS))
            elif (c < 0.85 or (self.heavy and c < 0.9)) and \
                    redirect is None and depth > 0:
                redirect = "redirect=" + self.target(depth, parents)
            elif (c < 0.88 or r.random() < 0.1) and exp is None:
                exp = self.make_exp(domain)
            elif c < 0.92:
                terms.append(self.qual() + "all")
                has_all = True
            else:
                terms.append(self.qual() + self.ip_term())
        if self.errory and r.random() < 0.35:
            terms.insert(r.randint(0, len(terms)), r.choice(BAD_TERMS))
        if r.random() < 0.5 and not has_all and redirect is None:
            terms.append(r.choice(["-all", "~all", "?all", "+all", "-all"]))
        if redirect is not None:
            # usually last, sometimes in the middle (it still acts last)
            terms.insert(len(terms) if r.random() < 0.7 else
                         r.randint(0, len(terms)), redirect)
            if self.errory and r.random() < 0.1:
                terms.append(redirect)          # twice: permerror
        if exp is not None:
            terms.insert(r.randint(0, len(terms)), exp)
        if r.random() < 0.08:
            terms = [self.shout(t) for t in terms]
        rec = "v=spf1" + "".join(" " + t for t in terms)
        if r.random() < 0.05:
            rec = rec.replace(" ", "  ") + " "
        if r.random() < 0.03:
            rec = "V=SPF1" + rec[6:]
        self.zone.txt(domain, rec, split=r.random() < 0.15)
        if r.random() < 0.1:
            self.zone.txt(domain, "google-site-verification=abc")
        self.records[domain] = True

    def shout(self, term):
        """The term with its mechanism or modifier name in uppercase
        (names are case-insensitive, RFC 7208 section 12)."""
        q = term[0] if term[:1] in ("+", "-", "~", "?") else ""
        body = term[len(q):]
        for sep in ("=", ":", "/"):
            if sep in body and (sep == "=" or "=" not in body.split(sep)[0]):
                name, rest = body.split(sep, 1)
                if self.r.random() < 0.5:
                    return q + name.upper() + sep + rest
                return term
        return q + body.upper() if self.r.random() < 0.5 else term

    def make_exp(self, domain):
        r = self.r
        n = self.name("exp")
        texts = ["%{i} is not one of %{d}'s designated mail servers.",
                 "See http://%{d}/why.html?s=%{S}&i=%{I}",
                 "%{c} rejected for %{s} (%{l}, %{o}, %{d2}, %{dr}, %{h})",
                 "%{l-} %{lr-} %{l1r-} %{ir}.%{v}._spf.%{d2}",
                 "connect from %{p} %{P}", "%{o} explains: %{L}",
                 "not %{x} valid", "bad %", "plain text."]
        c = r.random()
        if c < 0.75:
            self.zone.txt(n, r.choice(texts))
        elif c < 0.85:
            self.zone.txt(n, "one")
            self.zone.txt(n, "two")
        elif c < 0.9:
            self.zone.servfail(n)
        return "exp=" + (n if r.random() < 0.8 else "exp.%{d}")

    # -- motifs
    def motif_redirect_count(self):
        """Ten DNS terms that do not match, then a match, then a redirect
        that is never used: at the limit, not over it (4.6.4, 6.1)."""
        far = self.name("far")
        self.zone.add(far, "A", "203.0.113.200")
        self.zone.add(far, "AAAA", "2001:db8:ffff::1")
        t = self.name("i")
        self.zone.txt(t, "v=spf1 -all")
        n = self.r.randint(8, 10)
        terms = ["a:" + far] * n + ["ip4:0.0.0.0/0", "ip6:::/0",
                                    "redirect=" + t]
        self.zone.txt(self.base, "v=spf1 " + " ".join(terms))
        self.records[self.base] = True

    def motif_p_per_domain(self):
        """Two validated PTR names; %{p} must prefer the name below the
        domain being evaluated, in the included record too (7.3)."""
        inc = "inc." + self.base
        names = ["mx." + self.base, "mx." + inc]
        for ip in self.ips:
            v, a = ip_kind(ip)
            for n in names:
                self.zone.add(rev_name(ip), "PTR", n + ".")
                self.zone.add(n, "A" if v == 4 else "AAAA", str(a))
        self.zone.txt(self.base, "v=spf1 exists:%%{p}.top.%s include:%s "
                      "-all" % (self.base, inc))
        self.zone.txt(inc, "v=spf1 exists:%%{p}.pp.%s ~all" % self.base)
        self.zone.add("mx.%s.pp.%s" % (inc, self.base), "A", "127.0.0.2")
        self.records[self.base] = True

    def motif_exp(self, text):
        e = self.name("exp")
        self.zone.txt(e, text)
        self.zone.txt(self.base, "v=spf1 %s -all exp=%s" %
                      (self.ip_term(), e))
        self.records[self.base] = True

    def motif_exp_ip6(self):
        self.motif_exp("%{c} is queried as %{ir}.%{v}.arpa")

    def motif_exp_sender(self):
        self.motif_exp("%{s} (%{l} at %{o}) is not allowed")

    def motif_exp_delimiters(self):
        self.motif_exp("%{o-} %{d2-.} %{h-} %{lr-}")

    def make_helo(self):
        r = self.r
        self.helo_dom = "mail." + self.base
        self.zone.txt(self.helo_dom, r.choice([
            "v=spf1 a -all", "v=spf1 a mx ~all", "v=spf1 ip4:%s -all" %
            r.choice(V4), "v=spf1 redirect=" + self.base, "v=spf1 ?all",
            "v=spf1 include:" + self.base + " -all"]))
        for ip in r.sample(self.ips, 2):
            v, a = ip_kind(ip)
            self.zone.add(self.helo_dom, "A" if v == 4 else "AAAA", str(a))

    def make_queries(self):
        r = self.r
        qs = []
        helos = [self.helo_dom, self.helo_dom, self.helo_dom, self.base,
                 self.base, "[192.0.2.1]", "localhost", "nohelo.example"]
        for k in range(6):
            ip = r.choice(self.ips)
            if self.motif == "exp-ip6" and k < 4:
                ip = r.choice([i for i in self.ips if ":" in i and
                               not i.startswith("::ffff:")])
            helo = r.choice(helos)
            if k >= 4:
                qs.append(("helo", ip, helo, ""))
                continue
            c = r.random()
            if c < 0.1:
                frm = ""
            elif c < 0.8:
                frm = "%s@%s" % (r.choice(LOCALS), self.base)
            elif c < 0.9 and self.records:
                frm = "%s@%s" % (r.choice(LOCALS),
                                 r.choice(sorted(self.records)))
            else:
                frm = "@" + self.base
            if self.motif == "exp-sender" and k < 2:
                frm = "@" + self.base
            qs.append(("mailfrom", ip, helo, frm))
        return qs


def scenarios(seed=7208, count=320):
    rng = random.Random(seed)
    for i in range(count):
        yield Scenario(i, random.Random(rng.getrandbits(64)))


def write(outdir, seed=7208, count=320):
    """Write NNN.zone and NNN.queries; return the scenario ids."""
    import os
    os.makedirs(outdir, exist_ok=True)
    ids = []
    for s in scenarios(seed, count):
        stem = os.path.join(outdir, "%03d" % s.idx)
        with open(stem + ".zone", "w") as f:
            f.write(s.zone.text())
        with open(stem + ".queries", "w") as f:
            for q in s.queries:
                f.write("\t".join(q) + "\n")
        ids.append(s.idx)
    return ids


if __name__ == "__main__":
    import sys
    write(sys.argv[1] if len(sys.argv) > 1 else "scenarios")
