#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and runs the main job — for now a
# short local DualRefNet training run (tiny backbone, CPU) on generated images, printing
# per-epoch loss and validation accuracy and writing the model to run/quickstart/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
deploy/install-deps.sh
echo "== building (first build takes a few minutes on 2 cores; ccache makes the next fast)"
deploy/build.sh --target dermfed
echo "== training DualRefNet on generated data"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
"$BUILD_DIR/bin/dermfed" demo --backbone tiny --rows 720 --image-size 64 --epochs 6 \
  --out "$ROOT/run/quickstart" --metrics-out "$ROOT/run/quickstart/metrics.json" "$@"
echo "== done: model and metrics in run/quickstart/"
