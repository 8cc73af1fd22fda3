#!/usr/bin/env bash
# `dermfed stop` while a site is busy, and while a site is dead (a coordinator and three sites
# on mutual TLS; federation.min_sites = 2):
#   - site-1 stalls 6 s in round 3's training (site.debug_fault) and the federation is stopped
#     during the stall. The coordinator keeps answering until site-1, done training, asks for
#     its next task and is told the federation is over: all three sites exit 0 by themselves
#     ("federation finished"), and the coordinator exits 0 once they have, not before site-1
#     asked. (It used to leave 2 s after the stop: site-1, still training, never heard, and
#     retried forever against a coordinator that was gone.)
#   - second run, same state: site-3 is SIGKILLed and the federation stopped; the coordinator
#     waits server.stop_grace_s = 3 s for it, then exits 0 with a warning naming site-3.
#
# usage: stop_busy_site_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE [FIXTURE]
# (FIXTURE: a make_fixture.sh folder; without it the test makes its own.)
set -uo pipefail
# shellcheck source=fault_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/fault_lib.sh"
fault_setup stop-busy "$@"
ARGS=(--federation.rounds=1000 --federation.min_sites=2 --federation.expected_sites=3
      --federation.round_deadline_s=60 --federation.eval_deadline_s=60)

# ---- a busy site ----
start_coordinator coordinator-1 "${ARGS[@]}"
start_site 1 --site.debug_fault=stall_in_training --site.debug_fault_round=3 --site.debug_stall_s=6
start_site 2
start_site 3
wait_for 120 "site-1 did not stall in round 3" site_log 1 "stalling in training"
admin stop --reason "stopped while site-1 trains" >"$WORK/logs/stop-1.log" 2>&1 ||
  fail "stop failed: $(cat "$WORK/logs/stop-1.log")"
stopped=$(date +%s.%N)
site_log 1 "done stalling" && fail "site-1 was done stalling before the stop: the test is too slow"
wait_exit_ok "$COORD_PID" 60 "coordinator-1"
for n in 1 2 3; do
  wait_exit_ok "${SITE_PID[$n]}" 20 "site-$n (it was not told that the federation is over)"
  site_log "$n" "federation finished" || fail "site-$n did not hear that the federation is over"
done
grep -q "were not told" "$WORK/logs/coordinator-1.log" &&
  fail "coordinator-1 says a site was not told: $(grep "were not told" "$WORK/logs/coordinator-1.log")"
# site-1 asked for its next task only after its stall: the coordinator was still there.
"$PY" - "$WORK/logs/site-1.log" "$stopped" <<'PY' || fail "site-1 heard the end before its stall was over"
import datetime, re, sys
log = open(sys.argv[1]).read()
t = lambda pat: datetime.datetime.strptime(re.search(r"^(\S+) .*" + pat, log, re.M).group(1),
                                           "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                                               tzinfo=datetime.timezone.utc).timestamp()
done, finished = t("done stalling"), t("federation finished")
assert finished >= done, "finished %.3f before the stall ended %.3f" % (finished, done)
print("site-1 stopped stalling %.1f s after the stop and was told the end %.2f s later" %
      (done - float(sys.argv[2]), finished - done))
PY
echo "busy site: all three sites told and exited 0 ($(( $(date +%s) - START )) s in)"

# ---- a dead site ----
start_coordinator coordinator-2 "${ARGS[@]}" --server.stop_grace_s=3
for n in 1 2 3; do start_site "$n"; done
wait_for 120 "coordinator-2 evaluated no round with all three sites" \
  coord_log coordinator-2 "evaluation: 3 sites"
kill -KILL "${SITE_PID[3]}"
wait "${SITE_PID[3]}" 2>/dev/null
t0=$(date +%s.%N)
admin stop --reason "stopped with site-3 dead" >"$WORK/logs/stop-2.log" 2>&1 ||
  fail "stop failed: $(cat "$WORK/logs/stop-2.log")"
wait_exit_ok "$COORD_PID" 60 "coordinator-2"
took=$("$PY" -c "import sys, time; print('%.1f' % (time.time() - float(sys.argv[1])))" "$t0")
grep -q "were not told that the federation is over: site-3;" "$WORK/logs/coordinator-2.log" ||
  fail "coordinator-2 does not name site-3 as not told: $(tail -n 5 "$WORK/logs/coordinator-2.log")"
"$PY" -c "import sys; sys.exit(0 if 3.0 <= float(sys.argv[1]) <= 30 else 1)" "$took" ||
  fail "coordinator-2 left ${took} s after the stop was asked for, expected server.stop_grace_s = 3 s and a little"
for n in 1 2; do
  wait_exit_ok "${SITE_PID[$n]}" 20 "site-$n"
done
echo "dead site: coordinator-2 waited ${took} s for site-3 and named it"
echo "PASS ($(( $(date +%s) - START )) s)"
