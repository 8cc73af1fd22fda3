#!/usr/bin/env bash
# Mutual TLS and certificate identity, against a real coordinator on loopback with a throwaway
# consortium PKI (certs/make-test-pki.sh). Refused:
#   - a client that presents no certificate, one from a foreign CA, a revoked one, and one
#     revoked while the coordinator runs (the CRL is re-read, no restart);
#   - a plaintext client;
#   - a site certificate calling the monitor service; a researcher pausing (admin only);
#   - a site posing as another site; a researcher certificate joining as a site;
#   - a coordinator started with neither certificates nor the explicit insecure flag.
# Allowed: a researcher reads status; an admin pauses and stops.
#
# usage: mtls_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE CERTS_DIR
set -uo pipefail
DERMFED="$1"
COORDINATOR="$2"
SITE="$3"
CERTS="$4"
# shellcheck source=../harness.sh
source "$(cd "$(dirname "$0")/.." && pwd)/harness.sh"
harness_start mtls
PKI="$WORK/pki"
bash "$CERTS/make-test-pki.sh" "$PKI" --sites 2 >"$WORK/logs/pki.log" 2>&1 || fail "make-test-pki.sh failed"

# A coordinator without certificates and without server.insecure refuses to start.
"$COORDINATOR" --server.listen=127.0.0.1:0 --server.state_dir="$WORK/nostate" \
  >"$WORK/logs/no-tls.log" 2>&1 && fail "the coordinator started without TLS or the insecure flag"
grep -q "tls.ca, tls.cert and tls.key are required unless server.insecure" "$WORK/logs/no-tls.log" ||
  fail "no clear message without TLS: $(cat "$WORK/logs/no-tls.log")"

"$COORDINATOR" --server.listen=127.0.0.1:0 --server.port_file="$WORK/port" \
  --server.state_dir="$WORK/state" --server.threads=1 --federation.min_sites=2 \
  --federation.rounds=5 --tls.ca="$PKI/ca/ca.crt" --tls.cert="$PKI/coordinator/coordinator.crt" \
  --tls.key="$PKI/coordinator/coordinator.key" --tls.crl="$PKI/crl/crl.pem" \
  >"$WORK/logs/coordinator.out" 2>"$WORK/logs/coordinator.log" &
COORD_PID=$!
PIDS+=("$COORD_PID")
for _ in $(seq 600); do [ -s "$WORK/port" ] && break; sleep 0.1; done
[ -s "$WORK/port" ] || fail "the coordinator did not listen"
ADDR="127.0.0.1:$(cat "$WORK/port")"

# as ROLE/NAME -- dermfed ARGS...: runs the CLI with that certificate.
as() {
  local who="$1"
  shift 2
  "$DERMFED" "$@" --coordinator "$ADDR" --ca "$PKI/ca/ca.crt" --cert "$PKI/$who.crt" \
    --key "$PKI/$who.key"
}
# expect_refused WHAT PATTERN COMMAND...: the command fails and its output matches PATTERN.
expect_refused() {
  local what="$1" pattern="$2"
  shift 2
  if "$@" >"$WORK/out.txt" 2>&1; then fail "$what was allowed: $(cat "$WORK/out.txt")"; fi
  grep -Eq "$pattern" "$WORK/out.txt" || fail "$what: unexpected message: $(cat "$WORK/out.txt")"
  echo "refused: $what"
}

as researcher/researcher-1 -- status >"$WORK/status.txt" 2>&1 ||
  fail "a researcher cannot read status: $(cat "$WORK/status.txt")"
grep -q "waiting for sites" "$WORK/status.txt" || fail "status says: $(cat "$WORK/status.txt")"
echo "allowed: researcher reads status"

# No client certificate at all: the TLS handshake is refused.
openssl s_client -connect "$ADDR" -CAfile "$PKI/ca/ca.crt" -alpn h2 </dev/null \
  >"$WORK/no-cert.txt" 2>&1
# (TLS 1.3: the client finishes its side first, then the server drops the connection.)
grep -q "TLSv1.3" "$WORK/no-cert.txt" || fail "the coordinator did not negotiate TLS 1.3"
sleep 0.5
grep -q "peer did not return a certificate" "$WORK/logs/coordinator.log" ||
  fail "a client without a certificate was not refused: $(tail -n 20 "$WORK/no-cert.txt")"
echo "refused: a client without a certificate (TLS 1.3 negotiated)"
expect_refused "a plaintext client" "UNAVAILABLE|unavailable|failed to connect|Connection reset|Socket closed" \
  "$DERMFED" status --coordinator "$ADDR" --insecure
# A certificate from a foreign CA (dermfed's own client checks its files first and would not
# even try, so present it with openssl).
openssl s_client -connect "$ADDR" -CAfile "$PKI/ca/ca.crt" -alpn h2 \
  -cert "$PKI/foreign/site/site-1.crt" -key "$PKI/foreign/site/site-1.key" </dev/null \
  >"$WORK/foreign.txt" 2>&1
sleep 0.5
grep -Eq "certificate verify failed|unknown ca|unable to get local issuer" "$WORK/logs/coordinator.log" ||
  fail "a certificate from a foreign CA was not refused"
echo "refused: a certificate from a foreign CA"
expect_refused "a revoked certificate" "failed to connect|UNAVAILABLE|unavailable|handshake" \
  as site/site-revoked -- status
grep -q "refused a revoked certificate" "$WORK/logs/coordinator.log" ||
  fail "the coordinator does not log the revoked certificate"
expect_refused "a site certificate on the monitor service" "may not use the monitor service" \
  as site/site-1 -- status
expect_refused "a researcher pausing" "need an admin certificate" \
  as researcher/researcher-1 -- pause --reason "not mine to do"

# A site posing as another, and a researcher joining as a site.
"$SITE" --site.name=site-1 --site.coordinator="$ADDR" --site.data="$WORK" \
  --site.ca="$PKI/ca/ca.crt" --site.cert="$PKI/site/site-2.crt" --site.key="$PKI/site/site-2.key" \
  --site.threads=1 >"$WORK/logs/poser.log" 2>&1 && fail "a site posing as another was let in"
grep -q "site 'site-2' (by its certificate) may not act as 'site-1'" "$WORK/logs/poser.log" ||
  fail "the posing site got no clear refusal: $(tail -n 5 "$WORK/logs/poser.log")"
echo "refused: site-2 posing as site-1"
"$SITE" --site.name=researcher-1 --site.coordinator="$ADDR" --site.data="$WORK" \
  --site.ca="$PKI/ca/ca.crt" --site.cert="$PKI/researcher/researcher-1.crt" \
  --site.key="$PKI/researcher/researcher-1.key" --site.threads=1 >"$WORK/logs/researcher-site.log" 2>&1 &&
  fail "a researcher certificate joined as a site"
grep -q "may not use the site service" "$WORK/logs/researcher-site.log" ||
  fail "no clear refusal for a researcher joining: $(tail -n 5 "$WORK/logs/researcher-site.log")"
echo "refused: a researcher certificate on the site service"

# Revoked while the coordinator runs: the next connection is refused, no restart needed.
sleep 1.1  # a new CRL file time even on coarse-timestamp filesystems
bash "$CERTS/revoke.sh" --pki "$PKI" --role researcher --name researcher-1 \
  >"$WORK/logs/revoke.log" 2>&1 || fail "revoke.sh failed: $(cat "$WORK/logs/revoke.log")"
expect_refused "a certificate revoked while running" "failed to connect|UNAVAILABLE|unavailable|handshake" \
  as researcher/researcher-1 -- status
grep -q "reloaded revocation list" "$WORK/logs/coordinator.log" || fail "the CRL was not reloaded"

as admin/admin-1 -- pause --reason "admin test" >"$WORK/pause.txt" 2>&1 ||
  fail "an admin cannot pause: $(cat "$WORK/pause.txt")"
as admin/admin-1 -- stop --reason "admin test" >"$WORK/stop.txt" 2>&1 ||
  fail "an admin cannot stop: $(cat "$WORK/stop.txt")"
echo "allowed: admin pauses and stops"
for _ in $(seq 300); do kill -0 "$COORD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$COORD_PID" 2>/dev/null && fail "the coordinator did not stop"
wait "$COORD_PID" || fail "the coordinator exited with $?"
grep -q "stopped by admin:admin-1" "$WORK/logs/coordinator.log" || fail "the stop is not attributed to admin-1"
# The audit log holds the role violations and the admin's actions, hash-chained.
/usr/bin/python3 - "$WORK/state/audit.log" <<'PY' || fail "audit log check failed"
import hashlib, json, sys
lines = open(sys.argv[1]).read().splitlines()
entries = [json.loads(l) for l in lines]
acts = [(e["action"], e["actor"], e["outcome"]) for e in entries]
print("audit:", acts)
assert ("role_violation", "site-1", "refused") in acts, "site-1 on the monitor service not audited"
assert ("role_violation", "researcher-1", "refused") in acts, "researcher pausing not audited"
assert ("role_violation", "site-2", "refused") in acts, "site-2 posing not audited"
assert ("pause", "admin:admin-1", "ok") in acts and ("stop", "admin:admin-1", "ok") in acts
prev = None
for e, line in zip(entries, lines):
    if prev is not None:
        assert e["prev"] == hashlib.sha256(prev.encode()).hexdigest(), "chain broken at seq %s" % e["seq"]
    prev = line
PY
echo "PASS"
