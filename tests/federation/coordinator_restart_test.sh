#!/usr/bin/env bash
# Killing the coordinator (SIGKILL, no chance to clean up) after round 2 and starting it again
# with the same configuration and state folder loses no completed round:
#   - the restarted coordinator says it resumes after the last completed round (2, or 3 if
#     the kill landed late), and never starts a completed round again;
#   - the rounds table ends with rounds 0..4, each once, finish times increasing, and the
#     rows committed before the kill unchanged (same digest, same finish time);
#   - every checkpoint left on disk verifies (file checksum, and its buffer's SHA-256 equals
#     the digest its round's row records), the exported model is round 4's, and
#     `dermfed eval` loads and runs it (LoadModelState verifies the checksum again);
#   - the two real site daemons carry on by themselves (reconnect, rejoin) and exit 0.
# The coordinator listens on a fixed port, picked free at start, because sites are given an
# address once and do not re-read a port file.
#
# usage: coordinator_restart_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE
# (DERMFED_TEST_KEEP=1 keeps the work folder and its logs.)
set -uo pipefail
DERMFED="$1"
COORDINATOR="$2"
SITE="$3"
PY=/usr/bin/python3
# shellcheck source=../harness.sh
source "$(cd "$(dirname "$0")/.." && pwd)/harness.sh"
harness_start restart
START=$(date +%s)

# Small data, two sites.
"$DERMFED" datagen --format pad-ufes-20 --out "$WORK/data" --images 120 --image-size 32 \
  --seed 5 >"$WORK/logs/datagen.log" 2>&1 || fail "datagen failed"
"$DERMFED" partition --data "$WORK/data" --format pad-ufes-20 --sites 2 --scheme iid --seed 1 \
  --out "$WORK/sites" >"$WORK/logs/partition.log" 2>&1 || fail "partition failed"

# A free port below the kernel's ephemeral range, so that no process's outgoing connection
# or port-0 listener takes it while the coordinator is down.
PORT="$(free_port)"

[ -n "$PORT" ] || fail "found no free port for the coordinator"
STATE="$WORK/state"
EXPORT="$WORK/export"
PORT_FILE="$WORK/coordinator.port"
COORD_ARGS=(--federation.rounds=4 --federation.min_sites=2 --federation.expected_sites=2
            --federation.round_deadline_s=60 --federation.eval_deadline_s=60
            --model.backbone=tiny --model.image_size=32 --training.batch_size=8
            --server.listen="127.0.0.1:$PORT" --server.port_file="$PORT_FILE"
            --server.state_dir="$STATE" --server.export_dir="$EXPORT" --server.threads=1
            --server.insecure=true)  # restart is the point here; monitor_test runs on mTLS

# start_coordinator N: starts it, logging to logs/coordinator-N.log; sets COORD_PID.
start_coordinator() {
  rm -f "$PORT_FILE"
  "$COORDINATOR" "${COORD_ARGS[@]}" >"$WORK/logs/coordinator-$1.out" 2>"$WORK/logs/coordinator-$1.log" &
  COORD_PID=$!
  PIDS+=("$COORD_PID")
  for _ in $(seq 600); do
    [ -s "$PORT_FILE" ] && break
    kill -0 "$COORD_PID" 2>/dev/null || fail "coordinator (start $1) exited before listening"
    sleep 0.1
  done
  [ -s "$PORT_FILE" ] || fail "coordinator (start $1) did not listen within 60 s"
  [ "$(cat "$PORT_FILE")" = "$PORT" ] || fail "coordinator (start $1) listens on $(cat "$PORT_FILE"), not $PORT"
}

start_coordinator 1
SITE_PIDS=()
for s in 1 2; do
  "$SITE" --site.name="site-$s" --site.coordinator="127.0.0.1:$PORT" \
    --site.data="$WORK/sites/site-$s" --site.threads=1 --site.workers=1 --site.seed="$s" \
    --site.max_backoff_s=1 --site.insecure=true >"$WORK/logs/site-$s.log" 2>&1 &
  SITE_PIDS+=($!)
  PIDS+=($!)
done

# Kill the coordinator as soon as round 2 is committed (its log line comes after the commit).
for _ in $(seq 1800); do
  grep -q "round=2 version=2 aggregated" "$WORK/logs/coordinator-1.log" && break
  kill -0 "$COORD_PID" 2>/dev/null || fail "coordinator exited before completing round 2"
  sleep 0.05
done
grep -q "round=2 version=2 aggregated" "$WORK/logs/coordinator-1.log" ||
  fail "round 2 did not complete within 90 s"
kill -KILL "$COORD_PID"
wait "$COORD_PID" 2>/dev/null
KILLED_AT=$($PY -c 'import time; print(time.time())')
echo "killed the coordinator after round 2 ($(( $(date +%s) - START )) s in)"
if grep -q "round=4 version=4 aggregated" "$WORK/logs/coordinator-1.log"; then
  fail "the federation finished before the kill landed; nothing is left to resume"
fi
# What was committed at the kill, read from a copy so the restart sees the crashed files as-is.
mkdir -p "$WORK/snapshot"
cp "$STATE"/coordinator.db* "$WORK/snapshot/"

sleep 1  # the sites notice the coordinator is gone and back off
start_coordinator 2
echo "restarted the coordinator on port $PORT"

wait_exit_ok "$COORD_PID" 120 "the restarted coordinator"
for i in 0 1; do
  wait_exit_ok "${SITE_PIDS[$i]}" 30 "site-$((i + 1)) (the federation ended)"
  grep -q "federation finished" "$WORK/logs/site-$((i + 1)).log" ||
    fail "site-$((i + 1)) did not see the federation finish"
done

RESUMED=$(sed -n 's/.*resuming after completed round \([0-9]*\).*/\1/p' "$WORK/logs/coordinator-2.log")
[ -n "$RESUMED" ] || fail "the restarted coordinator does not log 'resuming after completed round N'"
[ "$RESUMED" -ge 2 ] || fail "the restarted coordinator resumed after round $RESUMED, but round 2 was committed"
echo "the restarted coordinator resumed after round $RESUMED"
for r in $(sed -n 's/.*round=\([0-9]*\) version=[0-9]* started.*/\1/p' "$WORK/logs/coordinator-2.log"); do
  [ "$r" -gt "$RESUMED" ] || fail "the restarted coordinator ran completed round $r again"
done

"$PY" - "$STATE" "$WORK/snapshot/coordinator.db" "$EXPORT" "$KILLED_AT" "$RESUMED" <<'PY' ||
import glob, hashlib, os, sqlite3, struct, sys

state, snapshot, export, killed_at, resumed = sys.argv[1:]
killed_at, resumed = float(killed_at), int(resumed)

def rounds(db):
    with sqlite3.connect(db) as c:
        return c.execute("SELECT round, digest, sites_reported, started, finished FROM rounds "
                         "ORDER BY round").fetchall()

def check_file(path):
    """Verifies a ModelState file's trailer; returns the hex SHA-256 of its buffer."""
    d = open(path, "rb").read()
    assert d[:8] == b"DFMSTATE", "%s: bad magic" % path
    assert hashlib.sha256(d[:-32]).digest() == d[-32:], "%s: checksum mismatch" % path
    manifest_len = struct.unpack("<Q", d[16:24])[0]
    start = (24 + manifest_len + 63) // 64 * 64
    return hashlib.sha256(d[start:-32]).hexdigest()

final = rounds(os.path.join(state, "coordinator.db"))
before = rounds(snapshot)
print("rounds:", [(r, f) for r, _, _, _, f in final])
assert [r[0] for r in final] == [0, 1, 2, 3, 4], "rounds table holds %s, want 0..4 once each" % [r[0] for r in final]
finished = [r[4] for r in final]
assert all(a < b for a, b in zip(finished, finished[1:])), "finish times do not increase: %s" % finished
assert [r[0] for r in before] == list(range(resumed + 1)), \
    "committed before the kill: %s, but the coordinator resumed after %d" % ([r[0] for r in before], resumed)
for old, new in zip(before, final):
    assert old == new, "round %d changed across the restart: %s -> %s" % (old[0], old, new)
for r in final[resumed + 1:]:
    assert r[3] > killed_at, "round %d started before the kill but was not committed before it" % r[0]
for r in final[1:]:
    assert r[2] == 2, "round %d aggregated %d updates, want 2" % (r[0], r[2])

digests = {r[0]: r[1] for r in final}
files = sorted(glob.glob(os.path.join(state, "checkpoints", "global-*.dfs")))
assert os.path.join(state, "checkpoints", "global-000004.dfs") in files, "no checkpoint of round 4: %s" % files
for f in files:
    rnd = int(os.path.basename(f)[len("global-"):-len(".dfs")])
    got = check_file(f)
    assert got == digests[rnd], "%s holds %s, its round's row says %s" % (f, got, digests[rnd])
    print("checkpoint %s verifies (sha256 %s)" % (os.path.basename(f), got[:16]))
exported = check_file(os.path.join(export, "model.dfs"))
assert exported == digests[4], "the exported model is not round 4's"
PY
  fail "state check failed"

"$DERMFED" eval --model "$EXPORT" --data "$WORK/sites/site-1" --format pad-ufes-20 --workers 1 \
  --threads 1 --metrics-out "$WORK/eval.json" >"$WORK/logs/eval.log" 2>&1 ||
  fail "dermfed eval cannot load the exported model: $(tail -n 5 "$WORK/logs/eval.log")"
[ -s "$WORK/eval.json" ] || fail "dermfed eval wrote no metrics"
echo "PASS ($(( $(date +%s) - START )) s)"
