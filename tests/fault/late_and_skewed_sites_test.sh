#!/usr/bin/env bash
# Sites slower than the round deadline, and sites whose clocks are wrong, in a real federation
# (a coordinator and four sites on mutual TLS; federation.min_sites = 2,
# federation.round_deadline_s = 3, federation.stragglers = "drop"):
#   - site-2 stalls 6 s in round 1's training (site.debug_fault): the round aggregates what
#     arrived by its deadline (site-1, site-3) and drops site-2; its late update is refused
#     from its header (stale), and site-2 carries on with round 2;
#   - site-3 stalls 6 s in round 2's upload, after its header (accepted in time) and its bytes
#     were sent: the round closes at its deadline without it, and when the upload ends the
#     update is refused, never folded into round 2 or 3;
#   - site-1 runs with its wall clock 2 hours fast (fault_shim.c): no code path trusts a
#     site's clock (gRPC sends deadlines as durations, the coordinator times rounds with its
#     own clock), so it takes part in every round;
#   - site-4 starts with its clock a day slow: its own certificate, issued minutes ago, is
#     "not valid before" a time in its future, and it refuses to start, saying so (exit 1),
#     rather than fail TLS handshakes forever; the federation goes on without it. Started
#     again with a right clock, it joins and trains round 3.
# Checked: sites_reported and the accepted uploads per round (round 1: site-1 and site-3;
# round 2: site-1 and site-2; round 3: all four), the refusals on the record, FedAvg of the
# acknowledged updates equals every checkpoint, site-1's log is 2 h ahead, every process
# exits 0.
#
# usage: late_and_skewed_sites_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE [FIXTURE]
# (FIXTURE: a make_fixture.sh folder; without it the test makes its own.)
set -uo pipefail
# shellcheck source=fault_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/fault_lib.sh"
fault_setup late-sites "$@"

start_coordinator coordinator --federation.rounds=3 --federation.min_sites=2 \
  --federation.expected_sites=4 --federation.round_deadline_s=3 \
  --federation.eval_deadline_s=30 --server.keep_checkpoints=0
admin pause --reason "wait for sites 1-3" >"$WORK/logs/pause.log" 2>&1 ||
  fail "pause failed: $(cat "$WORK/logs/pause.log")"
for n in 1 2 3 4; do mkdir -p "$WORK/dump/site-$n"; done
SITE_ENV="LD_PRELOAD=$SHIM DERMFED_FAULT_CLOCK_OFFSET_S=7200" \
  start_site 1 --site.debug_dump_updates="$WORK/dump/site-1"
start_site 2 --site.debug_dump_updates="$WORK/dump/site-2" --site.debug_fault=stall_in_training \
  --site.debug_fault_round=1 --site.debug_stall_s=6
start_site 3 --site.debug_dump_updates="$WORK/dump/site-3" --site.debug_fault=stall_in_upload \
  --site.debug_fault_round=2 --site.debug_stall_s=6
SITE_ENV="LD_PRELOAD=$SHIM DERMFED_FAULT_CLOCK_OFFSET_S=-86400" \
  start_site 4 --site.debug_dump_updates="$WORK/dump/site-4"
wait_exit "${SITE_PID[4]}" 60 "site-4 (clock a day slow)"
rc=$?
[ "$rc" -ne 0 ] || fail "site-4 started with its clock a day slow"
site_log 4 "certificate .* is not valid before" ||
  fail "site-4 (clock a day slow) did not say its certificate is not valid yet: $(tail -n 2 "$WORK/logs/site-4.log")"
echo "site-4 with its clock a day slow exited $rc: $(tail -n 1 "$WORK/logs/site-4.log")"
ready() { [ "$(joined_sites coordinator)" -eq 3 ]; }
wait_for 60 "sites 1-3 did not join with their data" ready
admin resume --reason "go" >"$WORK/logs/resume.log" 2>&1 || fail "resume failed"

wait_for 60 "round 1 was not aggregated" coord_log coordinator "round=1 version=1 aggregated"
coord_log coordinator "round=1 deadline passed: aggregating 2 updates, dropping stragglers site-2" ||
  fail "round 1 did not drop site-2 at its deadline"
# Hold round 3 (round 2 finishes) until site-4, started again with a right clock, is in.
wait_for 60 "round 2 did not start" coord_log coordinator "round=2 version=1 started"
admin pause --reason "site-4 clock fixed" >"$WORK/logs/pause2.log" 2>&1 || fail "second pause failed"
wait_for 60 "round 2 was not aggregated" coord_log coordinator "round=2 version=2 aggregated"
coord_log coordinator "round=2 deadline passed: aggregating 2 updates, dropping stragglers site-3" ||
  fail "round 2 did not drop site-3 at its deadline"
coord_log coordinator "site=site-4 (re)?joined" && fail "site-4 joined with its clock a day slow"
start_site 4 --site.debug_dump_updates="$WORK/dump/site-4"
wait_for 60 "site-4 did not join once its clock was right" coord_log coordinator "site=site-4 rejoined \(train_rows=[1-9]"
admin resume --reason "go" >"$WORK/logs/resume2.log" 2>&1 || fail "second resume failed"

wait_exit_ok "$COORD_PID" 120 "the coordinator"
for n in 1 2 3 4; do
  wait_exit_ok "${SITE_PID[$n]}" 30 "site-$n"
done
coord_log coordinator "site=site-2 round=1 update refused: .*stale" ||
  fail "site-2's late round-1 update was not refused as stale"
coord_log coordinator "site=site-3 round=2 update refused" ||
  fail "site-3's round-2 update, finished after the deadline, was not refused"
# site-1's clock really was 2 h fast: its log lines are stamped ~2 h after the coordinator's.
"$PY" - "$WORK/logs/site-1.log" "$WORK/logs/coordinator.log" <<'PY' || fail "site-1's clock was not 2 h fast"
import datetime, re, sys
def first(path):
    for line in open(path):
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", line)
        if m:
            return datetime.datetime.fromisoformat(m.group(1))
skew = (first(sys.argv[1]) - first(sys.argv[2])).total_seconds()
print("site-1's clock ran %.0f s ahead of the coordinator's" % skew)
assert 7000 < skew < 7400, skew
PY

"$PY" "$CHECK" state "$STATE" >/dev/null || fail "state check failed"
"$PY" "$CHECK" fedavg "$STATE" "$WORK"/dump/site-* || fail "the aggregates are not FedAvg of the acknowledged updates"
"$PY" - "$WORK" <<'PY' || fail "round contents check failed"
import json, os, sqlite3, sys
work = sys.argv[1]
with sqlite3.connect(os.path.join(work, "state", "coordinator.db")) as c:
    rows = dict(c.execute("SELECT round, sites_reported FROM rounds").fetchall())
uploads = {}
for line in open(os.path.join(work, "state", "audit.log")):
    e = json.loads(line)
    if e["action"] == "upload" and e["outcome"] == "ok":
        uploads.setdefault(e["round"], []).append(e["site"])
want = {1: ["site-1", "site-3"], 2: ["site-1", "site-2"], 3: ["site-1", "site-2", "site-3", "site-4"]}
print("sites_reported:", rows, "uploads:", uploads)
for r, sites in want.items():
    assert sorted(uploads.get(r, [])) == sites, "round %d folded %s, want %s" % (r, sorted(uploads.get(r, [])), sites)
    assert rows[r] == len(sites), "round %d: sites_reported %d, want %d" % (r, rows[r], len(sites))
PY
echo "PASS ($(( $(date +%s) - START )) s)"
