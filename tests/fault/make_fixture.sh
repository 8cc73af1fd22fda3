#!/usr/bin/env bash
# What every fault test starts from, made once per ctest run (fixture fault_fixture): a
# throwaway PKI with four sites (certs/make-test-pki.sh), a 200-image 32-px PAD-UFES-20-format
# dataset split IID across four site folders (sites/site-1..4; a test with fewer sites uses
# the first ones), and the LD_PRELOAD fault shim built from fault_shim.c. Everything in OUT is
# replaced.
#
# usage: make_fixture.sh OUT DERMFED
set -euo pipefail
OUT="$1"
DERMFED="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$OUT"
mkdir -p "$OUT/logs"
bash "$HERE/../../certs/make-test-pki.sh" "$OUT/pki" --sites 4 >"$OUT/logs/pki.log" 2>&1 ||
  { cat "$OUT/logs/pki.log"; exit 1; }
"$DERMFED" datagen --format pad-ufes-20 --out "$OUT/data" --images 200 --image-size 32 --seed 7 \
  >"$OUT/logs/datagen.log" 2>&1 || { cat "$OUT/logs/datagen.log"; exit 1; }
"$DERMFED" partition --data "$OUT/data" --format pad-ufes-20 --sites 4 --scheme iid --seed 1 \
  --out "$OUT/sites" >"$OUT/logs/partition.log" 2>&1 || { cat "$OUT/logs/partition.log"; exit 1; }
cc -shared -fPIC -O2 -o "$OUT/fault_shim.so" "$HERE/fault_shim.c" -ldl -lpthread
touch "$OUT/ready"
echo "fault fixture ready in $OUT"
