#!/usr/bin/env bash
# Creates the consortium root CA (EC P-256, SHA-256), its openssl `ca` database and an empty
# CRL. Run once, on the machine that will keep the CA key.
set -euo pipefail
PROG="make-ca.sh"
# shellcheck source-path=SCRIPTDIR source=pki-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pki-lib.sh"

usage() {
  cat <<'EOF'
Usage: make-ca.sh [--pki DIR] --consortium NAME [--days N] [--crl-days N] [--encrypt-key] [--force]

Creates the consortium root CA in DIR/ca (ca.key, ca.crt, openssl.cnf and the openssl `ca`
database: index.txt, serial, crlnumber, newcerts/) and an empty CRL in DIR/crl/crl.pem and
DIR/crl.d/<subject-hash>.r0.

  --pki DIR          PKI directory (default ./pki)
  --consortium NAME  consortium name; the CA subject is /O=NAME/CN=NAME Root CA
                     (1-56 characters: A-Z a-z 0-9 space . _ -)
  --days N           CA validity in days (default 3650)
  --crl-days N       how long each CRL is valid before it must be regenerated (default 30;
                     run gen-crl.sh before then, e.g. weekly from cron)
  --encrypt-key      encrypt ca.key with a passphrase (AES-256); taken from the environment
                     variable DERMFED_CA_PASSPHRASE if set, otherwise asked for. Every later
                     script then needs the same passphrase the same way.
  --force            replace an existing CA (every certificate it issued stops verifying)
  --help             this text

The CA key (DIR/ca/ca.key, mode 0600) never leaves the CA machine.
EOF
}

pki="./pki"
consortium=""
days=3650
crl_days=30
encrypt=0
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h) usage; exit 0 ;;
    --pki) need_value "$1" $#; pki="$2"; shift 2 ;;
    --pki=*) pki="${1#*=}"; shift ;;
    --consortium) need_value "$1" $#; consortium="$2"; shift 2 ;;
    --consortium=*) consortium="${1#*=}"; shift ;;
    --days) need_value "$1" $#; days="$2"; shift 2 ;;
    --days=*) days="${1#*=}"; shift ;;
    --crl-days) need_value "$1" $#; crl_days="$2"; shift 2 ;;
    --crl-days=*) crl_days="${1#*=}"; shift ;;
    --encrypt-key) encrypt=1; shift ;;
    --force) force=1; shift ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

require_openssl
[ -n "$pki" ] || usage_error "--pki is empty"
[ -n "$consortium" ] || usage_error "--consortium NAME is required"
validate_consortium "$consortium"
validate_days --days "$days"
validate_days --crl-days "$crl_days"

ca="$(ca_dir "$pki")"
if [ -e "$ca/ca.crt" ] || [ -e "$ca/ca.key" ]; then
  if [ "$force" -ne 1 ]; then
    die "a CA already exists in ${ca} ($(openssl x509 -in "$ca/ca.crt" -noout -subject 2>/dev/null || echo 'unreadable ca.crt')); pass --force to replace it"
  fi
  note "replacing the CA in ${ca}; certificates it issued under ${pki}/<role>/ no longer verify"
  rm -rf "$ca" "$pki/crl" "$pki/crl.d"
fi

mkdir -p "$pki"
(umask 077 && mkdir -p "$ca" "$ca/newcerts")
chmod 700 "$ca"

# The openssl `ca` configuration. Paths come from DERMFED_CA_DIR so the PKI directory can be
# moved; the policy fixes the subject order (O, OU, CN) and requires the CA's own O.
# unique_subject = no lets a new certificate for the same name coexist with the old one while
# a rotation overlaps. copy_extensions = none: nothing in a CSR reaches the certificate.
cat >"$ca/openssl.cnf" <<EOF
# openssl ca configuration for the dermfed consortium CA, written by make-ca.sh.
# Use it with DERMFED_CA_DIR set to this directory's absolute path.
[ ca ]
default_ca = dermfed_ca

[ dermfed_ca ]
dir              = \$ENV::DERMFED_CA_DIR
database         = \$dir/index.txt
new_certs_dir    = \$dir/newcerts
certificate      = \$dir/ca.crt
private_key      = \$dir/ca.key
serial           = \$dir/serial
crlnumber        = \$dir/crlnumber
default_md       = sha256
default_days     = 397
default_crl_days = ${crl_days}
policy           = dermfed_policy
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
preserve         = no
name_opt         = ca_default
cert_opt         = ca_default
crl_extensions   = dermfed_crl_ext

[ dermfed_policy ]
organizationName       = match
organizationalUnitName = supplied
commonName             = supplied

[ dermfed_crl_ext ]
authorityKeyIdentifier = keyid:always

[ req ]
distinguished_name = dermfed_req_dn
prompt             = no

[ dermfed_req_dn ]

[ dermfed_ca_ext ]
basicConstraints     = critical, CA:TRUE, pathlen:0
keyUsage             = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF

: >"$ca/index.txt"
echo "unique_subject = no" >"$ca/index.txt.attr"
# Serials start at a random 64-bit value and count up.
echo "10$(openssl rand -hex 7 | tr 'a-f' 'A-F')" >"$ca/serial"
echo 1000 >"$ca/crlnumber"

export DERMFED_CA_DIR
DERMFED_CA_DIR="$(cd "$ca" && pwd)"

if [ "$encrypt" -eq 1 ]; then
  passout=()
  [ -n "${DERMFED_CA_PASSPHRASE:-}" ] && passout=(-pass env:DERMFED_CA_PASSPHRASE)
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:named_curve -aes-256-cbc "${passout[@]}" -out "$ca/ca.key") ||
    die "could not generate the encrypted CA key"
  chmod 600 "$ca/ca.key"
else
  gen_key "$ca/ca.key"
fi

# shellcheck disable=SC2046
run_quiet "creating the CA certificate" openssl req -new -x509 -config "$ca/openssl.cnf" \
  -extensions dermfed_ca_ext -key "$ca/ca.key" $(ca_passin_args) -sha256 -days "$days" \
  -subj "/O=${consortium}/CN=${consortium} Root CA" -out "$ca/ca.crt"
chmod 644 "$ca/ca.crt"

lock_ca "$pki"
write_crl "$pki"

echo "CA created: ${ca}/ca.crt ($(openssl x509 -in "$ca/ca.crt" -noout -subject -nameopt compat | sed 's/^subject=//'), expires $(cert_enddate "$ca/ca.crt"))"
echo "CRL: ${pki}/crl/crl.pem and ${pki}/crl.d/$(openssl x509 -hash -noout -in "$ca/ca.crt").r0"
