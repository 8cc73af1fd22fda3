#!/usr/bin/env bash
# dermfed demo end to end: it trains on generated data and beats chance by a wide margin;
# --help works; bad flags and values are refused with a message.
set -uo pipefail
DERMFED="$1"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$DERMFED" demo --help >"$WORK/help.txt" 2>&1 || fail "demo --help exited non-zero"
grep -q -- "--backbone" "$WORK/help.txt" || fail "demo --help does not list --backbone"

if "$DERMFED" demo --no-such-flag >"$WORK/bad.txt" 2>&1; then fail "unknown flag accepted"; fi
grep -qi "no-such-flag" "$WORK/bad.txt" || fail "unknown-flag error does not name the flag: $(cat "$WORK/bad.txt")"

if "$DERMFED" demo --epochs 0 >"$WORK/bad2.txt" 2>&1; then fail "--epochs 0 accepted"; fi
grep -qi "epochs" "$WORK/bad2.txt" || fail "bad-value error does not name --epochs"

if "$DERMFED" demo --backbone alexnet --epochs 1 >"$WORK/bad3.txt" 2>&1; then fail "unknown backbone accepted"; fi
grep -q "densenet121" "$WORK/bad3.txt" || fail "unknown-backbone error does not list the valid ones"

"$DERMFED" demo --rows 480 --image-size 48 --epochs 5 --seed 3 --threads 2 \
  --out "$WORK/run" --metrics-out "$WORK/metrics.json" || fail "demo run failed"
[ -s "$WORK/run/model.dfs" ] || fail "no model written"
/usr/bin/python3 - "$WORK/metrics.json" <<'PY' || fail "metrics check failed"
import json, sys
m = json.load(open(sys.argv[1]))
print("balanced accuracy", m["balanced_accuracy"], "chance", m["chance"])
assert m["balanced_accuracy"] > 2.5 * m["chance"], m
PY
echo "PASS"
