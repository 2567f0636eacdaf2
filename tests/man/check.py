#!/usr/bin/python3
"""tests/man/check.py - the manual pages and the systemd unit agree with the code.

usage: check.py ARCRELAY SOURCE_DIR WORK_DIR BUILD_DIR BINDIR SYSCONFDIR
                MANDIR UNITDIR
       (the install directories, absolute, as CMake configured them;
       UNITDIR "-" when the unit is not installed)

  lint     mandoc -Tlint finds nothing in relay/arcrelay.8 and
           relay/arcrelay.conf.5 (down to STYLE, but for "referenced manual
           not found", which depends on the manuals installed)
  commands every command of `arcrelay --help` has its line in the SYNOPSIS
           and its subsection in the DESCRIPTION of arcrelay.8
  options  every --option that `arcrelay CMD --help` prints or that the
           getopt table of relay/cli_CMD.c accepts is in CMD's SYNOPSIS
           line, and that line names no option the code does not accept
  keys     every key of every section table in relay/config.c is an item
           of that section in arcrelay.conf.5, and the page documents no
           section or key the parser does not accept; repeatable keys are
           the ones the page calls repeatable
  serve    the grace period of cli_serve.c is the one both pages give, and
           the unit waits longer than it before it kills
  unit     BUILD_DIR/contrib/arcrelay.service (made from
           contrib/arcrelay.service.in) runs `BINDIR/arcrelay serve
           --config SYSCONFDIR/arcrelay/arcrelay.conf` and reloads with
           SIGHUP; with systemd-analyze present, `systemd-analyze verify`
           accepts it (skipped, and said so, without the tool)
  install  `cmake --install BUILD_DIR` with DESTDIR a fresh directory puts
           the binary in BINDIR, the pages in MANDIR/man8 and man5, and the
           unit, as generated, in UNITDIR; nothing outside DESTDIR
"""
import os
import re
import shutil
import subprocess
import sys

FAILS = []
PASSES = 0


def check(name, got, want):
    """check - one assertion; a failure prints got and want."""
    global PASSES
    if got == want:
        PASSES += 1
    else:
        FAILS.append(name)
        print("FAIL %s\n  got:  %s\n  want: %s" % (name, got, want))


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def render(page):
    """render - the page as plain text (mandoc -Tascii, overstrikes removed)."""
    r = run(["mandoc", "-Tascii", page])
    if r.returncode != 0:
        return ""
    return re.sub(".\b", "", r.stdout)


def section(text, title):
    """section - the rendered lines of one .Sh, without its heading."""
    m = re.search(r"^%s\n(.*?)(?=^[A-Z][A-Z ]+\n|\Z)" % re.escape(title), text,
                  re.S | re.M)
    return m.group(1) if m else ""


def lint(page):
    r = run(["mandoc", "-Tlint", "-W", "style", page])
    msgs = [l for l in (r.stdout + r.stderr).splitlines()
            if l and "referenced manual not found" not in l
            and "mandoc.db" not in l]
    check("lint %s" % os.path.basename(page), msgs, [])


# --------------------------------------------------------------- arcrelay.8

def help_commands(arcrelay):
    """help_commands - the commands `arcrelay --help` lists."""
    out = run([arcrelay, "--help"]).stdout
    body = out.split("commands:", 1)[1] if "commands:" in out else ""
    return [m.group(1) for m in re.finditer(r"^  ([a-z]+) ", body, re.M)]


def code_options(src, cmd):
    """code_options - the long options of relay/cli_CMD.c's getopt table."""
    path = os.path.join(src, "relay", "cli_%s.c" % cmd)
    if not os.path.exists(path):
        return None
    tables = re.findall(r"struct option\s+\w+\[\]\s*=\s*\{(.*?)\};",
                        read(path), re.S)
    names = set()
    for t in tables:
        names |= set(re.findall(r'\{\s*"([a-z0-9-]+)"\s*,\s*\w+_argument', t))
    names.discard("help")
    return names


def synopsis_lines(text):
    """synopsis_lines - each command's SYNOPSIS entry, joined into one line."""
    entries, cur = {}, None
    for line in section(text, "SYNOPSIS").splitlines():
        m = re.match(r"^     arcrelay (\S+)", line)
        if m:
            cur = m.group(1)
            entries[cur] = line
        elif cur and line.startswith("      "):
            entries[cur] += " " + line.strip()
    return entries


def check_arcrelay8(arcrelay, src):
    page = os.path.join(src, "relay", "arcrelay.8")
    text = render(page)
    desc = section(text, "DESCRIPTION")
    syn = synopsis_lines(text)
    cmds = help_commands(arcrelay)
    check("arcrelay --help lists commands", len(cmds) >= 8, True)
    for cmd in cmds:
        check("%s in SYNOPSIS" % cmd, cmd in syn, True)
        check("%s has a subsection" % cmd,
              re.search(r"^   %s$" % cmd, desc, re.M) is not None, True)
        r = run([arcrelay, cmd, "--help"])
        check("%s --help exit" % cmd, r.returncode, 0)
        printed = set(re.findall(r"--([a-z][a-z0-9-]*)", r.stdout))
        printed.discard("help")
        accepted = code_options(src, cmd)
        check("%s has relay/cli_%s.c" % (cmd, cmd), accepted is not None,
              True)
        accepted = accepted or set()
        check("%s --help prints only accepted options" % cmd,
              sorted(printed - accepted), [])
        line = syn.get(cmd, "")
        shown = set(re.findall(r"--([a-z][a-z0-9-]*)", line))
        check("%s options missing from its SYNOPSIS line" % cmd,
              sorted((printed | accepted) - shown), [])
        check("%s SYNOPSIS options the code does not accept" % cmd,
              sorted(shown - accepted), [])
        for opt in sorted(printed | accepted):
            check("--%s described" % opt, ("--" + opt) in desc, True)
    check("--help and --version in SYNOPSIS", "--help | --version" in
          section(text, "SYNOPSIS"), True)
    for sh in ("NAME", "SYNOPSIS", "DESCRIPTION", "SIGNALS", "FILES",
               "EXIT STATUS", "EXAMPLES", "SEE ALSO", "STANDARDS"):
        check("arcrelay.8 has %s" % sh, section(text, sh) != "", True)
    check("SEE ALSO names arcrelay.conf(5)",
          "arcrelay.conf(5)" in section(text, "SEE ALSO"), True)
    return text


# ---------------------------------------------------------- arcrelay.conf.5

def config_tables(src):
    """config_tables - {section: {key: repeatable}} from relay/config.c."""
    code = read(os.path.join(src, "relay", "config.c"))
    tables = {}
    for name, body in re.findall(
            r"static const struct key_def (\w+)\[\]\s*=\s*\{(.*?)\n\};",
            code, re.S):
        keys = {}
        for row in re.findall(r"\{([^{}]*)\}", body):
            m = re.match(r'\s*"(\w+)"', row)
            if m:
                keys[m.group(1)] = row.rstrip().rstrip(",").strip() \
                    .endswith("true")
        tables[name] = keys
    m = re.search(r"static const struct section_def sections\[\]\s*=\s*"
                  r"\{(.*?)\n\};", code, re.S)
    sections = {}
    for sec, table in re.findall(r'\{\s*"(\w+)"\s*,\s*\w+\s*,\s*'
                                 r'KEYS\((\w+)\)', m.group(1) if m else ""):
        sections[sec] = tables.get(table)
    return sections


def page_keys(src):
    """page_keys - {section: {key: item text}} from arcrelay.conf.5."""
    out, cur, key = {}, None, None
    for line in read(os.path.join(src, "relay", "arcrelay.conf.5")) \
            .splitlines():
        if line.startswith(".Sh"):
            cur = key = None
            continue
        m = re.match(r"^\.Ss \\&\[(\w+)", line)
        if m:
            cur, key = m.group(1), None
            out[cur] = {}
            continue
        m = re.match(r"^\.It Ic (\w+)", line)
        if cur and m:
            key = m.group(1)
            out[cur][key] = ""
            continue
        if cur and key:
            out[cur][key] += line + "\n"
    return out


def check_conf5(src):
    page = os.path.join(src, "relay", "arcrelay.conf.5")
    code = config_tables(src)
    doc = page_keys(src)
    check("config.c: sections found", len(code) >= 10, True)
    for sec, keys in code.items():
        check("config.c: keys of [%s] found" % sec, bool(keys), True)
    check("sections documented", sorted(code), sorted(doc))
    for sec in sorted(set(code) & set(doc)):
        ck, dk = code[sec] or {}, doc[sec]
        check("[%s] keys not documented" % sec, sorted(set(ck) - set(dk)),
              [])
        check("[%s] keys documented but not accepted" % sec,
              sorted(set(dk) - set(ck)), [])
        for k in sorted(set(ck) & set(dk)):
            check("[%s] %s called repeatable" % (sec, k),
                  "repeatable" in dk[k].lower(), ck[k])
    text = render(page)
    for sh in ("NAME", "DESCRIPTION", "SYNTAX", "SECTIONS", "RELOADING",
               "EXAMPLES", "SEE ALSO"):
        check("arcrelay.conf.5 has %s" % sh, section(text, sh) != "", True)
    check("SEE ALSO names arcrelay(8)",
          "arcrelay(8)" in section(text, "SEE ALSO"), True)


# -------------------------------------------------------------- serve, unit

def unit_seconds(v):
    m = re.fullmatch(r"(\d+)(s|min)?", v.strip())
    if not m:
        return -1
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def check_serve_and_unit(arcrelay, src, work, man8, unit_path, dirs):
    serve = read(os.path.join(src, "relay", "cli_serve.c"))
    m = re.search(r"#define GRACE_SECONDS\s+(\d+)", serve)
    grace = int(m.group(1)) if m else -1
    check("GRACE_SECONDS found", grace > 0, True)
    signals = re.sub(r"\s+", " ", section(man8, "SIGNALS"))
    check("SIGNALS gives the grace period",
          "for up to %d seconds" % grace in signals, True)
    for word in ("SIGHUP", "SIGTERM", "SIGINT"):
        check("SIGNALS names %s" % word, word in signals, True)

    unit = read(unit_path)
    settings = dict(re.findall(r"^(\w+)=(.*)$", unit, re.M))
    check("unit ExecStart", settings.get("ExecStart", ""),
          "%s/arcrelay serve --config %s/arcrelay/arcrelay.conf"
          % (dirs["bindir"], dirs["sysconfdir"]))
    check("unit has no @VAR@ left", re.findall(r"@\w+@", unit), [])
    check("unit ExecReload sends SIGHUP",
          re.search(r"kill -(HUP|SIGHUP|s HUP) \$MAINPID",
                    settings.get("ExecReload", "")) is not None, True)
    check("unit waits longer than the grace period",
          unit_seconds(settings.get("TimeoutStopSec", "0")) > grace, True)
    check("unit Type (serve stays in the foreground)",
          settings.get("Type"), "exec")
    for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                 ("PrivateTmp", "yes"), ("ProtectHome", "yes")):
        check("unit %s" % k, settings.get(k), v)
    check("unit keeps what the privilege drop needs",
          sorted({"CAP_SETUID", "CAP_SETGID", "CAP_CHOWN"} -
                 set(settings.get("CapabilityBoundingSet", "").split())), [])
    check("unit's spool is writable",
          "/var/spool/arcrelay" in settings.get("ReadWritePaths", ""), True)

    if shutil.which("systemd-analyze") is None:
        print("SKIP systemd-analyze verify: systemd-analyze not found")
        return
    # verify wants the ExecStart binary and the Documentation= manuals to
    # exist: point it at the built binary and at these pages.
    udir = os.path.join(work, "unit")
    mdir = os.path.join(work, "man")
    for d in (udir, os.path.join(mdir, "man8"), os.path.join(mdir, "man5")):
        os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(src, "relay", "arcrelay.8"),
                os.path.join(mdir, "man8"))
    shutil.copy(os.path.join(src, "relay", "arcrelay.conf.5"),
                os.path.join(mdir, "man5"))
    with open(os.path.join(udir, "arcrelay.service"), "w") as f:
        f.write(re.sub(r"^ExecStart=\S+", "ExecStart=" + arcrelay, unit,
                       flags=re.M))
    env = dict(os.environ, MANPATH=mdir)
    r = run(["systemd-analyze", "verify",
             os.path.join(udir, "arcrelay.service")], env=env)
    check("systemd-analyze verify", (r.returncode, r.stdout + r.stderr),
          (0, ""))


def check_install(build, work, unit_path, dirs):
    """check_install - cmake --install into a DESTDIR: what lands where."""
    stage = os.path.join(work, "stage")
    r = run(["cmake", "--install", build],
            env=dict(os.environ, DESTDIR=stage))
    check("cmake --install exits 0", (r.returncode, r.stderr), (0, ""))

    def staged(path):
        return os.path.join(stage, path.lstrip("/"))

    binary = staged(os.path.join(dirs["bindir"], "arcrelay"))
    check("installed binary is executable",
          os.path.isfile(binary) and os.access(binary, os.X_OK), True)
    for sub, page in (("man8", "arcrelay.8"), ("man5", "arcrelay.conf.5")):
        p = staged(os.path.join(dirs["mandir"], sub, page))
        check("installed %s" % page, os.path.isfile(p), True)
    want = {binary} | {staged(os.path.join(dirs["mandir"], s, p))
                       for s, p in (("man8", "arcrelay.8"),
                                    ("man5", "arcrelay.conf.5"))}
    if dirs["unitdir"] != "-":
        u = staged(os.path.join(dirs["unitdir"], "arcrelay.service"))
        want.add(u)
        check("installed unit is the generated one",
              os.path.isfile(u) and read(u) == read(unit_path), True)
    got = {os.path.join(d, f) for d, _, fs in os.walk(stage) for f in fs}
    check("installed files", sorted(got), sorted(want))


def main():
    if len(sys.argv) != 9:
        sys.exit("usage: check.py ARCRELAY SOURCE_DIR WORK_DIR BUILD_DIR "
                 "BINDIR SYSCONFDIR MANDIR UNITDIR")
    arcrelay, src, work, build = sys.argv[1:5]
    dirs = dict(zip(("bindir", "sysconfdir", "mandir", "unitdir"),
                    sys.argv[5:9]))
    unit_path = os.path.join(build, "contrib", "arcrelay.service")
    if shutil.which("mandoc") is None:
        print("FAIL mandoc not found (Debian package mandoc; "
              "contrib/install-deps.sh installs it)")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    for page in ("arcrelay.8", "arcrelay.conf.5"):
        lint(os.path.join(src, "relay", page))
    man8 = check_arcrelay8(arcrelay, src)
    check_conf5(src)
    check_serve_and_unit(arcrelay, src, work, man8, unit_path, dirs)
    check_install(build, work, unit_path, dirs)
    print("man: %d passed, %d failed" % (PASSES, len(FAILS)))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
