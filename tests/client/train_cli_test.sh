#!/usr/bin/env bash
# dermfed train / eval / predict end to end on generated PAD-UFES-20-format data:
#   - train with the tiny backbone beats chance balanced accuracy (1/6) by a wide margin and
#     writes RUN/metrics.json with the documented keys; eval and predict use that RUN;
#   - bad input (truncated image, wrong field count, unknown diagnostic, missing image, empty
#     dataset) fails naming the file and the row, and --skip-bad-rows skips and reports it;
#   - unknown flags and bad values are refused with a message naming them.
# Every check runs even after one fails; the failures are listed at the end.
#
# Usage: train_cli_test.sh PATH/TO/dermfed
set -uo pipefail
DERMFED="$1"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FAILED=()
fail() {
  echo "FAIL: $*" >&2
  FAILED+=("${1%%:*}")
}
fatal() {
  echo "FAIL: $*" >&2
  exit 1
}
PY=/usr/bin/python3

# ---- Training beats chance; eval and predict work on the trained RUN ----

"$DERMFED" datagen --format pad-ufes-20 --out "$WORK/data" --images 600 --image-size 64 \
  --seed 5 >"$WORK/datagen.txt" 2>&1 || fatal "datagen failed: $(cat "$WORK/datagen.txt")"

"$DERMFED" train --data "$WORK/data" --format pad-ufes-20 --backbone tiny --image-size 64 \
  --epochs 4 --threads 2 --workers 2 --seed 5 --out "$WORK/run" >"$WORK/train.txt" 2>&1 ||
  fatal "dermfed train on a clean generated dataset failed: $(tail -5 "$WORK/train.txt")"
[ -s "$WORK/run/metrics.json" ] || fatal "dermfed train wrote no RUN/metrics.json"

$PY - "$WORK/run/metrics.json" <<'PY' || fail "train metrics: see above"
import json, sys
m = json.load(open(sys.argv[1]))
missing = {"accuracy", "balanced_accuracy", "macro_auc", "per_class", "confusion_matrix"} - m.keys()
assert not missing, f"RUN/metrics.json lacks top-level keys {sorted(missing)}"
assert set(m["per_class"]) == {"ACK", "BCC", "MEL", "NEV", "SCC", "SEK"}, m["per_class"].keys()
print(f"test balanced accuracy {m['balanced_accuracy']:.3f} (chance 1/6 = 0.167)")
assert m["balanced_accuracy"] >= 0.45, (
    f"test balanced accuracy {m['balanced_accuracy']:.3f} is not far above chance (1/6); "
    "the tiny backbone reaches > 0.9 on this data")
PY

"$DERMFED" eval --model "$WORK/run" --data "$WORK/data" --format pad-ufes-20 --threads 2 \
  --metrics-out "$WORK/eval.json" >"$WORK/eval.txt" 2>&1 ||
  fail "dermfed eval failed: $(tail -3 "$WORK/eval.txt")"
$PY - "$WORK/eval.json" <<'PY' || fail "eval metrics: see above"
import json, sys
m = json.load(open(sys.argv[1]))
assert m.get("num_rows") == 600, f"eval scored {m.get('num_rows')} rows, the dataset has 600"
for key in ("accuracy", "balanced_accuracy", "macro_auc", "per_class", "confusion_matrix"):
    assert key in m, f"eval metrics lack '{key}'"
PY

IMAGE="$(find "$WORK/data" -name '*.png' | head -1)"
"$DERMFED" predict --model "$WORK/run" --image "$IMAGE" --metadata age=55 region=NECK itch=UNK \
  --threads 2 >"$WORK/predict.txt" 2>&1 || fail "dermfed predict failed: $(cat "$WORK/predict.txt")"
$PY - "$WORK/predict.txt" <<'PY' || fail "predict output: see above"
import sys
lines = [l.split("\t") for l in open(sys.argv[1]).read().splitlines() if l.strip()]
names = [l[0] for l in lines]
assert names == ["ACK", "BCC", "MEL", "NEV", "SCC", "SEK"], f"predict printed classes {names}"
total = sum(float(l[1]) for l in lines)
assert abs(total - 1) < 1e-3, f"predicted probabilities sum to {total}, not 1"
assert sum(len(l) > 2 for l in lines) == 1, "predict should mark exactly one class as predicted"
PY

# ---- Bad input: each names the file and row; --skip-bad-rows skips and reports it ----

"$DERMFED" datagen --format pad-ufes-20 --out "$WORK/small" --images 120 --image-size 32 \
  --seed 4 >/dev/null 2>&1 || fatal "datagen of the small dataset failed"

# ---- An interrupted run continues from its last finished epoch (--resume) ----
"$DERMFED" train --data "$WORK/small" --format pad-ufes-20 --backbone tiny --image-size 32 \
  --epochs 1 --threads 2 --seed 2 --out "$WORK/resumed" >"$WORK/resume1.txt" 2>&1 \
  || fail "first part of the resumable run failed: $(tail -3 "$WORK/resume1.txt")"
[ -s "$WORK/resumed/resume/progress.json" ] || fail "train wrote no resume point (resume/progress.json)"
"$DERMFED" train --data "$WORK/small" --format pad-ufes-20 --backbone tiny --image-size 32 \
  --epochs 2 --threads 2 --seed 2 --out "$WORK/resumed" --resume >"$WORK/resume2.txt" 2>&1 \
  || fail "--resume failed: $(tail -3 "$WORK/resume2.txt")"
grep -q "resuming after epoch 1" "$WORK/resume2.txt" || fail "--resume did not continue after epoch 1"
grep -q "^epoch 2/2" "$WORK/resume2.txt" || fail "--resume did not train epoch 2"
if grep -q "^epoch 1/2" "$WORK/resume2.txt"; then fail "--resume trained epoch 1 again"; fi

# A fresh copy of the small dataset in $WORK/bad, and the img_id and image path of CSV line N.
fresh_copy() { rm -rf "$WORK/bad" "$WORK/badrun"; cp -r "$WORK/small" "$WORK/bad"; }
img_id_of_line() { sed -n "${1}p" "$WORK/bad/metadata.csv" | cut -d, -f25; }
image_of_line() { find "$WORK/bad" -name "$(img_id_of_line "$1")"; }
train_bad() {
  "$DERMFED" train --data "$WORK/bad" --format pad-ufes-20 --backbone tiny --image-size 32 \
    --epochs 1 --threads 2 --workers 2 --out "$WORK/badrun" "$@" >"$WORK/bad.txt" 2>&1
}

# expect_bad_row NAME LINE MUTATION...: after the mutation of a fresh copy, train fails
# naming metadata.csv:LINE, and with --skip-bad-rows it succeeds reporting that one row.
expect_bad_row() {
  local name="$1" line="$2"
  shift 2
  fresh_copy
  "$@"
  if train_bad; then
    fail "$name: train succeeded on a dataset with a bad row"
  else
    grep -q "metadata.csv:$line\b" "$WORK/bad.txt" ||
      fail "$name: the error does not name metadata.csv:$line: $(tail -2 "$WORK/bad.txt")"
  fi
  fresh_copy
  "$@"
  if ! train_bad --skip-bad-rows; then
    fail "$name: train --skip-bad-rows failed: $(tail -2 "$WORK/bad.txt")"
    return
  fi
  grep -q "1 row skipped" "$WORK/bad.txt" ||
    fail "$name: train --skip-bad-rows did not report '1 row skipped': $(head -3 "$WORK/bad.txt")"
  grep -q "metadata.csv:$line\b" "$WORK/bad.txt" ||
    fail "$name: the skipped-row report does not name metadata.csv:$line"
  [ -s "$WORK/badrun/metrics.json" ] || fail "$name: train --skip-bad-rows wrote no metrics.json"
}

wrong_field_count() { sed -i '5s/,[^,]*$//' "$WORK/bad/metadata.csv"; }
unknown_diagnostic() {
  awk -F, -v OFS=, 'NR == 7 { $18 = "XYZ" } { print }' "$WORK/bad/metadata.csv" >"$WORK/m.csv"
  mv "$WORK/m.csv" "$WORK/bad/metadata.csv"
}
missing_image() { rm "$(image_of_line 9)"; }
truncated_image() {
  local image
  image="$(image_of_line 2)"
  head -c 100 "$image" >"$WORK/t.png"
  mv "$WORK/t.png" "$image"
}

expect_bad_row "wrong field count" 5 wrong_field_count
grep -q "fields" "$WORK/bad.txt" || fail "wrong field count: the report does not mention fields"
expect_bad_row "unknown diagnostic" 7 unknown_diagnostic
grep -q "XYZ" "$WORK/bad.txt" || fail "unknown diagnostic: the report does not name 'XYZ'"
expect_bad_row "missing image" 9 missing_image
grep -q "$(img_id_of_line 9)" "$WORK/bad.txt" || fail "missing image: the report does not name the image"
expect_bad_row "truncated image" 2 truncated_image
grep -q "$(img_id_of_line 2)" "$WORK/bad.txt" ||
  fail "truncated image: the report does not name the image"

fresh_copy
sed -i '2,$d' "$WORK/bad/metadata.csv"
for skip in "" --skip-bad-rows; do
  if train_bad $skip; then
    fail "empty dataset: train $skip succeeded on a header-only metadata.csv"
  else
    grep -q "metadata.csv" "$WORK/bad.txt" && grep -qi "no usable rows" "$WORK/bad.txt" ||
      fail "empty dataset: the error does not name metadata.csv and say it has no rows: $(cat "$WORK/bad.txt")"
  fi
done

# ---- Unknown flags and bad values ----

# refused NAME PATTERN ARGS...: dermfed ARGS exits non-zero with PATTERN in its message.
refused() {
  local name="$1" pattern="$2"
  shift 2
  if "$DERMFED" "$@" >"$WORK/refused.txt" 2>&1; then
    fail "$name: accepted ($*)"
  elif ! grep -q -- "$pattern" "$WORK/refused.txt"; then
    fail "$name: the message does not mention '$pattern': $(cat "$WORK/refused.txt")"
  fi
}
TRAIN=(train --data "$WORK/small" --format pad-ufes-20 --image-size 32 --epochs 1 --threads 2
  --out "$WORK/refusedrun")
refused "train unknown flag" "--no-such-flag" "${TRAIN[@]}" --no-such-flag
refused "train --epochs 0" "--epochs" "${TRAIN[@]}" --epochs 0
refused "train --image-size 8" "--image-size" "${TRAIN[@]}" --image-size 8
refused "train --backbone alexnet" "densenet121" "${TRAIN[@]}" --backbone alexnet
refused "train --optimizer rmsprop" "--optimizer" "${TRAIN[@]}" --optimizer rmsprop
refused "train --lr -1" "--lr" "${TRAIN[@]}" --lr -1
refused "train fractions" "--val-fraction" "${TRAIN[@]}" --val-fraction 0.6 --test-fraction 0.5
refused "train --format" "--format" train --data "$WORK/small" --format ham10000 --out "$WORK/r"
refused "train --data missing" "$WORK/nope" train --data "$WORK/nope" --format pad-ufes-20 \
  --out "$WORK/r"
refused "eval unknown flag" "--bogus" eval --model "$WORK/run" --data "$WORK/small" \
  --format pad-ufes-20 --bogus
refused "predict missing image" "$WORK/nope.png" predict --model "$WORK/run" \
  --image "$WORK/nope.png"
refused "predict unknown metadata column" "bogus=1" predict --model "$WORK/run" \
  --image "$IMAGE" --metadata bogus=1
[ ! -e "$WORK/refusedrun" ] || fail "a refused train still created its RUN folder"

if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "FAILED ${#FAILED[@]} check(s):" >&2
  printf '  %s\n' "${FAILED[@]}" >&2
  exit 1
fi
echo "PASS"
