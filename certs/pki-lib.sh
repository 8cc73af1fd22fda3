# shellcheck shell=bash
# Shared helpers for the dermfed PKI scripts (make-ca.sh, issue.sh, revoke.sh, gen-crl.sh,
# make-test-pki.sh). Sourced, never run. Callers set PROG (their own name for messages) and
# use `set -euo pipefail`.
#
# Conventions live here once so every script applies them the same way:
#   CA subject      /O=<consortium>/CN=<consortium> Root CA
#   leaf subject    /O=<consortium>/OU=<role>/CN=<name>
#   leaf URI SAN    spiffe://dermfed/<role>/<name>   (what gRPC authorization policies match)
#   keys            EC prime256v1, signatures SHA-256, private keys mode 0600

readonly DERMFED_ROLES="coordinator site researcher admin"
readonly DERMFED_SPIFFE_TRUST_DOMAIN="dermfed"

die() {
  echo "${PROG}: error: $*" >&2
  exit 1
}

usage_error() {
  echo "${PROG}: $*" >&2
  echo "Run '${PROG} --help' for usage." >&2
  exit 2
}

note() { echo "${PROG}: $*" >&2; }

require_openssl() {
  command -v openssl >/dev/null 2>&1 || die "openssl not found on PATH (Debian: apt-get install openssl)"
}

# need_value FLAG REMAINING_ARG_COUNT: a flag that takes a value must have one.
need_value() {
  [ "$2" -ge 2 ] || usage_error "$1 needs a value"
}

validate_role() {
  local role="$1" r
  for r in $DERMFED_ROLES; do
    [ "$role" = "$r" ] && return 0
  done
  die "role '${role}' is not one of: ${DERMFED_ROLES// /, }"
}

# A leaf name becomes a file name, a CN and a SPIFFE path segment, so it is kept to a safe
# alphabet. '.' and '..' match the alphabet but are dot-segments, which SPIFFE IDs forbid.
validate_name() {
  local name="$1"
  if ! [[ "$name" =~ ^[A-Za-z0-9._-]{1,64}$ ]]; then
    die "name '${name}' is invalid: use 1 to 64 characters from A-Z a-z 0-9 . _ - (no spaces, no '/')"
  fi
  if [ "$name" = "." ] || [ "$name" = ".." ]; then
    die "name '${name}' is invalid: '.' and '..' cannot be SPIFFE path segments"
  fi
}

# The consortium name goes into the CA's CN as "<consortium> Root CA" (CN is at most 64
# characters, so the name is at most 56) and into every subject, hence the same safe alphabet
# plus spaces.
validate_consortium() {
  local c="$1"
  if ! [[ "$c" =~ ^[A-Za-z0-9._-]([A-Za-z0-9\ ._-]{0,54}[A-Za-z0-9._-])?$ ]]; then
    die "consortium '${c}' is invalid: use 1 to 56 characters from A-Z a-z 0-9 space . _ - (no leading or trailing space)"
  fi
}

validate_days() {
  local flag="$1" days="$2"
  [[ "$days" =~ ^[1-9][0-9]{0,5}$ ]] || die "${flag} must be a whole number of days from 1 to 999999, got '${days}'"
}

# validate_sans LIST: comma-separated DNS:<host> and IP:<address> entries. The CA adds the URI
# SAN itself, so URI: (and anything else) is refused. Checking here also keeps stray
# characters out of the openssl extension file.
validate_sans() {
  local list="$1" entry value
  local -a entries
  [ -n "$list" ] || die "--san is empty; give e.g. DNS:coordinator.example.org,IP:10.0.0.5"
  IFS=',' read -r -a entries <<<"$list"
  for entry in "${entries[@]}"; do
    case "$entry" in
      DNS:*)
        value="${entry#DNS:}"
        [[ "$value" =~ ^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ ]] ||
          die "--san entry '${entry}' is not a valid DNS name"
        [ "${#value}" -le 253 ] || die "--san entry '${entry}' is longer than 253 characters"
        ;;
      IP:*)
        value="${entry#IP:}"
        if [[ "$value" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]]; then
          local octet
          for octet in "${BASH_REMATCH[@]:1}"; do
            [ "$((10#$octet))" -le 255 ] || die "--san entry '${entry}' is not a valid IPv4 address"
          done
        elif ! [[ "$value" =~ ^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*$ ]]; then
          die "--san entry '${entry}' is not a valid IPv4 or IPv6 address"
        fi
        ;;
      URI:*) die "--san entry '${entry}': the CA sets the URI SAN (spiffe://${DERMFED_SPIFFE_TRUST_DOMAIN}/<role>/<name>) itself" ;;
      *) die "--san entry '${entry}' must start with DNS: or IP:" ;;
    esac
  done
}

spiffe_id() { echo "spiffe://${DERMFED_SPIFFE_TRUST_DOMAIN}/$1/$2"; }

# ca_dir PKI: where the CA lives; the openssl config reads it from DERMFED_CA_DIR.
ca_dir() { echo "$1/ca"; }

# require_ca PKI: the CA must exist before anything is issued, revoked or listed.
require_ca() {
  local pki="$1" ca
  ca="$(ca_dir "$pki")"
  local f
  for f in ca.crt ca.key index.txt openssl.cnf; do
    [ -f "$ca/$f" ] ||
      die "no CA in '${pki}' (expected ${ca}/ca.crt, ca.key, index.txt, openssl.cnf); run make-ca.sh --pki ${pki} --consortium NAME first"
  done
  export DERMFED_CA_DIR
  DERMFED_CA_DIR="$(cd "$ca" && pwd)"
}

# lock_ca PKI: one openssl ca at a time per CA database (fd 9 stays open until exit).
lock_ca() {
  local lock
  lock="$(ca_dir "$1")/.lock"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$lock"
    flock -w 60 9 || die "another PKI script holds ${lock} (waited 60 s)"
  fi
}

# ca_passin_args: the CA key may be encrypted (make-ca.sh --encrypt-key); when
# DERMFED_CA_PASSPHRASE is set it is used, otherwise openssl asks on the terminal.
ca_passin_args() {
  if [ -n "${DERMFED_CA_PASSPHRASE:-}" ]; then
    echo "-passin env:DERMFED_CA_PASSPHRASE"
  fi
}

# consortium_of_ca CA_CRT: the O of the CA subject.
consortium_of_ca() {
  openssl x509 -in "$1" -noout -subject -nameopt sep_multiline,sname,utf8 |
    sed -n 's/^ *O=//p' | head -n 1
}

# run_quiet DESCRIPTION CMD...: run an openssl command, show its output only if it fails.
run_quiet() {
  local what="$1" out
  shift
  if ! out="$("$@" 2>&1)"; then
    echo "$out" >&2
    die "${what} failed (openssl output above)"
  fi
}

# gen_key PATH: a fresh P-256 key, unencrypted PKCS#8 PEM, mode 0600 from the start.
gen_key() {
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null) ||
    die "could not generate a P-256 key at $1"
  chmod 600 "$1"
}

# write_crl PKI [DAYS]: regenerate the CRL in crl/crl.pem and, under the CA's subject hash,
# in crl.d/<hash>.r0 (the hashed-directory name OpenSSL and gRPC's crl_directory look up).
# Both are written to a temporary file and renamed, so a reader never sees half a CRL.
# REQUIRES: require_ca and lock_ca have run.
write_crl() {
  local pki="$1" days="${2:-}" ca hash
  ca="$(ca_dir "$pki")"
  mkdir -p "$pki/crl" "$pki/crl.d"
  local -a extra=()
  [ -n "$days" ] && extra+=(-crldays "$days")
  # shellcheck disable=SC2046
  run_quiet "generating the CRL" openssl ca -config "$ca/openssl.cnf" -gencrl \
    -out "$pki/crl/.crl.pem.tmp" "${extra[@]}" $(ca_passin_args)
  hash="$(openssl x509 -hash -noout -in "$ca/ca.crt")"
  cp "$pki/crl/.crl.pem.tmp" "$pki/crl.d/.${hash}.r0.tmp"
  chmod 644 "$pki/crl/.crl.pem.tmp" "$pki/crl.d/.${hash}.r0.tmp"
  mv -f "$pki/crl.d/.${hash}.r0.tmp" "$pki/crl.d/${hash}.r0"
  mv -f "$pki/crl/.crl.pem.tmp" "$pki/crl/crl.pem"
}

# index_status CA_DIR SERIAL: the status letter (V, R, E) of SERIAL in index.txt, or empty.
index_status() {
  awk -F '\t' -v s="$(echo "$2" | tr 'a-f' 'A-F')" 'toupper($4) == s { print $1 }' "$1/index.txt"
}

cert_serial() { openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'; }
cert_enddate() { openssl x509 -in "$1" -noout -enddate | sed 's/^notAfter=//'; }
