# shellcheck shell=bash disable=SC2034  # the variables it sets are for the scripts that source it
# Sourced by the fault tests (it sources tests/harness.sh): one way to make a small federation
# of real processes on loopback, on mutual TLS with a throwaway PKI.
#   fault_setup NAME DERMFED DERMFED_COORDINATOR DERMFED_SITE [FIXTURE]
#                               a test script's arguments after NAME: sets DERMFED,
#                               COORDINATOR, SITE and START (date +%s); harness_start NAME,
#                               then uses FIXTURE (make_fixture.sh: PKI, four site folders,
#                               fault_shim.so), or makes one in $WORK when it is not given.
#                               Sets PKI, SITES_DIR, SHIM, STATE=$WORK/state.
#   start_coordinator NAME ARGS...
#                               starts dermfed-coordinator (logs/NAME.log) with the test PKI,
#                               a tiny model at 32 px, batch 8, one thread, state in $STATE;
#                               ARGS are more --key=value flags (later ones win). Waits until
#                               it listens; sets COORD_PID and ADDR. FAULT_ADDR: the address to
#                               listen on (default 127.0.0.1:0); FAULT_ENV: extra environment.
#   start_site N [ARGS...]      starts site-N against $SITE_ADDR (default $ADDR), logging to
#                               logs/site-N.log (appended: a restarted site keeps one log);
#                               sets SITE_PID[N]. SITE_ENV: extra environment for it.
#   joined_sites NAME           how many sites joined coordinator NAME with their data
#   coord_log NAME PATTERN      whether logs/NAME.log has a line matching PATTERN (grep -E)
#   site_log N PATTERN          the same for site-N
#   (wait_exit PID SECONDS WHAT, which the fault tests use too, is in tests/harness.sh)
#   admin ARGS...               runs the dermfed CLI as admin-1 against $ADDR
FAULT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../harness.sh
source "$FAULT_DIR/../harness.sh"
PY=/usr/bin/python3
CHECK="$FAULT_DIR/fault_check.py"

fault_setup() {
  [ "$#" -ge 4 ] || { echo "usage: $0 DERMFED DERMFED_COORDINATOR DERMFED_SITE [FIXTURE]" >&2; exit 2; }
  DERMFED="$2"
  COORDINATOR="$3"
  SITE="$4"
  START=$(date +%s)
  harness_start "$1"
  local fixture="${5:-}"
  if [ -z "$fixture" ]; then
    fixture="$WORK/fixture"
    "$FAULT_DIR/make_fixture.sh" "$fixture" "$DERMFED" >"$WORK/logs/fixture.log" 2>&1 ||
      fail "make_fixture.sh failed: $(tail -n 5 "$WORK/logs/fixture.log")"
  fi
  [ -f "$fixture/ready" ] || fail "$fixture is not a fault fixture (make_fixture.sh)"
  PKI="$fixture/pki"
  SITES_DIR="$fixture/sites"
  SHIM="$fixture/fault_shim.so"
  STATE="$WORK/state"
  declare -gA SITE_PID=()
}

start_coordinator() {
  local name="$1"
  shift
  local port_file="$WORK/$name.port"
  rm -f "$port_file"
  # shellcheck disable=SC2086  # FAULT_ENV is a list of VAR=value words
  env ${FAULT_ENV:-} "$COORDINATOR" --server.listen="${FAULT_ADDR:-127.0.0.1:0}" \
    --server.port_file="$port_file" --server.state_dir="$STATE" --server.threads=1 \
    --tls.ca="$PKI/ca/ca.crt" --tls.cert="$PKI/coordinator/coordinator.crt" \
    --tls.key="$PKI/coordinator/coordinator.key" --tls.crl="$PKI/crl/crl.pem" \
    --model.backbone=tiny --model.image_size=32 --training.batch_size=8 "$@" \
    >"$WORK/logs/$name.out" 2>"$WORK/logs/$name.log" &
  COORD_PID=$!
  PIDS+=("$COORD_PID")
  for _ in $(seq 600); do
    [ -s "$port_file" ] && break
    kill -0 "$COORD_PID" 2>/dev/null || fail "$name exited before listening: $(tail -n 3 "$WORK/logs/$name.log")"
    sleep 0.1
  done
  [ -s "$port_file" ] || fail "$name did not listen within 60 s"
  ADDR="127.0.0.1:$(cat "$port_file")"
}

start_site() {
  local n="$1"
  shift
  # shellcheck disable=SC2086  # SITE_ENV is a list of VAR=value words
  env ${SITE_ENV:-} "$SITE" --site.name="site-$n" --site.coordinator="${SITE_ADDR:-$ADDR}" \
    --site.data="$SITES_DIR/site-$n" --site.threads=1 --site.workers=1 --site.seed="$n" \
    --site.max_backoff_s=1 --site.explain_rows=16 --site.ca="$PKI/ca/ca.crt" \
    --site.cert="$PKI/site/site-$n.crt" --site.key="$PKI/site/site-$n.key" "$@" \
    >>"$WORK/logs/site-$n.log" 2>&1 &
  SITE_PID[$n]=$!
  PIDS+=($!)
}

joined_sites() {
  grep -Eo "site=site-[0-9]+ rejoined \(train_rows=[1-9]" "$WORK/logs/$1.log" | sort -u | wc -l
}
coord_log() { grep -Eq -- "$2" "$WORK/logs/$1.log"; }
site_log() { grep -Eq -- "$2" "$WORK/logs/site-$1.log"; }

admin() {
  "$DERMFED" "$@" --coordinator "$ADDR" --ca "$PKI/ca/ca.crt" --cert "$PKI/admin/admin-1.crt" \
    --key "$PKI/admin/admin-1.key"
}
