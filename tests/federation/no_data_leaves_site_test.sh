#!/usr/bin/env bash
# No image or metadata bytes leave a site: a recording TCP proxy sits between site-1 and the
# coordinator and keeps every byte site-1 sends during a real 2-round federation (real
# dermfed-coordinator and dermfed-site processes on 127.0.0.1); leak_scan.py then looks for
# site-1's files in that stream.
#
# What this proves: over this run, the bytes site-1 put on the wire contain no run of 32
# bytes from any of its image files or its metadata.csv (so no image file, crop of one, or
# CSV line was sent as-is), and none of its patient ids, patient/lesion ids, image ids or
# rare metadata values. The recording is shown to be the site's real traffic: it is at least
# as large as the model updates the site must have sent (2 rounds x the model), it contains
# the site's name (sent in the clear in each request), and the coordinator folded site-1's
# updates. The scanner checks itself on a planted leak first, so it can fail.
#
# What it does not prove: that the uploaded weights reveal nothing about the data (model
# inversion, membership inference — the job of DP and secure aggregation, issue 5); that
# decoded pixels or encoded metadata vectors (rather than file bytes) never leave, although
# no such code path exists; anything about transformed or compressed copies (the channel
# uses no gRPC message compression here; gRPC 1.51 sends header values as plain HPACK
# literals, but a peer that Huffman-coded them would hide them from this scan); other
# configurations (TLS, FedBN, other formats); or other sites (only site-1 is recorded). It covers the upstream direction only; what the coordinator sends is public to
# the federation anyway.
#
# usage: no_data_leaves_site_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE
# (DERMFED_TEST_KEEP=1 keeps the work folder and its logs.)
set -uo pipefail
DERMFED="$1"
COORDINATOR="$2"
SITE="$3"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
# shellcheck source=../harness.sh
source "$(cd "$(dirname "$0")/.." && pwd)/harness.sh"
harness_start noleak
START=$(date +%s)
ROUNDS=2

"$DERMFED" datagen --format pad-ufes-20 --out "$WORK/data" --images 120 --image-size 32 \
  --seed 9 >"$WORK/logs/datagen.log" 2>&1 || fail "datagen failed"
# --copy-images: each site holds its own files, so a leak scan of site-1 sees only its data.
"$DERMFED" partition --data "$WORK/data" --format pad-ufes-20 --sites 2 --scheme iid --seed 1 \
  --copy-images --out "$WORK/sites" >"$WORK/logs/partition.log" 2>&1 || fail "partition failed"

"$COORDINATOR" --federation.rounds=$ROUNDS --federation.min_sites=2 --federation.expected_sites=2 \
  --federation.round_deadline_s=60 --federation.eval_deadline_s=60 \
  --model.backbone=tiny --model.image_size=32 --training.batch_size=8 \
  --server.listen=127.0.0.1:0 --server.port_file="$WORK/coordinator.port" \
  --server.state_dir="$WORK/state" --server.threads=1 --server.insecure=true \
  >"$WORK/logs/coordinator.out" 2>"$WORK/logs/coordinator.log" &
COORD_PID=$!
PIDS+=("$COORD_PID")
for _ in $(seq 600); do
  [ -s "$WORK/coordinator.port" ] && break
  kill -0 "$COORD_PID" 2>/dev/null || fail "the coordinator exited before listening"
  sleep 0.1
done
[ -s "$WORK/coordinator.port" ] || fail "the coordinator did not listen within 60 s"
COORD_PORT="$(cat "$WORK/coordinator.port")"

"$PY" "$HERE/recording_proxy.py" --upstream "127.0.0.1:$COORD_PORT" \
  --port-file "$WORK/proxy.port" --record-up "$WORK/site-1.up.bin" \
  --record-down "$WORK/site-1.down.bin" >"$WORK/logs/proxy.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.1; done
[ -s "$WORK/proxy.port" ] || fail "the recording proxy did not start"
PROXY_PORT="$(cat "$WORK/proxy.port")"

SITE_PIDS=()
for s in 1 2; do
  port=$COORD_PORT
  [ "$s" = 1 ] && port=$PROXY_PORT  # only site-1 goes through the proxy
  "$SITE" --site.name="site-$s" --site.coordinator="127.0.0.1:$port" --site.insecure=true \
    --site.data="$WORK/sites/site-$s" --site.threads=1 --site.workers=1 \
    --site.max_backoff_s=1 >"$WORK/logs/site-$s.log" 2>&1 &
  SITE_PIDS+=($!)
  PIDS+=($!)
done

for _ in $(seq 1200); do
  kill -0 "$COORD_PID" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$COORD_PID" 2>/dev/null && fail "the federation did not finish within 120 s"
wait "$COORD_PID" || fail "the coordinator failed"
for i in 0 1; do
  for _ in $(seq 300); do kill -0 "${SITE_PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
  wait "${SITE_PIDS[$i]}" || fail "site-$((i + 1)) failed"
done
for r in $(seq $ROUNDS); do
  grep -q "site=site-1 round=$r version=$((r - 1)) update folded" "$WORK/logs/coordinator.log" ||
    fail "the coordinator never folded site-1's update for round $r: the proxy run proves nothing"
done

# Model bytes: the buffer of a global checkpoint (file minus header and checksum, >= 99%).
MODEL_FILE="$(ls "$WORK"/state/checkpoints/global-*.dfs | tail -n 1)"
MODEL_BYTES=$(( $(stat -c %s "$MODEL_FILE") * 99 / 100 ))
echo "site-1 sent $(stat -c %s "$WORK/site-1.up.bin") bytes and received" \
  "$(stat -c %s "$WORK/site-1.down.bin") bytes; model ~$MODEL_BYTES bytes"
"$PY" "$HERE/leak_scan.py" --recording "$WORK/site-1.up.bin" --site-dir "$WORK/sites/site-1" \
  --min-bytes $(( ROUNDS * MODEL_BYTES )) --must-contain site-1 || fail "leak scan failed"
echo "PASS ($(( $(date +%s) - START )) s)"
