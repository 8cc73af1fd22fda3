#!/usr/bin/env bash
# Sites killed with SIGKILL at four points of a round, in a real federation (a coordinator
# and four sites on loopback, mutual TLS, federation.min_sites = 2, every site selected):
#   round 1: site-1 dies mid-download (the model's header has arrived, the stream is open)
#            and site-2 mid-training (after its first step);
#   round 2: site-3 dies mid-upload (header and first chunk sent, the stream still open) and
#            site-4 mid-evaluation (round 2's model scored, the report not yet sent).
# The sites stall at those points (site.debug_fault = stall_in_*) until the test kills them.
# Each round completes at its deadline with the sites left (round 1: site-3 and site-4;
# round 2: site-1, site-2 and site-4); nothing of a dead site is folded; the killed sites are
# restarted without the fault, rejoin by themselves and catch up: they evaluate the round in
# progress and train the next round from the current model, so that round 3 aggregates all
# four. Checked from the database, the audit log and the checkpoints: sites_reported per
# round, whose uploads were accepted, FedAvg recomputed from the updates the coordinator
# acknowledged (site.debug_dump_updates) equals every round's checkpoint, four evaluations
# per round, and every process exits 0.
#
# usage: site_kill_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE [FIXTURE]
# (FIXTURE: a make_fixture.sh folder; without it the test makes its own.)
# (DERMFED_TEST_KEEP=1 keeps the work folder and its logs.)
set -uo pipefail
# shellcheck source=fault_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/fault_lib.sh"
fault_setup site-kill "$@"

start_coordinator coordinator --federation.rounds=3 --federation.min_sites=2 \
  --federation.expected_sites=4 --federation.round_deadline_s=4 \
  --federation.eval_deadline_s=30 --server.keep_checkpoints=0 --server.export_dir="$WORK/export"
# Hold round 1 until all four sites are in, whatever their start-up order.
admin pause --reason "wait for all four sites" >"$WORK/logs/pause.log" 2>&1 ||
  fail "pause failed: $(cat "$WORK/logs/pause.log")"
fault=([1]="--site.debug_fault=stall_in_download --site.debug_fault_round=1"
       [2]="--site.debug_fault=stall_in_training --site.debug_fault_round=1"
       [3]="--site.debug_fault=stall_in_upload --site.debug_fault_round=2"
       [4]="--site.debug_fault=stall_in_evaluation --site.debug_fault_round=2")
for n in 1 2 3 4; do
  mkdir -p "$WORK/dump/site-$n"
  # shellcheck disable=SC2086
  start_site "$n" --site.debug_dump_updates="$WORK/dump/site-$n" ${fault[$n]}
done
ready() { [ "$(joined_sites coordinator)" -eq 4 ]; }
wait_for 60 "the four sites did not join with their data" ready
admin resume --reason "all in" >"$WORK/logs/resume.log" 2>&1 || fail "resume failed"

# kill_at N WHERE: waits until site-N stalls at WHERE, then SIGKILLs it.
kill_at() {
  wait_for 60 "site-$1 never stalled in $2" site_log "$1" "stalling in $2"
  kill -KILL "${SITE_PID[$1]}"
  wait "${SITE_PID[$1]}" 2>/dev/null
  echo "killed site-$1 in $2 ($(( $(date +%s) - START )) s in)"
}
restart() {
  start_site "$1" --site.debug_dump_updates="$WORK/dump/site-$1"
  echo "restarted site-$1"
}

kill_at 1 download
kill_at 2 training
wait_for 60 "round 1 was not aggregated" coord_log coordinator "round=1 version=1 aggregated"
restart 1
restart 2
kill_at 3 upload
wait_for 60 "round 2 was not aggregated" coord_log coordinator "round=2 version=2 aggregated"
kill_at 4 evaluation
restart 3
restart 4

wait_exit_ok "$COORD_PID" 120 "the coordinator"
for n in 1 2 3 4; do
  wait_exit_ok "${SITE_PID[$n]}" 30 "site-$n"
  site_log "$n" "federation finished" || fail "site-$n did not see the federation finish"
done
for n in 1 2; do
  coord_log coordinator "site=site-$n rejoined" || fail "the restarted site-$n did not rejoin"
done
coord_log coordinator "site=site-3 round=2 update refused: .*the stream broke" ||
  fail "the coordinator did not record site-3's broken upload as refused"
coord_log coordinator "round=1 deadline passed: aggregating 2 updates, dropping stragglers site-1,site-2" ||
  fail "round 1 did not drop site-1 and site-2 at its deadline"
coord_log coordinator "round=2 deadline passed: aggregating 3 updates, dropping stragglers site-3" ||
  fail "round 2 did not drop site-3 at its deadline"

"$PY" "$CHECK" state "$STATE" >"$WORK/state.json" || fail "state check failed"
"$PY" "$CHECK" fedavg "$STATE" "$WORK"/dump/site-* || fail "the aggregates are not FedAvg of the acknowledged updates"
"$PY" - "$WORK" <<'PY' || fail "round contents check failed"
import json, os, sqlite3, sys
work = sys.argv[1]
with sqlite3.connect(os.path.join(work, "state", "coordinator.db")) as c:
    rows = dict(c.execute("SELECT round, sites_reported FROM rounds").fetchall())
    evals = {r: json.loads(m)["sites_reporting"] for r, m in c.execute("SELECT round, metrics FROM global_metrics")}
uploads = {}
for line in open(os.path.join(work, "state", "audit.log")):
    e = json.loads(line)
    if e["action"] == "upload" and e["outcome"] == "ok":
        uploads.setdefault(e["round"], []).append(e["site"])
want = {1: ["site-3", "site-4"], 2: ["site-1", "site-2", "site-4"],
        3: ["site-1", "site-2", "site-3", "site-4"]}
print("sites_reported:", rows, "uploads:", uploads, "evaluations:", evals)
for r, sites in want.items():
    assert sorted(uploads.get(r, [])) == sites, \
        "round %d folded the updates of %s, want %s" % (r, sorted(uploads.get(r, [])), sites)
    assert rows[r] == len(sites), "round %d: sites_reported %d, want %d" % (r, rows[r], len(sites))
    assert evals.get(r) == 4, "round %d was evaluated by %s sites, want 4" % (r, evals.get(r))
PY
[ -s "$WORK/export/model.dfs" ] || fail "no exported model"
echo "PASS ($(( $(date +%s) - START )) s)"
