#!/usr/bin/env bash
# Connections cut mid-stream, in a real federation (a coordinator and three sites on mutual
# TLS; site-1 talks to the coordinator through fault_proxy.py, the others directly):
#   - site-1's first connection is reset (RST) halfway through its round-1 model download:
#     the download is retried on a new connection and site-1 trains;
#   - its second connection is reset halfway through the upload of that update: the
#     coordinator refuses the half-received update on the record ("the stream broke after X
#     of Y bytes", X < Y; or, when the reset cancels the call before the coordinator has
#     read its header, "an upload broke before its header arrived", round unknown) and never
#     folds it; site-1 retries (trains again, uploads again) and that update is folded, once.
# Checked: the proxy did cut both streams; round 1 aggregated three updates, site-1's once
# (audit log: one accepted upload, one refusal); every round's model is FedAvg of exactly the
# updates the coordinator acknowledged (site.debug_dump_updates); round 2 runs clean; every
# process exits 0.
#
# usage: connection_cut_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE [FIXTURE]
# (FIXTURE: a make_fixture.sh folder; without it the test makes its own.)
set -uo pipefail
# shellcheck source=fault_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/fault_lib.sh"
fault_setup connection-cut "$@"

start_coordinator coordinator --federation.rounds=2 --federation.min_sites=3 \
  --federation.expected_sites=3 --federation.round_deadline_s=60 \
  --federation.eval_deadline_s=60 --server.keep_checkpoints=0
# Half the model's bytes: the cuts land in the middle of its download and of an update's
# upload (a model state file is the buffer plus a small header).
HALF=$(( $(stat -c %s "$STATE/checkpoints/global-000000.dfs") / 2 ))
"$PY" "$FAULT_DIR/fault_proxy.py" --upstream "$ADDR" --port-file "$WORK/proxy.port" \
  --plan "cut-down:$HALF,cut-up:$HALF" --log "$WORK/proxy.jsonl" >"$WORK/logs/proxy.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the proxy did not listen" test -s "$WORK/proxy.port"
for n in 1 2 3; do
  mkdir -p "$WORK/dump/site-$n"
  if [ "$n" -eq 1 ]; then
    SITE_ADDR="127.0.0.1:$(cat "$WORK/proxy.port")" start_site 1 --site.debug_dump_updates="$WORK/dump/site-1"
  else
    start_site "$n" --site.debug_dump_updates="$WORK/dump/site-$n"
  fi
done

wait_exit_ok "$COORD_PID" 120 "the coordinator"
for n in 1 2 3; do
  wait_exit_ok "${SITE_PID[$n]}" 30 "site-$n"
done

grep -q '"event": "cut-down"' "$WORK/proxy.jsonl" || fail "the proxy never cut the download"
grep -q '"event": "cut-up"' "$WORK/proxy.jsonl" || fail "the proxy never cut the upload"
site_log 1 "uploading the update for round 1: .*retrying" ||
  fail "site-1 did not see its upload break and retry"
refusal=$(grep -E "site=site-1 round=1 update refused: .*the stream broke after [0-9]+ of [0-9]+ bytes" \
          "$WORK/logs/coordinator.log" | head -n 1)
if [ -n "$refusal" ]; then
  got=$(echo "$refusal" | sed -E 's/.*after ([0-9]+) of ([0-9]+) bytes.*/\1 \2/')
  read -r part whole <<<"$got"
  [ "$part" -lt "$whole" ] || fail "the cut upload was not half-received: $refusal"
  echo "the coordinator refused the cut upload: $part of $whole bytes received"
elif grep -q "site=site-1 an upload broke before its header arrived" "$WORK/logs/coordinator.log"; then
  # The reset can cancel the call before the coordinator's handler has read the header (the
  # whole tiny update is one chunk, sent at once): then it says so, and nothing was read.
  echo "the cut upload was cancelled before the coordinator read its header (logged)"
else
  fail "the coordinator did not refuse site-1's half-received update on the record"
fi

"$PY" "$CHECK" state "$STATE" >/dev/null || fail "state check failed"
"$PY" "$CHECK" fedavg "$STATE" "$WORK"/dump/site-* || fail "the aggregates are not FedAvg of the acknowledged updates"
"$PY" - "$WORK" <<'PY' || fail "round contents check failed"
import json, os, sqlite3, sys
work = sys.argv[1]
with sqlite3.connect(os.path.join(work, "state", "coordinator.db")) as c:
    rows = dict(c.execute("SELECT round, sites_reported FROM rounds").fetchall())
ok, refused = {}, {}
for line in open(os.path.join(work, "state", "audit.log")):
    e = json.loads(line)
    if e["action"] == "upload":
        ok.setdefault((e["round"], e["site"]), 0)
        ok[(e["round"], e["site"])] += 1
    if e["action"] == "reject":
        refused.setdefault((e["round"], e["site"]), []).append(e["detail"])
print("sites_reported:", rows, "refused:", refused)
assert rows[1] == 3 and rows[2] == 3, "rounds reported %s, want 3 each" % rows
for r in (1, 2):
    for s in ("site-1", "site-2", "site-3"):
        assert ok.get((r, s)) == 1, "round %d: %d accepted uploads from %s, want 1" % (r, ok.get((r, s), 0), s)
# Refused with its round, or (cancelled before its header was read) with the round unknown.
assert (1, "site-1") in refused or any("before its header" in d for d in refused.get((None, "site-1"), [])), \
    "site-1's broken round-1 upload is not in the audit log"
PY
echo "PASS ($(( $(date +%s) - START )) s)"
