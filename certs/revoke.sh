#!/usr/bin/env bash
# Revokes a leaf certificate and regenerates the CRL in both places (crl/crl.pem and
# crl.d/<hash>.r0). The coordinator reloads crl.d by itself; nothing needs restarting.
set -euo pipefail
PROG="revoke.sh"
# shellcheck source-path=SCRIPTDIR source=pki-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pki-lib.sh"

# The reasons openssl ca -crl_reason takes that fit a leaf (certificateHold and removeFromCRL
# are left out: a revocation here is final).
readonly DERMFED_REVOKE_REASONS="unspecified keyCompromise CACompromise affiliationChanged superseded cessationOfOperation"

usage() {
  cat <<EOF
Usage: revoke.sh [--pki DIR] --role ROLE --name NAME [--reason R] [--all]
       revoke.sh [--pki DIR] --serial HEX [--reason R]

Revokes the certificate in DIR/ROLE/NAME.crt (or the one with serial HEX, e.g. the old one
kept as NAME.<serial>.crt after a rotation) and regenerates DIR/crl/crl.pem and
DIR/crl.d/<ca-subject-hash>.r0. Revoking an already revoked certificate changes nothing
but still regenerates the CRL.

  --pki DIR     PKI directory (default ./pki)
  --role ROLE   coordinator | site | researcher | admin
  --name NAME   the certificate's name
  --all         revoke every still-valid certificate the CA issued to ROLE/NAME (all
                rotations), e.g. when that key or machine is compromised
  --serial HEX  revoke exactly this serial (as printed by issue.sh or openssl x509 -serial)
  --reason R    one of: ${DERMFED_REVOKE_REASONS// /, } (default unspecified)
  --help        this text
EOF
}

pki="./pki"
role=""
name=""
serial=""
reason="unspecified"
all=0
while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h) usage; exit 0 ;;
    --pki) need_value "$1" $#; pki="$2"; shift 2 ;;
    --pki=*) pki="${1#*=}"; shift ;;
    --role) need_value "$1" $#; role="$2"; shift 2 ;;
    --role=*) role="${1#*=}"; shift ;;
    --name) need_value "$1" $#; name="$2"; shift 2 ;;
    --name=*) name="${1#*=}"; shift ;;
    --serial) need_value "$1" $#; serial="$2"; shift 2 ;;
    --serial=*) serial="${1#*=}"; shift ;;
    --reason) need_value "$1" $#; reason="$2"; shift 2 ;;
    --reason=*) reason="${1#*=}"; shift ;;
    --all) all=1; shift ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

require_openssl
valid_reason=0
for r in $DERMFED_REVOKE_REASONS; do
  [ "$reason" = "$r" ] && valid_reason=1
done
[ "$valid_reason" -eq 1 ] || die "--reason '${reason}' is not one of: ${DERMFED_REVOKE_REASONS// /, }"
if [ -n "$serial" ]; then
  [ "$all" -eq 0 ] || usage_error "--serial and --all do not go together"
  [[ "$serial" =~ ^[0-9A-Fa-f]{1,40}$ ]] || die "--serial '${serial}' is not a hexadecimal serial number"
  serial="$(echo "$serial" | tr 'a-f' 'A-F')"
  [ $(( ${#serial} % 2 )) -eq 0 ] || serial="0${serial}"
  if { [ -n "$role" ] && [ -z "$name" ]; } || { [ -z "$role" ] && [ -n "$name" ]; }; then
    usage_error "with --serial, give both --role and --name or neither"
  fi
else
  [ -n "$role" ] || usage_error "--role ROLE is required (or --serial HEX)"
  [ -n "$name" ] || usage_error "--name NAME is required (or --serial HEX)"
fi
[ -z "$role" ] || validate_role "$role"
[ -z "$name" ] || validate_name "$name"

require_ca "$pki"
lock_ca "$pki"
ca="$DERMFED_CA_DIR"

# index.txt columns: status, expiry, revocation, serial, file, subject.
subject_of_serial() {
  awk -F '\t' -v s="$1" '$4 == s { print $6 }' "$ca/index.txt"
}

serials=()
if [ -n "$serial" ]; then
  [ -n "$(index_status "$ca" "$serial")" ] || die "serial ${serial} was not issued by the CA in ${ca}"
  if [ -n "$role" ]; then
    case "$(subject_of_serial "$serial")" in
      */OU="$role"/CN="$name") ;;
      *) die "serial ${serial} belongs to '$(subject_of_serial "$serial")', not ${role}/${name}" ;;
    esac
  fi
  serials=("$serial")
elif [ "$all" -eq 1 ]; then
  while IFS= read -r s; do
    serials+=("$s")
  done < <(awk -F '\t' -v suffix="/OU=${role}/CN=${name}" \
    '$1 == "V" && substr($6, length($6) - length(suffix) + 1) == suffix { print $4 }' "$ca/index.txt")
  if [ "${#serials[@]}" -eq 0 ]; then
    note "no valid certificate for ${role}/${name} in ${ca}/index.txt; nothing to revoke"
  fi
else
  crt="$pki/$role/$name.crt"
  [ -f "$crt" ] || die "no certificate at ${crt}; pass --serial HEX for one kept under another name, or --all"
  serial="$(cert_serial "$crt")"
  [ -n "$(index_status "$ca" "$serial")" ] ||
    die "${crt} (serial ${serial}) was not issued by the CA in ${ca}"
  serials=("$serial")
fi

for s in "${serials[@]}"; do
  if [ "$(index_status "$ca" "$s")" = "R" ]; then
    note "serial ${s} ($(subject_of_serial "$s")) is already revoked"
    continue
  fi
  issued="$ca/newcerts/$s.pem"
  [ -f "$issued" ] || die "the CA's copy of serial ${s} (${issued}) is missing"
  # RFC 5280: a CRL entry for an unspecified reason carries no reason code at all.
  reason_args=()
  [ "$reason" = "unspecified" ] || reason_args=(-crl_reason "$reason")
  # shellcheck disable=SC2046
  run_quiet "revoking serial ${s}" openssl ca -config "$ca/openssl.cnf" $(ca_passin_args) \
    -revoke "$issued" "${reason_args[@]}"
  echo "revoked serial ${s} ($(subject_of_serial "$s")), reason ${reason}"
done

write_crl "$pki"
echo "CRL regenerated: ${pki}/crl/crl.pem and ${pki}/crl.d/$(openssl x509 -hash -noout -in "$ca/ca.crt").r0"
