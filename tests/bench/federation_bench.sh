#!/usr/bin/env bash
# Federation benchmarks (issue 8), with real coordinator and site processes on loopback:
#
#   transfer_vs_aes_gcm            model download MB/s (federation_transfer_bench: a site's
#                                  FederationClient::PullModel, chunked stream + reassembly +
#                                  SHA-256) from a coordinator holding a TRANSFER_BACKBONE model,
#                                  median of TRANSFER_PULLS pulls; baseline: single-core
#                                  `openssl speed -elapsed -evp aes-256-gcm` (16 KiB blocks,
#                                  wall clock like the download), same run; the CPU-time
#                                  figure and its ratio go into the record's detail.
#                                  Over mutual TLS (a test PKI from certs/make-test-pki.sh),
#                                  with the site daemon's channel settings.
#   transfer_tls_socket_vs_aes_gcm the ceiling of the above: tls_socket_bench, the same bytes
#                                  as one bare TLS 1.3 AES-256-GCM stream over loopback
#                                  (OpenSSL between two threads, mutual TLS, no gRPC, no
#                                  digest), best of 3, against the same AES-GCM baseline.
#   coordinator_rss_16_vs_2_sites  peak RSS (ru_maxrss, via /usr/bin/time or Python's wait4)
#                                  of dermfed-coordinator for one FedAvg round (training,
#                                  aggregation, federated evaluation) with 16 real dermfed-site
#                                  processes against 2, same RSS_BACKBONE model, mutual TLS;
#                                  each site trains
#                                  one step (site.max_steps_per_round=1) on a few tiny images
#                                  with 1 LibTorch thread. value = RSS(16) MiB, baseline_value =
#                                  RSS(2) MiB, ratio = value / baseline_value.
#
# Writes a JSON array of records {name, value, unit, baseline, baseline_value, ratio}.
# A benchmark, not a test: nothing is asserted.
#
# Usage: tests/bench/federation_bench.sh [--out FILE] [--only transfer|rss]
# Environment: BUILD_DIR (build; needs bin/dermfed, bin/dermfed-coordinator, bin/dermfed-site
#   and bin/federation_transfer_bench, bin/tls_socket_bench), TRANSFER_BACKBONE (vgg13), TRANSFER_PULLS (5),
#   RSS_BACKBONE (resnet50), RSS_SITES ("2 16"), IMAGE_SIZE (32), AES_SECONDS (3),
#   WORK (a temporary folder, removed at the end unless KEEP=1), PKI (a make-test-pki.sh folder
#   with at least as many sites as the largest RSS_SITES; default: made in WORK).
set -euo pipefail

OUT=""
ONLY=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    *) echo "usage: $0 [--out FILE] [--only transfer|rss]" >&2; exit 2 ;;
  esac
done
BUILD="${BUILD_DIR:-build}"
TRANSFER_BACKBONE="${TRANSFER_BACKBONE:-vgg13}"
TRANSFER_PULLS="${TRANSFER_PULLS:-5}"
RSS_BACKBONE="${RSS_BACKBONE:-resnet50}"
RSS_SITES="${RSS_SITES:-2 16}"
IMAGE_SIZE="${IMAGE_SIZE:-32}"
AES_SECONDS="${AES_SECONDS:-3}"
BIN="$BUILD/bin"
needed=(dermfed dermfed-coordinator dermfed-site)
[[ "$ONLY" == rss ]] || needed+=(federation_transfer_bench tls_socket_bench)
for b in "${needed[@]}"; do
  if [[ ! -x "$BIN/$b" ]]; then
    echo "federation_bench: $BIN/$b not built (cmake --build $BUILD --target $b)" >&2
    exit 1
  fi
done

if [[ -n "${WORK:-}" ]]; then
  mkdir -p "$WORK"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/dermfed-fedbench.XXXXXX")"
fi
PIDS=()  # processes this script started and has not yet waited for
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [[ -z "${KEEP:-}" && "$WORK" == "${TMPDIR:-/tmp}"/dermfed-fedbench.* ]]; then
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
log() { echo "federation_bench: $*" >&2; }
RECORDS=()
record() {  # record NAME VALUE UNIT BASELINE BASELINE_VALUE RATIO DETAIL (numbers or null)
  RECORDS+=("$(printf '{"name": "%s", "value": %s, "unit": "%s", "baseline": "%s", "baseline_value": %s, "ratio": %s, "detail": "%s"}' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$7")")
}

# Runs "$@" in the background under a peak-RSS recorder that writes KiB to $RSS_FILE when the
# command ends; sets LAST_PID to the recorder (its child is the command).
start_with_rss() {
  local rss_file="$1"
  shift
  if /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then
    /usr/bin/time -f %M -o "$rss_file" "$@" &
  else
    python3 -c '
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
open(sys.argv[1], "w").write("%d\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))' "$rss_file" "$@" &
  fi
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# Waits for the coordinator whose port file is $1 (its recorder is $2) to listen; prints the port.
wait_port() {
  local port_file="$1" pid="$2" i
  for ((i = 0; i < 1200; ++i)); do
    if [[ -s "$port_file" ]]; then
      cat "$port_file"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { log "the coordinator exited before listening"; return 1; }
    sleep 0.1
  done
  log "the coordinator did not listen within 120 s"
  return 1
}

# The consortium PKI every process uses (mutual TLS, as deployed).
make_pki() {
  local most=1 n
  for n in $RSS_SITES; do (( n > most )) && most=$n; done
  PKI="${PKI:-$WORK/pki}"
  log "test PKI for $most sites in $PKI"
  bash "$(dirname "${BASH_SOURCE[0]}")/../../certs/make-test-pki.sh" "$PKI" --sites "$most" \
    >"$WORK/pki.log" 2>&1 || { cat "$WORK/pki.log" >&2; return 1; }
}

# Coordinator flags shared by both benchmarks: $1 = work folder, $2 = backbone, $3 = sites.
coordinator_flags() {
  echo --federation.name=bench --federation.rounds=1 --federation.min_sites="$3" \
    --federation.expected_sites="$3" --federation.join_timeout_s=900 \
    --federation.round_deadline_s=1800 --federation.eval_deadline_s=900 \
    --model.backbone="$2" --model.format=pad-ufes-20 --model.image_size="$IMAGE_SIZE" \
    --training.batch_size=4 --server.listen=127.0.0.1:0 --server.port_file="$1/port" \
    --server.state_dir="$1/state" --server.threads=1 --tls.ca="$PKI/ca/ca.crt" \
    --tls.cert="$PKI/coordinator/coordinator.crt" --tls.key="$PKI/coordinator/coordinator.key" \
    --tls.crl="$PKI/crl/crl.pem"
}

forget_pid() {  # removes $1 from PIDS
  local keep=() p
  for p in "${PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# ---------------------------------------------------------------- transfer_vs_aes_gcm
bench_transfer() {
  local dir="$WORK/transfer"
  mkdir -p "$dir"
  log "transfer: coordinator with $TRANSFER_BACKBONE ($IMAGE_SIZE px), $TRANSFER_PULLS pulls"
  # shellcheck disable=SC2046
  "$BIN/dermfed-coordinator" $(coordinator_flags "$dir" "$TRANSFER_BACKBONE" 1) \
    >"$dir/coordinator.log" 2>&1 &
  local coord=$!
  PIDS+=("$coord")
  local port
  port=$(wait_port "$dir/port" "$coord") || { tail -n 20 "$dir/coordinator.log" >&2; return 1; }
  if ! "$BIN/federation_transfer_bench" --coordinator "127.0.0.1:$port" \
      --pulls "$TRANSFER_PULLS" --pki "$PKI" >"$dir/result.json" 2>"$dir/bench.log"; then
    cat "$dir/bench.log" >&2
    tail -n 20 "$dir/coordinator.log" >&2
    return 1
  fi
  cat "$dir/bench.log" >&2
  kill -TERM "$coord" 2>/dev/null || true
  wait "$coord" 2>/dev/null || true
  forget_pid "$coord"

  # Both clocks: the download is timed by the wall clock, so the baseline is too (-elapsed:
  # on a shared machine both then see the same load); openssl's default (user CPU time, what
  # one core does when it has it to itself) goes into the detail.
  local aes_wall_k aes_cpu_k
  log "transfer: openssl speed -elapsed -evp aes-256-gcm -bytes 16384 -seconds $AES_SECONDS (one core)"
  aes_wall_k=$(aes_gcm_speed -elapsed)
  aes_cpu_k=$(aes_gcm_speed)
  if [[ -z "$aes_wall_k" || -z "$aes_cpu_k" ]]; then
    log "transfer: could not read openssl speed's result"
    return 1
  fi
  local mbs bytes mb
  mbs=$(grep -o '"median_mb_s": [0-9.]*' "$dir/result.json" | sed 's/.*: //')
  bytes=$(grep -o '"bytes": [0-9]*' "$dir/result.json" | sed 's/.*: //')
  mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
  local aes_mbs aes_cpu_mbs ratio ratio_cpu
  aes_mbs=$(awk -v k="$aes_wall_k" 'BEGIN { printf "%.1f", k / 1000 }')
  aes_cpu_mbs=$(awk -v k="$aes_cpu_k" 'BEGIN { printf "%.1f", k / 1000 }')
  ratio=$(awk -v a="$mbs" -v b="$aes_mbs" 'BEGIN { printf "%.3f", a / b }')
  ratio_cpu=$(awk -v a="$mbs" -v b="$aes_cpu_mbs" 'BEGIN { printf "%.3f", a / b }')
  # The ceiling: a bare mutual-TLS stream of the same size (no gRPC, no digest), best of 3.
  local tls_mbs="" t r
  for t in 1 2 3; do
    r=$("$BIN/tls_socket_bench" --pki "$PKI" --bytes "$bytes" | grep -o '"mb_s": [0-9.]*' |
      sed 's/.*: //') || { log "transfer: tls_socket_bench failed"; return 1; }
    tls_mbs=$(awk -v a="$r" -v b="${tls_mbs:-0}" 'BEGIN { print (a > b) ? a : b }')
  done
  local tls_ratio of_tls
  tls_ratio=$(awk -v a="$tls_mbs" -v b="$aes_mbs" 'BEGIN { printf "%.3f", a / b }')
  of_tls=$(awk -v a="$mbs" -v b="$tls_mbs" 'BEGIN { printf "%.2f", a / b }')
  log "transfer: $mb MB model, median $mbs MB/s; AES-256-GCM $aes_mbs MB/s (wall), $aes_cpu_mbs MB/s (CPU time); ratio $ratio ($ratio_cpu); a bare mTLS socket moves $tls_mbs MB/s ($tls_ratio of AES-GCM; the download is $of_tls of it)"
  record transfer_vs_aes_gcm "$mbs" "MB/s" \
    "openssl speed -elapsed -evp aes-256-gcm (1 core, 16 KiB blocks, wall clock)" "$aes_mbs" \
    "$ratio" "$TRANSFER_BACKBONE, $mb MB, median of $TRANSFER_PULLS pulls over mTLS loopback; against openssl's CPU-time figure ($aes_cpu_mbs MB/s) the ratio is $ratio_cpu; a bare mTLS socket (tls_socket_bench) moves $tls_mbs MB/s, the download is $of_tls of that"
  record transfer_tls_socket_vs_aes_gcm "$tls_mbs" "MB/s" \
    "openssl speed -elapsed -evp aes-256-gcm (1 core, 16 KiB blocks, wall clock)" "$aes_mbs" \
    "$tls_ratio" "tls_socket_bench: the same $mb MB as one TLS 1.3 AES-256-GCM stream between two threads over loopback, mutual TLS, no gRPC or digest, best of 3: the ceiling for transfer_vs_aes_gcm on this machine"
}

# aes_gcm_speed [-elapsed]: one core's AES-256-GCM in openssl's kB/s (1000 bytes).
aes_gcm_speed() {
  openssl speed "$@" -evp aes-256-gcm -bytes 16384 -seconds "$AES_SECONDS" 2>/dev/null |
    awk 'tolower($1) ~ /^aes-256-gcm/ { v = $NF } END { sub(/k$/, "", v); print v }'
}

# ---------------------------------------------------------------- coordinator_rss_16_vs_2_sites
declare -A RSS_KB
rss_round() {  # rss_round SITES
  local n="$1" dir="$WORK/rss-$n"
  mkdir -p "$dir"
  # Enough patients that every site gets a few rows (and a validation patient).
  "$BIN/dermfed" datagen --format pad-ufes-20 --out "$dir/data" --images $((n * 12)) \
    --seed 3 --image-size "$IMAGE_SIZE" >"$dir/datagen.log" 2>&1
  "$BIN/dermfed" partition --data "$dir/data" --format pad-ufes-20 --sites "$n" --scheme iid \
    --seed 3 --out "$dir/sites" >"$dir/partition.log" 2>&1
  log "rss: one round, $n sites, $RSS_BACKBONE ($IMAGE_SIZE px)"
  local t0=$SECONDS
  # shellcheck disable=SC2046
  start_with_rss "$dir/coordinator.rss" "$BIN/dermfed-coordinator" \
    $(coordinator_flags "$dir" "$RSS_BACKBONE" "$n") >"$dir/coordinator.log" 2>&1
  local coord=$LAST_PID port
  port=$(wait_port "$dir/port" "$coord") || { tail -n 20 "$dir/coordinator.log" >&2; return 1; }
  local sites=() i
  for ((i = 1; i <= n; ++i)); do
    "$BIN/dermfed-site" --site.name="site-$i" --site.coordinator="127.0.0.1:$port" \
      --site.ca="$PKI/ca/ca.crt" --site.cert="$PKI/site/site-$i.crt" --site.key="$PKI/site/site-$i.key" \
      --site.data="$dir/sites/site-$i" --site.threads=1 --site.workers=1 \
      --site.max_steps_per_round=1 --site.seed=3 >"$dir/site-$i.log" 2>&1 &
    sites+=($!)
    PIDS+=($!)
  done
  local rc=0
  wait "$coord" || rc=$?
  forget_pid "$coord"
  for p in "${sites[@]}"; do
    wait "$p" || true
    forget_pid "$p"
  done
  if [[ $rc -ne 0 || ! -s "$dir/coordinator.rss" ]]; then
    log "rss: the coordinator with $n sites failed (exit $rc):"
    tail -n 20 "$dir/coordinator.log" >&2
    return 1
  fi
  RSS_KB[$n]=$(tail -n 1 "$dir/coordinator.rss")
  log "rss: $n sites: coordinator peak RSS $((RSS_KB[$n] / 1024)) MiB, round took $((SECONDS - t0)) s"
  MODEL_BYTES=$(find "$dir/state" -type f -size +1M -printf '%s\n' 2>/dev/null | sort -n | tail -n 1)
}

bench_rss() {
  local n
  for n in $RSS_SITES; do rss_round "$n" || return 1; done
  local lo hi
  read -r lo hi <<<"$RSS_SITES"
  local a="${RSS_KB[$lo]}" b="${RSS_KB[$hi]}"
  local ratio
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')
  local mb_lo mb_hi
  mb_lo=$(awk -v k="$a" 'BEGIN { printf "%.1f", k / 1024 }')
  mb_hi=$(awk -v k="$b" 'BEGIN { printf "%.1f", k / 1024 }')
  log "rss: $RSS_BACKBONE checkpoint ${MODEL_BYTES:-?} bytes; ${lo} sites $mb_lo MiB, ${hi} sites $mb_hi MiB, ratio $ratio"
  record "coordinator_rss_${hi}_vs_${lo}_sites" "$mb_hi" "MiB" \
    "coordinator peak RSS with $lo sites (same round, $RSS_BACKBONE)" "$mb_lo" "$ratio" \
    "$RSS_BACKBONE $IMAGE_SIZE px, one FedAvg round with evaluation, real dermfed-site processes, mTLS"
}

status=0
make_pki || { log "could not make the test PKI"; exit 1; }
[[ "$ONLY" == rss ]] || bench_transfer || { log "transfer benchmark failed"; status=1; }
[[ "$ONLY" == transfer ]] || bench_rss || { log "rss benchmark failed"; status=1; }

json="["
for i in "${!RECORDS[@]}"; do
  json+=$'\n  '"${RECORDS[$i]}"
  (( i + 1 < ${#RECORDS[@]} )) && json+=","
done
json+=$'\n]'
if [[ -n "$OUT" ]]; then
  echo "$json" >"$OUT"
  log "wrote ${#RECORDS[@]} records to $OUT"
else
  echo "$json"
fi
exit $status
