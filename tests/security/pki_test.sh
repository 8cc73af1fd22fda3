#!/usr/bin/env bash
# The consortium PKI scripts in certs/ produce what the coordinator's TLS code and gRPC
# authorization policy rely on: subjects, SPIFFE URI SANs, key usages, CRLs in both places,
# private keys at mode 0600; and they refuse what they should (bad names, foreign CAs,
# overwriting a CA, re-issuing a valid name without --rotate).
# Usage: pki_test.sh CERTS_DIR
set -uo pipefail
CERTS="$(cd "${1:?usage: pki_test.sh CERTS_DIR}" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export LC_ALL=C
unset DERMFED_CA_PASSPHRASE

fail() { echo "FAIL: $*" >&2; exit 1; }
# ok DESCRIPTION CMD...: CMD must succeed; its output goes to $WORK/out.
ok() {
  local what="$1"; shift
  "$@" >"$WORK/out" 2>&1 || fail "${what}: '$*' exited non-zero: $(cat "$WORK/out")"
}
# refused DESCRIPTION PATTERN CMD...: CMD must fail and say something matching PATTERN.
refused() {
  local what="$1" pattern="$2"; shift 2
  if "$@" >"$WORK/out" 2>&1; then fail "${what}: '$*' succeeded; expected a refusal"; fi
  grep -qiE -- "$pattern" "$WORK/out" || fail "${what}: the refusal does not match /${pattern}/: $(cat "$WORK/out")"
}
subject_of() { openssl x509 -in "$1" -noout -subject -nameopt compat | sed 's/^subject=//'; }
san_of() { openssl x509 -in "$1" -noout -ext subjectAltName | sed -n '2,$p' | sed 's/^ *//'; }
ext_of() { openssl x509 -in "$1" -noout -ext "$2" | sed -n '2,$p' | sed 's/^ *//'; }
mode_of() { stat -c %a "$1"; }
pubkey_of_cert() { openssl x509 -in "$1" -noout -pubkey; }
pubkey_of_key() { openssl pkey -in "$1" -pubout; }

for s in make-ca.sh issue.sh revoke.sh gen-crl.sh make-test-pki.sh; do
  [ -x "$CERTS/$s" ] || fail "$CERTS/$s is missing or not executable"
  ok "$s --help" "$CERTS/$s" --help
  grep -q "Usage: $s" "$WORK/out" || fail "$s --help does not print a usage line"
done

# ---------------------------------------------------------------- the test PKI and its layout
P="$WORK/pki"
"$CERTS/make-test-pki.sh" "$P" >"$WORK/make.out" 2>&1 || fail "make-test-pki.sh failed: $(cat "$WORK/make.out")"
grep -q "PRIVATE KEY" "$WORK/make.out" && fail "make-test-pki.sh printed a private key"
grep -q "site/site-1.crt" "$WORK/make.out" || fail "make-test-pki.sh does not print the layout"
CA="$P/ca/ca.crt"
for f in ca/ca.key ca/ca.crt ca/index.txt ca/serial ca/crlnumber ca/openssl.cnf crl/crl.pem \
  coordinator/coordinator.{key,crt,chain.pem} site/site-{1,2,3,revoked}.{key,crt,chain.pem} \
  researcher/researcher-1.{key,crt,chain.pem} admin/admin-1.{key,crt,chain.pem} \
  foreign/ca/ca.key foreign/ca/ca.crt foreign/crl/crl.pem foreign/site/site-1.{key,crt}; do
  [ -s "$P/$f" ] || fail "test PKI lacks $f"
done
[ -e "$P/site/site-4.crt" ] && fail "default --sites should be 3, found site-4"

# The CA.
[ "$(subject_of "$CA")" = "/O=dermfed-test/CN=dermfed-test Root CA" ] || fail "CA subject is '$(subject_of "$CA")'"
openssl x509 -in "$CA" -noout -text | grep -q "ASN1 OID: prime256v1" || fail "CA key is not EC prime256v1"
openssl x509 -in "$CA" -noout -text | grep -q "Signature Algorithm: ecdsa-with-SHA256" || fail "CA is not signed with SHA-256"
ext_of "$CA" basicConstraints | grep -q "CA:TRUE" || fail "CA certificate lacks CA:TRUE"

# Every leaf: subject, URI SAN, key usages, validity, key file mode, key matches certificate.
leaves="coordinator/coordinator site/site-1 site/site-2 site/site-3 researcher/researcher-1 admin/admin-1"
for leaf in $leaves; do
  role="${leaf%%/*}" name="${leaf#*/}" crt="$P/$leaf.crt" key="$P/$leaf.key"
  [ "$(subject_of "$crt")" = "/O=dermfed-test/OU=${role}/CN=${name}" ] ||
    fail "$leaf subject is '$(subject_of "$crt")', expected /O=dermfed-test/OU=${role}/CN=${name}"
  san_of "$crt" | grep -q "^URI:spiffe://dermfed/${role}/${name}\(,\|$\)" ||
    fail "$leaf URI SAN is '$(san_of "$crt")', expected URI:spiffe://dermfed/${role}/${name} first"
  ok "$leaf verifies against the CA" openssl verify -CAfile "$CA" "$crt"
  ok "$leaf passes the CRL check" openssl verify -crl_check -CAfile "$CA" -CRLfile "$P/crl/crl.pem" "$crt"
  ok "$leaf passes the CRL check (whole chain) through crl.d" openssl verify -crl_check_all -CAfile "$CA" -CApath "$P/crl.d" "$crt"
  ok "$leaf is a TLS client certificate" openssl verify -purpose sslclient -CAfile "$CA" "$crt"
  [ "$(ext_of "$crt" basicConstraints)" = "CA:FALSE" ] || fail "$leaf basicConstraints is '$(ext_of "$crt" basicConstraints)'"
  [ "$(ext_of "$crt" keyUsage)" = "Digital Signature, Key Encipherment" ] || fail "$leaf keyUsage is '$(ext_of "$crt" keyUsage)'"
  openssl x509 -in "$crt" -noout -text | grep -q "ASN1 OID: prime256v1" || fail "$leaf key is not EC prime256v1"
  openssl x509 -in "$crt" -noout -text | grep -q "Signature Algorithm: ecdsa-with-SHA256" || fail "$leaf is not signed with SHA-256"
  start="$(date -d "$(openssl x509 -in "$crt" -noout -startdate | cut -d= -f2)" +%s)"
  end="$(date -d "$(openssl x509 -in "$crt" -noout -enddate | cut -d= -f2)" +%s)"
  [ $(((end - start) / 86400)) -eq 397 ] || fail "$leaf is valid for $(((end - start) / 86400)) days, expected 397"
  [ "$(mode_of "$key")" = "600" ] || fail "$key has mode $(mode_of "$key"), expected 600"
  [ "$(pubkey_of_cert "$crt")" = "$(pubkey_of_key "$key")" ] || fail "$key does not belong to $crt"
  [ "$(cat "$crt" "$CA")" = "$(cat "$P/$leaf.chain.pem")" ] || fail "$leaf.chain.pem is not certificate + CA"
done
for key in "$P/ca/ca.key" "$P/site/site-revoked.key" "$P/foreign/ca/ca.key" "$P/foreign/site/site-1.key"; do
  [ "$(mode_of "$key")" = "600" ] || fail "$key has mode $(mode_of "$key"), expected 600"
done

# Sites, researchers and admins are clients only; the coordinator is also a server.
for leaf in site/site-1 researcher/researcher-1 admin/admin-1; do
  [ "$(ext_of "$P/$leaf.crt" extendedKeyUsage)" = "TLS Web Client Authentication" ] ||
    fail "$leaf extendedKeyUsage is '$(ext_of "$P/$leaf.crt" extendedKeyUsage)', expected clientAuth only"
  [ "$(san_of "$P/$leaf.crt")" = "URI:spiffe://dermfed/${leaf}" ] || fail "$leaf has SANs beyond its URI: $(san_of "$P/$leaf.crt")"
  refused "$leaf must not pass as a TLS server" "error|unsupported" \
    openssl verify -purpose sslserver -CAfile "$CA" "$P/$leaf.crt"
done
COORD="$P/coordinator/coordinator.crt"
ext_of "$COORD" extendedKeyUsage | grep -q "TLS Web Server Authentication" || fail "coordinator lacks serverAuth"
ext_of "$COORD" extendedKeyUsage | grep -q "TLS Web Client Authentication" || fail "coordinator lacks clientAuth"
[ "$(san_of "$COORD")" = "URI:spiffe://dermfed/coordinator/coordinator, DNS:localhost, IP Address:127.0.0.1" ] ||
  fail "coordinator SANs are '$(san_of "$COORD")'"
ok "coordinator is a TLS server certificate" openssl verify -purpose sslserver -CAfile "$CA" "$COORD"

# A certificate from another CA is refused, even with the same role, name and URI.
FOREIGN="$P/foreign/site/site-1.crt"
san_of "$FOREIGN" | grep -q "^URI:spiffe://dermfed/site/site-1$" || fail "foreign site-1 URI SAN is '$(san_of "$FOREIGN")'"
ok "foreign site verifies against its own CA" openssl verify -CAfile "$P/foreign/ca/ca.crt" "$FOREIGN"
refused "foreign site against the consortium CA" "error" openssl verify -CAfile "$CA" "$FOREIGN"
refused "foreign site against the consortium CA with CRLs" "error" \
  openssl verify -crl_check -CAfile "$CA" -CRLfile "$P/crl/crl.pem" "$FOREIGN"
[ "$(subject_of "$P/foreign/ca/ca.crt")" != "$(subject_of "$CA")" ] || fail "the foreign CA has the consortium CA's subject"

# The revoked site: valid signature, but revoked in both CRL locations.
REVOKED="$P/site/site-revoked.crt"
ok "site-revoked is signed by the CA" openssl verify -CAfile "$CA" "$REVOKED"
refused "site-revoked with -CRLfile" "revoked" openssl verify -crl_check -CAfile "$CA" -CRLfile "$P/crl/crl.pem" "$REVOKED"
refused "site-revoked with crl.d" "revoked" openssl verify -crl_check -CAfile "$CA" -CApath "$P/crl.d" "$REVOKED"
HASH="$(openssl x509 -hash -noout -in "$CA")"
[ "$(ls "$P/crl.d")" = "${HASH}.r0" ] || fail "crl.d holds '$(ls "$P/crl.d")', expected exactly ${HASH}.r0"
cmp -s "$P/crl/crl.pem" "$P/crl.d/${HASH}.r0" || fail "crl/crl.pem and crl.d/${HASH}.r0 differ"
ok "CRL is signed by the CA" openssl crl -in "$P/crl/crl.pem" -CAfile "$CA" -noout
grep -q "verify OK" "$WORK/out" || fail "CRL signature does not verify: $(cat "$WORK/out")"
revoked_serial="$(openssl x509 -in "$REVOKED" -noout -serial | cut -d= -f2)"
openssl crl -in "$P/crl/crl.pem" -noout -text | grep -q "Serial Number: ${revoked_serial}" ||
  fail "CRL does not list site-revoked's serial ${revoked_serial}"
openssl crl -in "$P/crl/crl.pem" -noout -text | grep -q "Key Compromise" || fail "CRL does not give site-revoked's reason"
[ "$(openssl crl -in "$P/crl/crl.pem" -noout -text | grep -c "Serial Number:")" -eq 1 ] ||
  fail "CRL lists more than site-revoked"

# Running make-test-pki.sh again changes nothing; a foreign directory is refused.
before="$(openssl x509 -in "$CA" -noout -fingerprint -sha256)"
ok "make-test-pki.sh again" "$CERTS/make-test-pki.sh" "$P"
[ "$(openssl x509 -in "$CA" -noout -fingerprint -sha256)" = "$before" ] || fail "rerunning make-test-pki.sh replaced the CA"
mkdir -p "$WORK/other" && touch "$WORK/other/precious"
refused "make-test-pki.sh into a directory it did not make" "not empty" "$CERTS/make-test-pki.sh" "$WORK/other"
[ -f "$WORK/other/precious" ] || fail "make-test-pki.sh removed a file it did not make"

# ---------------------------------------------------------------- operations on a fresh CA
O="$WORK/ops"
ok "make-ca.sh" "$CERTS/make-ca.sh" --pki "$O" --consortium "Skin Lesion Consortium" --days 400
[ "$(subject_of "$O/ca/ca.crt")" = "/O=Skin Lesion Consortium/CN=Skin Lesion Consortium Root CA" ] ||
  fail "CA subject is '$(subject_of "$O/ca/ca.crt")'"
[ "$(mode_of "$O/ca/ca.key")" = "600" ] || fail "ca.key has mode $(mode_of "$O/ca/ca.key")"
[ -s "$O/crl/crl.pem" ] || fail "make-ca.sh wrote no initial CRL"
ok "the initial CRL is empty" openssl crl -in "$O/crl/crl.pem" -noout -text
grep -q "No Revoked Certificates" "$WORK/out" || fail "initial CRL is not empty"
ca_fp="$(openssl x509 -in "$O/ca/ca.crt" -noout -fingerprint -sha256)"
refused "make-ca.sh over an existing CA" "already exists.*--force" \
  "$CERTS/make-ca.sh" --pki "$O" --consortium "Skin Lesion Consortium"
[ "$(openssl x509 -in "$O/ca/ca.crt" -noout -fingerprint -sha256)" = "$ca_fp" ] || fail "a refused make-ca.sh changed ca.crt"
refused "consortium with a slash" "consortium" "$CERTS/make-ca.sh" --pki "$WORK/x" --consortium "a/b"
refused "issue.sh without a CA" "no CA" "$CERTS/issue.sh" --pki "$WORK/none" --role site --name s

# Bad names, roles and SANs are refused with a message, and nothing is written.
# shellcheck disable=SC2016  # 'a$b' is meant literally
for bad in "a/b" "x y" ".." "." "" "$(printf 'n%.0s' {1..65})" 'a$b' "a;b" "é"; do
  refused "name '${bad}'" "name" "$CERTS/issue.sh" --pki "$O" --role site --name "$bad"
done
[ -z "$(ls -A "$O/site" 2>/dev/null)" ] || fail "refused names left files in site/: $(ls -A "$O/site")"
ok "a 64-character name" "$CERTS/issue.sh" --pki "$O" --role site --name "$(printf 'n%.0s' {1..64})"
refused "role 'hospital'" "role" "$CERTS/issue.sh" --pki "$O" --role hospital --name h1
refused "--san on a site" "only for the coordinator" "$CERTS/issue.sh" --pki "$O" --role site --name h1 --san DNS:h1
refused "URI in --san" "URI" "$CERTS/issue.sh" --pki "$O" --role coordinator --name c --san URI:spiffe://dermfed/admin/x
refused "bad DNS in --san" "DNS" "$CERTS/issue.sh" --pki "$O" --role coordinator --name c --san "DNS:a b"
refused "bad IP in --san" "IP" "$CERTS/issue.sh" --pki "$O" --role coordinator --name c --san "IP:300.1.1.1"
refused "unknown flag" "no-such-flag" "$CERTS/issue.sh" --pki "$O" --no-such-flag
refused "bad --days" "days" "$CERTS/issue.sh" --pki "$O" --role site --name h1 --days 0

# Coordinator with its own SANs and validity.
ok "coordinator with --san and --days" "$CERTS/issue.sh" --pki "$O" --role coordinator --name coord.example \
  --san "DNS:coord.example.org,DNS:localhost,IP:10.1.2.3,IP:::1" --days 30
[ "$(san_of "$O/coordinator/coord.example.crt")" = "URI:spiffe://dermfed/coordinator/coord.example, DNS:coord.example.org, DNS:localhost, IP Address:10.1.2.3, IP Address:0:0:0:0:0:0:0:1" ] ||
  fail "coordinator SANs are '$(san_of "$O/coordinator/coord.example.crt")'"
end="$(date -d "$(openssl x509 -in "$O/coordinator/coord.example.crt" -noout -enddate | cut -d= -f2)" +%s)"
days_left=$(((end - $(date +%s)) / 86400))
if [ "$days_left" -lt 29 ] || [ "$days_left" -gt 30 ]; then fail "--days 30 gave ${days_left} days"; fi

# --csr: the hospital keeps its key; the CA, not the CSR, decides subject, role and SANs.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/hospital.key" 2>/dev/null
openssl req -new -key "$WORK/hospital.key" -subj "/O=Evil/OU=admin/CN=root" \
  -addext "subjectAltName=URI:spiffe://dermfed/admin/root,DNS:evil.example" \
  -addext "basicConstraints=critical,CA:TRUE" -out "$WORK/hospital.csr" 2>/dev/null || fail "could not make a CSR"
ok "issue.sh --csr" "$CERTS/issue.sh" --pki "$O" --role site --name hospital-a --csr "$WORK/hospital.csr"
grep -q "PRIVATE KEY" "$WORK/out" && fail "issue.sh printed a private key"
H="$O/site/hospital-a.crt"
[ "$(subject_of "$H")" = "/O=Skin Lesion Consortium/OU=site/CN=hospital-a" ] || fail "--csr subject is '$(subject_of "$H")'"
[ "$(san_of "$H")" = "URI:spiffe://dermfed/site/hospital-a" ] || fail "--csr SANs are '$(san_of "$H")' (the CSR's leaked in?)"
[ "$(ext_of "$H" basicConstraints)" = "CA:FALSE" ] || fail "--csr basicConstraints is '$(ext_of "$H" basicConstraints)'"
[ "$(pubkey_of_cert "$H")" = "$(pubkey_of_key "$WORK/hospital.key")" ] || fail "--csr certificate is not for the CSR's key"
[ -e "$O/site/hospital-a.key" ] && fail "--csr wrote a key file"
ok "--csr certificate verifies" openssl verify -purpose sslclient -CAfile "$O/ca/ca.crt" "$H"
openssl genpkey -algorithm ED25519 -out "$WORK/ed.key" 2>/dev/null
openssl req -new -key "$WORK/ed.key" -subj "/CN=x" -out "$WORK/ed.csr" 2>/dev/null
refused "Ed25519 CSR" "P-256" "$CERTS/issue.sh" --pki "$O" --role site --name hospital-ed --csr "$WORK/ed.csr"
echo "not a csr" >"$WORK/junk.csr"
refused "junk CSR" "certificate request" "$CERTS/issue.sh" --pki "$O" --role site --name hospital-j --csr "$WORK/junk.csr"
refused "missing CSR" "does not exist" "$CERTS/issue.sh" --pki "$O" --role site --name hospital-j --csr "$WORK/nope.csr"

# Rotation: a valid name is not re-issued by accident; --rotate overlaps old and new.
ok "issue site-b" "$CERTS/issue.sh" --pki "$O" --role site --name site-b
old_serial="$(openssl x509 -in "$O/site/site-b.crt" -noout -serial | cut -d= -f2)"
cp "$O/site/site-b.crt" "$WORK/site-b.old.crt"
refused "issuing site-b twice" "already has a valid certificate.*--rotate" \
  "$CERTS/issue.sh" --pki "$O" --role site --name site-b
cmp -s "$O/site/site-b.crt" "$WORK/site-b.old.crt" || fail "a refused issue.sh changed site-b.crt"
ok "rotate site-b" "$CERTS/issue.sh" --pki "$O" --role site --name site-b --rotate
new_serial="$(openssl x509 -in "$O/site/site-b.crt" -noout -serial | cut -d= -f2)"
[ "$new_serial" != "$old_serial" ] || fail "--rotate did not issue a new certificate"
cmp -s "$O/site/site-b.${old_serial}.crt" "$WORK/site-b.old.crt" || fail "--rotate did not keep the old certificate as site-b.${old_serial}.crt"
[ "$(mode_of "$O/site/site-b.${old_serial}.key")" = "600" ] || fail "the kept old key is not mode 600"
[ "$(pubkey_of_cert "$O/site/site-b.crt")" = "$(pubkey_of_key "$O/site/site-b.key")" ] || fail "rotated key and certificate do not match"
ok "old site-b valid during the overlap" openssl verify -crl_check -CAfile "$O/ca/ca.crt" -CRLfile "$O/crl/crl.pem" "$WORK/site-b.old.crt"
ok "new site-b valid during the overlap" openssl verify -crl_check -CAfile "$O/ca/ca.crt" -CRLfile "$O/crl/crl.pem" "$O/site/site-b.crt"

# Revocation by serial (the old one after rotation), by name, twice, and --all.
ok "revoke the old site-b by serial" "$CERTS/revoke.sh" --pki "$O" --serial "$old_serial" --reason superseded
refused "old site-b after revocation" "revoked" openssl verify -crl_check -CAfile "$O/ca/ca.crt" -CRLfile "$O/crl/crl.pem" "$WORK/site-b.old.crt"
ok "new site-b still valid" openssl verify -crl_check -CAfile "$O/ca/ca.crt" -CApath "$O/crl.d" "$O/site/site-b.crt"
ok "revoke hospital-a" "$CERTS/revoke.sh" --pki "$O" --role site --name hospital-a --reason keyCompromise
refused "hospital-a after revocation (crl.d)" "revoked" openssl verify -crl_check -CAfile "$O/ca/ca.crt" -CApath "$O/crl.d" "$H"
ok "revoking hospital-a again" "$CERTS/revoke.sh" --pki "$O" --role site --name hospital-a
grep -q "already revoked" "$WORK/out" || fail "revoking twice does not say 'already revoked'"
ok "re-issue hospital-a after revocation" "$CERTS/issue.sh" --pki "$O" --role site --name hospital-a
ok "rotate hospital-a" "$CERTS/issue.sh" --pki "$O" --role site --name hospital-a --rotate
ok "revoke --all hospital-a" "$CERTS/revoke.sh" --pki "$O" --role site --name hospital-a --all
[ "$(grep -c "revoked serial" "$WORK/out")" -eq 2 ] || fail "revoke --all did not revoke both valid hospital-a certificates: $(cat "$WORK/out")"
refused "bad reason" "reason" "$CERTS/revoke.sh" --pki "$O" --role site --name site-b --reason because
refused "revoke an unknown name" "no certificate" "$CERTS/revoke.sh" --pki "$O" --role site --name nobody
refused "revoke a serial of another CA" "not issued" "$CERTS/revoke.sh" --pki "$O" --serial "$revoked_serial"
HASH_O="$(openssl x509 -hash -noout -in "$O/ca/ca.crt")"
cmp -s "$O/crl/crl.pem" "$O/crl.d/${HASH_O}.r0" || fail "after revocations crl/crl.pem and crl.d/${HASH_O}.r0 differ"
[ "$(openssl crl -in "$O/crl/crl.pem" -noout -text | grep -c "Serial Number:")" -eq 4 ] ||
  fail "CRL should list 4 serials (old site-b, hospital-a x3)"
ok "gen-crl.sh --days 7" "$CERTS/gen-crl.sh" --pki "$O" --days 7
next="$(date -d "$(openssl crl -in "$O/crl/crl.pem" -noout -nextupdate | cut -d= -f2)" +%s)"
[ $(((next - $(date +%s) + 3600) / 86400)) -eq 7 ] || fail "gen-crl.sh --days 7 gave nextUpdate $(openssl crl -in "$O/crl/crl.pem" -noout -nextupdate)"
cmp -s "$O/crl/crl.pem" "$O/crl.d/${HASH_O}.r0" || fail "gen-crl.sh did not update crl.d"

# An encrypted CA key works non-interactively through DERMFED_CA_PASSPHRASE.
export DERMFED_CA_PASSPHRASE="correct horse battery staple"
E="$WORK/enc"
ok "make-ca.sh --encrypt-key" "$CERTS/make-ca.sh" --pki "$E" --consortium enc --encrypt-key
grep -q "ENCRYPTED PRIVATE KEY" "$E/ca/ca.key" || fail "--encrypt-key wrote an unencrypted CA key"
ok "issue with an encrypted CA key" "$CERTS/issue.sh" --pki "$E" --role researcher --name r1
ok "revoke with an encrypted CA key" "$CERTS/revoke.sh" --pki "$E" --role researcher --name r1
DERMFED_CA_PASSPHRASE="wrong" refused "wrong CA passphrase" "failed" "$CERTS/issue.sh" --pki "$E" --role researcher --name r2
unset DERMFED_CA_PASSPHRASE

# Private keys stay out of git.
ROOT="$(cd "$CERTS/.." && pwd)"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  for p in pki/ca/ca.key certs/pki/site/x.crt pki/site/x.crt some/where/x.key; do
    git -C "$ROOT" check-ignore -q "$p" || fail ".gitignore does not ignore $p"
  done
fi

echo "PASS"
