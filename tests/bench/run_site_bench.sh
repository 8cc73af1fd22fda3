#!/usr/bin/env bash
# Runs site_bench (C++/LibTorch) and site_bench_pytorch.py (the same work in PyTorch Python,
# Debian's python3-torch) in one go on the same generated PNGs, and prints and writes one
# JSON record per measurement:
#   {"name", "value", "unit", "baseline", "baseline_value", "ratio"}   ratio = value / baseline
# named as in tests/bench/run.sh: train_step_vs_pytorch_python (REAL_BACKBONE),
# train_step_vs_pytorch_python_tiny, pipeline_vs_pytorch_dataloader.
# A benchmark, not a test: nothing is asserted, and ctest never runs it.
#
# Usage: tests/bench/run_site_bench.sh [BUILD_DIR] [OUT.json]
#   BUILD_DIR  holds bin/site_bench and bin/dermfed (default: build)
#   OUT.json   the records as a JSON array (default: BUILD_DIR/site_bench.json)
# Environment: THREADS (2), WORKERS (2), IMAGES (512), SOURCE_SIZE (192), DEVICE (cpu),
#              TINY_STEPS (30), REAL_STEPS (5), REAL_BACKBONE (mobilenet_v2), REPEAT (2).
# The two programs alternate REPEAT times and each keeps its best value, so that load from
# other processes on a shared machine biases neither side.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD="${1:-build}"
OUT="${2:-$BUILD/site_bench.json}"
PY=/usr/bin/python3
for bin in site_bench dermfed; do
  [ -x "$BUILD/bin/$bin" ] || {
    echo "run_site_bench: $BUILD/bin/$bin not built (cmake --build $BUILD --target $bin)" >&2
    exit 1
  }
done
COMMON=(--threads "${THREADS:-2}" --workers "${WORKERS:-2}" --device "${DEVICE:-cpu}"
  --tiny-steps "${TINY_STEPS:-30}" --real-steps "${REAL_STEPS:-5}"
  --real-backbone "${REAL_BACKBONE:-mobilenet_v2}")

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$BUILD/bin/dermfed" datagen --format pad-ufes-20 --out "$WORK/data" --images "${IMAGES:-512}" \
  --image-size "${SOURCE_SIZE:-192}" --seed 1 >/dev/null

for ((i = 1; i <= ${REPEAT:-2}; i++)); do
  echo "pass $i: site_bench (C++ LibTorch) ..." >&2
  "$BUILD/bin/site_bench" --data "$WORK/data" "${COMMON[@]}" | tee -a "$WORK/cpp.jsonl" >&2
  echo "pass $i: site_bench_pytorch.py (PyTorch Python) ..." >&2
  "$PY" "$HERE/site_bench_pytorch.py" --data "$WORK/data" "${COMMON[@]}" |
    tee -a "$WORK/py.jsonl" >&2
done

"$PY" - "$WORK/cpp.jsonl" "$WORK/py.jsonl" "$OUT" <<'PY'
import json, sys
import torch, torchvision
def best(path):  # name -> the record with the highest value over the passes, in first-seen order
    out = {}
    for r in (json.loads(l) for l in open(path) if l.strip()):
        if r["name"] not in out or r["value"] > out[r["name"]]["value"]:
            out[r["name"]] = r
    return out
cpp = best(sys.argv[1]).values()
py = best(sys.argv[2])
# The suite's names (tests/bench/run.sh): the real backbone's training step and the pipeline;
# the tiny backbone's step is an extra record. The measurement's own name goes into detail.
def suite_name(name):
    if name.startswith("pipeline_png_"):
        return "pipeline_vs_pytorch_dataloader"
    if name.startswith("train_step_tiny_"):
        return "train_step_vs_pytorch_python_tiny"
    return "train_step_vs_pytorch_python"
baseline = f"pytorch-python {torch.__version__} / torchvision {torchvision.__version__}"
records = []
for r in cpp:
    b = py.get(r["name"])
    records.append({
        "name": suite_name(r["name"]), "value": r["value"], "unit": r["unit"],
        "baseline": baseline, "baseline_value": b["value"] if b else None,
        "ratio": round(r["value"] / b["value"], 3) if b and b["value"] else None,
        "detail": r["name"] + ": " + r.get("detail", ""),
    })
with open(sys.argv[3], "w") as f:
    json.dump(records, f, indent=2)
print(f"{'name':34} {'C++':>10} {'PyTorch':>10} {'ratio':>7}  unit")
for r in records:
    print(f"{r['name']:34} {r['value']:10.1f} {r['baseline_value'] or 0:10.1f} "
          f"{r['ratio'] or 0:7.2f}  {r['unit']}")
for r in records:
    print(json.dumps({k: r[k] for k in ("name", "value", "unit", "baseline", "baseline_value",
                                         "ratio")}))
print(f"written to {sys.argv[3]}", file=sys.stderr)
PY
