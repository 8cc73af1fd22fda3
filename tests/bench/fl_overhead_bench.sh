#!/usr/bin/env bash
# fl_overhead_fraction: what federating costs on top of training. SITES real dermfed-site
# processes and one coordinator (dermfed simulate: mutual TLS, FedAvg) train BACKBONE at
# IMAGE_SIZE px for STEPS steps each per round; for each round r >= 2 (round 1's
# started..finished also holds the sites' start-up and joining)
#   overhead = (round wall time - the slowest site's training time) / round wall time
# where round wall time is the coordinator's started..finished of the round (task out, model
# pulled, trained, update pushed and folded, new global model checkpointed and committed) and a
# site's training time is its own train_seconds (the training loop, as it reports it).
# The record's value is the mean over rounds 2..ROUNDS; baseline_value is the mean round wall
# time and ratio = value (the fraction is already relative to it).
#
# Prints one JSON record on stdout. A benchmark, not a test.
# usage: fl_overhead_bench.sh BUILD_BIN_DIR
# Environment: SITES (4), BACKBONE (densenet121), IMAGE_SIZE (224), STEPS (3), BATCH (4),
#   ROUNDS (3), THREADS (LibTorch threads shared by the sites: nproc), KEEP (1: keep the work
#   folder with every log and the state).
set -euo pipefail
BIN="$1"
SITES="${SITES:-4}"
BACKBONE="${BACKBONE:-densenet121}"
IMAGE_SIZE="${IMAGE_SIZE:-224}"
STEPS="${STEPS:-3}"
BATCH="${BATCH:-4}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-$(nproc)}"
[ "$ROUNDS" -ge 2 ] || { echo "fl_overhead_bench: ROUNDS must be >= 2" >&2; exit 2; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dermfed-overhead-bench.XXXXXX")"
trap '[ -n "${KEEP:-}" ] && echo "fl_overhead_bench: kept $WORK" >&2 || rm -rf "$WORK"' EXIT

# Enough rows that every site has STEPS full batches and a validation patient or two.
"$BIN/dermfed" datagen --format pad-ufes-20 --out "$WORK/data" \
  --images $((SITES * (STEPS * BATCH + 6))) --image-size "$IMAGE_SIZE" --seed 3 >/dev/null
"$BIN/dermfed" partition --data "$WORK/data" --format pad-ufes-20 --sites "$SITES" --scheme iid \
  --seed 1 --out "$WORK/sites" >/dev/null
if ! "$BIN/dermfed" simulate --sites-dir "$WORK/sites" --format pad-ufes-20 --backbone "$BACKBONE" \
    --image-size "$IMAGE_SIZE" --rounds "$ROUNDS" --threads "$THREADS" \
    --set training.batch_size="$BATCH" \
    --site-set site.max_steps_per_round="$STEPS" site.explain=false \
    --out "$WORK/run" >"$WORK/simulate.out" 2>&1; then
  tail -n 30 "$WORK/simulate.out" >&2
  exit 1
fi
/usr/bin/python3 - "$WORK/run/state/coordinator.db" "$BACKBONE" "$IMAGE_SIZE" "$SITES" "$STEPS" \
  "$BATCH" "$ROUNDS" <<'PY'
import json, sqlite3, sys
db, backbone, size, sites, steps, batch, rounds = sys.argv[1:]
with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
    walls = dict(c.execute("SELECT round, finished - started FROM rounds WHERE round > 1"))
    train = {}
    for r, m in c.execute("SELECT round, metrics FROM site_metrics WHERE kind = 'train' AND round > 1"):
        train[r] = max(train.get(r, 0.0), json.loads(m)["train_seconds"])
fractions = [(walls[r] - train[r]) / walls[r] for r in sorted(walls)]
wall = sum(walls.values()) / len(walls)
slowest = sum(train.values()) / len(train)
value = sum(fractions) / len(fractions)
print(json.dumps({
    "name": "fl_overhead_fraction", "value": round(value, 4), "unit": "fraction of round wall time",
    "baseline": "round wall time (s)", "baseline_value": round(wall, 3), "ratio": round(value, 4),
    "detail": f"{sites} sites, {backbone} {size} px, {steps} steps of batch {batch}, mTLS; "
              f"rounds 2..{rounds}: wall {wall:.2f} s, slowest site's training {slowest:.2f} s"}))
PY
