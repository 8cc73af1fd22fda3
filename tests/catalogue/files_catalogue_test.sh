#!/usr/bin/env bash
# The bad-input catalogue at the file and process boundaries (issue 7), against the real
# binaries. Each entry gives a daemon or command one bad input and checks that it is refused
# (non-zero exit within 60 s, never a crash or a hang), that the answer names the problem (the
# file, the key, the row or the tensor), and that nothing was changed: no state folder made,
# no input file touched, no partition output written. The wire boundary (updates, pulls,
# evaluation reports, checkpoints at restart) is tests/catalogue/wire_catalogue_test.cc.
#
#   certificates   tls.cert / tls.key / tls.ca / tls.crl and site.cert / site.key: garbage PEM,
#                  missing, expired, a key of another certificate, another CA's certificate;
#                  an expired site certificate presented to a running coordinator
#   configuration  unknown keys, wrong types, broken TOML, impossible combinations, unknown flags
#   datasets       PAD-UFES-20 CSV rows: a path as img_id (../../etc/passwd, /etc/passwd), too
#                  few fields, an unknown diagnosis, a duplicate image, a missing column
#   generic        manifest image paths leaving the folder or absolute; a schema whose
#                  manifest file is a path (../, absolute: partition would write there)
#   partition      --out inside the dataset, --out holding a partition
#   RUN folders    a truncated model.dfs, a garbage config.json
#
# Prints the catalogue table (input | boundary | answer); DERMFED_CATALOGUE_OUT=FILE appends it.
# usage: files_catalogue_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE CERTS_DIR
set -uo pipefail
DERMFED="$1"
COORDINATOR="$2"
SITE="$3"
CERTS="$4"
# shellcheck source=../harness.sh
source "$(cd "$(dirname "$0")/.." && pwd)/harness.sh"
harness_start files-catalogue
TABLE="$WORK/table.md"
printf '| input | boundary | answer |\n| --- | --- | --- |\n' >"$TABLE"

# row INPUT BOUNDARY ANSWER: one line of the catalogue.
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$(printf '%s' "$3" | tr '\n|' ' /')" >>"$TABLE"; }

# refused INPUT BOUNDARY PATTERN COMMAND...: COMMAND must exit non-zero by itself within 60 s
# with output matching PATTERN (grep -E); the matching line goes into the table.
refused() {
  local input="$1" boundary="$2" pattern="$3"
  shift 3
  local out="$WORK/out.txt" rc line
  timeout 60 bash -c '"$@"' refused "$@" >"$out" 2>&1  # (COMMAND may be an exported function)
  rc=$?
  [ "$rc" -eq 124 ] && fail "$input: still running after 60 s instead of refusing: $(tail -n 3 "$out")"
  [ "$rc" -eq 0 ] && fail "$input: accepted: $(tail -n 3 "$out")"
  [ "$rc" -gt 128 ] && fail "$input: killed by signal $((rc - 128)): $(tail -n 5 "$out")"
  line="$(grep -E -m 1 -- "$pattern" "$out")" ||
    fail "$input: the answer does not say /$pattern/: $(tail -n 5 "$out")"
  row "$input" "$boundary" "exit $rc: $line"
  echo "refused: $input"
}

# fingerprint DIR: one hash over every file's path and contents below DIR.
fingerprint() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum; }

# no_state DIR INPUT: the refused start left no state folder behind.
no_state() { [ ! -e "$1" ] || fail "$2: the refused start wrote $1: $(ls -A "$1")"; }

PKI="$WORK/pki"
bash "$CERTS/make-test-pki.sh" "$PKI" --sites 2 >"$WORK/logs/pki.log" 2>&1 || fail "make-test-pki.sh failed"

# expired ROLE NAME: NAME.key and NAME.crt in $WORK/expired, signed by the test CA, valid in
# January 2020 only.
expired() {
  local role="$1" name="$2" d="$WORK/expired" san="URI:spiffe://dermfed/$1/$2" eku="clientAuth"
  mkdir -p "$d"
  if [ "$role" = coordinator ]; then
    san="$san,DNS:localhost,IP:127.0.0.1"
    eku="serverAuth, clientAuth"
  fi
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$name.key" 2>/dev/null
  openssl req -new -key "$d/$name.key" -subj "/O=dermfed-test/OU=$role/CN=$name" -out "$d/$name.csr"
  cat >"$d/$name.ext" <<EOF
[ dermfed_leaf ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = $eku
subjectAltName         = $san
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
  DERMFED_CA_DIR="$PKI/ca" openssl ca -batch -notext -config "$PKI/ca/openssl.cnf" \
    -startdate 20200101000000Z -enddate 20200201000000Z -extfile "$d/$name.ext" \
    -extensions dermfed_leaf -in "$d/$name.csr" -out "$d/$name.crt" >"$WORK/logs/expired.log" 2>&1 ||
    fail "cannot make an expired certificate: $(cat "$WORK/logs/expired.log")"
}
expired coordinator coordinator
expired site site-1
printf -- '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' >"$WORK/garbage.pem"

# ---------------------------------------------------------------- certificates: coordinator
C="$PKI/coordinator/coordinator"
# (exec: run in the background, $! is the coordinator itself, which the harness kills.)
coordinator() {  # coordinator STATE_DIR CA CERT KEY CRL [ARGS...]
  local state="$1" ca="$2" cert="$3" key="$4" crl="$5"
  shift 5
  exec "$COORDINATOR" --server.listen=127.0.0.1:0 --server.state_dir="$state" --model.backbone=tiny \
    --server.threads=1 --tls.ca="$ca" --tls.cert="$cert" --tls.key="$key" --tls.crl="$crl" "$@"
}
export -f coordinator
export COORDINATOR SITE DERMFED PKI WORK
B="dermfed-coordinator start-up"
refused "tls.cert is garbage PEM" "$B (tls.cert)" "garbage.pem': not a PEM" \
  coordinator "$WORK/s1" "$PKI/ca/ca.crt" "$WORK/garbage.pem" "$C.key" "$PKI/crl/crl.pem"
no_state "$WORK/s1" "garbage tls.cert"
refused "tls.cert names no file" "$B (tls.cert)" "cannot read '$WORK/missing.crt'" \
  coordinator "$WORK/s1" "$PKI/ca/ca.crt" "$WORK/missing.crt" "$C.key" "$PKI/crl/crl.pem"
no_state "$WORK/s1" "missing tls.cert"
refused "tls.cert expired (Jan 2020)" "$B (tls.cert)" "coordinator.crt' expired on" \
  coordinator "$WORK/s1" "$PKI/ca/ca.crt" "$WORK/expired/coordinator.crt" \
  "$WORK/expired/coordinator.key" "$PKI/crl/crl.pem"
no_state "$WORK/s1" "expired tls.cert"
refused "tls.key of another certificate (site-1's)" "$B (tls.key)" "does not belong to the certificate" \
  coordinator "$WORK/s1" "$PKI/ca/ca.crt" "$C.crt" "$PKI/site/site-1.key" "$PKI/crl/crl.pem"
no_state "$WORK/s1" "mismatched tls.key"
refused "tls.key is garbage PEM" "$B (tls.key)" "garbage.pem': not a PEM" \
  coordinator "$WORK/s1" "$PKI/ca/ca.crt" "$C.crt" "$WORK/garbage.pem" "$PKI/crl/crl.pem"
refused "tls.cert issued by a foreign CA" "$B (tls.cert)" "is not signed by the CA" \
  coordinator "$WORK/s1" "$PKI/ca/ca.crt" "$PKI/foreign/site/site-1.crt" \
  "$PKI/foreign/site/site-1.key" "$PKI/crl/crl.pem"
refused "tls.ca is garbage PEM" "$B (tls.ca)" "CA certificate '$WORK/garbage.pem': not a PEM" \
  coordinator "$WORK/s1" "$WORK/garbage.pem" "$C.crt" "$C.key" "$PKI/crl/crl.pem"
refused "tls.crl is garbage PEM" "$B (tls.crl)" "garbage.pem" \
  coordinator "$WORK/s1" "$PKI/ca/ca.crt" "$C.crt" "$C.key" "$WORK/garbage.pem"
refused "tls.crl signed by a foreign CA" "$B (tls.crl)" "not signed by the consortium CA" \
  coordinator "$WORK/s1" "$PKI/ca/ca.crt" "$C.crt" "$C.key" "$PKI/foreign/crl/crl.pem"
no_state "$WORK/s1" "bad certificates"

# ---------------------------------------------------------------- certificates: site
"$DERMFED" datagen --format pad-ufes-20 --images 40 --seed 3 --out "$WORK/pad" >"$WORK/logs/datagen.log" 2>&1 ||
  fail "datagen failed"
site() {  # site CERT KEY [ARGS...]: a site of a coordinator that is not there (port 1)
  local cert="$1" key="$2"
  shift 2
  "$SITE" --site.name=site-1 --site.coordinator=127.0.0.1:1 --site.data="$WORK/pad" \
    --site.ca="$PKI/ca/ca.crt" --site.cert="$cert" --site.key="$key" --site.threads=1 "$@"
}
export -f site
B="dermfed-site start-up"
refused "site.cert is garbage PEM" "$B (site.cert)" "garbage.pem': not a PEM" \
  site "$WORK/garbage.pem" "$PKI/site/site-1.key"
refused "site.cert expired (Jan 2020)" "$B (site.cert)" "site-1.crt' expired on" \
  site "$WORK/expired/site-1.crt" "$WORK/expired/site-1.key"
refused "site.key of another certificate (site-2's)" "$B (site.key)" "does not belong to the certificate" \
  site "$PKI/site/site-1.crt" "$PKI/site/site-2.key"

# An expired site certificate presented to a running coordinator: the handshake is refused.
coordinator "$WORK/live" "$PKI/ca/ca.crt" "$C.crt" "$C.key" "$PKI/crl/crl.pem" \
  --server.port_file="$WORK/port" --federation.min_sites=2 \
  >"$WORK/logs/coordinator.out" 2>"$WORK/logs/coordinator.log" &
PIDS+=("$!")
wait_for 120 "the coordinator did not listen" test -s "$WORK/port"
openssl s_client -connect "127.0.0.1:$(cat "$WORK/port")" -CAfile "$PKI/ca/ca.crt" -alpn h2 \
  -cert "$WORK/expired/site-1.crt" -key "$WORK/expired/site-1.key" </dev/null >"$WORK/s_client.txt" 2>&1
# (gRPC logs OpenSSL's generic reason; the site itself refuses such a certificate at start-up.)
wait_for 10 "the coordinator did not refuse an expired client certificate" \
  grep -q "certificate verify failed" "$WORK/logs/coordinator.log"
row "expired site certificate presented in the TLS handshake" "coordinator gRPC port (mutual TLS)" \
  "handshake refused; coordinator log: $(grep -m 1 -o 'Handshake failed.*' "$WORK/logs/coordinator.log")"
echo "refused: an expired site certificate in the handshake"

# ---------------------------------------------------------------- configuration
B="dermfed-coordinator --config"
conf() { printf '%b' "$2" >"$WORK/$1"; echo "$WORK/$1"; }
TLS=(--tls.ca="$PKI/ca/ca.crt" --tls.cert="$C.crt" --tls.key="$C.key")
refused "unknown key federation.roundz in the TOML file" "$B" "roundz" \
  "$COORDINATOR" --config "$(conf c1.toml '[federation]\nroundz = 3\n')" \
  --server.state_dir="$WORK/s2" "${TLS[@]}"
refused "federation.rounds = \"ten\" (a string)" "$B" "federation.rounds" \
  "$COORDINATOR" --config "$(conf c2.toml '[federation]\nrounds = "ten"\n')" \
  --server.state_dir="$WORK/s2" "${TLS[@]}"
refused "broken TOML (unclosed table header)" "$B" "c3.toml" \
  "$COORDINATOR" --config "$(conf c3.toml '[federation\nrounds = 3\n')" \
  --server.state_dir="$WORK/s2" "${TLS[@]}"
refused "federation.min_sites = 5 above federation.expected_sites = 3" "$B" \
  "federation.min_sites.*federation.expected_sites|federation.expected_sites.*federation.min_sites" \
  "$COORDINATOR" --config "$(conf c4.toml '[federation]\nmin_sites = 5\nexpected_sites = 3\n')" \
  --server.state_dir="$WORK/s2" "${TLS[@]}"
refused "--federation.roundz=3 on the command line" "dermfed-coordinator flags" "roundz" \
  "$COORDINATOR" --federation.roundz=3 --server.state_dir="$WORK/s2" "${TLS[@]}"
refused "model.backbone = \"resnet9000\"" "$B" "resnet9000" \
  "$COORDINATOR" --config "$(conf c5.toml '[model]\nbackbone = "resnet9000"\n')" \
  --server.state_dir="$WORK/s2" "${TLS[@]}"
no_state "$WORK/s2" "bad configuration"
refused "unknown key site.nmae in the TOML file" "dermfed-site --config" "nmae" \
  "$SITE" --config "$(conf s1.toml '[site]\nnmae = "x"\n')"
refused "site.validation_fraction = \"lots\"" "dermfed-site --config" "site.validation_fraction" \
  "$SITE" --config "$(conf s2.toml '[site]\nvalidation_fraction = "lots"\n')"

# ---------------------------------------------------------------- datasets (PAD-UFES-20 CSV)
# bad_pad NAME EDIT: a copy of the dataset with metadata.csv changed by the Python EDIT
# (rows: list of dicts, header: list of column names).
bad_pad() {
  rm -rf "${WORK:?}/${1:?}"
  cp -r "$WORK/pad" "$WORK/$1"
  /usr/bin/python3 - "$WORK/$1/metadata.csv" "$2" <<'PY' || fail "cannot edit $1"
import csv, sys
path, edit = sys.argv[1], sys.argv[2]
with open(path, newline="") as f:
    reader = csv.DictReader(f)
    header, rows = list(reader.fieldnames), list(reader)
lines = None
exec(edit)
with open(path, "w", newline="") as f:
    if lines is not None:
        f.write(lines)
    else:
        w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
PY
}
# partition_refused INPUT PATTERN DATA [ARGS...]: partition refuses, writes nothing, reads only.
partition_refused() {
  local input="$1" pattern="$2" data="$3"
  shift 3
  local before
  before="$(fingerprint "$data")"
  refused "$input" "dataset reader (dermfed partition, dermfed-site)" "$pattern" \
    "$DERMFED" partition --data "$data" --format pad-ufes-20 --sites 2 --out "$WORK/parts" "$@"
  [ "$(fingerprint "$data")" = "$before" ] || fail "$input: the dataset changed"
  [ -z "$(ls -A "$WORK/parts" 2>/dev/null)" ] || fail "$input: partition wrote $(ls "$WORK/parts")"
}
bad_pad d1 'rows[3]["img_id"] = "../../etc/passwd"'
partition_refused "img_id ../../etc/passwd in metadata.csv" "image ../../etc/passwd not found below" "$WORK/d1"
bad_pad d2 'rows[3]["img_id"] = "/etc/passwd"'
partition_refused "img_id /etc/passwd in metadata.csv" "image /etc/passwd not found below" "$WORK/d2"
bad_pad d3 'lines = ",".join(header) + "\n" + ",".join(rows[0][h] for h in header[:5]) + "\n"'
partition_refused "a row with 5 of 26 fields" "line 2|fields" "$WORK/d3"
bad_pad d4 'rows[2]["diagnostic"] = "XYZ"'
partition_refused "diagnostic XYZ (not a class)" "XYZ" "$WORK/d4"
bad_pad d5 'rows[4]["img_id"] = rows[3]["img_id"]'
partition_refused "the same img_id on two rows" "appears twice" "$WORK/d5"
bad_pad d6 'header.remove("diagnostic"); [r.pop("diagnostic") for r in rows]'
partition_refused "metadata.csv without the diagnostic column" "diagnostic" "$WORK/d6"
bad_pad d7 'rows.clear()'
partition_refused "metadata.csv with a header and no rows" "metadata.csv|no rows|empty" "$WORK/d7"
# With --skip-bad-rows the same bad rows are skipped and counted, not read.
bad_pad d8 'rows[3]["img_id"] = "../../etc/passwd"; rows[2]["diagnostic"] = "XYZ"'
"$DERMFED" partition --data "$WORK/d8" --format pad-ufes-20 --sites 2 --out "$WORK/parts8" \
  --skip-bad-rows >"$WORK/out.txt" 2>&1 || fail "--skip-bad-rows did not skip: $(tail -n 3 "$WORK/out.txt")"
grep -qE "2 input rows were skipped" "$WORK/out.txt" ||
  fail "--skip-bad-rows does not report 2 skipped rows: $(cat "$WORK/out.txt")"
row "the two bad rows above with --skip-bad-rows" "dataset reader (dermfed partition, dermfed-site)" \
  "exit 0: $(grep -m 1 -iE 'skipped' "$WORK/out.txt")"
echo "skipped: bad rows with --skip-bad-rows"

# ---------------------------------------------------------------- generic manifests and schemas
mkdir -p "$WORK/gen/images" "$WORK/outside"
for i in 1 2 3 4; do printf 'x' >"$WORK/gen/images/$i.png"; done
printf 'x' >"$WORK/outside/secret.png"
schema() {  # schema FILE MANIFEST_FILE
  cat >"$1" <<EOF
{"format_version": 1, "name": "clinic", "class_names": ["benign", "malignant"],
 "columns": [{"name": "age", "type": "numeric", "mean": 50, "std": 20}],
 "manifest": {"file": "$2", "image_column": "image", "label_column": "label",
              "group_column": "patient"}}
EOF
}
schema "$WORK/schema.json" manifest.csv
manifest() {  # manifest IMAGE_OF_ROW_4
  printf 'image,label,patient,age\nimages/1.png,benign,P1,30\nimages/2.png,malignant,P2,40\nimages/3.png,benign,P3,50\n%s,malignant,P4,60\n' \
    "$1" >"$WORK/gen/manifest.csv"
}
generic_refused() {  # generic_refused INPUT PATTERN SCHEMA
  local before outside
  before="$(fingerprint "$WORK/gen")"
  outside="$(fingerprint "$WORK/outside")"
  refused "$1" "generic dataset reader / schema (dermfed partition, dermfed-site)" "$2" \
    "$DERMFED" partition --data "$WORK/gen" --format generic --schema "$3" --sites 2 --out "$WORK/parts"
  [ "$(fingerprint "$WORK/gen")" = "$before" ] || fail "$1: the dataset changed"
  [ "$(fingerprint "$WORK/outside")" = "$outside" ] || fail "$1: a file outside the dataset changed"
  [ -z "$(ls -A "$WORK/parts" 2>/dev/null)" ] || fail "$1: partition wrote $(ls "$WORK/parts")"
}
manifest "../outside/secret.png"
generic_refused "manifest image path ../outside/secret.png" "leaves" "$WORK/schema.json"
manifest "$WORK/outside/secret.png"
generic_refused "manifest image path $WORK/outside/secret.png (absolute)" "is absolute" "$WORK/schema.json"
manifest "images/4.png"
schema "$WORK/schema-up.json" "../outside/manifest.csv"
cp "$WORK/gen/manifest.csv" "$WORK/outside/manifest.csv"
generic_refused "schema manifest.file = ../outside/manifest.csv" "not a path" "$WORK/schema-up.json"
schema "$WORK/schema-abs.json" "$WORK/gen/manifest.csv"
generic_refused "schema manifest.file = the input manifest's absolute path" "not a path" "$WORK/schema-abs.json"

# ---------------------------------------------------------------- partition output
before="$(fingerprint "$WORK/pad")"
refused "--out inside the dataset folder" "dermfed partition --out" "is inside" \
  "$DERMFED" partition --data "$WORK/pad" --format pad-ufes-20 --sites 2 --out "$WORK/pad/images/sites"
[ "$(fingerprint "$WORK/pad")" = "$before" ] || fail "--out inside: the dataset changed"
"$DERMFED" partition --data "$WORK/pad" --format pad-ufes-20 --sites 2 --out "$WORK/p2" \
  >"$WORK/logs/partition.log" 2>&1 || fail "partition failed: $(tail -n 3 "$WORK/logs/partition.log")"
before="$(fingerprint "$WORK/p2")"
refused "--out already holding a partition" "dermfed partition --out" "already exists" \
  "$DERMFED" partition --data "$WORK/pad" --format pad-ufes-20 --sites 3 --out "$WORK/p2"
[ "$(fingerprint "$WORK/p2")" = "$before" ] || fail "--out holding a partition: it changed"

# ---------------------------------------------------------------- RUN folders
"$DERMFED" train --data "$WORK/pad" --format pad-ufes-20 --backbone tiny --image-size 32 \
  --epochs 1 --out "$WORK/run" >"$WORK/logs/train.log" 2>&1 || fail "train failed: $(tail -n 3 "$WORK/logs/train.log")"
cp -r "$WORK/run" "$WORK/run-cut"
head -c "$(($(stat -c %s "$WORK/run/model.dfs") / 2))" "$WORK/run/model.dfs" >"$WORK/run-cut/model.dfs"
refused "RUN folder with model.dfs truncated to half" "dermfed eval --model (RUN folder)" "model.dfs" \
  "$DERMFED" eval --model "$WORK/run-cut" --data "$WORK/pad" --format pad-ufes-20
cp -r "$WORK/run" "$WORK/run-cfg"
printf '{"format_version": 1, "model": {"backbone": 7' >"$WORK/run-cfg/config.json"
refused "RUN folder with a truncated config.json" "dermfed eval --model (RUN folder)" "config.json" \
  "$DERMFED" eval --model "$WORK/run-cfg" --data "$WORK/pad" --format pad-ufes-20

echo
cat "$TABLE"
[ -n "${DERMFED_CATALOGUE_OUT:-}" ] && cat "$TABLE" >>"$DERMFED_CATALOGUE_OUT"
echo "PASS: files catalogue ($(($(wc -l <"$TABLE") - 2)) entries)"
