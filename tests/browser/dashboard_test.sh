#!/usr/bin/env bash
# The coordinator's live dashboard in a real browser: a real coordinator (tiny backbone, 32 px
# images, central DP) and two real site daemons on loopback with mutual TLS (a throwaway PKI
# from certs/make-test-pki.sh), the HTTPS dashboard on, and headless chromium driven over the
# DevTools protocol (tests/browser/cdp.py, standard-library Python).
#   - who may read: no certificate and no token → 401, a wrong token → 401, a site certificate
#     → 403, a revoked or foreign certificate → refused, a researcher or admin certificate or
#     the token (bearer header) → 200; the page itself needs nothing and carries the CSP;
#   - the browser signs in with /login?token=..., and dashboard_check.py compares what the
#     page shows (Chart.js datasets, canvases, tables) with the JSON API, watches the page
#     follow a new round without reloading, and checks that nothing went wrong in the page.
#     A tiny round takes a fraction of a second, so the check pauses the federation (dermfed
#     pause, as admin-1) for each comparison and resumes it in between.
# Chromium trusts the coordinator's certificate by its key pin
# (--ignore-certificate-errors-spki-list), not by turning certificate checks off.
#
# usage: dashboard_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE CERTS_DIR
# (DERMFED_TEST_KEEP=1 keeps the work folder: logs, screenshots dashboard-*.png.
#  DERMFED_DASHBOARD_SCREENSHOT=FILE also copies the last screenshot there.
#  Without chromium the test is skipped (exit 77) unless DERMFED_REQUIRE_BROWSER=1.)
set -uo pipefail
DERMFED="$1"
COORDINATOR="$2"
SITE="$3"
CERTS="$4"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
# shellcheck source=../harness.sh
source "$(cd "$(dirname "$0")/.." && pwd)/harness.sh"

if ! "$PY" -c "import sys; sys.path.insert(0, '$HERE'); import cdp, sys; sys.exit(0 if cdp.find_chromium() else 1)"; then
  if [ -n "${DERMFED_REQUIRE_BROWSER:-}" ]; then
    echo "FAIL: chromium is not installed (deploy/install-deps.sh installs it)" >&2
    exit 1
  fi
  echo "SKIP: chromium is not installed (deploy/install-deps.sh installs it)"
  exit 77
fi

harness_start dashboard
START=$(date +%s)


PKI="$WORK/pki"
bash "$CERTS/make-test-pki.sh" "$PKI" --sites 2 >"$WORK/logs/pki.log" 2>&1 ||
  fail "make-test-pki.sh failed"
TOKEN_FILE="$WORK/dashboard.token"
(umask 077 && openssl rand -hex 32 >"$TOKEN_FILE") || fail "cannot make a token"
TOKEN="$(cat "$TOKEN_FILE")"

"$DERMFED" datagen --format pad-ufes-20 --out "$WORK/data" --images 200 --image-size 32 \
  --seed 7 >"$WORK/logs/datagen.log" 2>&1 || fail "datagen failed"
"$DERMFED" partition --data "$WORK/data" --format pad-ufes-20 --sites 2 --scheme iid --seed 1 \
  --out "$WORK/sites" >"$WORK/logs/partition.log" 2>&1 || fail "partition failed"

# Many rounds: the coordinator is stopped by the harness long before the last one.
"$COORDINATOR" --server.listen=127.0.0.1:0 --server.port_file="$WORK/grpc.port" \
  --server.threads=1 --server.state_dir="$WORK/state" --server.keep_checkpoints=3 \
  --tls.ca="$PKI/ca/ca.crt" --tls.cert="$PKI/coordinator/coordinator.crt" \
  --tls.key="$PKI/coordinator/coordinator.key" --tls.crl="$PKI/crl/crl.pem" \
  --http.listen=127.0.0.1:0 --http.port_file="$WORK/http.port" --http.token_file="$TOKEN_FILE" \
  --federation.name=dashboard-test --federation.rounds=500 --federation.min_sites=2 \
  --federation.expected_sites=2 --federation.round_deadline_s=60 --federation.eval_deadline_s=60 \
  --model.backbone=tiny --model.image_size=32 --training.batch_size=16 --dp.mode=central \
  --dp.noise_multiplier=0.1 >"$WORK/logs/coordinator.out" 2>"$WORK/logs/coordinator.log" &
COORD_PID=$!
PIDS+=("$COORD_PID")
wait_for 60 "the coordinator did not listen (gRPC)" test -s "$WORK/grpc.port"
wait_for 30 "the coordinator did not listen (HTTPS)" test -s "$WORK/http.port"
ADDR="127.0.0.1:$(cat "$WORK/grpc.port")"
URL="https://127.0.0.1:$(cat "$WORK/http.port")"
echo "coordinator: gRPC $ADDR, dashboard $URL"

for s in 1 2; do
  "$SITE" --site.name="site-$s" --site.coordinator="$ADDR" --site.data="$WORK/sites/site-$s" \
    --site.threads=1 --site.workers=1 --site.seed="$s" --site.max_backoff_s=1 \
    --site.ca="$PKI/ca/ca.crt" --site.cert="$PKI/site/site-$s.crt" \
    --site.key="$PKI/site/site-$s.key" >"$WORK/logs/site-$s.log" 2>&1 &
  PIDS+=($!)
done

# ---- who may read ----
# code [CURL ARGS...] PATH: the HTTP status of GET URL/PATH (000 = no HTTP answer).
code() {
  local path="${*: -1}"
  curl -s -o "$WORK/body.txt" -w '%{http_code}' --max-time 20 --cacert "$PKI/ca/ca.crt" \
    "${@:1:$#-1}" "$URL$path" 2>/dev/null
}
as() { echo --cert "$PKI/$1.crt" --key "$PKI/$1.key"; }
expect() {
  local want="$1" what="$2"
  shift 2
  local got
  got="$(code "$@")"
  [[ "$got" =~ ^($want)$ ]] || fail "$what: HTTP $got, expected $want: $(head -c 300 "$WORK/body.txt")"
  echo "HTTP $got: $what"
}
# shellcheck disable=SC2046
{
  expect 401 "no certificate, no token" /api/v1/status
  grep -q "researcher or admin" "$WORK/body.txt" || fail "the 401 says: $(cat "$WORK/body.txt")"
  expect 401 "a wrong token" -H "Authorization: Bearer 0123456789abcdef0123456789abcdef" /api/v1/status
  expect 401 "a wrong login token" "/login?token=0123456789abcdef0123456789abcdef"
  expect 403 "a site certificate" $(as site/site-1) /api/v1/status
  expect 403 "a site certificate (rounds)" $(as site/site-2) /api/v1/rounds
  expect "401|403" "a revoked site certificate" $(as site/site-revoked) /api/v1/status
  expect "000|401|403" "a certificate of a foreign CA" $(as foreign/site/site-1) /api/v1/status
  expect 200 "a researcher certificate" $(as researcher/researcher-1) /api/v1/status
  grep -q '"caller":"researcher:researcher-1"' "$WORK/body.txt" ||
    fail "status does not name the researcher: $(head -c 300 "$WORK/body.txt")"
  expect 200 "an admin certificate" $(as admin/admin-1) /api/v1/sites
  expect 200 "the token as a bearer header" -H "Authorization: Bearer $TOKEN" /api/v1/rounds
  expect 303 "the right login token" "/login?token=$TOKEN"
}
curl -s -D "$WORK/headers.txt" -o "$WORK/index.html" --cacert "$PKI/ca/ca.crt" "$URL/" ||
  fail "cannot fetch the page"
grep -qi "^content-security-policy: default-src 'self'" "$WORK/headers.txt" ||
  fail "the page has no CSP: $(cat "$WORK/headers.txt")"
grep -q 'static/dashboard.js' "$WORK/index.html" || fail "/ is not the dashboard"
for f in dashboard.js dashboard.css chart.min.js; do
  [ "$(code "/static/$f")" = 200 ] || fail "/static/$f is not served"
done
grep -q "Chart.js v3" "$WORK/body.txt" || fail "/static/chart.min.js is not Chart.js 3"

# The coordinator's key pin for chromium.
SPKI="$(openssl x509 -in "$PKI/coordinator/coordinator.crt" -pubkey -noout |
  openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl base64 -A)" ||
  fail "cannot compute the coordinator's SPKI hash"

# ---- the page in a browser ----
echo "refusals checked ($(($(date +%s) - START)) s in); starting chromium"
"$PY" "$HERE/dashboard_check.py" --url "$URL" --token-file "$TOKEN_FILE" --ca "$PKI/ca/ca.crt" \
  --cert "$PKI/researcher/researcher-1.crt" --key "$PKI/researcher/researcher-1.key" \
  --spki "$SPKI" --work "$WORK" --dermfed "$DERMFED" --grpc "$ADDR" \
  --admin-cert "$PKI/admin/admin-1.crt" --admin-key "$PKI/admin/admin-1.key" \
  --screenshot "${DERMFED_DASHBOARD_SCREENSHOT:-}" ||
  fail "the dashboard check failed"
kill -0 "$COORD_PID" 2>/dev/null || fail "the coordinator exited during the test"
echo "PASS ($(($(date +%s) - START)) s)"
