#!/usr/bin/env bash
# Regenerates the CRL (crl/crl.pem and crl.d/<hash>.r0) without revoking anything. A CRL
# carries a "next update" date; once it passes, a peer that checks CRLs refuses every
# certificate of this CA, so run this well before then (e.g. weekly from cron).
set -euo pipefail
PROG="gen-crl.sh"
# shellcheck source-path=SCRIPTDIR source=pki-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pki-lib.sh"

usage() {
  cat <<'EOF'
Usage: gen-crl.sh [--pki DIR] [--days N]

Regenerates DIR/crl/crl.pem and DIR/crl.d/<ca-subject-hash>.r0 from the CA database.

  --pki DIR   PKI directory (default ./pki)
  --days N    CRL validity in days (default: the CA's default_crl_days, set by
              make-ca.sh --crl-days, 30 unless changed)
  --help      this text
EOF
}

pki="./pki"
days=""
while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h) usage; exit 0 ;;
    --pki) need_value "$1" $#; pki="$2"; shift 2 ;;
    --pki=*) pki="${1#*=}"; shift ;;
    --days) need_value "$1" $#; days="$2"; shift 2 ;;
    --days=*) days="${1#*=}"; shift ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

require_openssl
[ -z "$days" ] || validate_days --days "$days"
require_ca "$pki"
lock_ca "$pki"
write_crl "$pki" "$days"
echo "CRL regenerated: ${pki}/crl/crl.pem and ${pki}/crl.d/$(openssl x509 -hash -noout -in "$DERMFED_CA_DIR/ca.crt").r0, next update $(openssl crl -in "$pki/crl/crl.pem" -noout -nextupdate | sed 's/^nextUpdate=//')"
