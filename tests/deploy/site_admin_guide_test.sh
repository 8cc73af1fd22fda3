#!/usr/bin/env bash
# Runs the guides as a newcomer would: every ```bash block preceded by a
# `<!-- guide-test: NAME [background] -->` marker in docs/site-admin.md and docs/operator.md,
# in the order of a real enrolment, from nothing to two hospital sites joined to a
# coordinator over mutual TLS, through one round with secure aggregation.
#
# Each block runs as written (bash -euo pipefail, in its own shell) with only these
# changes, so that it runs unprivileged in a scratch folder on loopback:
#   - /etc/dermfed, /var/lib/dermfed, /srv/dermfed, /srv/dermfed-pki -> folders of the
#     machine playing that part under $WORK (the CA machine, the coordinator host, and one
#     host per hospital);
#   - the coordinator's host name fl.example-consortium.org -> localhost, port 7443 -> a
#     free port; "sudo -u dermfed " is dropped; dermfed* are the binaries under test;
#   - the second hospital runs the site blocks with hospital-a -> hospital-b;
#   - the coordinator gets --set flags for a tiny model and one round with two sites
#     (the guide's densenet121 at 224 px would take an hour on a CPU); sites get one thread.
# What the guide leaves to people (mailing the CSR and certificate, the hospital's own
# data) is done here between blocks. A marked block this script does not know fails the
# test, so the guide cannot grow steps that are never run.
#
# usage: site_admin_guide_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE SOURCE_DIR
set -uo pipefail
DERMFED="$(readlink -f "$1")"
COORDINATOR="$(readlink -f "$2")"
SITE="$(readlink -f "$3")"
SRC="$(cd "$4" && pwd)"
PY=/usr/bin/python3
# shellcheck source=../harness.sh
source "$SRC/tests/harness.sh"
harness_start site-admin-guide
trap 'rc=$?; for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; (exit $rc); harness_cleanup' EXIT

mkdir -p "$WORK/bin" "$WORK/blocks" "$WORK/tmp"
ln -s "$DERMFED" "$WORK/bin/dermfed"
ln -s "$COORDINATOR" "$WORK/bin/dermfed-coordinator"
ln -s "$SITE" "$WORK/bin/dermfed-site"
export PATH="$WORK/bin:$PATH" TMPDIR="$WORK/tmp"
PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# The machines: the CA, the coordinator host, two hospitals. The guides' install steps
# (useradd, install -d /etc/dermfed) need root; their result is these folders.
CA="$WORK/ca-host"
CO="$WORK/coordinator-host"
mkdir -p "$CA/srv" "$CO/etc/dermfed" "$CO/var/lib/dermfed" "$WORK/operator"
ln -s "$SRC/certs" "$WORK/operator/certs"   # the operator works in a copy of the source
ln -s "$SRC/deploy" "$WORK/operator/deploy"
for h in hospital-a hospital-b; do
  mkdir -p "$WORK/$h/etc/dermfed" "$WORK/$h/srv/dermfed" "$WORK/$h/var/lib/dermfed" "$WORK/$h/home"
done

# block DOC NAME ROLE [SITE] [EXTRA_ARGS]: writes the rewritten block to stdout.
#   ROLE operator: the CA machine and the coordinator host; ROLE site: hospital SITE.
block() {
  GUIDE_WORK="$WORK" GUIDE_PORT="$PORT" "$PY" - "$@" <<'PY'
import os, re, sys
doc, name, role, site, extra = (sys.argv[1:] + [""] * 5)[:5]
work, port = os.environ["GUIDE_WORK"], os.environ["GUIDE_PORT"]
blocks, known = {}, set()
lines = open(doc).read().split("\n")
for i, line in enumerate(lines):
    m = re.fullmatch(r"<!-- guide-test: ([a-z0-9-]+)( background)? -->", line.strip())
    if not m:
        continue
    if i + 1 >= len(lines) or lines[i + 1].strip() != "```bash":
        sys.exit(f"{doc}:{i + 1}: marker '{m.group(1)}' is not followed by a ```bash fence")
    end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == "```"), None)
    if end is None:
        sys.exit(f"{doc}:{i + 1}: block '{m.group(1)}' is never closed")
    if m.group(1) in blocks:
        sys.exit(f"{doc}: two blocks named '{m.group(1)}'")
    blocks[m.group(1)] = ("\n".join(lines[i + 2:end]), bool(m.group(2)))
if name == "--list":
    print(" ".join(sorted(blocks)))
    sys.exit(0)
if name not in blocks:
    sys.exit(f"{doc}: no block marked <!-- guide-test: {name} -->")
text, background = blocks[name]
if role == "operator":
    paths = {"/srv/dermfed-pki": f"{work}/ca-host/srv/dermfed-pki",
             "/etc/dermfed": f"{work}/coordinator-host/etc/dermfed",
             "/var/lib/dermfed": f"{work}/coordinator-host/var/lib/dermfed"}
else:
    paths = {"/etc/dermfed": f"{work}/{site}/etc/dermfed",
             "/srv/dermfed": f"{work}/{site}/srv/dermfed",
             "/var/lib/dermfed": f"{work}/{site}/var/lib/dermfed"}
    text = text.replace("hospital-a", site)
for k in sorted(paths, key=len, reverse=True):
    text = re.sub(re.escape(k) + r"(?![\w-])", paths[k], text)
text = text.replace("fl.example-consortium.org", "localhost").replace("7443", port)
text = text.replace("sudo -u dermfed ", "")
if background:
    commands = [l for l in text.split("\n") if l.strip() and not l.lstrip().startswith("#")]
    if len(commands) != 1:
        sys.exit(f"{doc}: background block '{name}' must be one command, got {len(commands)}")
    text = "exec " + commands[0].strip() + (" " + extra if extra else "")
print(text)
PY
}

# prepare DOC NAME ROLE [SITE] [EXTRA]: writes the block to $WORK/blocks/TAG.sh; sets TAG and
# CWD (the folder its machine's admin works in).
prepare() {
  local doc="$1" name="$2" role="$3" site="${4:-}" extra="${5:-}"
  TAG="$name${site:+-$site}"
  block "$doc" "$name" "$role" "$site" "$extra" >"$WORK/blocks/$TAG.sh" ||
    fail "cannot take block '$name' from $doc"
  CWD="$WORK/operator"
  [ "$role" = site ] && CWD="$WORK/$site/home"
}

# run DOC NAME ROLE [SITE] [EXTRA]: runs a block in the folder its machine's admin works in.
run() {
  local name="$2" role="$3" site="${4:-}"
  prepare "$@"
  local tag="$TAG" cwd="$CWD"
  echo "== $tag"
  (cd "$cwd" && bash -euo pipefail "$WORK/blocks/$tag.sh") >"$WORK/logs/$tag.log" 2>&1 ||
    fail "guide block '$name' ($role${site:+ $site}) failed: $(tail -n 20 "$WORK/logs/$tag.log")"
}

# start DOC NAME ROLE SITE EXTRA: a background block (one long-running command).
start() {
  prepare "$@"
  local tag="$TAG" cwd="$CWD"
  echo "== $tag (background): $(cat "$WORK/blocks/$tag.sh")"
  (cd "$cwd" && exec bash "$WORK/blocks/$tag.sh") >"$WORK/logs/$tag.out" 2>"$WORK/logs/$tag.log" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# wait_for_log LOG PATTERN PID WHAT: until LOG matches, failing if PID exits first (60 s).
wait_for_log() {
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { sleep 0.2; grep -q "$2" "$1" && return 0; fail "$4: the process exited"; }
    sleep 0.1
  done
  fail "$4: not within 60 s"
}

SA="$SRC/docs/site-admin.md"
OP="$SRC/docs/operator.md"
EXPECTED_SA="site-config site-csr site-datacheck site-foreground site-install-cert"
EXPECTED_OP="op-ca op-config op-install op-sign-csr op-start op-status"
[ "$(block "$SA" --list x)" = "$EXPECTED_SA" ] ||
  fail "docs/site-admin.md has guide-test blocks '$(block "$SA" --list x)', this test runs '$EXPECTED_SA'"
[ "$(block "$OP" --list x)" = "$EXPECTED_OP" ] ||
  fail "docs/operator.md has guide-test blocks '$(block "$OP" --list x)', this test runs '$EXPECTED_OP'"

# Operator: the CA, the coordinator's and the admin's certificates.
run "$OP" op-ca operator
grep -qi "sha256 Fingerprint=" "$WORK/logs/op-ca.log" || fail "op-ca printed no CA fingerprint"

for h in hospital-a hospital-b; do
  # Hospital: key and CSR; the CSR is mailed to the operator.
  run "$SA" site-csr site "$h"
  [ "$(stat -c %a "$WORK/$h/etc/dermfed/$h.key")" = 600 ] || fail "$h.key is not mode 0600"
  cp "$WORK/$h/etc/dermfed/$h.csr" "$WORK/operator/"
  # Operator: signs it; the certificate and the CA certificate are mailed back.
  block "$OP" op-sign-csr operator >"$WORK/blocks/op-sign-csr-$h.sh" || fail "no op-sign-csr block"
  sed -i "s/hospital-a/$h/g" "$WORK/blocks/op-sign-csr-$h.sh"
  (cd "$WORK/operator" && bash -euo pipefail "$WORK/blocks/op-sign-csr-$h.sh") \
    >"$WORK/logs/op-sign-csr-$h.log" 2>&1 || fail "op-sign-csr for $h failed: $(cat "$WORK/logs/op-sign-csr-$h.log")"
  cp "$CA/srv/dermfed-pki/site/$h.crt" "$CA/srv/dermfed-pki/ca/ca.crt" "$WORK/$h/etc/dermfed/"
  run "$SA" site-install-cert site "$h"
  grep -q "$h.crt: OK" "$WORK/logs/site-install-cert-$h.log" || fail "the certificate of $h does not verify"
  # The hospital's own data (here generated, in the format the guide's configuration names).
  "$DERMFED" datagen --format isic-2019 --images 80 --image-size 32 \
    --seed "$([ "$h" = hospital-a ] && echo 11 || echo 12)" \
    --out "$WORK/$h/srv/dermfed/isic-2019" >"$WORK/logs/datagen-$h.log" 2>&1 || fail "datagen failed"
  run "$SA" site-config site "$h"
done
run "$SA" site-datacheck site hospital-a
grep -q "class counts" "$WORK/logs/site-datacheck-hospital-a.log" || fail "the data check printed no class counts"

# Operator: the coordinator host's files and configuration, then the coordinator.
run "$OP" op-install operator
run "$OP" op-config operator
[ -f "$CO/etc/dermfed/coordinator.key" ] || fail "op-install did not install the coordinator key"
start "$OP" op-start operator "" "--set model.backbone=tiny --set model.image_size=32 --set federation.rounds=1 --set federation.min_sites=2 --set federation.expected_sites=2 --set server.listen=127.0.0.1:$PORT --set server.threads=1"
COORD_PID=$LAST_PID
wait_for_log "$WORK/logs/op-start.log" "listening on port $PORT" "$COORD_PID" "the coordinator did not start listening"

# Hospital A joins; the federation waits for a second site.
start "$SA" site-foreground site hospital-a "--set site.threads=1 --set site.workers=1"
SITE_A=$LAST_PID
wait_for_log "$WORK/logs/site-foreground-hospital-a.log" "joined federation" "$SITE_A" "hospital-a did not join"
grep -q "site=hospital-a data ready" "$WORK/logs/site-foreground-hospital-a.log" || fail "hospital-a did not read its data"

# Operator: the CLI sees it.
run "$OP" op-status operator
grep -q "waiting for sites" "$WORK/logs/op-status.log" || fail "status: $(cat "$WORK/logs/op-status.log")"
grep -q "^hospital-a " "$WORK/logs/op-status.log" || fail "dermfed sites does not list hospital-a: $(cat "$WORK/logs/op-status.log")"

# Hospital B joins: one round with secure aggregation, then everyone finishes.
start "$SA" site-foreground site hospital-b "--set site.threads=1 --set site.workers=1"
SITE_B=$LAST_PID
for who in "$SITE_A:hospital-a" "$SITE_B:hospital-b" "$COORD_PID:coordinator"; do
  pid="${who%%:*}"
  for _ in $(seq 1800); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "${who#*:} did not finish within 180 s"
  wait "$pid" || fail "${who#*:} exited with status $?"
done
for h in hospital-a hospital-b; do
  grep -q "site=$h .*uploading (masked)" "$WORK/logs/site-foreground-$h.log" ||
    fail "$h did not upload a masked update (secure aggregation)"
  grep -q "site=$h federation finished" "$WORK/logs/site-foreground-$h.log" || fail "$h did not finish"
done
grep -q "^round 1: balanced accuracy" "$WORK/logs/op-start.out" || fail "the coordinator printed no round"
grep -q "exported the global model of round 1 to $CO/var/lib/dermfed/coordinator/export" \
  "$WORK/logs/op-start.log" || fail "no export to the configured export_dir"
echo "PASS"
