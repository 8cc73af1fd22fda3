#!/usr/bin/env bash
# The coordinator killed with SIGKILL at 22 points of its rounds, in a seeded order, and
# restarted each time with the same configuration and state folder (two real sites on mutual
# TLS, never restarted, never touched):
#   - 14 points inside the checkpoint write (coordinator/store.h: the global model's file, then
#     the strategy's, each written to a temporary file, fsync'd, closed and renamed; then the
#     SQLite row). An LD_PRELOAD shim (fault_shim.c) stops the coordinator right before its
#     k-th operation on a checkpoint file, k = 1..13 (global: open, 3 writes, fsync, close,
#     rename; strategy: open, 2 writes (FedAvg keeps no state), fsync, close, rename), or
#     right after the last rename (both files whole, the row not committed), and the test
#     kills it there;
#   - 8 points in time: a seeded delay after the restarted coordinator listens (waiting for the
#     sites to rejoin) or after it starts a round (training, aggregation, evaluation).
# After every kill (fault_check.py state): every checkpoint file on disk verifies its SHA-256;
# the rounds table holds rounds 0..L, each committed round unchanged since it was first seen
# (the counter never goes back, no completed round is lost); a checkpoint of round L+1 without
# a row may exist (killed before the commit) but is whole; no temporary file survives the
# restart. The restarted coordinator says it resumes after round L exactly and never runs a
# committed round again. At the end: one more round after the last restart, then `dermfed
# stop`; both sites, never restarted, exit 0; every round's model is FedAvg of the updates the
# coordinator acknowledged (site.debug_dump_updates) applied to the previous round's model; no
# site ever trained a round lower than one it trained before.
# DERMFED_FAULT_SEED picks another order and other delays (default 7).
#
# usage: coordinator_kill_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE [FIXTURE]
# (FIXTURE: a make_fixture.sh folder; without it the test makes its own.)
# (DERMFED_TEST_KEEP=1 keeps the work folder and its logs.)
set -uo pipefail
# shellcheck source=fault_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/fault_lib.sh"
fault_setup coordinator-kill "$@"
SEED="${DERMFED_FAULT_SEED:-7}"

PORT="$(free_port)"
[ -n "$PORT" ] || fail "found no free port for the coordinator"
FAULT_ADDR="127.0.0.1:$PORT"
ARGS=(--federation.rounds=1000 --federation.min_sites=2 --federation.expected_sites=2
      --federation.round_deadline_s=60 --federation.eval_deadline_s=60
      --server.keep_checkpoints=0)

# The kill points, shuffled by the seed: "store:K" (hold before checkpoint operation K),
# "store:after13" (hold after the 13th: both files renamed, the row not written), and
# "time:listen:MS" / "time:round:MS" (kill MS ms after it listens / starts a round).
mapfile -t POINTS < <("$PY" - "$SEED" <<'PY'
import random, sys
rng = random.Random(int(sys.argv[1]))
points = ["store:%d" % k for k in range(1, 14)] + ["store:after13"]
points += ["time:listen:%d" % rng.randrange(0, 1500) for _ in range(4)]
points += ["time:round:%d" % rng.randrange(0, 2500) for _ in range(4)]
rng.shuffle(points)
print("\n".join(points))
PY
)
[ "${#POINTS[@]}" -eq 22 ] || fail "expected 22 kill points, got ${#POINTS[@]}"

FAULT_ENV="" start_coordinator coordinator-0 "${ARGS[@]}"
for n in 1 2; do
  mkdir -p "$WORK/dump/site-$n"
  start_site "$n" --site.debug_dump_updates="$WORK/dump/site-$n"
done
wait_for 60 "round 1 was not committed" coord_log coordinator-0 "round=1 version=1 aggregated"
kill -KILL "$COORD_PID"
wait "$COORD_PID" 2>/dev/null
summary=$("$PY" "$CHECK" state "$STATE" --save "$WORK/committed.json") ||
  fail "state check after the first kill failed"
echo "kill 0: right after round 1 was committed; state: $summary"

held() { grep -q '^hold' "$1" 2>/dev/null; }
i=0
for point in "${POINTS[@]}"; do
  i=$((i + 1))
  name="coordinator-$i"
  last=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))) - 1)' "$WORK/committed.json")
  trace="$WORK/trace-$i"
  env_vars="LD_PRELOAD=$SHIM DERMFED_FAULT_PATHS=/checkpoints/ DERMFED_FAULT_TRACE=$trace"
  case "$point" in
    store:after13) env_vars+=" DERMFED_FAULT_HOLD_AFTER=13" ;;
    store:*) env_vars+=" DERMFED_FAULT_HOLD_AT=${point#store:}" ;;
  esac
  FAULT_ENV="$env_vars" start_coordinator "$name" "${ARGS[@]}"
  # A restarted coordinator leaves no temporary file of an interrupted write behind.
  leftovers=$(find "$STATE/checkpoints" -name '*.tmp.*' ! -name "*.tmp.$COORD_PID" | wc -l)
  case "$point" in
    store:*)
      wait_for 60 "$name never reached checkpoint operation ${point#store:}" held "$trace"
      where=$(grep '^hold' "$trace" | head -n 1)
      ;;
    time:listen:*)
      sleep "$(printf '%d.%03d' $(( ${point##*:} / 1000 )) $(( ${point##*:} % 1000 )))"
      where="$(( ${point##*:} )) ms after listening"
      ;;
    time:round:*)
      wait_for 60 "$name never started a round" coord_log "$name" "version=[0-9]+ started"
      sleep "$(printf '%d.%03d' $(( ${point##*:} / 1000 )) $(( ${point##*:} % 1000 )))"
      where="$(( ${point##*:} )) ms after starting a round"
      ;;
  esac
  kill -0 "$COORD_PID" 2>/dev/null || fail "$name exited before kill $i"
  kill -KILL "$COORD_PID"
  wait "$COORD_PID" 2>/dev/null
  doing=$(grep -Ev '^\s*$' "$WORK/logs/$name.log" | tail -n 1 | sed -E 's/^[^ ]+ [^ ]+ //' | cut -c1-90)
  summary=$("$PY" "$CHECK" state "$STATE" --before "$WORK/committed.json" \
            --save "$WORK/committed.json") || fail "kill $i ($point): state check failed"
  echo "kill $i ($point): $where; last log: $doing; state: $summary"
  # What the coordinator said when it came back.
  resumed=$(sed -n 's/.*resuming after completed round \([0-9]*\).*/\1/p' "$WORK/logs/$name.log" | head -n 1)
  [ "$resumed" = "$last" ] || fail "$name resumed after round '${resumed}', but round $last was the last committed"
  while read -r r; do
    [ "$r" -gt "$last" ] || fail "$name started round $r again, but round $last was committed"
  done < <(sed -n 's/.*round=\([0-9]*\) version=[0-9]* started.*/\1/p' "$WORK/logs/$name.log")
  [ "$leftovers" -eq 0 ] || fail "$name started with $leftovers temporary checkpoint files left by the crash before it"
done

# Last start: no fault; one more round, then stop.
name="coordinator-final"
last=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))) - 1)' "$WORK/committed.json")
FAULT_ENV="" start_coordinator "$name" "${ARGS[@]}"
[ "$(find "$STATE/checkpoints" -name '*.tmp.*' ! -name "*.tmp.$COORD_PID" | wc -l)" -eq 0 ] ||
  fail "temporary checkpoint files are left after the restart"
wait_for 60 "round $((last + 1)) was not committed after the last restart" \
  coord_log "$name" "round=$((last + 1)) version=$((last + 1)) aggregated"
wait_for 60 "round $((last + 1)) was not evaluated" \
  coord_log "$name" "round=$((last + 1)) version=$((last + 1)) evaluation"
admin stop --reason "fault test over" >"$WORK/logs/stop.log" 2>&1 || fail "stop failed: $(cat "$WORK/logs/stop.log")"
wait_exit_ok "$COORD_PID" 60 "the last coordinator"
for n in 1 2; do
  wait_exit_ok "${SITE_PID[$n]}" 30 "site-$n"
  # The sites never saw the round go back.
  "$PY" - "$WORK/logs/site-$n.log" <<'PY' || fail "site-$n trained a round lower than one before"
import re, sys
rounds = [int(r) for r in re.findall(r"round=(\d+) version=\d+ trained", open(sys.argv[1]).read())]
assert rounds == sorted(rounds), "site trained rounds %s" % rounds
print("%s trained rounds %s" % (sys.argv[1].split("/")[-1][:-4], rounds))
PY
done
"$PY" "$CHECK" state "$STATE" --before "$WORK/committed.json" || fail "final state check failed"
"$PY" "$CHECK" fedavg "$STATE" "$WORK"/dump/site-* >"$WORK/fedavg.txt" ||
  fail "a round's model is not FedAvg of the acknowledged updates: $(tail -n 3 "$WORK/fedavg.txt")"
tail -n 1 "$WORK/fedavg.txt"
echo "PASS ($(( $(date +%s) - START )) s)"
