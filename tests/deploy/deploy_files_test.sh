#!/usr/bin/env bash
# Checks the deployment files (deploy/systemd, deploy/docker, deploy/k8s) and the command
# lines in docs/site-admin.md and docs/operator.md against the real binaries:
#   - every YAML parses; the Kubernetes objects have their kinds and fields, and what the
#     Deployment mounts (ConfigMap, PersistentVolumeClaim, Secret and its keys) exists or
#     is created by the commands in the file's header; ports, labels, probes, user and
#     read-only root agree; the configuration's paths lie in the right mounts;
#   - the systemd units pass `systemd-analyze verify` and an offline security review (or,
#     without systemd-analyze, a key=value / section check) and have the sandboxing keys;
#     the site's data and the coordinator's state are inside what the sandbox allows;
#   - every dermfed binary and --flag in ExecStart, Dockerfile ENTRYPOINT/CMD, compose
#     entrypoint/command (also inside sh -c scripts), Kubernetes command/args, and the
#     docs' shell blocks exists in that binary's (or certs script's) --help;
#   - every TOML configuration (deploy/**/*.toml, the ConfigMap's, the docs' heredocs) is
#     accepted by the real binary: it is loaded with one setting pointed at a missing file
#     that is only read after the configuration was accepted, and the binary must fail on
#     that file, not on the configuration;
#   - Dockerfiles: COPY sources exist and are not dockerignored, stages referenced exist,
#     the runtime stages install the Debian package of every shared library the binaries
#     link, the CUDA build stage has every build dependency of deploy/install-deps.sh,
#     non-root USER; `docker compose config` passes when docker compose is available.
#
# usage: deploy_files_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE SOURCE_DIR
set -uo pipefail
PY=/usr/bin/python3
if ! "$PY" -c 'import yaml, tomllib' 2>/dev/null; then
  echo "FAIL: $PY cannot import yaml and tomllib (Debian: python3-yaml, python3 >= 3.11)" >&2
  exit 1
fi
exec "$PY" - "$@" <<'PY'
import fnmatch, glob, json, os, re, shlex, shutil, subprocess, sys, tempfile, tomllib
import yaml

DERMFED, COORDINATOR, SITE, SRC = (os.path.abspath(a) for a in sys.argv[1:5])
TMP = tempfile.mkdtemp(prefix="dermfed-deploy-files.")
ABSENT = os.path.join(TMP, "absent-on-purpose")
failures = []
checked = {"flags": 0, "configs": 0}


def fail(where, msg):
    failures.append(f"{where}: {msg}")


def rel(p):
    return os.path.relpath(p, SRC)


def run(argv, timeout=30, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


# ---------------------------------------------------------------- help texts and flags
BINARIES = {"dermfed": DERMFED, "dermfed-coordinator": COORDINATOR, "dermfed-site": SITE}
CERT_SCRIPTS = {os.path.basename(p): p for p in sorted(glob.glob(os.path.join(SRC, "certs", "*.sh")))
                if os.path.basename(p) != "pki-lib.sh"}


class Help(dict):
    """--help texts, asked for the first time they are needed (a LibTorch binary takes a
    second or two to start on a loaded machine)."""
    def __missing__(self, command):
        words = command.split()
        if words[0] in CERT_SCRIPTS:
            argv = ["bash", CERT_SCRIPTS[words[0]]]
        else:
            argv = [BINARIES[words[0]]] + words[1:]
        self[command] = run(argv + ["--help"]).stdout
        return self[command]


HELP = Help()
top = HELP["dermfed"]
SUBCOMMANDS = re.findall(r"^  ([a-z][a-z-]*)\s{2,}", top.split("Subcommands:", 1)[-1], re.M)
if not SUBCOMMANDS:
    fail("dermfed --help", "no subcommands found")


def has_flag(help_text, flag):
    return re.search(r"(?<![\w.-])" + re.escape(flag) + r"(?![\w.-])", help_text) is not None


FLAG_CHECKS = []  # (where, command, args), checked by run_flag_checks()


def check_flags(where, command, args):
    """command: a key of HELP; args: the arguments after it. Returns the args."""
    if any(a.startswith("-") for a in args):  # no flags, no --help to ask
        FLAG_CHECKS.append((where, command, list(args)))
    return args


def run_flag_checks():
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda c: HELP[c], sorted({c for _, c, _ in FLAG_CHECKS} - set(HELP))))
    for where, command, args in FLAG_CHECKS:
        check_flags_now(where, command, args)


def check_flags_now(where, command, args):
    text = HELP[command]
    for a in args:
        if a.startswith("--") and len(a) > 2:
            flag = a.split("=", 1)[0]
            checked["flags"] += 1
            if not has_flag(text, flag):
                fail(where, f"'{command}' has no flag {flag} (see `{command} --help`)")
        elif re.fullmatch(r"-[A-Za-z]", a):
            checked["flags"] += 1
            if not has_flag(text, a):
                fail(where, f"'{command}' has no flag {a}")
    return args


INVOCATIONS = []  # (where, binary name, args) of the two daemons, for the config checks


def check_command(where, words):
    """One simple command (argv). Checks dermfed binaries and certs scripts in it."""
    words = [w for w in words if w != ""]
    # Drop what runs a command without being it.
    while words:
        w = words[0]
        if w in ("exec", "env", "time", "!", "then", "else", "elif", "do", "if", "while",
                 "until", "{", "}") or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", w):
            words = words[1:]
        elif w == "sudo":
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[2:] if words[0] in ("-u", "-g") else words[1:]
        else:
            break
    if not words:
        return
    name = os.path.basename(words[0])
    if name in ("sh", "bash") and len(words) > 1:
        if "-c" in words[1:]:
            i = words.index("-c")
            if i + 1 < len(words):
                check_script(where, words[i + 1])
            return
        if words[1].endswith(".sh"):
            words, name = words[1:], os.path.basename(words[1])
    if name == "docker" and len(words) > 1 and words[1] == "run":
        entrypoint = None
        for i, w in enumerate(words[2:], 2):
            if w.startswith("--entrypoint"):
                entrypoint = w.split("=", 1)[1] if "=" in w else words[i + 1]
            m = re.fullmatch(r"(?:[\w.-]+/)*dermfed/(site|site-cuda|coordinator)(?::[\w.-]+)?", w)
            if m:
                binary = "dermfed-coordinator" if m.group(1) == "coordinator" else "dermfed-site"
                if entrypoint:
                    check_command(where, [entrypoint] + words[i + 1:])
                else:
                    INVOCATIONS.append((where, binary, check_flags(where, binary, words[i + 1:])))
                return
        return
    if name in CERT_SCRIPTS:
        if words[0].startswith("/") and not words[0].startswith("/usr/local/share/dermfed/certs/"):
            fail(where, f"{words[0]}: the certs scripts are in the source tree (certs/)")
        check_flags(where, name, words[1:])
    elif name == "dermfed":
        if len(words) < 2 or words[1] not in SUBCOMMANDS:
            fail(where, f"'dermfed {' '.join(words[1:2])}': not a dermfed subcommand "
                        f"({', '.join(SUBCOMMANDS)})")
        else:
            check_flags(where, "dermfed " + words[1], words[2:])
    elif name in ("dermfed-coordinator", "dermfed-site"):
        INVOCATIONS.append((where, name, check_flags(where, name, words[1:])))
    elif name.startswith("dermfed"):
        fail(where, f"'{words[0]}': no such dermfed program")


HEREDOCS = []  # (where, target path, body)


def check_script(where, script):
    """A shell script: checks every simple command in it; collects heredocs."""
    lines = script.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i]
        i += 1
        m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if m:
            body = []
            while i < len(lines) and lines[i].strip() != m.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            target = re.search(r">\s*(\S+)", line[:m.start()] + " " + line[m.end():])
            HEREDOCS.append((where, target.group(1) if target else "", "\n".join(body) + "\n"))
            line = line[:m.start()]
        try:
            lex = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
            lex.whitespace_split = True
            tokens = list(lex)
        except ValueError as e:
            fail(where, f"shell line does not parse ({e}): {line.strip()}")
            continue
        command, skip = [], False
        for t in tokens + [";"]:
            if skip:
                skip = False
                continue
            if t and set(t) <= set("<>&") and t not in ("&&", "&"):
                skip = True  # a redirection and its target
                continue
            if t in (";", "&&", "||", "|", "&", "(", ")", ";;"):
                check_command(where, command)
                command = []
            else:
                command.append(t)


# ---------------------------------------------------------------- configuration checks
CONFIG_CHECKS = {}  # (binary, file content, extra) -> [where, path]


def check_config(where, binary, path, extra=()):
    """Queues a check that the configuration file at `path` (with `extra` flags) is accepted
    by `binary`; run_config_checks() runs them, identical ones once, in parallel."""
    key = (binary, open(path).read() if path else "", tuple(extra))
    CONFIG_CHECKS.setdefault(key, [where, path])


def run_config_check(where, binary, path, extra=()):
    checked["configs"] += 1
    if binary == "dermfed-coordinator":
        # The first file the coordinator opens after its configuration is accepted: the CA
        # (TLS is checked first), or the schema when the file runs without TLS.
        poke = ["--set", f"model.schema={ABSENT}.json", "--set", f"tls.ca={ABSENT}.crt"]
    else:
        poke = ["--set", "site.insecure=false", "--set", f"site.ca={ABSENT}.crt"]
    argv = [BINARIES[binary]] + (["--config", path] if path else []) + list(extra) + poke
    try:
        r = run(argv, timeout=30, cwd=TMP)
    except subprocess.TimeoutExpired:
        fail(where, f"{binary} kept running with this configuration: {' '.join(argv)}")
        return
    out = (r.stdout + r.stderr).strip()
    if r.returncode == 0 or ABSENT not in out:
        fail(where, f"{binary} refuses this configuration: {out[-600:]}")


def config_args(args):
    """Splits --config PATH out of a daemon's arguments."""
    rest, path, i = [], None, 0
    while i < len(args):
        if args[i] == "--config" and i + 1 < len(args):
            path, i = args[i + 1], i + 2
        elif args[i].startswith("--config="):
            path, i = args[i].split("=", 1)[1], i + 1
        else:
            rest.append(args[i])
            i += 1
    return path, rest


def overrides(args):
    """--KEY=VALUE / --set KEY=VALUE flags as a dict."""
    out, i = {}, 0
    while i < len(args):
        a = args[i]
        if a == "--set" and i + 1 < len(args):
            k, _, v = args[i + 1].partition("=")
            out[k] = v
            i += 2
            continue
        if a.startswith("--") and "=" in a:
            k, _, v = a[2:].partition("=")
            out[k] = v
        elif a.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[a[2:]], i = args[i + 1], i + 1
        i += 1
    return out


def flat(toml_doc):
    return {f"{t}.{k}": v for t, kv in toml_doc.items() if isinstance(kv, dict) for k, v in kv.items()}


def under(path, roots):
    path = os.path.normpath(str(path))
    return any(path == os.path.normpath(r) or path.startswith(os.path.normpath(r).rstrip("/") + "/")
               for r in roots)


def kind_of(toml_doc):
    return "dermfed-site" if "site" in toml_doc else "dermfed-coordinator"


# ---------------------------------------------------------------- systemd
SYSTEMD_SECTIONS = {"Unit", "Service", "Install"}


def parse_unit(path):
    sections, current = {}, None
    for n, raw in enumerate(open(path).read().split("\n"), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[([A-Za-z]+)\]", line)
        if m:
            current = m.group(1)
            if current not in SYSTEMD_SECTIONS:
                fail(rel(path), f"line {n}: unknown section [{current}]")
            sections.setdefault(current, {})
            continue
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)=(.*)", line)
        if not m or current is None:
            fail(rel(path), f"line {n}: not KEY=VALUE inside a section: {raw}")
            continue
        sections[current].setdefault(m.group(1), []).append(m.group(2))
    return sections


units = sorted(glob.glob(os.path.join(SRC, "deploy/systemd/*.service")))
if {os.path.basename(u) for u in units} != {"dermfed-coordinator.service", "dermfed-site.service"}:
    fail("deploy/systemd", f"expected dermfed-coordinator.service and dermfed-site.service, found "
                           f"{[os.path.basename(u) for u in units]}")
REQUIRED = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
            "PrivateTmp": "yes", "CapabilityBoundingSet": "", "Restart": "on-failure"}
for unit in units:
    where = rel(unit)
    s = parse_unit(unit)
    svc = s.get("Service", {})
    last = lambda k: svc.get(k, [None])[-1]
    for k, v in REQUIRED.items():
        if last(k) != v:
            fail(where, f"{k}= must be '{v}', is {last(k)!r}")
    if not (last("User") or last("DynamicUser") == "yes") or last("User") in ("root", "0"):
        fail(where, "needs a dedicated user (User= or DynamicUser=yes)")
    families = set(" ".join(svc.get("RestrictAddressFamilies", [])).split())
    if families != {"AF_INET", "AF_INET6", "AF_UNIX"}:
        fail(where, f"RestrictAddressFamilies= must be AF_INET AF_INET6 AF_UNIX, is {sorted(families)}")
    if "@system-service" not in " ".join(svc.get("SystemCallFilter", [])):
        fail(where, "SystemCallFilter= must allow only @system-service")
    if "WantedBy" not in s.get("Install", {}):
        fail(where, "[Install] WantedBy= missing")
    execs = svc.get("ExecStart", [])
    if len(execs) != 1:
        fail(where, "needs exactly one ExecStart=")
        continue
    words = shlex.split(execs[0].lstrip("-@:+!"))
    binary = os.path.basename(words[0])
    if binary not in ("dermfed-coordinator", "dermfed-site") or not os.path.isabs(words[0]):
        fail(where, f"ExecStart= runs {words[0]}, not an absolute path to a dermfed daemon")
        continue
    if binary + ".service" != os.path.basename(unit):
        fail(where, f"ExecStart= runs {binary}")
    check_flags(where, binary, words[1:])
    path, rest = config_args(words[1:])
    if not path:
        fail(where, "ExecStart= gives no --config")
        continue
    local = os.path.join(SRC, "deploy/systemd", os.path.basename(path))
    if not os.path.exists(local):
        fail(where, f"--config {path}: no deploy/systemd/{os.path.basename(path)} to install there")
        continue
    check_config(where + " ExecStart", binary, local, rest)
    conf = flat(tomllib.load(open(local, "rb")))
    readable = svc.get("ReadOnlyPaths", []) + svc.get("ReadWritePaths", [])
    state = ["/var/lib/" + d for d in " ".join(svc.get("StateDirectory", [])).split()]
    writable = state + " ".join(svc.get("ReadWritePaths", [])).split()
    for key, value in conf.items():
        if not isinstance(value, str) or not value.startswith("/"):
            continue
        if under(value, ["/home", "/root", "/run/user"]):
            fail(where, f"{key} = {value} is hidden by ProtectHome=yes")
        if under(value, ["/tmp", "/var/tmp"]):
            fail(where, f"{key} = {value} is in the unit's private /tmp")
    if binary == "dermfed-site":
        if not under(conf.get("site.data", ""), " ".join(svc.get("ReadOnlyPaths", [])).split()):
            fail(where, f"site.data = {conf.get('site.data')} is not under a ReadOnlyPaths= entry")
    else:
        for key in ("server.state_dir", "server.export_dir", "server.audit_log"):
            if conf.get(key) and not under(conf[key], writable):
                fail(where, f"{key} = {conf[key]} is not writable under ProtectSystem=strict "
                            f"(StateDirectory= / ReadWritePaths=: {writable})")
        if not state:
            fail(where, "no StateDirectory= for the coordinator's state")

if shutil.which("systemd-analyze") and units:
    vdir = os.path.join(TMP, "units")
    os.makedirs(vdir)
    copies = []
    for unit in units:
        text = open(unit).read()
        for b, real in BINARIES.items():
            text = text.replace(f"/usr/local/bin/{b} ", real + " ")
        copies.append(os.path.join(vdir, os.path.basename(unit)))
        open(copies[-1], "w").write(text)
    r = run(["systemd-analyze", "verify"] + copies, cwd=vdir)
    out = (r.stdout + r.stderr).strip()
    if r.returncode != 0 or out:
        fail("deploy/systemd", f"systemd-analyze verify: {out or r.returncode}")
    r = run(["systemd-analyze", "security", "--offline=true", "--threshold=25"] + copies, cwd=vdir)
    if r.returncode != 0:
        fail("deploy/systemd", "systemd-analyze security: exposure above 2.5:\n" +
             "\n".join(l for l in r.stdout.split("\n") if "Overall" in l or "✗" in l))
else:
    print("note: no systemd-analyze; checked the units' syntax and sections only")

# ---------------------------------------------------------------- Dockerfiles
def parse_dockerfile(path):
    instructions, buf = [], ""
    for raw in open(path).read().split("\n"):
        if not buf and (raw.strip().startswith("#") or not raw.strip()):
            continue
        if raw.strip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        buf += raw
        word, _, rest = buf.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
        buf = ""
    return instructions


KNOWN_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                      "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK",
                      "SHELL"}
dockerfiles = sorted(glob.glob(os.path.join(SRC, "deploy/docker/Dockerfile.*")))
dockerfiles = [d for d in dockerfiles if not d.endswith(".dockerignore")]
want = {"Dockerfile.coordinator", "Dockerfile.site", "Dockerfile.site-cuda"}
if not want <= {os.path.basename(d) for d in dockerfiles}:
    fail("deploy/docker", f"expected {sorted(want)}")
DOCKER = {}   # basename -> {"entrypoint", "cmd", "user", "stages", "runtime_packages", ...}


def exec_form(where, what, rest):
    try:
        v = json.loads(rest)
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return v
    except json.JSONDecodeError:
        pass
    fail(where, f"{what} must be in exec form (a JSON array): {rest}")
    return []


def apt_packages(run_text):
    pk = []
    for m in re.finditer(r"apt-get install ((?:\s*[-\w.+:=/]+)+)", run_text):
        pk += [w for w in m.group(1).split() if not w.startswith("-")]
    return pk


def ignored(pattern_list, path):
    hit = False
    for pat in pattern_list:
        neg = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatch(prefix, pat) or (pat.startswith("**/") and
                                               fnmatch.fnmatch(parts[i - 1], pat[3:])):
                hit = not neg
    return hit


for df in dockerfiles:
    where = rel(df)
    ins = parse_dockerfile(df)
    ign_path = df + ".dockerignore"
    patterns = []
    if not os.path.exists(ign_path):
        fail(where, f"no {os.path.basename(ign_path)}: the build context (the repository) "
                    "would carry build trees and private keys")
    else:
        patterns = [l.strip() for l in open(ign_path) if l.strip() and not l.startswith("#")]
        for p in (".git", "build*", "**/*.key"):
            if p not in patterns:
                fail(rel(ign_path), f"does not exclude {p}")
    stages, info = [], {"stages": [], "runtime_packages": [], "all_packages": [], "copies": []}
    for word, rest in ins:
        if word not in KNOWN_INSTRUCTIONS:
            fail(where, f"unknown instruction {word}")
        if word == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            if not m:
                fail(where, f"FROM {rest}")
                continue
            stages.append(m.group(2) or "")
            info["stages"].append({"image": m.group(1), "name": m.group(2), "ins": []})
            continue
        if not info["stages"]:
            if word != "ARG":
                fail(where, f"{word} before the first FROM")
            continue
        info["stages"][-1]["ins"].append((word, rest))
    if not info["stages"]:
        fail(where, "no FROM")
        continue
    runtime = info["stages"][-1]
    for st in info["stages"]:
        for word, rest in st["ins"]:
            if word in ("COPY", "ADD"):
                opts = re.findall(r"--(\w+)=(\S+)", rest)
                args = [a for a in shlex.split(rest) if not a.startswith("--")]
                srcs = args[:-1]
                frm = dict(opts).get("from")
                if frm:
                    if frm not in stages and ":" not in frm and "/" not in frm:
                        fail(where, f"COPY --from={frm}: no such stage")
                    if frm == "build":
                        st["copies_from_build"] = srcs
                    continue
                for s in srcs:
                    p = os.path.normpath(s)
                    if not os.path.exists(os.path.join(SRC, p)):
                        fail(where, f"COPY {s}: not in the repository")
                    elif p != "." and ignored(patterns, p):
                        fail(where, f"COPY {s}: excluded by {os.path.basename(ign_path)}")
            if word == "RUN":
                for m in re.finditer(r"/src/([\w./-]+)", rest):
                    if not os.path.exists(os.path.join(SRC, m.group(1))):
                        fail(where, f"RUN uses /src/{m.group(1)}: not in the repository")
                targets = re.search(r"build\.sh\s+--target\s+([\w\s-]+)", rest)
                if targets:
                    st["targets"] = targets.group(1).split()
                st.setdefault("packages", []).extend(apt_packages(rest))
    build = next((s for s in info["stages"] if s["name"] == "build"), None)
    if build is None or "targets" not in build:
        fail(where, "no stage 'build' running deploy/build.sh --target ...")
        continue
    for s in runtime.get("copies_from_build", []):
        if os.path.dirname(s) != "/build/bin" or os.path.basename(s) not in build["targets"]:
            fail(where, f"COPY --from=build {s}: not a binary the build stage builds "
                        f"({build['targets']} in /build/bin)")
    user = [rest for word, rest in runtime["ins"] if word == "USER"]
    if not user or user[-1].split(":")[0] in ("root", "0"):
        fail(where, "the runtime stage must end as a non-root USER")
    ep = [exec_form(where, "ENTRYPOINT", r) for w, r in runtime["ins"] if w == "ENTRYPOINT"]
    cmd = [exec_form(where, "CMD", r) for w, r in runtime["ins"] if w == "CMD"]
    DOCKER[os.path.basename(df)] = {
        "entrypoint": ep[-1] if ep else [], "cmd": cmd[-1] if cmd else [],
        "user": user[-1] if user else "", "build": build, "runtime": runtime,
        "binaries": [os.path.basename(s) for s in runtime.get("copies_from_build", [])]}
    argv = DOCKER[os.path.basename(df)]["entrypoint"] + DOCKER[os.path.basename(df)]["cmd"]
    if not argv or os.path.basename(argv[0]) not in DOCKER[os.path.basename(df)]["binaries"]:
        fail(where, f"ENTRYPOINT/CMD {argv} does not run a binary the image holds")
    check_command(where + " ENTRYPOINT+CMD", argv)

# The runtime stages install the package of every library the binaries link (dpkg -S).
LIB_OWNER = {}


def needed_packages(binaries):
    """Debian package -> library, for every library the binaries link directly."""
    libs = {}
    for b in binaries:
        ldd = run(["ldd", BINARIES[b]]).stdout
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                              run(["readelf", "-d", BINARIES[b]]).stdout):
            if paths.get(lib) and os.path.exists(paths[lib]):
                libs[lib] = paths[lib]
    ask = sorted({p for l, p in libs.items() if p not in LIB_OWNER} |
                 {os.path.realpath(p) for l, p in libs.items() if p not in LIB_OWNER})
    if ask:
        out = run(["dpkg", "-S"] + ask).stdout
        owners = {path: pkg.split(",")[0].split(":")[0] for pkg, path in
                  re.findall(r"^(\S+): (\S+)$", out, re.M)}
        for lib, path in libs.items():
            LIB_OWNER[path] = owners.get(os.path.realpath(path)) or owners.get(path)
    pk = {LIB_OWNER[p]: l for l, p in libs.items() if LIB_OWNER.get(p)}
    return {p: l for p, l in pk.items() if p not in ("libc6", "libgcc-s1", "libstdc++6")}


if shutil.which("dpkg") and shutil.which("readelf"):
    for name, d in DOCKER.items():
        have = set(d["runtime"].get("packages", []))
        for pkg, lib in needed_packages(d["binaries"]).items():
            if name.endswith("-cuda") and pkg.startswith("libtorch"):
                continue  # LibTorch comes from the PyTorch image
            if pkg not in have:
                fail(f"deploy/docker/{name}", f"the runtime stage does not install {pkg} "
                                              f"({lib}, linked by the binaries)")
    # The site guide lists the run-time packages of a machine that only runs the site.
    guide = open(os.path.join(SRC, "docs/site-admin.md")).read()
    m = re.search(r"run-time libraries are\s+the\s+Debian\s+packages\s+`([^`]+)`", guide)
    if not m:
        fail("docs/site-admin.md", "no 'run-time libraries are the Debian packages `...`' list")
    else:
        listed = set(m.group(1).split())
        for pkg, lib in needed_packages(["dermfed-site", "dermfed"]).items():
            if pkg not in listed:
                fail("docs/site-admin.md", f"the run-time package list lacks {pkg} ({lib})")
else:
    print("note: no dpkg/readelf; runtime packages not compared with the binaries' libraries")

install_deps = open(os.path.join(SRC, "deploy/install-deps.sh")).read()
m = re.search(r"PACKAGES=\((.*?)\n\)", install_deps, re.S)
deps = set()
for line in (m.group(1).split("\n") if m else []):
    code, _, comment = line.partition("#")
    if "tests only" not in comment:  # a (tests only) package is not needed to build
        deps |= set(code.split())
if not deps:
    fail("deploy/install-deps.sh", "no PACKAGES=( ... ) list found")
cuda = DOCKER.get("Dockerfile.site-cuda")
if cuda and deps:
    not_for_cuda = {"libtorch-dev", "libgtest-dev", "libgmock-dev", "ccache"}
    need = {p for p in deps if p not in not_for_cuda and not p.startswith("python3")}
    missing = need - set(cuda["build"].get("packages", []))
    if missing:
        fail("deploy/docker/Dockerfile.site-cuda", f"the build stage lacks {sorted(missing)} "
                                                   "from deploy/install-deps.sh")
    if "libtorch1.13" in cuda["runtime"].get("packages", []):
        fail("deploy/docker/Dockerfile.site-cuda", "installs Debian's CPU LibTorch at run time")
UIDS = {d["user"].split(":")[0] for d in DOCKER.values()}
if len(UIDS) > 1:
    fail("deploy/docker", f"the images run as different users {sorted(UIDS)}; they share volumes")
IMAGE_UID = UIDS.pop() if len(UIDS) == 1 else None

# ---------------------------------------------------------------- compose
compose_path = os.path.join(SRC, "deploy/docker/compose.yaml")
try:
    compose = yaml.safe_load(open(compose_path))
except Exception as e:
    fail("deploy/docker/compose.yaml", f"not YAML: {e}")
    compose = None
if compose:
    where = "deploy/docker/compose.yaml"
    services = compose.get("services") or {}
    volumes = set((compose.get("volumes") or {}).keys())
    for need in ("coordinator", "pki", "data"):
        if need not in services:
            fail(where, f"no service '{need}'")
    sites, site_hosts, sans = [], set(), set()
    image_dockerfile = {}
    for name, svc in services.items():
        b = svc.get("build")
        if isinstance(b, dict):
            ctx = os.path.normpath(os.path.join(os.path.dirname(compose_path), b.get("context", ".")))
            dfp = os.path.join(ctx, b.get("dockerfile", "Dockerfile"))
            if not os.path.isdir(ctx):
                fail(where, f"{name}: build context {b.get('context')} does not exist")
            if not os.path.exists(dfp):
                fail(where, f"{name}: dockerfile {b.get('dockerfile')} does not exist")
            if svc.get("image"):
                image_dockerfile[svc["image"]] = os.path.basename(dfp)
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            if dep not in services:
                fail(where, f"{name} depends on an undefined service {dep}")
            c = cond.get("condition") if isinstance(cond, dict) else None
            if c not in (None, "service_started", "service_healthy", "service_completed_successfully"):
                fail(where, f"{name}: depends_on {dep}: condition {c}")
        mounts = []
        for v in svc.get("volumes") or []:
            parts = v.split(":") if isinstance(v, str) else [v.get("source"), v.get("target")]
            src, dst = parts[0], parts[1]
            if not src.startswith((".", "/")) and src not in volumes:
                fail(where, f"{name}: volume '{src}' is not declared under volumes:")
            if src.startswith("."):
                if not os.path.exists(os.path.join(os.path.dirname(compose_path), src)):
                    fail(where, f"{name}: bind mount {src} does not exist")
            mounts.append(dst)
        df = image_dockerfile.get(svc.get("image"))
        d = DOCKER.get(df, {})
        ep = svc.get("entrypoint")
        ep = [ep] if isinstance(ep, str) else ep
        cmd = svc.get("command")
        cmd = shlex.split(cmd) if isinstance(cmd, str) else cmd
        argv = list(ep if ep is not None else d.get("entrypoint", [])) + \
            list(cmd if cmd is not None else ([] if ep is not None else d.get("cmd", [])))
        n_before = len(INVOCATIONS)
        check_command(f"{where} {name}", argv)
        for w, b, args in INVOCATIONS[n_before:]:
            if d and b not in d["binaries"]:
                fail(where, f"{name}: runs {b}, which image {svc.get('image')} does not hold")
            for k, v in overrides(args).items():
                if re.fullmatch(r"(tls|site)\.(ca|cert|key|crl)|site\.data|server\.(state_dir|export_dir)", k):
                    if not under(v, mounts):
                        fail(where, f"{name}: {k}={v} is in no volume of the service ({mounts})")
            if b == "dermfed-site":
                sites.append(name)
                host, _, port = overrides(args).get("site.coordinator", ":").rpartition(":")
                if host not in services:
                    fail(where, f"{name}: site.coordinator host '{host}' is not a service")
                site_hosts.add(host)
        sans |= set(re.findall(r"DNS:([\w.-]+)", " ".join(map(str, argv))))
    if len(sites) < 3:
        fail(where, f"a three-site consortium needs 3 site services, found {sites}")
    for h in site_hosts:
        if h not in sans and h != "localhost":
            fail(where, f"sites reach the coordinator as '{h}', but no certificate issued in the "
                        f"pki service names DNS:{h} (make-test-pki.sh's coordinator has only localhost)")
    dc = run(["docker", "compose", "version"]) if shutil.which("docker") else None
    if dc is not None and dc.returncode == 0:
        r = run(["docker", "compose", "-f", compose_path, "config", "-q"], timeout=60)
        if r.returncode != 0:
            fail(where, f"docker compose config: {r.stderr.strip()[-800:]}")
    else:
        print("note: docker compose is not available here: skipped `docker compose config` "
              "(the file was checked by the rules above)")

# ---------------------------------------------------------------- Kubernetes
k8s_path = os.path.join(SRC, "deploy/k8s/coordinator.yaml")
where = "deploy/k8s/coordinator.yaml"
try:
    objects = [o for o in yaml.safe_load_all(open(k8s_path)) if o is not None]
except Exception as e:
    fail(where, f"not YAML: {e}")
    objects = []
by_kind = {}
for o in objects:
    for f in ("apiVersion", "kind", "metadata"):
        if f not in o:
            fail(where, f"an object without {f}: {str(o)[:80]}")
    if "metadata" in o and "name" not in o["metadata"]:
        fail(where, f"a {o.get('kind')} without metadata.name")
    by_kind.setdefault(o.get("kind"), []).append(o)
API = {"Namespace": "v1", "ConfigMap": "v1", "PersistentVolumeClaim": "v1", "Service": "v1",
       "Deployment": "apps/v1", "Secret": "v1"}
for kind in ("ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"):
    if len(by_kind.get(kind, [])) != 1:
        fail(where, f"expected one {kind}, found {len(by_kind.get(kind, []))}")
for o in objects:
    if o.get("kind") in API and o.get("apiVersion") != API[o["kind"]]:
        fail(where, f"{o['kind']} needs apiVersion {API[o['kind']]}")
namespaces = {o["metadata"]["name"] for o in by_kind.get("Namespace", [])}
used_ns = {o.get("metadata", {}).get("namespace") for o in objects if o.get("kind") != "Namespace"}
if len(used_ns) != 1:
    fail(where, f"objects in different namespaces: {used_ns}")
elif namespaces and used_ns != namespaces:
    fail(where, f"objects are in {used_ns}, the Namespace defined is {namespaces}")
comments = "\n".join(l.lstrip("# ") for l in open(k8s_path) if l.startswith("#"))
secret_cmds = re.findall(r"create secret generic (\S+)((?:\s+--from-file=\S+|\s+\\)+)", comments)
secrets = {n: [f.split("=")[1] for f in re.findall(r"--from-file=\S+", files)] for n, files in secret_cmds}
secrets.update({o["metadata"]["name"]: list((o.get("data") or {}) | (o.get("stringData") or {}))
                for o in by_kind.get("Secret", [])})
if by_kind.get("Deployment") and by_kind.get("Service"):
    dep, svc = by_kind["Deployment"][0], by_kind["Service"][0]
    spec = dep.get("spec", {})
    if spec.get("replicas") != 1:
        fail(where, "the Deployment must have replicas: 1 (one coordinator per state)")
    if (spec.get("strategy") or {}).get("type") != "Recreate":
        fail(where, "the Deployment needs strategy Recreate (never two coordinators on one state)")
    tmpl = spec.get("template", {})
    labels = tmpl.get("metadata", {}).get("labels", {})
    sel = (spec.get("selector") or {}).get("matchLabels", {})
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        fail(where, "the Deployment's selector does not match its pod labels")
    if not svc.get("spec", {}).get("selector") or any(
            labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
        fail(where, "the Service's selector does not match the pods")
    pod = tmpl.get("spec", {})
    psc = pod.get("securityContext") or {}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    containers = pod.get("containers") or []
    if len(containers) != 1:
        fail(where, "expected one container")
    for c in containers:
        csc = c.get("securityContext") or {}
        if not (csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
            fail(where, "runAsNonRoot: true missing")
        if csc.get("readOnlyRootFilesystem") is not True:
            fail(where, "readOnlyRootFilesystem: true missing")
        if csc.get("allowPrivilegeEscalation") is not False:
            fail(where, "allowPrivilegeEscalation: false missing")
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        if IMAGE_UID and str(uid) != IMAGE_UID:
            fail(where, f"runAsUser {uid} is not the image's user {IMAGE_UID}")
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe"):
            p = (c.get(probe) or {}).get("tcpSocket", {}).get("port")
            if p is not None and p not in ports and p not in ports.values():
                fail(where, f"{probe} port {p} is not a container port")
        for p in svc.get("spec", {}).get("ports", []):
            t = p.get("targetPort", p.get("port"))
            if t not in ports and t not in ports.values():
                fail(where, f"the Service's targetPort {t} is not a container port")
        mounts = {}
        for m in c.get("volumeMounts", []):
            v = vols.get(m["name"])
            if v is None:
                fail(where, f"volumeMount {m['name']}: no such volume")
                continue
            mounts[m["mountPath"]] = (v, m)
        files = {}
        writable = []
        for path, (v, m) in mounts.items():
            if "configMap" in v:
                cm = [o for o in by_kind.get("ConfigMap", []) if o["metadata"]["name"] == v["configMap"]["name"]]
                if not cm:
                    fail(where, f"volume {v['name']}: ConfigMap {v['configMap']['name']} is not defined")
                else:
                    for k, text in (cm[0].get("data") or {}).items():
                        files[os.path.join(path, k)] = text
            elif "secret" in v:
                name = v["secret"].get("secretName")
                if name not in secrets:
                    fail(where, f"volume {v['name']}: Secret {name} is neither defined nor created "
                                "by a `kubectl create secret generic` in the header")
                for k in secrets.get(name, []):
                    files[os.path.join(path, k)] = None
            elif "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"].get("claimName")
                if claim not in {o["metadata"]["name"] for o in by_kind.get("PersistentVolumeClaim", [])}:
                    fail(where, f"volume {v['name']}: PersistentVolumeClaim {claim} is not defined")
                if not m.get("readOnly"):
                    writable.append(path)
            elif "emptyDir" in v and not m.get("readOnly"):
                writable.append(path)
        argv = (c.get("command") or DOCKER.get("Dockerfile.coordinator", {}).get("entrypoint", [])) + \
            (c.get("args") or [])
        n_before = len(INVOCATIONS)
        check_command(where, argv)
        for w, b, args in INVOCATIONS[n_before:]:
            path, rest = config_args(args)
            if path not in files or files[path] is None:
                fail(where, f"--config {path} is not a file of a mounted ConfigMap")
                continue
            local = os.path.join(TMP, "k8s-" + os.path.basename(path))
            open(local, "w").write(files[path])
            check_config(where + " ConfigMap", b, local, rest)
            conf = flat(tomllib.loads(files[path])) | overrides(rest)
            for key in ("tls.ca", "tls.cert", "tls.key", "tls.crl"):
                if conf.get(key) and conf[key] not in files:
                    fail(where, f"{key} = {conf[key]} is not a key of a mounted Secret or ConfigMap")
            state_mounts = [p for p, (v, m) in mounts.items() if "persistentVolumeClaim" in v]
            for key in ("server.state_dir", "server.export_dir", "server.audit_log"):
                if conf.get(key) and not under(conf[key], state_mounts):
                    fail(where, f"{key} = {conf[key]} is not on the PersistentVolumeClaim ({state_mounts})")
            port = int(str(conf.get("server.listen", "127.0.0.1:7443")).rpartition(":")[2])
            if port not in ports.values():
                fail(where, f"server.listen port {port} is not the containerPort {list(ports.values())}")
            if str(conf.get("server.listen", "127.0.0.1")).startswith("127."):
                fail(where, "server.listen is loopback: the Service cannot reach it")

# ---------------------------------------------------------------- every other TOML, the docs
for path in sorted(glob.glob(os.path.join(SRC, "deploy/**/*.toml"), recursive=True)):
    if os.path.dirname(path) == os.path.join(SRC, "deploy/systemd"):
        continue  # checked with their units above
    try:
        doc = tomllib.load(open(path, "rb"))
    except tomllib.TOMLDecodeError as e:
        fail(rel(path), f"not TOML: {e}")
        continue
    check_config(rel(path), kind_of(doc), path)

for doc in ("docs/site-admin.md", "docs/operator.md"):
    text = open(os.path.join(SRC, doc)).read()
    for m in re.finditer(r"^```(sh|bash)\n(.*?)^```", text, re.M | re.S):
        line = text[:m.start()].count("\n") + 1
        check_script(f"{doc}:{line}", m.group(2))
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    for m in re.finditer(r"`((?:dermfed|certs/[\w-]+\.sh|docker run)[^`]*)`", prose):
        code = m.group(1).replace("\n", " ")
        if " " in code and "..." not in code and "|" not in code:
            check_script(f"{doc} (inline)", code.replace("[", "").replace("]", ""))
for where, target, body in HEREDOCS:
    if target.endswith(".toml"):
        try:
            doc = tomllib.loads(body)
        except tomllib.TOMLDecodeError as e:
            fail(where, f"the {os.path.basename(target)} it writes is not TOML: {e}")
            continue
        local = os.path.join(TMP, f"heredoc-{len(os.listdir(TMP))}-{os.path.basename(target)}")
        open(local, "w").write(body)
        check_config(f"{where} ({os.path.basename(target)})", kind_of(doc), local)

from concurrent.futures import ThreadPoolExecutor
run_flag_checks()
with ThreadPoolExecutor(max_workers=4) as pool:
    list(pool.map(lambda kv: run_config_check(kv[1][0], kv[0][0], kv[1][1], kv[0][2]),
                  CONFIG_CHECKS.items()))

shutil.rmtree(TMP, ignore_errors=True)
print(f"checked {checked['flags']} flags and {checked['configs']} configurations "
      f"against the binaries")
if failures:
    for f in failures:
        print("FAIL:", f)
    sys.exit(1)
print("PASS")
PY
