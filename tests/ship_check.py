#!/usr/bin/python3
"""Static checks of what flotilla ships, run by tests/test_ship.c (make test).

  ship_check.py yaml [KIND:FILE ...]   every YAML file under ci/ (or the ones given; KIND is
                                        cloudbuild, github, kubernetes or cloudrun)
  ship_check.py dockerfile [FILE]      the Dockerfile against this machine (bookworm) and the Makefile
  ship_check.py manpage                man/flotilla.toml.5 against core/manifest.c's key tables
  ship_check.py install                make install / uninstall into a temporary DESTDIR

yaml: each file parses; each command a step runs exists in the image it runs in (our image:
flotilla, with-secret-files and a Debian base; google-cloud-cli: gcloud, gsutil, curl; the
self-hosted runner: what the workflow installs or downloads); every flotilla subcommand and
flag used appears in `flotilla --help`, `flotilla help CMD` or `flotilla CMD --help` of
$FLOTILLA_BIN; scripts start with `set -euo pipefail`, map exit code 127, never wait with
sleep; the secrets given to flotilla cover every { env = ... } the manifest's prod needs.
Prints one line per problem and exits 1 when there is any.
"""
import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib

import yaml

TOP = os.environ.get("FLOTILLA_TOP") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("FLOTILLA_BIN") or os.path.join(TOP, "flotilla")
problems = []


def problem(where, msg):
    problems.append(f"{os.path.relpath(where, TOP) if os.path.isabs(where) else where}: {msg}")


# ---- what each image has ----

SHELL_BUILTINS = {":", ".", "[", "test", "echo", "printf", "set", "export", "exit", "return", "cd",
                  "read", "trap", "wait", "kill", "true", "false", "eval", "exec", "command", "type",
                  "local", "shift", "unset", "ulimit", "umask", "source", "pwd", "getopts", "hash"}
# debian:bookworm-slim's essential packages (coreutils, bash, dash, grep, sed, findutils, ...)
DEBIAN_BASE = {"sh", "bash", "dash", "cat", "date", "mkdir", "rm", "cp", "mv", "ls", "ln", "chmod",
               "chown", "head", "tail", "tee", "env", "basename", "dirname", "grep", "sed", "find",
               "gzip", "tar", "id", "sha256sum", "sort", "uniq", "wc", "tr", "cut", "touch", "mktemp",
               "stat", "du", "awk", "xargs", "uname", "sleep"}
GCLOUD_IMAGE = DEBIAN_BASE | {"gcloud", "gsutil", "bq", "curl", "python3"}
DOCKER_IMAGE = {"docker"}


def our_image_commands():
    cmds = set(DEBIAN_BASE) | {"flotilla"}
    for line in dockerfile_instructions():
        if line[0] == "COPY":
            dest = line[1].split()[-1]
            if dest.startswith("/usr/local/bin/"):
                cmds.add(os.path.basename(dest))
    return cmds


def image_kind(image):
    if re.search(r"(^|/)flotilla(:|$)", image):
        return "ours"
    if "google-cloud-cli" in image or "cloud-sdk" in image:
        return "gcloud"
    if "cloud-builders/docker" in image:
        return "docker"
    if "alloydb-auth-proxy" in image or "cloud-sql-proxy" in image:
        return "proxy"
    return None


def commands_of(kind):
    return {"ours": our_image_commands(), "gcloud": GCLOUD_IMAGE, "docker": DOCKER_IMAGE}.get(kind)


# ---- shell scripts -> simple commands ----

REDIRS = {">", ">>", "<", ">&", "<&", ">|", "&>", "<>", "&>>", "<<<"}
SEPS = {";", "&", "&&", "||", "|", "(", ")", ";;", "|&"}
KEYWORDS = {"then", "do", "else", "elif", "if", "while", "until", "!", "{", "}", "fi", "done", "esac"}


def strip_comments(script):
    out = []
    for line in script.split("\n"):
        q = None
        cut = len(line)
        for i, c in enumerate(line):
            if q:
                if c == q:
                    q = None
                elif c == "\\" and q == '"':
                    continue
            elif c in "'\"":
                q = c
            elif c == "#" and (i == 0 or line[i - 1] in " \t"):
                cut = i
                break
        out.append(line[:cut])
    return "\n".join(out)


def simple_commands(script):
    """Every simple command of a shell script, as its list of words (quotes removed)."""
    script = strip_comments(script.replace("\\\n", " "))
    found, inner = [], []
    for sub in re.findall(r"\$\(([^()]*)\)", script):
        inner += simple_commands(sub)
    script = re.sub(r"\$\(([^()]*)\)", "SUBST", script)
    lex = shlex.shlex(script.replace("\n", " ; "), posix=True, punctuation_chars=";&|()<>")
    lex.whitespace_split = True
    lex.commenters = ""
    toks = list(lex)
    cur, expect, pattern, i = None, True, False, 0
    while i < len(toks):
        t = toks[i]
        if pattern:  # case patterns, up to ")"
            if t == ")":
                pattern, expect = False, True
            elif t == "esac":
                pattern, expect = False, False
            i += 1
            continue
        if t in REDIRS:
            i += 2
            continue
        if t in SEPS:
            if cur:
                found.append(cur)
            cur, expect = None, True
            pattern = t == ";;"
            i += 1
            continue
        if expect:
            if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", t) or t in KEYWORDS or t in ("exec", "command", "time"):
                i += 1
                continue
            if t.isdigit() and i + 1 < len(toks) and toks[i + 1] in REDIRS:
                i += 3
                continue
            if t == "case":
                while i < len(toks) and toks[i] != "in":
                    i += 1
                pattern = True
                i += 1
                continue
            if t == "for":
                while i < len(toks) and toks[i] != "do":
                    i += 1
                i += 1
                continue
            cur, expect = [t], False
        else:
            cur.append(t)
        i += 1
    if cur:
        found.append(cur)
    return found + inner


def produced_files(script):
    """Files a script makes that later commands may run: curl -o FILE, make TARGET."""
    out = set()
    for words in simple_commands(script):
        for j, w in enumerate(words[:-1]):
            if re.fullmatch(r"-[A-Za-z]*o", w) and words[0] in ("curl", "wget"):
                out.add(os.path.normpath(words[j + 1]))
        if words[0] == "make":
            out |= {os.path.normpath(w) for w in words[1:] if not w.startswith("-") and "=" not in w}
    return out


# ---- flotilla's own help ----

_help = {}


def help_text(sub):
    if sub not in _help:
        texts = []
        argvs = [[BIN, "--help"]] if sub is None else [[BIN, "help", sub], [BIN, sub, "--help"]]
        for argv in argvs:
            r = subprocess.run(argv, capture_output=True, text=True)
            if r.returncode == 0:
                texts.append(r.stdout + r.stderr)
        _help[sub] = "\n".join(texts)
    return _help[sub]


GLOBAL_WITH_VALUE = {"-m", "--manifest", "-e", "--env"}


def check_flotilla(where, words):
    words = [w for w in words if w != "SUBST"]
    i, sub = 1, None
    while i < len(words):
        w = words[i]
        if w.startswith("-"):
            name = w.split("=", 1)[0]
            if not re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", help_text(None)):
                problem(where, f"flotilla option {name} is not in 'flotilla --help'")
            i += 2 if name in GLOBAL_WITH_VALUE and "=" not in w else 1
            continue
        sub = w
        break
    if sub is None:
        problem(where, "flotilla runs no command: " + " ".join(words))
        return
    if not re.search(r"^\s+" + re.escape(sub) + r"\s", help_text(None), re.M):
        problem(where, f"flotilla has no command {sub!r}")
        return
    text = help_text(sub)
    for w in words[i + 1:]:
        if not w.startswith("-") or w == "-":
            continue
        name = w.split("=", 1)[0]
        if not re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", text):
            problem(where, f"flotilla {sub} {name}: not in 'flotilla help {sub}' nor 'flotilla {sub} --help'")


def check_script(where, script, kind, produced, runner_cmds=None):
    """The commands of `script` exist in image `kind`; flotilla's flags exist."""
    have = runner_cmds if runner_cmds is not None else commands_of(kind)
    produced = produced | produced_files(script)
    for words in simple_commands(script):
        cmd = words[0]
        base = os.path.basename(cmd)
        if base == "flotilla":
            check_flotilla(where, words)
        if cmd == "sleep":
            problem(where, "waits with sleep; rely on flotilla's connection retries (or a probe)")
        if cmd in SHELL_BUILTINS or cmd == "SUBST" or cmd.startswith("$"):
            continue
        if "/" in cmd:
            path = os.path.normpath(cmd)
            if path in produced or base in have:
                continue
            problem(where, f"runs {cmd}, which no earlier step makes")
            continue
        if have is not None and cmd not in have:
            problem(where, f"runs {cmd}, which the image ({kind}) does not have")
        if cmd in ("sh", "bash") and len(words) > 2 and re.fullmatch(r"-[a-z]*c[a-z]*", words[1]):
            check_script(where, words[2], kind, produced, runner_cmds)


def check_argv(where, argv, kind, produced):
    """A container's command + args in image `kind`."""
    have = commands_of(kind)
    while argv:
        cmd = os.path.basename(argv[0])
        if have is not None and cmd not in have and cmd not in SHELL_BUILTINS:
            problem(where, f"runs {argv[0]}, which the image ({kind}) does not have")
        if cmd in ("with-secret-files", "exec"):
            argv = argv[1:]
            continue
        if cmd == "env":
            argv = argv[1:]
            while argv and "=" in argv[0]:
                argv = argv[1:]
            continue
        if cmd in ("sh", "bash"):
            for j, a in enumerate(argv[1:], 1):
                if re.fullmatch(r"-[a-z]*c[a-z]*", a) and j + 1 < len(argv):
                    check_shell_strict(where, argv[j + 1])
                    check_script(where, argv[j + 1], kind, produced)
                    break
            return
        if cmd == "flotilla":
            check_flotilla(where, argv)
        return


def check_shell_strict(where, script):
    first = next((w for w in simple_commands(script)), None)
    if first != ["set", "-euo", "pipefail"]:
        problem(where, "a bash script that does not start with 'set -euo pipefail'")


def check_exit_mapping(path, text):
    text = "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("#"))
    if re.search(r"(^|[\s/])flotilla\s+-", text) and not re.search(r"(^|[\s|(])127\s*\)", text, re.M):
        problem(path, "runs flotilla but maps no exit code 127 (flotilla could not start)")


def manifest_prod_env_names():
    with open(os.path.join(TOP, "manifests/pcc.toml"), "rb") as f:
        m = tomllib.load(f)
    names = set()

    def walk(v):
        if isinstance(v, dict):
            if "env" in v and isinstance(v["env"], str):
                names.add(v["env"])
            for x in v.values():
                walk(x)

    walk(m["environments"]["prod"])
    walk(m.get("services", {}))
    walk(m.get("roles", {}))
    walk(m.get("defaults", {}))
    return names


def containers_of(doc):
    """Every (list name, container) under a Kubernetes or Cloud Run document."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in ("containers", "initContainers") and isinstance(v, list):
                out += [(k, c) for c in v if isinstance(c, dict) and "image" in c]
            else:
                out += containers_of(v)
    elif isinstance(doc, list):
        for v in doc:
            out += containers_of(v)
    return out


def pod_specs(doc):
    out = []
    if isinstance(doc, dict):
        if "containers" in doc:
            out.append(doc)
        for v in doc.values():
            out += pod_specs(v)
    elif isinstance(doc, list):
        for v in doc:
            out += pod_specs(v)
    return out


# flotilla's commands that touch no database: they need neither the proxy nor the secrets
OFFLINE = {"lint", "diff", "help", "manifest", "report", "version", "--version", "--help"}


def flotilla_connects(words):
    """Does this flotilla command line reach a server?"""
    i = 1
    while i < len(words) and words[i].startswith("-") and words[i] not in OFFLINE:
        i += 2 if words[i] in ("-m", "-e", "--manifest", "--env") else 1
    return i < len(words) and words[i] not in OFFLINE


def check_containers(path, docs, kind_of_file):
    runs_flotilla = False
    for doc in docs:
        for spec in pod_specs(doc):
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            names = [c["name"] for c in spec.get("containers", []) + spec.get("initContainers", [])]
            for listname, c in [("containers", c) for c in spec.get("containers", [])] + \
                    [("initContainers", c) for c in spec.get("initContainers", [])]:
                where = f"{path}: container {c.get('name')}"
                kind = image_kind(c["image"])
                if kind is None:
                    problem(where, f"image {c['image']} is not one this check knows")
                    continue
                for vm in c.get("volumeMounts", []):
                    if vm["name"] not in volumes:
                        problem(where, f"mounts volume {vm['name']}, which the pod does not define")
                if kind == "proxy":
                    if kind_of_file == "kubernetes" and (listname != "initContainers" or c.get("restartPolicy") != "Always"):
                        problem(where, "the proxy is not a native sidecar (an initContainer with restartPolicy: Always)")
                    if "startupProbe" not in c:
                        problem(where, "the proxy has no startupProbe, so nothing waits for it")
                    continue
                argv = list(c.get("command") or (["flotilla"] if kind == "ours" else []))
                argv += list(c.get("args") or [])
                if kind == "ours":
                    runs_flotilla = True
                    if "flotilla" not in " ".join(argv):
                        problem(where, "our image's container does not run flotilla")
                check_argv(where, argv, kind, set())
            if kind_of_file == "cloudrun":
                ann = {}
                for d in [doc]:
                    for m in re.findall(r"run\.googleapis\.com/container-dependencies: ?'?(\{[^\n']*\})", yaml.safe_dump(d, width=10**6)):
                        ann = yaml.safe_load(m)
                for a, deps in ann.items():
                    for n in [a] + list(deps):
                        if n not in names:
                            problem(path, f"container-dependencies names {n}, which is no container")
            # the secrets given to flotilla: every { env = ... } of prod
            mounted = set()
            for c in spec.get("containers", []):
                for vm in c.get("volumeMounts", []):
                    if vm["mountPath"].startswith("/secrets/"):
                        mounted.add(vm["mountPath"][len("/secrets/"):].strip("/"))
                    elif vm["mountPath"] == "/secrets":
                        v = volumes.get(vm["name"], {})
                        spc = v.get("csi", {}).get("volumeAttributes", {}).get("secretProviderClass")
                        mounted |= provider_paths.get(spc, set())
            def connects(c):
                argv = list(c.get("command") or ["flotilla"]) + list(c.get("args") or [])
                script = argv[-1] if argv and "\n" in argv[-1] else " ".join(shlex.quote(a) for a in argv)
                return any(os.path.basename(w[0]) == "flotilla" and flotilla_connects(w)
                           for w in simple_commands(script))
            # a pod whose flotilla only reads files (report merge) needs no secret
            if any(image_kind(c["image"]) == "ours" and connects(c) for c in spec.get("containers", [])):
                missing = manifest_prod_env_names() - mounted
                if missing:
                    problem(path, "no secret file for " + ", ".join(sorted(missing)))
    return runs_flotilla


provider_paths = {}


def load_provider_classes(files):
    for path in files:
        for doc in yaml.safe_load_all(open(path)):
            if isinstance(doc, dict) and doc.get("kind") == "SecretProviderClass":
                entries = yaml.safe_load(doc["spec"]["parameters"]["secrets"])
                provider_paths[doc["metadata"]["name"]] = {e["path"] for e in entries}


CLOUDBUILD_BUILTINS = {"PROJECT_ID", "BUILD_ID", "PROJECT_NUMBER", "LOCATION", "TRIGGER_NAME",
                       "COMMIT_SHA", "REVISION_ID", "SHORT_SHA", "REPO_NAME", "REPO_FULL_NAME",
                       "BRANCH_NAME", "TAG_NAME", "REF_NAME", "TRIGGER_BUILD_CONFIG_PATH",
                       "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT"}


def check_cloudbuild(path, doc):
    subs = set((doc.get("substitutions") or {}).keys())
    text = open(path).read()
    body = "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("#"))
    for m in re.finditer(r"(?<!\$)\$(\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))", body.replace("$$", "")):
        name = m.group(2) or m.group(3)
        if name not in subs and name not in CLOUDBUILD_BUILTINS:
            problem(path, f"${name} is no substitution (write $$ for the shell's own variables)")
    secrets = {s["env"] for s in (doc.get("availableSecrets") or {}).get("secretManager", [])}
    built = set()
    produced = set()
    for step in doc.get("steps", []):
        where = f"{path}: step {step.get('id', step.get('name'))}"
        name = step["name"]
        for k in ("_IMAGE",):
            name = name.replace("${%s}" % k, str((doc.get("substitutions") or {}).get(k, "")))
        kind = image_kind(name)
        if kind is None:
            problem(where, f"image {name} is not one this check knows")
            continue
        for s in step.get("secretEnv", []):
            if s not in secrets:
                problem(where, f"secretEnv {s} is not in availableSecrets")
        argv = ([step["entrypoint"]] if step.get("entrypoint") else []) + [a.replace("$$", "$") for a in step.get("args", [])]
        if kind == "docker" and argv[:1] == ["build"]:
            for j, a in enumerate(argv):
                if a in ("--tag", "-t"):
                    built.add(step["name"] if False else argv[j + 1])
            continue
        script_text = argv[argv.index("-c") + 1] if "-c" in argv else ""
        offline = script_text and not any(os.path.basename(w[0]) == "flotilla" and flotilla_connects(w)
                                          for w in simple_commands(script_text))
        if kind == "ours":
            if step["name"] not in built:
                problem(where, f"runs in {step['name']}, which no earlier step built")
            missing = set() if offline else manifest_prod_env_names() - set(step.get("secretEnv", []))
            if missing:
                problem(where, "no secretEnv for " + ", ".join(sorted(missing)))
        if argv and argv[0] in ("bash", "sh"):
            script = argv[argv.index("-c") + 1] if "-c" in argv else None
            if script is None:
                problem(where, "bash without -c")
                continue
            check_shell_strict(where, script)
            check_script(where, script, kind, produced)
            produced |= produced_files(script)
        elif argv:
            check_argv(where, argv, kind, produced)


RUNNER_BASE = DEBIAN_BASE | {"sudo", "apt-get", "make", "curl", "gcloud", "gsutil", "git"}


def check_github(path, doc):
    for jname, job in (doc.get("jobs") or {}).items():
        where = f"{path}: job {jname}"
        runs_on = job.get("runs-on")
        runs_on = runs_on if isinstance(runs_on, list) else [runs_on]
        if "self-hosted" not in runs_on:
            problem(where, "runs-on is not a self-hosted runner: GitHub's runners cannot reach the VPC")
        produced, proxy_started = set(), False
        for step in job.get("steps", []):
            if "run" not in step:
                continue
            swhere = f"{path}: step {step.get('name', '?')}"
            script = step["run"]
            check_shell_strict(swhere, script)
            cmds = simple_commands(script)
            if any(os.path.basename(w[0]) == "flotilla" and flotilla_connects(w) for w in cmds) and not proxy_started:
                problem(swhere, "runs flotilla before any step starts the Auth Proxy")
            check_script(swhere, script, "runner", produced, RUNNER_BASE)
            produced |= produced_files(script)
            if any(re.search(r"(alloydb-auth-proxy|cloud-sql-proxy)$", w[0]) for w in cmds):
                proxy_started = True


def cmd_yaml(args):
    if args:
        files = [a.split(":", 1) for a in args]
    else:
        files = []
        for kind in ("cloudbuild", "github", "kubernetes", "cloudrun"):
            for f in sorted(glob.glob(os.path.join(TOP, "ci", kind, "*.y*ml"))):
                files.append((kind, f))
        others = set(glob.glob(os.path.join(TOP, "ci", "**", "*.y*ml"), recursive=True)) - {f for _, f in files}
        for f in sorted(others):
            problem(f, "a YAML file under ci/ that no check knows (cloudbuild, github, kubernetes, cloudrun)")
    load_provider_classes([f for k, f in files if k == "kubernetes"])
    count = 0
    for kind, path in files:
        try:
            docs = [d for d in yaml.safe_load_all(open(path)) if d is not None]
        except yaml.YAMLError as e:
            problem(path, f"does not parse: {e}")
            continue
        count += 1
        text = open(path).read()
        check_exit_mapping(path, text)
        if kind == "cloudbuild":
            for d in docs:
                check_cloudbuild(path, d)
        elif kind == "github":
            for d in docs:
                check_github(path, d)
        else:
            check_containers(path, docs, kind)
    return f"{count} YAML files"


# ---- Dockerfile ----

def dockerfile_instructions(path=None):
    path = path or os.path.join(TOP, "Dockerfile")
    text = re.sub(r"\\\n", " ", open(path).read())
    out = []
    for line in text.split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        out.append((op.upper(), rest.strip()))
    return out


def cmd_dockerfile(args):
    path = args[0] if args else os.path.join(TOP, "Dockerfile")
    ins = dockerfile_instructions(path)
    osr = open("/etc/os-release").read()
    if "VERSION_CODENAME=bookworm" not in osr:
        problem("/etc/os-release", "this check looks packages up in bookworm; this machine is not bookworm")
    froms = [rest for op, rest in ins if op == "FROM"]
    if len(froms) < 2:
        problem(path, "not multi-stage")
    for f in froms:
        if f.split()[0] != "debian:bookworm-slim":
            problem(path, f"FROM {f}: build and run on debian:bookworm-slim")
    stages, cur = [], None
    for op, rest in ins:
        if op == "FROM":
            cur = {"from": rest, "ins": []}
            stages.append(cur)
        elif cur is not None:
            cur["ins"].append((op, rest))
    for si, st in enumerate(stages):
        pkgs = []
        for op, rest in st["ins"]:
            if op != "RUN":
                continue
            for part in re.split(r"&&|;|\|\|", rest):
                w = part.split()
                if len(w) >= 2 and w[0] == "apt-get" and "install" in w:
                    pkgs += [p for p in w[w.index("install") + 1:] if not p.startswith("-")]
                if w[:1] == ["make"]:
                    r = subprocess.run(["make", "-n", "-C", TOP] + w[1:], capture_output=True, text=True,
                                       env=clean_make_env())
                    if r.returncode != 0:
                        problem(path, f"RUN {' '.join(w)}: not a target of the Makefile: {r.stderr.strip()}")
                    st.setdefault("made", "")
                    st["made"] += r.stdout
        st["pkgs"] = pkgs
    # one apt-cache call for all of them: each call reads the whole package cache
    allpkgs = sorted({p for st in stages for p in st["pkgs"]})
    r = subprocess.run(["apt-cache", "show", "--no-all-versions"] + allpkgs, capture_output=True, text=True)
    known = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
    for p in allpkgs:
        if p not in known:
            problem(path, f"installs {p}, which bookworm does not have (apt-cache show {p})")
    run = stages[-1] if stages else {"ins": [], "pkgs": []}
    for need in ("libpq5", "libgit2-1.5", "libjansson4", "zlib1g", "ca-certificates"):
        if need not in run["pkgs"]:
            problem(path, f"the runtime stage does not install {need}")
    # every shared library the binary needs comes from a package the runtime stage installs
    r = subprocess.run(["ldd", BIN], capture_output=True, text=True)
    if r.returncode != 0 or "=>" not in r.stdout:
        problem(BIN, f"ldd cannot list its libraries: {r.stderr.strip()}")
    dep = None
    for m in re.finditer(r"=> (/\S+)", r.stdout):
        lib = m.group(1)
        if re.search(r"lib(asan|ubsan|tsan|lsan|stdc\+\+|gcc_s|m|c|pthread|dl|rt)\.so", lib):
            continue
        q = subprocess.run(["dpkg", "-S", os.path.realpath(lib)], capture_output=True, text=True)
        if q.returncode != 0:
            q = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
        pkg = q.stdout.split(":")[0] if q.returncode == 0 else None
        direct = pkg in run["pkgs"]
        if not direct and pkg:
            # pulled in by one of them (libgit2-1.5 brings libssh2, libhttp-parser, ...)
            if dep is None:
                dep = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                                      "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"]
                                     + run["pkgs"], capture_output=True, text=True).stdout
            direct = re.search(r"^\s*(Depends: |PreDepends: )?" + re.escape(pkg) + r"(:\w+)?$", dep, re.M)
        if not direct:
            problem(path, f"{BIN} needs {lib} ({pkg or 'no package'}), which the runtime stage does not install")
    user = [rest for op, rest in run["ins"] if op == "USER"]
    if not user or user[-1].split(":")[0] in ("root", "0"):
        problem(path, "the image runs as root: set USER")
    ep = [rest for op, rest in run["ins"] if op == "ENTRYPOINT"]
    if not ep or yaml.safe_load(ep[-1]) not in (["flotilla"], ["/usr/local/bin/flotilla"]):
        problem(path, 'ENTRYPOINT is not ["flotilla"]')
    build_made = "".join(st.get("made", "") for st in stages[:-1])
    for op, rest in run["ins"]:
        if op != "COPY":
            continue
        w = rest.split()
        opts = [x for x in w if x.startswith("--")]
        src = [x for x in w if not x.startswith("--")][:-1]
        if any(o.startswith("--from=") for o in opts):
            for s in src:
                if s.startswith("/stage/"):
                    if "/stage/usr/local/bin/flotilla" not in build_made:
                        problem(path, f"COPY {s}: the build stage's make install puts nothing there")
                elif s.startswith("/src/"):
                    if not os.path.exists(os.path.join(TOP, s[len("/src/"):])):
                        problem(path, f"COPY {s}: not in the repository")
        else:
            for s in src:
                if not os.path.exists(os.path.join(TOP, s)):
                    problem(path, f"COPY {s}: not in the build context")
    for need in ("/src/.git", "/src/manifests", "/src/services"):
        if not any(op == "COPY" and need in rest.split() for op, rest in run["ins"]):
            problem(path, f"the image lacks {need[5:]} (--rev reads the repository)")
    return "Dockerfile"


# ---- man page ----

def manifest_keys():
    src = open(os.path.join(TOP, "core/manifest.c")).read()
    keys = set()
    for m in re.finditer(r"(?:keys|all)\[\]\s*=\s*\{([^}]*)\}", src):
        keys |= set(re.findall(r'"([a-z_]+)"', m.group(1)))
    return keys


def cmd_manpage(args):
    path = os.path.join(TOP, "man/flotilla.toml.5")
    man = open(path).read()
    keys = manifest_keys()
    if len(keys) < 20:
        problem("core/manifest.c", f"found only {len(keys)} keys in its key tables; has their form changed?")
    for k in sorted(keys):
        if not re.search(r"^\.BR? " + re.escape(k) + r"(\s|$)", man, re.M) and \
                not re.search(r"\{ " + re.escape(k) + r" = ", man):
            problem(path, f"manifest key {k} (core/manifest.c) is not documented")
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", path], capture_output=True, text=True)
    if r.returncode != 0 or r.stderr.strip():
        problem(path, "groff warns: " + r.stderr.strip())
    r = subprocess.run(["man", "-l", path], capture_output=True, text=True, env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0"))
    if r.returncode != 0 or "secret_timeout" not in r.stdout:
        problem(path, f"man -l does not render it: {r.stderr.strip()}")
    return f"{len(keys)} manifest keys"


# ---- make install ----

def clean_make_env():
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}


def cmd_install(args):
    with tempfile.TemporaryDirectory(dir=os.environ.get("FLOTILLA_TEST_TMP")) as dest:
        make = ["make", "--no-print-directory", "-C", TOP, f"DESTDIR={dest}", "PREFIX=/opt/fl",
                f"INSTALL_BIN={BIN}"]
        r = subprocess.run(make + ["install"], capture_output=True, text=True, env=clean_make_env())
        if r.returncode != 0:
            problem("Makefile", f"make install failed: {r.stdout}{r.stderr}")
            return "install"
        exe = os.path.join(dest, "opt/fl/bin/flotilla")
        v = subprocess.run([exe, "--version"], capture_output=True, text=True)
        if v.returncode != 0 or not v.stdout.startswith("flotilla "):
            problem("Makefile", f"the installed flotilla --version said {v.stdout!r} {v.stderr!r}")
        page = os.path.join(dest, "opt/fl/share/man/man5/flotilla.toml.5")
        if not os.path.isfile(page):
            problem("Makefile", "make install did not install man5/flotilla.toml.5")
        for f, where in (("man/flotilla.1", "share/man/man1/flotilla.1"),
                         ("completion/flotilla.bash", "share/bash-completion/completions/flotilla"),
                         ("completion/_flotilla", "share/zsh/site-functions/_flotilla")):
            if os.path.isfile(os.path.join(TOP, f)) and not os.path.isfile(os.path.join(dest, "opt/fl", where)):
                problem("Makefile", f"{f} exists but make install did not put it at {where}")
        r = subprocess.run(make + ["uninstall"], capture_output=True, text=True, env=clean_make_env())
        left = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs]
        if r.returncode != 0 or left:
            problem("Makefile", f"make uninstall left {left} ({r.stderr.strip()})")
    return "make install and uninstall"


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("yaml", "dockerfile", "manpage", "install"):
        print(__doc__, file=sys.stderr)
        return 2
    what = {"yaml": cmd_yaml, "dockerfile": cmd_dockerfile, "manpage": cmd_manpage,
            "install": cmd_install}[sys.argv[1]](sys.argv[2:])
    for p in problems:
        print(p)
    if problems:
        print(f"ship_check {sys.argv[1]}: {len(problems)} problems")
        return 1
    print(f"ship_check {sys.argv[1]}: ok ({what})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
