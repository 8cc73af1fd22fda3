#!/usr/bin/env bash
# Secure aggregation survives sites that crash mid-round, in a real federation (a real
# coordinator and four real sites on mutual TLS, threshold t = 2):
#   round 1: site-4 dies right after sending its key shares, before uploading: the
#            coordinator unmasks with site-4 dropped (its pairwise masks removed from the
#            survivors' shares of its key);
#   round 2: site-3 dies right after uploading its masked update, before unmasking: the
#            other two sites' shares remove its self-mask, and its update counts;
#   round 3: the two survivors carry on.
# Each round's unmasked weight word must equal the training rows of exactly the sites whose
# updates went in, and every round's model is evaluated with finite metrics.
#
# usage: secagg_dropout_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE CERTS_DIR
set -uo pipefail
DERMFED="$1"
COORDINATOR="$2"
SITE="$3"
CERTS="$4"
# shellcheck source=../harness.sh
source "$(cd "$(dirname "$0")/.." && pwd)/harness.sh"
harness_start dropout
PKI="$WORK/pki"
bash "$CERTS/make-test-pki.sh" "$PKI" --sites 4 >"$WORK/logs/pki.log" 2>&1 || fail "make-test-pki.sh failed"
"$DERMFED" datagen --format pad-ufes-20 --out "$WORK/data" --images 160 --image-size 32 \
  --seed 9 >/dev/null 2>&1 || fail "datagen failed"
"$DERMFED" partition --data "$WORK/data" --format pad-ufes-20 --sites 4 --scheme iid --seed 3 \
  --out "$WORK/sites" >/dev/null 2>&1 || fail "partition failed"

"$COORDINATOR" --server.listen=127.0.0.1:0 --server.port_file="$WORK/port" \
  --server.state_dir="$WORK/state" --server.export_dir="$WORK/export" --server.threads=1 \
  --tls.ca="$PKI/ca/ca.crt" --tls.cert="$PKI/coordinator/coordinator.crt" \
  --tls.key="$PKI/coordinator/coordinator.key" --tls.crl="$PKI/crl/crl.pem" \
  --federation.rounds=3 --federation.min_sites=2 --federation.expected_sites=4 \
  --federation.round_deadline_s=8 --federation.eval_deadline_s=8 --model.backbone=tiny \
  --model.image_size=32 --training.batch_size=8 --security.secure_aggregation=true \
  --security.secagg_threshold=2 --security.secagg_phase_deadline_s=6 \
  >"$WORK/logs/coordinator.out" 2>"$WORK/logs/coordinator.log" &
COORD_PID=$!
PIDS+=("$COORD_PID")
for _ in $(seq 600); do [ -s "$WORK/port" ] && break; sleep 0.1; done
[ -s "$WORK/port" ] || fail "the coordinator did not listen"
ADDR="127.0.0.1:$(cat "$WORK/port")"
# Hold the first round until all four sites are in (an admin pause), so that round 1 has
# them all whatever the start-up order.
admin=(--coordinator "$ADDR" --ca "$PKI/ca/ca.crt" --cert "$PKI/admin/admin-1.crt"
       --key "$PKI/admin/admin-1.key")
"$DERMFED" pause "${admin[@]}" --reason "wait for all four sites" >"$WORK/logs/pause.log" 2>&1 ||
  fail "pause failed: $(cat "$WORK/logs/pause.log")"
fault=([1]="" [2]="" [3]="--site.debug_fault=exit_after_masked_upload --site.debug_fault_round=2"
       [4]="--site.debug_fault=exit_after_share --site.debug_fault_round=1")
for s in 1 2 3 4; do
  # shellcheck disable=SC2086
  "$SITE" --site.name="site-$s" --site.coordinator="$ADDR" --site.data="$WORK/sites/site-$s" \
    --site.threads=1 --site.workers=1 --site.seed="$s" --site.ca="$PKI/ca/ca.crt" \
    --site.cert="$PKI/site/site-$s.crt" --site.key="$PKI/site/site-$s.key" ${fault[$s]} \
    >"$WORK/logs/site-$s.log" 2>&1 &
  PIDS+=($!)
done
ready() { [ "$("$DERMFED" sites "${admin[@]}" --json | grep -vc '"train_rows":"0"')" -eq 4 ]; }
for _ in $(seq 300); do ready && break; sleep 0.2; done
ready || fail "the four sites did not join with their data"
"$DERMFED" resume "${admin[@]}" --reason "all in" >"$WORK/logs/resume.log" 2>&1 || fail "resume failed"
for _ in $(seq 1800); do kill -0 "$COORD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$COORD_PID" 2>/dev/null && fail "the federation did not finish within 180 s"
wait "$COORD_PID" || fail "the coordinator exited with $?"
grep -q "exiting exit_after_share" "$WORK/logs/site-4.log" || fail "site-4 did not crash after sharing"
grep -q "exiting exit_after_masked_upload" "$WORK/logs/site-3.log" || fail "site-3 did not crash after uploading"

/usr/bin/python3 - "$WORK" <<'PY' || fail "dropout check failed"
import json, math, os, re, sys
work = sys.argv[1]
log = open(os.path.join(work, "logs", "coordinator.log")).read()
rows = {}
for site, n in re.findall(r"site=(site-\d) (?:re)?joined \(train_rows=(\d+)", log):
    if int(n) > 0:
        rows[site] = int(n)
unmasked = {int(r): (int(resp), int(drop), int(w)) for r, resp, drop, w in re.findall(
    r"round=(\d+) secure aggregation: unmasked with (\d+) responses \((\d+) dropped\), total weight (\d+)", log)}
print("rows:", rows, "unmasked:", unmasked)
want = {1: (3, 1, rows["site-1"] + rows["site-2"] + rows["site-3"]),   # site-4 dropped
        2: (2, 0, rows["site-1"] + rows["site-2"] + rows["site-3"]),   # site-3 uploaded, then died
        3: (2, 0, rows["site-1"] + rows["site-2"])}
for r, (responses, dropped, weight) in want.items():
    assert r in unmasked, "round %d was not unmasked" % r
    assert unmasked[r] == (responses, dropped, weight), \
        "round %d: unmasked %s, want %s" % (r, unmasked[r], (responses, dropped, weight))
history = json.load(open(os.path.join(work, "export", "history.json")))
assert [h["round"] for h in history] == [1, 2, 3], history
for h in history:
    assert math.isfinite(h["loss"]) and h["loss"] < 10, "round %d: loss %s" % (h["round"], h["loss"])
print("losses:", [round(h["loss"], 4) for h in history])
PY
echo "PASS"
