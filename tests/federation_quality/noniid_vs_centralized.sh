#!/usr/bin/env bash
# Issue 4 acceptance: on a generated PAD-UFES-20-format dataset split non-IID (Dirichlet
# alpha = 0.5) across 4 sites, the federated global model must reach a balanced accuracy
# within MAX_GAP (5) points of centralized training on the pooled data with the same total
# epochs. Both models are scored by `dermfed eval` on the same held-out TEST patients.
#
# How the data is cut (all with existing `dermfed` commands, every cut by patient):
#   1. dermfed datagen            -> DATA (IMAGES images, IMAGE_SIZE px)
#   2. dermfed partition --scheme iid --sites 2 DATA -> HOLDOUT/site-1 = TEST (about half of
#      the patients, each class dealt evenly) and HOLDOUT/site-2 = POOL. No TEST patient is
#      in POOL (partition keeps a patient's rows together and writes each group once).
#   3. dermfed partition --scheme dirichlet --alpha 0.5 --sites 4 POOL -> SITES/site-1..4
#   (a) centralized: dermfed train on POOL; it holds out 20% of POOL's patients for
#       validation (--val-fraction 0.2 --test-fraction 0), exactly as each federated site
#       holds out 20% of its patients for federated evaluation, so both train on ~80% of
#       POOL. It keeps the epoch with the best validation balanced accuracy (an advantage
#       the federated side does not get: it is scored on its final global model).
#   (b) federated: dermfed simulate with the 4 sites, ROUNDS x LOCAL_EPOCHS = EPOCHS, FedAvg,
#       the same learning rate, batch size, losses and seed. (The centralized run decays the
#       learning rate with a cosine over its epochs; sites use it constant.)
#   Both final models: dermfed eval --data TEST -> balanced accuracy; gap = central - fed.
#
# What the defaults were tuned to (2 busy cores, ~4-5 min): the generated images are easy
# (class-coloured lesions), so centralized training is at ~0.96 balanced accuracy after one
# epoch and ~1.0 after two. Federated FedAvg on the Dirichlet split converges more slowly,
# and the rare class (MEL, ~2% of rows, 3-19 rows per site) is what it loses: on seed 7 its
# TEST balanced accuracy was 0.82 at 2 epochs (2x1), 0.92 at 6 (6x1) and at 8 (4x2), 0.96 at
# 8 (8x1), 0.987 at 10 (10x1; centralized 0.998). Fewer, longer local rounds did worse
# than more rounds of one epoch. So EPOCHS=10 with LOCAL_EPOCHS=1 is the smallest budget that
# passes with margin; with fewer epochs this script fails, and that is the honest answer.
#
# Usage: tests/federation_quality/noniid_vs_centralized.sh [BUILD_DIR]
#   BUILD_DIR (or env BUILD_DIR, default build) holds bin/dermfed, bin/dermfed-coordinator
#   and bin/dermfed-site.
# Environment (defaults in brackets): IMAGES [2298], IMAGE_SIZE [64], EPOCHS [10],
#   LOCAL_EPOCHS [1] (ROUNDS = EPOCHS / LOCAL_EPOCHS), LR [0.002], BATCH [32], SEED [7],
#   THREADS [1] (LibTorch threads and image decoders per process; 1 was the fastest on a
#   busy 2-core machine), MAX_GAP [5] (points), MIN_BACC [0.4] (both must beat it; chance
#   is 1/6),
#   WORK [a temporary folder, removed at the end unless KEEP=1].
# Exit status: 0 pass, 1 federated more than MAX_GAP points below centralized (or a model
# stuck near chance), 2 a command failed.
set -euo pipefail

BUILD="${1:-${BUILD_DIR:-build}}"
IMAGES="${IMAGES:-2298}"
IMAGE_SIZE="${IMAGE_SIZE:-64}"
EPOCHS="${EPOCHS:-10}"
LOCAL_EPOCHS="${LOCAL_EPOCHS:-1}"
LR="${LR:-0.002}"
BATCH="${BATCH:-32}"
SEED="${SEED:-7}"
THREADS="${THREADS:-1}"
MAX_GAP="${MAX_GAP:-5}"
MIN_BACC="${MIN_BACC:-0.4}"
FORMAT=pad-ufes-20

if (( EPOCHS % LOCAL_EPOCHS != 0 )); then
  echo "noniid_vs_centralized: EPOCHS ($EPOCHS) must be a multiple of LOCAL_EPOCHS ($LOCAL_EPOCHS)" >&2
  exit 2
fi
ROUNDS=$(( EPOCHS / LOCAL_EPOCHS ))
DERMFED="$BUILD/bin/dermfed"
for bin in dermfed dermfed-coordinator dermfed-site; do
  if [[ ! -x "$BUILD/bin/$bin" ]]; then
    echo "noniid_vs_centralized: $BUILD/bin/$bin is not built" >&2
    exit 2
  fi
done

if [[ -n "${WORK:-}" ]]; then
  mkdir -p "$WORK"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/dermfed-quality.XXXXXX")"
  [[ "${KEEP:-0}" == 1 ]] || trap 'rm -rf "$WORK"' EXIT
fi
echo "noniid_vs_centralized: work folder $WORK"

run() {  # run LOG CMD...: quiet unless it fails
  local log="$1"
  shift
  if ! "$@" >"$log" 2>&1; then
    echo "noniid_vs_centralized: FAILED: $*" >&2
    tail -n 30 "$log" >&2
    exit 2
  fi
}
bacc() {  # balanced accuracy from a metrics JSON
  grep -o '"balanced_accuracy"[^,}]*' "$1" | head -n 1 | sed 's/.*: *//'
}

t0=$SECONDS
run "$WORK/datagen.log" "$DERMFED" datagen --format "$FORMAT" --out "$WORK/data" \
  --images "$IMAGES" --seed "$SEED" --image-size "$IMAGE_SIZE"
run "$WORK/holdout.log" "$DERMFED" partition --data "$WORK/data" --format "$FORMAT" \
  --sites 2 --scheme iid --seed "$SEED" --out "$WORK/holdout"
TEST="$WORK/holdout/site-1"
POOL="$WORK/holdout/site-2"
run "$WORK/sites.log" "$DERMFED" partition --data "$POOL" --format "$FORMAT" \
  --sites 4 --scheme dirichlet --alpha 0.5 --seed "$SEED" --out "$WORK/sites"
echo "--- held-out TEST (holdout/site-1) and training POOL (holdout/site-2), by patient:"
cat "$WORK/holdout.log"
echo "--- POOL split non-IID across 4 sites (Dirichlet alpha 0.5):"
cat "$WORK/sites.log"

# Check the claim above: no patient of TEST is in POOL.
patients() { awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "patient_id") c = i; next }
                      { print $c }' "$1/metadata.csv" | sort -u; }
overlap=$(comm -12 <(patients "$TEST") <(patients "$POOL") | wc -l)
if (( overlap != 0 )); then
  echo "noniid_vs_centralized: $overlap patients are in both TEST and POOL" >&2
  exit 2
fi

echo "--- (a) centralized: dermfed train on POOL, $EPOCHS epochs"
t1=$SECONDS
run "$WORK/central.log" "$DERMFED" train --data "$POOL" --format "$FORMAT" --backbone tiny \
  --image-size "$IMAGE_SIZE" --epochs "$EPOCHS" --lr "$LR" --batch-size "$BATCH" \
  --seed "$SEED" --val-fraction 0.2 --test-fraction 0 --threads "$THREADS" \
  --workers "$THREADS" --out "$WORK/central"
grep -E '^(train:|epoch [0-9]+/[0-9]+:)' "$WORK/central.log" | sed 's/^/  /' || true
central_s=$(( SECONDS - t1 ))

echo "--- (b) federated: dermfed simulate, 4 sites, $ROUNDS rounds x $LOCAL_EPOCHS local epochs"
t2=$SECONDS
run "$WORK/federated.log" "$DERMFED" simulate --sites-dir "$WORK/sites" --format "$FORMAT" \
  --backbone tiny --image-size "$IMAGE_SIZE" --rounds "$ROUNDS" --local-epochs "$LOCAL_EPOCHS" \
  --threads "$THREADS" --seed "$SEED" --timeout 3000 \
  --set "training.learning_rate=$LR" --set "training.batch_size=$BATCH" \
  --out "$WORK/federated"
grep -E '^round [0-9]+:' "$WORK/federated.log" |
  sed 's/^/  federated evaluation on the sites'"'"' held-out 20%, /' || true
federated_s=$(( SECONDS - t2 ))

echo "--- scoring both on TEST"
run "$WORK/eval-central.log" "$DERMFED" eval --model "$WORK/central" --data "$TEST" \
  --format "$FORMAT" --threads "$THREADS" --workers "$THREADS" --metrics-out "$WORK/central-test.json"
run "$WORK/eval-federated.log" "$DERMFED" eval --model "$WORK/federated" --data "$TEST" \
  --format "$FORMAT" --threads "$THREADS" --workers "$THREADS" --metrics-out "$WORK/federated-test.json"
cat "$WORK/eval-central.log" "$WORK/eval-federated.log"

c=$(bacc "$WORK/central-test.json")
f=$(bacc "$WORK/federated-test.json")
test_rows=$(( $(wc -l < "$TEST/metadata.csv") - 1 ))
awk -v c="$c" -v f="$f" -v max="$MAX_GAP" -v min="$MIN_BACC" -v n="$test_rows" \
    -v cs="$central_s" -v fs="$federated_s" -v all="$(( SECONDS - t0 ))" '
BEGIN {
  gap = 100 * (c - f)
  printf "RESULT held-out TEST %d images: centralized balanced accuracy %.3f (%d s), federated %.3f (%d s), gap %.1f points (limit %s), total %d s\n",
         n, c, cs, f, fs, gap, max, all
  if (c < min || f < min) {
    printf "FAIL: a model is below the floor balanced accuracy %s (chance is 0.167)\n", min
    exit 1
  }
  if (gap > max) { printf "FAIL: federated is %.1f points below centralized\n", gap; exit 1 }
  print "PASS"
}'
