#!/usr/bin/env bash
# A throwaway PKI for tests and the quickstart: a CA, a coordinator, N sites, a researcher, an
# admin, a revoked site, and a second (foreign) CA with a site of its own for tests that a
# stranger's certificate is refused. Never use it for a real consortium: the CA key sits next
# to everything else.
set -euo pipefail
PROG="make-test-pki.sh"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=pki-lib.sh
. "$here/pki-lib.sh"

usage() {
  cat <<'EOF'
Usage: make-test-pki.sh DIR [--sites N] [--consortium NAME] [--force]

Creates a test PKI in DIR (quiet on success; prints the layout at the end):
  DIR/ca/                      CA (consortium "dermfed-test") and its openssl ca database
  DIR/crl/crl.pem, DIR/crl.d/  CRL, listing site-revoked
  DIR/coordinator/coordinator  coordinator (DNS:localhost, IP:127.0.0.1)
  DIR/site/site-1..site-N      sites (default N = 3)
  DIR/site/site-revoked        a site certificate that has been revoked
  DIR/researcher/researcher-1
  DIR/admin/admin-1
  DIR/foreign/                 a second CA ("foreign-consortium") with foreign/site/site-1
Each leaf has NAME.key (mode 0600), NAME.crt and NAME.chain.pem.

Running it again on a DIR it made with the same options does nothing. A DIR that is not empty
and was not made by this script is refused.

  --sites N          number of sites (1-999, default 3)
  --consortium NAME  consortium name of the main CA (default dermfed-test)
  --force            replace a test PKI this script made earlier in DIR
  --help             this text
EOF
}

dir=""
sites=3
consortium="dermfed-test"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h) usage; exit 0 ;;
    --sites) need_value "$1" $#; sites="$2"; shift 2 ;;
    --sites=*) sites="${1#*=}"; shift ;;
    --consortium) need_value "$1" $#; consortium="$2"; shift 2 ;;
    --consortium=*) consortium="${1#*=}"; shift ;;
    --force) force=1; shift ;;
    -*) usage_error "unknown argument '$1'" ;;
    *)
      [ -z "$dir" ] || usage_error "only one DIR, got '${dir}' and '$1'"
      dir="$1"
      shift
      ;;
  esac
done

require_openssl
[ -n "$dir" ] || usage_error "DIR is required"
[[ "$sites" =~ ^[1-9][0-9]{0,2}$ ]] || die "--sites must be a whole number from 1 to 999, got '${sites}'"
validate_consortium "$consortium"

marker="$dir/.dermfed-test-pki"
wanted="complete consortium=${consortium} sites=${sites}"

print_layout() {
  echo "test PKI in ${dir}:"
  (cd "$dir" && find . -mindepth 1 \( -name '.*' -o -name '*.old' -o -name 'index.txt.attr' \
    -o -path '*/newcerts/*' \) -prune -o -print | sed 's|^\./||; s|/|\x01|g' | LC_ALL=C sort |
    sed 's|\x01|/|g' |
    while IFS= read -r path; do
      if [ -d "$path" ]; then echo "  ${path}/"; else echo "  ${path}"; fi
    done)
}

if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
  if [ ! -f "$marker" ]; then
    die "${dir} is not empty and was not made by make-test-pki.sh; give an empty or new directory"
  fi
  if [ "$(cat "$marker")" = "$wanted" ] && [ "$force" -ne 1 ]; then
    print_layout
    exit 0
  fi
  if [ "$(head -n 1 "$marker")" != "incomplete" ] && [ "$force" -ne 1 ]; then
    die "${dir} holds a test PKI made with other options ($(cat "$marker")); pass --force to replace it"
  fi
  # Ours (an earlier run, or one that stopped half way): start again.
  find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
fi
mkdir -p "$dir"
echo "incomplete" >"$marker"

# quietly CMD...: run a PKI script, show what it said only if it failed.
quietly() {
  local out
  if ! out="$("$@" 2>&1)"; then
    echo "$out" >&2
    die "'$*' failed (output above)"
  fi
}

quietly "$here/make-ca.sh" --pki "$dir" --consortium "$consortium"
quietly "$here/issue.sh" --pki "$dir" --role coordinator --name coordinator \
  --san "DNS:localhost,IP:127.0.0.1"
for i in $(seq 1 "$sites"); do
  quietly "$here/issue.sh" --pki "$dir" --role site --name "site-$i"
done
quietly "$here/issue.sh" --pki "$dir" --role researcher --name researcher-1
quietly "$here/issue.sh" --pki "$dir" --role admin --name admin-1
quietly "$here/issue.sh" --pki "$dir" --role site --name site-revoked
quietly "$here/revoke.sh" --pki "$dir" --role site --name site-revoked --reason keyCompromise

quietly "$here/make-ca.sh" --pki "$dir/foreign" --consortium "foreign-consortium"
quietly "$here/issue.sh" --pki "$dir/foreign" --role site --name site-1

echo "$wanted" >"$marker"
print_layout
