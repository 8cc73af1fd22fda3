#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and runs the main job — a short
# federation on this machine: a generated PAD-UFES-20-format dataset is split by patient
# across 3 hospital sites (non-IID), then a real coordinator and three real site daemons
# train DualRefNet (tiny backbone, CPU) together over gRPC on loopback, printing the global
# model's federated evaluation after every round. Everything lands in run/quickstart/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
deploy/install-deps.sh
echo "== building (the first build takes several minutes on 2 cores; ccache speeds up the next)"
deploy/build.sh --target dermfed dermfed-coordinator dermfed-site
BIN="${BUILD_DIR:-$ROOT/build}/bin"
RUN="$ROOT/run/quickstart"
rm -rf "$RUN"
mkdir -p "$RUN"
echo "== generating a PAD-UFES-20-format dataset (no real patient data is used or downloaded)"
"$BIN/dermfed" datagen --format pad-ufes-20 --images 720 --image-size 64 --seed 7 --out "$RUN/data"
echo "== splitting it by patient across 3 sites (Dirichlet alpha 0.5: each site sees its own class mix)"
"$BIN/dermfed" partition --data "$RUN/data" --format pad-ufes-20 --sites 3 --scheme dirichlet \
  --alpha 0.5 --seed 7 --out "$RUN/sites"
echo "== federated training: 1 coordinator + 3 sites on loopback"
"$BIN/dermfed" simulate --sites-dir "$RUN/sites" --format pad-ufes-20 --backbone tiny \
  --image-size 64 --rounds 4 --local-epochs 2 --out "$RUN/federation" "$@"
echo "== scoring the global model on all generated rows"
"$BIN/dermfed" eval --model "$RUN/federation" --data "$RUN/data" --format pad-ufes-20 \
  --metrics-out "$RUN/federation/eval.json"
echo "== done: global model, per-round history and logs in run/quickstart/federation/"
