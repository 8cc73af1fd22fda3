# Sourced by the integration test scripts: a work folder, process cleanup, failure.
#   harness_start NAME  makes $WORK (with $WORK/logs) and the array PIDS. On exit: kills every
#                       process in PIDS, prints the tail of every log (WORK/logs/* and
#                       WORK/*/logs/*) if the test failed, then the failure again, and
#                       removes WORK unless DERMFED_TEST_KEEP=1.
#   fail MESSAGE        ends the test: FAIL: MESSAGE.
#   wait_for SECONDS DESCRIPTION COMMAND...
#                       polls COMMAND every 0.1 s; fails with DESCRIPTION if it never succeeds.
#   wait_exit PID SECONDS WHAT, wait_exit_ok PID SECONDS WHAT
#                       wait for a process to end (below).
#   free_port           prints a loopback TCP port that was free a moment ago (below the
#                       kernel's ephemeral range, so outgoing connections do not take it).
harness_start() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/dermfed-$1.XXXXXX")"
  PIDS=()
  mkdir -p "$WORK/logs"
  trap harness_cleanup EXIT
  trap 'exit 1' INT TERM
}

harness_cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "$rc" -ne 0 ]; then
    for f in "$WORK"/logs/* "$WORK"/*/logs/*; do
      [ -f "$f" ] || continue
      echo "----- $f (last 30 lines)"
      tail -n 30 "$f"
    done
    # Once more after the logs, so that a summary showing only the end still says why.
    [ -n "${HARNESS_FAILURE:-}" ] && echo "----- the test failed: $HARNESS_FAILURE"
  fi
  if [ -n "${DERMFED_TEST_KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}

fail() {
  HARNESS_FAILURE="$*"
  echo "FAIL: $*" >&2
  exit 1
}

wait_for() {
  local seconds="$1" what="$2"
  shift 2
  for _ in $(seq $((seconds * 10))); do
    "$@" && return 0
    sleep 0.1
  done
  fail "$what (waited $seconds s)"
}

# wait_exit PID SECONDS WHAT: waits up to SECONDS for PID to exit (fails naming WHAT if it
# still runs); returns its exit status.
wait_exit() {
  local pid="$1" seconds="$2" what="$3"
  for _ in $(seq $((seconds * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "$what still runs after $seconds s"
  wait "$pid"
}

# wait_exit_ok PID SECONDS WHAT: wait_exit, and fails unless PID exited with status 0.
wait_exit_ok() {
  wait_exit "$@"
  local rc=$?
  [ "$rc" -eq 0 ] || fail "$3 exited with $rc"
}

free_port() {
  /usr/bin/python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randrange(10000, max(10001, low))
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
PY
}
