#!/usr/bin/env bash
# GPU benchmark (issue 8): DualRefNet training images/s on one GPU, C++ (a model-only build of
# dermfed against the CUDA LibTorch that ships inside the machine's PyTorch) against the same
# architecture, batch, image size and mixed precision (bfloat16 autocast of the forward pass,
# as Trainer does) in PyTorch Python (site_bench_pytorch.py), for densenet121 and vgg13 at
# 224 px. One script: configure, build, run both alternately REPEAT times (best of each, so a
# burst of load biases neither), write records
#   {"name": "gpu_train_<backbone>_vs_pytorch_python", "value", "unit", "baseline",
#    "baseline_value", "ratio", "detail"}                    ratio = C++ / PyTorch (>= 1 is good)
# as a JSON array to OUT (default BUILD/gpu_bench.json) and print it.
#
# usage: tests/bench/gpu_bench.sh [OUT]
# Environment:
#   PYTHON (python3)      the interpreter with PyTorch 2.x + torchvision (CUDA)
#   GPU_BUILD_DIR (build-gpu)  where the model-only build goes; with NO_BUILD=1 an existing
#                         build that has bin/gpu_train_bench is used as it is
#   DEVICE (cuda)         cpu runs the same thing on the CPU (a smoke test of the script)
#   BACKBONES (densenet121,vgg13), IMAGE_SIZE (224), BATCH (32), STEPS (20), WARMUP (5),
#   REPEAT (2), CMAKE_ARGS (extra cmake arguments, e.g. -DCMAKE_CUDA_ARCHITECTURES=90)
# Needs: cmake, a C++17 compiler, Abseil's CMake package (the model library uses absl::Status),
# and the Python interpreter's torch with CUDA. A benchmark, not a test: it asserts nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-python3}"
BUILD="${GPU_BUILD_DIR:-build-gpu}"
OUT="${1:-$BUILD/gpu_bench.json}"
DEVICE="${DEVICE:-cuda}"
BACKBONES="${BACKBONES:-densenet121,vgg13}"
IMAGE_SIZE="${IMAGE_SIZE:-224}"
BATCH="${BATCH:-32}"
STEPS="${STEPS:-20}"
WARMUP="${WARMUP:-5}"
REPEAT="${REPEAT:-2}"
log() { echo "gpu_bench: $*" >&2; }

"$PY" - "$DEVICE" <<'PY' >&2
import sys, torch, torchvision
print(f"gpu_bench: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"CUDA {torch.version.cuda}, device {sys.argv[1]}")
if sys.argv[1].startswith("cuda") and not torch.cuda.is_available():
    sys.exit("gpu_bench: this torch sees no CUDA device (DEVICE=cpu for a CPU smoke test)")
if torch.cuda.is_available():
    print("gpu_bench: " + torch.cuda.get_device_name(0))
PY

if [[ -z "${NO_BUILD:-}" ]]; then
  TORCH_CMAKE="$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')"
  log "configuring $BUILD (model only) against $TORCH_CMAKE"
  # shellcheck disable=SC2086
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDERMFED_MODEL_ONLY=ON \
    -DDERMFED_BUILD_TESTS=OFF -DCMAKE_PREFIX_PATH="$TORCH_CMAKE" ${CMAKE_ARGS:-} >&2
  cmake --build "$BUILD" -j "$(nproc)" --target gpu_train_bench >&2
fi
[[ -x "$BUILD/bin/gpu_train_bench" ]] || { log "$BUILD/bin/gpu_train_bench not built"; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dermfed-gpu-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
THREADS="$(nproc)"
for ((i = 1; i <= REPEAT; i++)); do
  log "pass $i: gpu_train_bench (C++ LibTorch) ..."
  "$BUILD/bin/gpu_train_bench" --device "$DEVICE" --backbones "$BACKBONES" \
    --image-size "$IMAGE_SIZE" --batch-size "$BATCH" --steps "$STEPS" --warmup-steps "$WARMUP" \
    --threads "$THREADS" | tee -a "$WORK/cpp.jsonl" >&2
  log "pass $i: site_bench_pytorch.py (PyTorch Python) ..."
  "$PY" "$ROOT/tests/bench/site_bench_pytorch.py" --device "$DEVICE" --backbones "$BACKBONES" \
    --real-size "$IMAGE_SIZE" --batch-size "$BATCH" --real-steps "$STEPS" \
    --warmup-steps "$WARMUP" --threads "$THREADS" --mixed-precision --skip-pipeline |
    tee -a "$WORK/py.jsonl" >&2
done

mkdir -p "$(dirname "$OUT")"
"$PY" - "$WORK/cpp.jsonl" "$WORK/py.jsonl" "$OUT" "$DEVICE" <<'PY'
import json, sys
import torch
def best(path):  # name -> the record with the highest value over the passes
    out = {}
    for r in (json.loads(l) for l in open(path) if l.strip()):
        if r["name"] not in out or r["value"] > out[r["name"]]["value"]:
            out[r["name"]] = r
    return out
cpp, py = best(sys.argv[1]), best(sys.argv[2])
records = []
for name, r in cpp.items():
    b = py.get(name)
    backbone = name[len("train_step_"):].rsplit("_", 1)[0]
    records.append({
        "name": f"gpu_train_{backbone}_vs_pytorch_python", "value": r["value"],
        "unit": "images/s", "baseline": f"pytorch-python {torch.__version__}, same device ({sys.argv[4]})",
        "baseline_value": b["value"] if b else None,
        "ratio": round(r["value"] / b["value"], 3) if b and b["value"] else None,
        "detail": r["detail"]})
text = json.dumps(records, indent=2)
open(sys.argv[3], "w").write(text + "\n")
print(text)
PY
