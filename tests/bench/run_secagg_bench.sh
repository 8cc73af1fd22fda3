#!/usr/bin/env bash
# Secure aggregation's costs, each against a baseline measured in the same run:
#   secagg_mask_vs_aes_ctr  mask generation (AddMask on 128 MiB) MB/s against
#                           `openssl speed -evp aes-256-ctr` (16 KiB blocks): how close
#                           masking comes to raw AES-CTR here;
#   secagg_round_vs_plain   a federation round's wall time with secure aggregation against the
#                           same federation with plaintext updates (dermfed simulate, 3 sites,
#                           mutual TLS both times), mean over rounds 2..ROUNDS: round 1's
#                           started..finished also holds the sites' start-up and joining.
# Prints one JSON record per line: {name, value, unit, baseline, baseline_value, ratio, detail}.
#
# usage: run_secagg_bench.sh BUILD_BIN_DIR [BACKBONE] [ROUNDS]
set -euo pipefail
BIN="$1"
BACKBONE="${2:-mobilenet_v2}"
ROUNDS="${3:-3}"
[ "$ROUNDS" -ge 2 ] || { echo "run_secagg_bench: ROUNDS must be >= 2" >&2; exit 2; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dermfed-secagg-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

mask=$("$BIN/secagg_mask_bench")
openssl speed -evp aes-256-ctr -bytes 16384 -seconds 3 >"$WORK/speed.txt" 2>/dev/null
aes=$(awk '/^(aes-256-ctr|AES-256-CTR)/ {print $NF}' "$WORK/speed.txt" | tr -d k)
/usr/bin/python3 - "$mask" "$aes" <<'PY'
import json, sys
mask = json.loads(sys.argv[1])
aes_mb = float(sys.argv[2]) * 1000 / 1e6   # openssl prints kB/s (1000 bytes)
print(json.dumps({"name": "secagg_mask_vs_aes_ctr", "value": mask["mb_per_s"], "unit": "MB/s",
                  "baseline": "openssl speed -evp aes-256-ctr (1 core, 16 KiB blocks)",
                  "baseline_value": round(aes_mb, 1), "ratio": round(mask["mb_per_s"] / aes_mb, 3),
                  "detail": f"AddMask on {mask['words'] * 4 >> 20} MiB"}))
PY

"$BIN/dermfed" datagen --format pad-ufes-20 --out "$WORK/data" --images 150 --image-size 32 \
  --seed 3 >/dev/null
"$BIN/dermfed" partition --data "$WORK/data" --format pad-ufes-20 --sites 3 --scheme iid \
  --seed 1 --out "$WORK/sites" >/dev/null
for mode in plain secagg; do
  extra=()
  [ "$mode" = plain ] && extra=(--no-secure-aggregation)
  "$BIN/dermfed" simulate --sites-dir "$WORK/sites" --format pad-ufes-20 --backbone "$BACKBONE" \
    --image-size 32 --rounds "$ROUNDS" --threads 2 --site-set site.max_steps_per_round=2 \
    "${extra[@]}" --out "$WORK/$mode" >"$WORK/$mode.out" 2>&1
done
/usr/bin/python3 - "$WORK" "$BACKBONE" "$ROUNDS" <<'PY'
import json, os, sqlite3, sys
work, backbone, rounds = sys.argv[1:]
def seconds(mode):
    with sqlite3.connect(os.path.join(work, mode, "state", "coordinator.db")) as c:
        rows = c.execute("SELECT finished - started FROM rounds WHERE round > 1").fetchall()
    return sum(r[0] for r in rows) / len(rows)
plain, secure = seconds("plain"), seconds("secagg")
print(json.dumps({"name": "secagg_round_vs_plain", "value": round(secure, 3), "unit": "s/round",
                  "baseline": "the same rounds without secure aggregation",
                  "baseline_value": round(plain, 3), "ratio": round(secure / plain, 3),
                  "detail": f"{backbone}, 3 sites, 2 steps each, mTLS, mean of rounds 2..{rounds}"}))
PY
