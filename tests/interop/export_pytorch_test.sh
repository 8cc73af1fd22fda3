#!/usr/bin/env bash
# dermfed export --format pytorch, read back by PyTorch through deploy/python/dermfed_model.py
# (Debian's python3-torch and python3-torchvision at /usr/bin/python3):
#   - models trained for a few steps — the tiny backbone and torchvision's MobileNetV2 on
#     PAD-UFES-20 PNGs with metadata, the tiny backbone on ISIC-2019 JPEGs with metadata and no
#     super-resolution stage, and an image-only one — export to a file torch.load reads, whose
#     state dict loads into the Python DualRefNet with strict=True;
#   - the Python predict() gives `dermfed predict`'s class probabilities within 1e-4 for every
#     image and metadata row tried (compare_predictions.py);
#   - a missing RUN folder, a --format other than pytorch, and neither --model nor
#     --coordinator each fail with a message that names the problem, and write no file.
# Without torch and torchvision at /usr/bin/python3 the test is skipped (exit 77), unless
# DERMFED_REQUIRE_PARITY=1 (the parity tests' switch: the same Python is required).
#
# usage: export_pytorch_test.sh DERMFED
# (DERMFED_TEST_KEEP=1 keeps the work folder.)
set -uo pipefail
DERMFED="$1"
HERE="$(cd "$(dirname "$0")" && pwd)"
MODULE_DIR="$(cd "$HERE/../../deploy/python" && pwd)"
PY=/usr/bin/python3
# shellcheck source=../harness.sh
source "$(cd "$HERE/.." && pwd)/harness.sh"

if ! "$PY" -c 'import torch, torchvision, PIL, numpy' 2>/dev/null; then
  if [ -n "${DERMFED_REQUIRE_PARITY:-}" ]; then
    fail "$PY cannot import torch, torchvision, PIL and numpy (deploy/install-deps.sh installs them)"
  fi
  echo "SKIP: $PY cannot import torch, torchvision, PIL and numpy"
  exit 77
fi

harness_start export-pytorch
cd "$WORK" || fail "cannot enter $WORK"

"$DERMFED" datagen --format pad-ufes-20 --out pad --images 96 --image-size 64 --seed 3 \
  >logs/datagen-pad.txt 2>&1 || fail "datagen pad-ufes-20: $(tail -3 logs/datagen-pad.txt)"
# 128 px JPEGs for a 64 px model: dermfed decodes them at half scale in the DCT domain.
"$DERMFED" datagen --format isic-2019 --out isic --images 96 --image-size 128 --seed 3 \
  >logs/datagen-isic.txt 2>&1 || fail "datagen isic-2019: $(tail -3 logs/datagen-isic.txt)"

# train NAME FORMAT DATA FLAGS...: a RUN folder NAME after one short epoch.
train() {
  local name="$1" format="$2" data="$3"
  shift 3
  "$DERMFED" train --data "$data" --format "$format" --image-size 64 --epochs 1 \
    --batch-size 16 --threads 2 --workers 2 --seed 1 --out "$name" "$@" \
    >"logs/train-$name.txt" 2>&1 || fail "train $name: $(tail -3 "logs/train-$name.txt")"
}

# check NAME FORMAT DATA: export RUN NAME and compare Python's predictions with dermfed's.
check() {
  local name="$1" format="$2" data="$3"
  "$DERMFED" export --model "$name" --format pytorch --out "$name.pt" \
    >"logs/export-$name.txt" 2>&1 || fail "export $name: $(cat "logs/export-$name.txt")"
  "$PY" "$HERE/compare_predictions.py" "$DERMFED" "$name" "$name.pt" "$format" "$data" \
    "$MODULE_DIR" || fail "the Python model of $name disagrees with dermfed (see above)"
}

train tiny pad-ufes-20 pad --backbone tiny
check tiny pad-ufes-20 pad
train mobilenet pad-ufes-20 pad --backbone mobilenet_v2
check mobilenet pad-ufes-20 pad
train tiny-jpeg isic-2019 isic --backbone tiny --sr-factor 1
check tiny-jpeg isic-2019 isic
train image-only isic-2019 isic --backbone tiny --no-metadata
check image-only isic-2019 isic

# expect_error WHAT PATTERN EXPORT_ARGS...: dermfed export fails, says PATTERN, writes no file.
expect_error() {
  local what="$1" pattern="$2"
  shift 2
  if env -u DERMFED_COORDINATOR "$DERMFED" export "$@" --out bad.pt >logs/error.txt 2>&1; then
    fail "$what: dermfed export $* succeeded"
  fi
  grep -q -- "$pattern" logs/error.txt ||
    fail "$what: expected a message matching '$pattern', got: $(cat logs/error.txt)"
  [ ! -e bad.pt ] || fail "$what: bad.pt was written anyway"
}
expect_error "missing RUN folder" "no-such-run: no such RUN folder" \
  --model no-such-run --format pytorch
expect_error "unknown format" "--format 'onnx' is not supported" --model tiny --format onnx
expect_error "no model given" "give --model RUN" --format pytorch

echo "PASS"
