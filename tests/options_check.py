#!/usr/bin/python3
"""For every command, the options $FLOTILLA_BIN's parser accepts against those its
documentation names, run by tests/test_cli.c (make test).

The accepted set is found by running the program, not by reading cmd/options.c: each
candidate option (every option any page names, for any command, plus the hidden ones and
a few that exist nowhere) is given to each command with a value, in an empty directory
with a manifest that does not exist, so nothing can reach a server; "unknown option" or
"is for CMD" on stderr means refused. That set must equal, for each command, the options
listed by `CMD --help`, by `flotilla help CMD` (the same text), by the command's section of
man/flotilla.1, and by `flotilla __complete CMD`; every option the help text mentions
anywhere (synopsis, description) must be one the parser takes. The same for the options
before the command (`flotilla --help`, the OPTIONS section of the page, completion with
no command). Prints one line per problem, then "options_check: ok (...)" or exits 1.
"""
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile

TOP = os.environ.get("FLOTILLA_TOP") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("FLOTILLA_BIN") or os.path.join(TOP, "flotilla")
# accepted on purpose and shown nowhere: for tests (drift), and a flag with no effect yet
HIDDEN = {"drift": {"--keep-shadow"}, None: {"-v", "--verbose"}}
# taken after every command, documented once under "Options of every command" / OPTIONS
COMMON = {"-m", "--manifest", "-e", "--env", "-h", "--help"}
CONTROLS = {"--no-such-option", "-q", "-Z"}
OPT = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*[a-z0-9]|-[a-zA-Z])(?![\w-])")
problems = []
tmp = tempfile.mkdtemp(prefix="options-check.")


def run(*argv):
    r = subprocess.run([BIN, *argv], capture_output=True, text=True, cwd=tmp, timeout=60)
    return r.returncode, r.stdout, r.stderr


def commands():
    rc, out, _ = run("--help")
    body = out.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in body.splitlines() if line.startswith("  ")]


def listed(help_text):
    """The options of the help's option lists (lines starting with two spaces and a dash)."""
    found = set()
    for line in help_text.splitlines():
        m = re.match(r"  (-\S.*?)(?:  |$)", line)
        if m:
            found |= set(OPT.findall(m.group(1)))
    return found


def man_sections():
    """{command: options of its .TP entries}, and those of OPTIONS (key None)."""
    page = open(os.path.join(TOP, "man/flotilla.1")).read().replace("\\-", "-")
    out, key, inside = {}, "", False
    lines = page.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".SH "):
            key = None if line == ".SH OPTIONS" else ""
        elif line.startswith(".SS "):
            key = line[4:].strip()
        if key == "":
            continue
        out.setdefault(key, set())
        if line == ".TP" and i + 1 < len(lines) and lines[i + 1].startswith(".B "):
            out[key] |= set(OPT.findall(lines[i + 1][3:]))
    return out


def completed(*words):
    rc, out, _ = run("__complete", *words)
    return {w for w in out.split() if w.startswith("-")}


def accepted(cmd, universe):
    """The options of universe the parser of cmd (None: the program) takes, by running it."""
    def takes(opt):
        argv = ["-m", os.path.join(tmp, "none.toml")] + ([cmd] if cmd else []) + [opt, "1"]
        rc, out, err = run(*argv)
        return not ("unknown option" in err or re.search(r"^flotilla: \S+ is for ", err, re.M))
    opts = sorted(universe)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return {o for o, ok in zip(opts, pool.map(takes, opts)) if ok}


def without_abbreviations(took, documented):
    """getopt_long takes a unique prefix of a long option (--man for --manifest): such a
    candidate counts only when the documentation names it."""
    return {p for p in took
            if p in documented or not (p.startswith("--") and
                                       any(q != p and q.startswith(p) for q in took))}


def compare(what, want, got):
    if got != want:
        extra, missing = sorted(got - want), sorted(want - got)
        problems.append(f"{what}: " + "; ".join(
            ([f"names {', '.join(extra)}, which the parser refuses"] if extra else []) +
            ([f"lacks {', '.join(missing)}, which the parser takes"] if missing else [])))


def main():
    cmds = commands()
    man = man_sections()
    helps = {}
    for c in cmds:
        rc1, h1, e1 = run(c, "--help")
        rc2, h2, e2 = run("help", c)
        if rc1 != 0 or rc2 != 0 or h1 != h2:
            problems.append(f"{c}: '{c} --help' (exit {rc1}) and 'help {c}' (exit {rc2}) differ")
        helps[c] = h1
    rc, top_help, _ = run("--help")
    universe = set(CONTROLS)
    for text in [top_help, *helps.values()]:
        universe |= set(OPT.findall(text))
    for opts in man.values():
        universe |= opts
    for c in cmds:
        universe |= completed(c)
    for h in HIDDEN.values():
        universe |= h
    probes = 0
    for c in [None, *cmds]:
        name = c or "flotilla"
        took = accepted(c, universe)
        probes += len(universe)
        hidden = HIDDEN.get(c, set())
        if not hidden <= took:
            problems.append(f"{name}: the hidden {', '.join(sorted(hidden - took))} is refused")
        if took & CONTROLS:
            problems.append(f"{name}: takes {', '.join(sorted(took & CONTROLS))}, which exist nowhere")
        if c is None:
            documented = listed(top_help) | man.get(None, set()) | completed()
        else:
            documented = listed(helps[c]) | man.get(c, set()) | COMMON | completed(c)
        took = without_abbreviations(took, documented)
        shown = took - hidden
        if c is None:
            compare("flotilla --help", shown, listed(top_help))
            compare("man OPTIONS", shown, man.get(None, set()))
            compare("__complete (no command)", shown, completed())
            continue
        compare(f"{c} --help", shown, listed(helps[c]))
        compare(f"man {c}", shown, man.get(c, set()) | COMMON)
        compare(f"__complete {c}", shown, completed(c))
        # the manifest reference after `help manifest` (flotilla.toml(5)) names other commands' options
        own = re.split(r"^[A-Z][A-Z.]*\(\d\) ", helps[c], maxsplit=1, flags=re.M)[0]
        mentioned = set(OPT.findall(own))
        if mentioned - took:
            problems.append(f"help {c} mentions {', '.join(sorted(mentioned - took))}, "
                            "which the parser refuses")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"options_check: ok ({len(cmds)} commands, {len(universe)} candidate options, {probes} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
