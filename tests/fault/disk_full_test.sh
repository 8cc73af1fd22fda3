#!/usr/bin/env bash
# The coordinator's disk fills up mid-federation (two real sites on mutual TLS; the
# coordinator runs with fault_shim.c preloaded, so that every write under its state folder
# (checkpoints, SQLite database and journal, audit log) meets a full disk while a flag file
# exists):
#   - after round 1 is committed and evaluated, the disk is left with 150 kB free: round 2's
#     global checkpoint (~320 kB) fails part-way with ENOSPC. The coordinator logs that the
#     checkpoint failed and runs the round again (the sites train again), failing again while
#     the disk stays full; throughout, round 1's checkpoint stays whole and is still the last
#     committed round, and no partial file is left;
#   - the disk is freed: round 2 is retried once more and committed, rounds 3 and 4 follow,
#     every checkpoint verifies, and each round's model is FedAvg of the updates the
#     coordinator acknowledged in the attempt that was committed (site.debug_dump_updates);
#   - the coordinator is started once more on the same state folder: it opens (the audit
#     log's hash chain and the database survived the full disk) and has nothing left to do.
#
# usage: disk_full_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE [FIXTURE]
# (FIXTURE: a make_fixture.sh folder; without it the test makes its own.)
set -uo pipefail
# shellcheck source=fault_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/fault_lib.sh"
fault_setup disk-full "$@"

FULL="$WORK/disk-full"
ARGS=(--federation.rounds=4 --federation.min_sites=2 --federation.expected_sites=2
      --federation.round_deadline_s=60 --federation.eval_deadline_s=60
      --server.keep_checkpoints=0 --server.export_dir="$WORK/export")
FAULT_ENV="LD_PRELOAD=$SHIM DERMFED_FAULT_PATHS=$STATE/ DERMFED_FAULT_FULL=$FULL DERMFED_FAULT_TRACE=$WORK/trace" \
  start_coordinator coordinator "${ARGS[@]}"
# site-1 stalls 5 s into its first training of round 2, so that round 2 cannot be checkpointed
# before the disk is full (a tiny round takes well under a second, and the sites no longer
# pull the model they just evaluated).
for n in 1 2; do
  mkdir -p "$WORK/dump/site-$n"
  stall=()
  [ "$n" -eq 1 ] && stall=(--site.debug_fault=stall_in_training --site.debug_fault_round=2
                           --site.debug_stall_s=5)
  start_site "$n" --site.debug_dump_updates="$WORK/dump/site-$n" "${stall[@]}"
done
wait_for 60 "round 1 was not evaluated" coord_log coordinator "round=1 version=1 evaluation"
echo 150000 >"$FULL"
echo "the disk is full ($(( $(date +%s) - START )) s in)"
failures() { grep -c "round=2 checkpoint failed, the round will be retried" "$WORK/logs/coordinator.log"; }
twice() { [ "$(failures)" -ge 2 ]; }
wait_for 60 "round 2's checkpoint did not fail twice on the full disk" twice
grep -q "^enospc .*/checkpoints/global-000002.dfs" "$WORK/trace" ||
  fail "the full disk never refused a write of round 2's checkpoint"
grep -m1 "round=2 checkpoint failed" "$WORK/logs/coordinator.log" | grep -q "No space left on device" ||
  fail "the checkpoint failure does not say the disk is full: $(grep -m1 'round=2 checkpoint failed' "$WORK/logs/coordinator.log")"
kill -0 "$COORD_PID" 2>/dev/null || fail "the coordinator died on the full disk"
summary=$("$PY" "$CHECK" state "$STATE") || fail "state check on the full disk failed"
echo "on the full disk: $(failures) failed checkpoints of round 2; state $summary"
"$PY" - "$summary" "$STATE" <<'PY' || fail "the full disk damaged the previous checkpoint"
import glob, json, os, sys
s = json.loads(sys.argv[1])
assert s["last"] == 1, "the last committed round is %d, want 1" % s["last"]
assert not s["orphan"], "a checkpoint of round 2 exists although its write failed"
ck = os.path.join(sys.argv[2], "checkpoints")
left = [f for f in os.listdir(ck) if ".tmp" in f]
assert not left, "partial checkpoint files are left: %s" % left
PY
rm -f "$FULL"
echo "the disk is free again ($(( $(date +%s) - START )) s in)"

wait_exit_ok "$COORD_PID" 120 "the coordinator"
for n in 1 2; do
  wait_exit_ok "${SITE_PID[$n]}" 30 "site-$n"
done
"$PY" "$CHECK" state "$STATE" >"$WORK/final.json" || fail "final state check failed"
grep -q '"last": 4' "$WORK/final.json" || fail "the federation did not commit round 4: $(cat "$WORK/final.json")"
"$PY" "$CHECK" fedavg "$STATE" "$WORK"/dump/site-* || fail "the aggregates are not FedAvg of the acknowledged updates"
[ -s "$WORK/export/model.dfs" ] || fail "no exported model"

# The state folder still opens: the audit log's chain and the database are whole.
FAULT_ENV="" start_coordinator coordinator-again "${ARGS[@]}"
wait_exit "$COORD_PID" 60 "the coordinator started again"
rc=$?
[ "$rc" -eq 0 ] || fail "the coordinator started again on the same state exited with $rc: $(tail -n 3 "$WORK/logs/coordinator-again.log")"
coord_log coordinator-again "resuming after completed round 4" ||
  fail "the coordinator started again did not resume after round 4"
echo "PASS ($(( $(date +%s) - START )) s)"
