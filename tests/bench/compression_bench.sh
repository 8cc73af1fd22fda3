#!/usr/bin/env bash
# Update compression benchmark (issue 8): what each codec saves on the wire, and what it costs
# in balanced accuracy, on a generated non-IID federation.
#
#   data   dermfed datagen (IMAGES images, IMAGE_SIZE px, SEED), cut by patient into a held-out
#          TEST half and a POOL half (partition --scheme iid --sites 2), and POOL split across
#          SITES sites non-IID (partition --scheme dirichlet --alpha ALPHA).
#   runs   one `dermfed simulate` per codec (none, fp16, int8, topk with TOPK_FRACTION): real
#          coordinator and site processes, FedAvg, ROUNDS rounds, tiny backbone, the same seed,
#          plaintext updates (compression is refused with secure aggregation; see
#          docs/configuration.md). Everything but federation.compression is identical.
#   scores bytes: the coordinator logs every update's bytes on the wire and uncompressed;
#          accuracy: `dermfed eval` of each final global model on TEST.
#
# Records (a JSON array of {name, value, unit, baseline, baseline_value, ratio}):
#   compression_bytes_ratio_<codec>      value = ratio = update bytes on the wire over the
#                                        run / the same updates uncompressed (both counts are
#                                        in `baseline`); baseline_value = 1 (none)
#   compression_bytes_ratio              the same for the recommended codec (RECOMMENDED, int8)
#   compression_balanced_accuracy_<codec>  value = TEST balanced accuracy with the codec,
#                                        baseline_value = with none; ratio = value / baseline
#                                        (the cost in points is baseline_value - value)
#   compression_balanced_accuracy_none_repeat  a second run without compression
#                                        (REPEAT_BASELINE=1): the run-to-run noise floor
# A benchmark, not a test: nothing is asserted. Data, split, initial model and site seeds are
# the same for every run, but a federation is not bit-for-bit repeatable (the order in which
# updates arrive changes float sums), so the _none_repeat record shows how far two identical
# runs drift apart: read a codec's cost against that.
#
# Usage: tests/bench/compression_bench.sh [--out FILE]
# Environment: BUILD_DIR (build), IMAGES (1200), IMAGE_SIZE (32), SITES (4), ALPHA (0.5),
#   ROUNDS (8), TOPK_FRACTION (0.05), SEED (7), LR (0.002), BATCH (16), RECOMMENDED (int8),
#   CODECS ("none fp16 int8 topk"), REPEAT_BASELINE (1), WORK (a temporary folder, removed unless KEEP=1).
set -euo pipefail

OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    *) echo "usage: $0 [--out FILE]" >&2; exit 2 ;;
  esac
done
BUILD="${BUILD_DIR:-build}"
IMAGES="${IMAGES:-1200}"
IMAGE_SIZE="${IMAGE_SIZE:-32}"
SITES="${SITES:-4}"
ALPHA="${ALPHA:-0.5}"
ROUNDS="${ROUNDS:-8}"
TOPK_FRACTION="${TOPK_FRACTION:-0.05}"
SEED="${SEED:-7}"
LR="${LR:-0.002}"
BATCH="${BATCH:-16}"
RECOMMENDED="${RECOMMENDED:-int8}"
REPEAT_BASELINE="${REPEAT_BASELINE:-1}"
CODECS="${CODECS:-none fp16 int8 topk}"
FORMAT=pad-ufes-20
DERMFED="$BUILD/bin/dermfed"
for b in dermfed dermfed-coordinator dermfed-site; do
  if [[ ! -x "$BUILD/bin/$b" ]]; then
    echo "compression_bench: $BUILD/bin/$b not built (cmake --build $BUILD --target $b)" >&2
    exit 1
  fi
done
if [[ " $CODECS " != *" none "* ]]; then
  echo "compression_bench: CODECS must include none (the baseline)" >&2
  exit 2
fi
if [[ -n "${WORK:-}" ]]; then
  mkdir -p "$WORK"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/dermfed-compression.XXXXXX")"
  [[ "${KEEP:-0}" == 1 ]] || trap 'rm -rf "$WORK"' EXIT
fi
log() { echo "compression_bench: $*" >&2; }
run() {  # run LOG CMD...: quiet unless it fails
  local out="$1"
  shift
  if ! "$@" >"$out" 2>&1; then
    log "FAILED: $*"
    tail -n 30 "$out" >&2
    exit 1
  fi
}
log "work folder $WORK"

t0=$SECONDS
run "$WORK/datagen.log" "$DERMFED" datagen --format "$FORMAT" --out "$WORK/data" \
  --images "$IMAGES" --seed "$SEED" --image-size "$IMAGE_SIZE"
run "$WORK/holdout.log" "$DERMFED" partition --data "$WORK/data" --format "$FORMAT" \
  --sites 2 --scheme iid --seed "$SEED" --out "$WORK/holdout"
TEST="$WORK/holdout/site-1"
run "$WORK/sites.log" "$DERMFED" partition --data "$WORK/holdout/site-2" --format "$FORMAT" \
  --sites "$SITES" --scheme dirichlet --alpha "$ALPHA" --seed "$SEED" --out "$WORK/sites"

declare -A WIRE RAW BACC
RUNS="$CODECS"
[[ "$REPEAT_BASELINE" == 1 ]] && RUNS+=" none_repeat"
for codec in $RUNS; do
  t1=$SECONDS
  out="$WORK/run-$codec"
  run "$WORK/simulate-$codec.log" "$DERMFED" simulate --sites-dir "$WORK/sites" --format "$FORMAT" \
    --backbone tiny --image-size "$IMAGE_SIZE" --rounds "$ROUNDS" --threads 1 --seed "$SEED" \
    --timeout 1800 --insecure --no-secure-aggregation \
    --set "federation.compression=${codec%_repeat}" --set "federation.topk_fraction=$TOPK_FRACTION" \
    --set "training.learning_rate=$LR" --set "training.batch_size=$BATCH" \
    --site-set site.workers=1 --site-set site.explain=false --out "$out"
  read -r WIRE[$codec] RAW[$codec] < <(
    sed -n 's/.*update received: \([0-9]*\) bytes on the wire ([a-z0-9]*), \([0-9]*\) uncompressed.*/\1 \2/p' \
      "$out/logs/coordinator.log" | awk '{ w += $1; r += $2 } END { printf "%d %d\n", w, r }')
  run "$WORK/eval-$codec.log" "$DERMFED" eval --model "$out" --data "$TEST" --format "$FORMAT" \
    --threads 1 --workers 1 --metrics-out "$WORK/eval-$codec.json"
  BACC[$codec]=$(grep -o '"balanced_accuracy"[^,}]*' "$WORK/eval-$codec.json" | head -n 1 | sed 's/.*: *//')
  log "$codec: ${WIRE[$codec]} of ${RAW[$codec]} update bytes on the wire; TEST balanced accuracy ${BACC[$codec]} ($(( SECONDS - t1 )) s)"
done

RECORDS=()
record() {  # record NAME VALUE UNIT BASELINE BASELINE_VALUE RATIO
  RECORDS+=("$(printf '{"name": "%s", "value": %s, "unit": "%s", "baseline": "%s", "baseline_value": %s, "ratio": %s}' \
    "$1" "$2" "$3" "$4" "$5" "$6")")
}
bytes_record() {  # bytes_record NAME CODEC
  local r
  r=$(awk -v a="${WIRE[$2]}" -v b="${RAW[$2]}" 'BEGIN { printf "%.4f", a / b }')
  record "$1" "$r" "bytes on the wire / uncompressed" \
    "federation.compression = none ($2: ${WIRE[$2]} of ${RAW[$2]} update bytes over the run)" 1 "$r"
}
for codec in $RUNS; do
  [[ "$codec" == none ]] && continue
  [[ "$codec" == none_repeat ]] || bytes_record "compression_bytes_ratio_$codec" "$codec"
  record "compression_balanced_accuracy_$codec" "${BACC[$codec]}" balanced_accuracy \
    "federation.compression = none, same data and seed ($ROUNDS rounds, $SITES non-IID sites)" \
    "${BACC[none]}" "$(awk -v a="${BACC[$codec]}" -v b="${BACC[none]}" 'BEGIN { printf "%.4f", (b > 0) ? a / b : 0 }')"
done
if [[ " $CODECS " == *" $RECOMMENDED "* && "$RECOMMENDED" != none ]]; then
  bytes_record compression_bytes_ratio "$RECOMMENDED"
fi
json="[$(IFS=,; echo "${RECORDS[*]}" | sed 's/},{/},\n {/g')]"
if [[ -n "$OUT" ]]; then echo "$json" >"$OUT"; fi
echo "$json"
log "done in $(( SECONDS - t0 )) s"
