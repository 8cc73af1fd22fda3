#!/usr/bin/env bash
# Issues a leaf certificate from the consortium CA: subject /O=<consortium>/OU=<role>/CN=<name>,
# URI SAN spiffe://dermfed/<role>/<name>. Either generates the key here or signs a CSR that a
# hospital sent (its key never leaves the hospital); either way the CA, not the CSR, decides
# the role, the name and the SANs.
set -euo pipefail
PROG="issue.sh"
# shellcheck source-path=SCRIPTDIR source=pki-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pki-lib.sh"

usage() {
  cat <<'EOF'
Usage: issue.sh [--pki DIR] --role ROLE --name NAME [--days N] [--san LIST] [--csr FILE] [--rotate]

Issues a certificate for NAME in ROLE, signed by the CA in DIR/ca. Writes
  DIR/ROLE/NAME.key        private key, mode 0600 (not with --csr: the requester keeps it)
  DIR/ROLE/NAME.crt        the certificate
  DIR/ROLE/NAME.chain.pem  certificate followed by the CA certificate

  --pki DIR      PKI directory (default ./pki)
  --role ROLE    coordinator | site | researcher | admin
  --name NAME    1-64 characters from A-Z a-z 0-9 . _ -
  --days N       validity in days (default 397)
  --san LIST     coordinator only: comma-separated DNS:<name> and IP:<address> entries the
                 coordinator is reached by (default DNS:localhost,IP:127.0.0.1)
  --csr FILE     sign this PEM certificate request instead of generating a key; only its
                 public key is used (EC P-256/P-384 or RSA >= 2048), its subject and
                 extensions are ignored
  --rotate       NAME already holds a valid certificate: issue a new one anyway. The old
                 files are kept as NAME.<old-serial>.crt/.key and the old certificate stays
                 valid until it expires or is revoked (revoke.sh --serial)
  --help         this text

Every certificate has basicConstraints CA:FALSE, keyUsage digitalSignature,keyEncipherment,
extendedKeyUsage clientAuth (coordinator: serverAuth,clientAuth).
EOF
}

pki="./pki"
role=""
name=""
days=397
san=""
csr=""
rotate=0
while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h) usage; exit 0 ;;
    --pki) need_value "$1" $#; pki="$2"; shift 2 ;;
    --pki=*) pki="${1#*=}"; shift ;;
    --role) need_value "$1" $#; role="$2"; shift 2 ;;
    --role=*) role="${1#*=}"; shift ;;
    --name) need_value "$1" $#; name="$2"; shift 2 ;;
    --name=*) name="${1#*=}"; shift ;;
    --days) need_value "$1" $#; days="$2"; shift 2 ;;
    --days=*) days="${1#*=}"; shift ;;
    --san) need_value "$1" $#; san="$2"; shift 2 ;;
    --san=*) san="${1#*=}"; shift ;;
    --csr) need_value "$1" $#; csr="$2"; shift 2 ;;
    --csr=*) csr="${1#*=}"; shift ;;
    --rotate) rotate=1; shift ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

require_openssl
[ -n "$role" ] || usage_error "--role ROLE is required (coordinator, site, researcher or admin)"
[ -n "$name" ] || usage_error "--name NAME is required"
validate_role "$role"
validate_name "$name"
validate_days --days "$days"
if [ "$role" = "coordinator" ]; then
  [ -n "$san" ] || san="DNS:localhost,IP:127.0.0.1"
  validate_sans "$san"
elif [ -n "$san" ]; then
  die "--san is only for the coordinator role (a ${role} certificate is used as a TLS client and carries only its URI SAN)"
fi
if [ -n "$csr" ]; then
  if [ ! -f "$csr" ] || [ ! -r "$csr" ]; then
    die "CSR file '${csr}' does not exist or is not readable"
  fi
fi

require_ca "$pki"
lock_ca "$pki"
ca="$DERMFED_CA_DIR"
consortium="$(consortium_of_ca "$ca/ca.crt")"
[ -n "$consortium" ] || die "could not read the consortium (O) from ${ca}/ca.crt"

dir="$pki/$role"
mkdir -p "$dir"
crt="$dir/$name.crt"
key="$dir/$name.key"
chain="$dir/$name.chain.pem"

# An existing certificate for this name: refuse while it is valid (unless rotating). It is put
# aside under its serial only once the new one is signed (see below).
old_serial=""
if [ -f "$crt" ]; then
  old_serial="$(cert_serial "$crt")" || die "cannot read the existing certificate ${crt}"
  old_status="$(index_status "$ca" "$old_serial")"
  if [ "$old_status" = "V" ] && openssl x509 -in "$crt" -noout -checkend 0 >/dev/null; then
    if [ "$rotate" -ne 1 ]; then
      die "${role}/${name} already has a valid certificate (${crt}, serial ${old_serial}, expires $(cert_enddate "$crt")); pass --rotate to issue a replacement, or revoke.sh it first"
    fi
  fi
fi

work="$(mktemp -d "$dir/.issue.XXXXXX")"
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"

subject="/O=${consortium}/OU=${role}/CN=${name}"
if [ -n "$csr" ]; then
  openssl req -in "$csr" -noout -verify >/dev/null 2>&1 ||
    die "'${csr}' is not a PEM certificate request with a valid self-signature"
  keytext="$(openssl req -in "$csr" -noout -pubkey | openssl pkey -pubin -noout -text 2>/dev/null)" ||
    die "cannot read the public key in '${csr}'"
  bits="$(echo "$keytext" | sed -n 's/^Public-Key: (\([0-9]*\) bit)$/\1/p' | head -n 1)"
  if echo "$keytext" | grep -q '^ASN1 OID: \(prime256v1\|secp384r1\)$'; then
    :
  elif echo "$keytext" | grep -q '^Modulus:' && [ "${bits:-0}" -ge 2048 ]; then
    :
  else
    die "the key in '${csr}' is not EC P-256, EC P-384 or RSA >= 2048 bits (gRPC's TLS stacks need one of these; generate it with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ${name}.key)"
  fi
  cp "$csr" "$work/req.csr"
  csr_subject="$(openssl req -in "$csr" -noout -subject -nameopt compat | sed 's/^subject=//')"
  if [ "$csr_subject" != "$subject" ]; then
    note "the CSR's subject '${csr_subject}' is ignored; issuing ${subject}"
  fi
else
  gen_key "$work/key.pem"
  run_quiet "creating the certificate request" openssl req -new -config "$ca/openssl.cnf" \
    -key "$work/key.pem" -subj "$subject" -out "$work/req.csr"
fi

uri="$(spiffe_id "$role" "$name")"
if [ "$role" = "coordinator" ]; then
  eku="serverAuth, clientAuth"
  sans="URI:${uri},${san}"
else
  eku="clientAuth"
  sans="URI:${uri}"
fi
cat >"$work/ext.cnf" <<EOF
[ dermfed_leaf ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = ${eku}
subjectAltName         = ${sans}
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF

if ! openssl x509 -in "$ca/ca.crt" -noout -checkend "$((days * 86400))" >/dev/null; then
  note "warning: the CA expires ($(cert_enddate "$ca/ca.crt")) before this certificate would; it stops verifying when the CA does"
fi

# shellcheck disable=SC2046
run_quiet "signing ${role}/${name}" openssl ca -batch -notext -config "$ca/openssl.cnf" \
  $(ca_passin_args) -days "$days" -subj "$subject" -extfile "$work/ext.cnf" \
  -extensions dermfed_leaf -in "$work/req.csr" -out "$work/cert.pem"
run_quiet "checking the new certificate against the CA" openssl verify -CAfile "$ca/ca.crt" \
  "$work/cert.pem"
cat "$work/cert.pem" "$ca/ca.crt" >"$work/chain.pem"
chmod 644 "$work/cert.pem" "$work/chain.pem"

if [ -n "$old_serial" ]; then
  for ext in crt key chain.pem; do
    if [ -f "$dir/$name.$ext" ]; then
      mv -f "$dir/$name.$ext" "$dir/$name.$old_serial.$ext"
    fi
  done
  note "kept the previous certificate as ${dir}/${name}.${old_serial}.crt"
fi
# A key without a certificate (left by an interrupted run, or from before a --csr issue) does
# not belong to the new certificate.
rm -f "$key"
# Key first, certificate last: a certificate on disk always has its key beside it.
if [ -z "$csr" ]; then
  mv -f "$work/key.pem" "$key"
fi
mv -f "$work/chain.pem" "$chain"
mv -f "$work/cert.pem" "$crt"

echo "issued ${role}/${name}: serial $(cert_serial "$crt"), expires $(cert_enddate "$crt")"
echo "  subject ${subject}"
echo "  SAN     ${sans}"
if [ -z "$csr" ]; then
  echo "  files   ${key} (private, mode 0600), ${crt}, ${chain}"
else
  echo "  files   ${crt}, ${chain} (the key stays with whoever made the CSR)"
fi
