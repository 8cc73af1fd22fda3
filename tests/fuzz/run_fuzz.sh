#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, -DDERMFED_FUZZ=ON with clang: ASan + UBSan +
# coverage), writes their seed corpora, runs every target for N seconds and prints a table:
# target, runs, exec/s, corpus size (the persistent corpus, seeds not counted) and coverage
# (edges). Non-zero when any target crashes, leaks, times out or runs out of memory; the
# input that did it is saved under BUILD_DIR/fuzz/artifacts/ with the command to replay it.
#
#   tests/fuzz/run_fuzz.sh [--seconds N] [--build-dir DIR] [--parallel P] [--no-build] [TARGET...]
#
#   --seconds N     time per target (default 60)
#   --build-dir DIR the fuzz build (default build-fuzz); configured here if it is not yet
#   --parallel P    targets run at once (default 1; each is one process on one core)
#   --no-build      use the build as it is (ctest's fuzz test does)
#   TARGET...       only these (names as in BUILD_DIR/fuzz/targets.txt, with or without
#                   the _fuzzer suffix); default all
#
# The corpus each run grows is kept in BUILD_DIR/fuzz/corpus/<target> and is the starting
# point of the next run. docs/testing.md says more.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SECONDS_PER_TARGET=60
BUILD_DIR="$ROOT/build-fuzz"
PARALLEL=1
BUILD=1
ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER_TARGET="$2"; shift 2 ;;
    --build-dir) BUILD_DIR="$(cd "$ROOT" && realpath -m "$2")"; shift 2 ;;
    --parallel) PARALLEL="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "run_fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) ONLY+=("${1%_fuzzer}_fuzzer"); shift ;;
  esac
done

if [ "$BUILD" = 1 ]; then
  # Paths relative to the checkout in ccache's hash, as deploy/build.sh does.
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    CLANG="${FUZZ_CXX:-$(command -v clang++-14 || command -v clang++ || true)}"
    if [ -z "$CLANG" ]; then
      echo "run_fuzz.sh: needs clang++ with libFuzzer (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
      exit 2
    fi
    GENERATOR=()
    if command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi
    cmake -S "$ROOT" -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_CXX_COMPILER="$CLANG" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDERMFED_FUZZ=ON -DDERMFED_BUILD_BENCH=OFF >/dev/null
  fi
  build_start=$(date +%s)
  cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target dermfed_fuzz
  echo "== fuzz build took $(( $(date +%s) - build_start )) s"
fi

FUZZ="$BUILD_DIR/fuzz"
if [ ! -f "$FUZZ/targets.txt" ]; then
  echo "run_fuzz.sh: $FUZZ/targets.txt missing: is $BUILD_DIR a -DDERMFED_FUZZ=ON build?" >&2
  exit 2
fi
mapfile -t TARGETS < "$FUZZ/targets.txt"
if [ ${#ONLY[@]} -gt 0 ]; then
  for t in "${ONLY[@]}"; do
    if ! printf '%s\n' "${TARGETS[@]}" | grep -qx "$t"; then
      echo "run_fuzz.sh: no target $t (have: ${TARGETS[*]})" >&2
      exit 2
    fi
  done
  TARGETS=("${ONLY[@]}")
fi

SUPP="$ROOT/tests/sanitizers"
ASAN_DEFAULT=detect_leaks=1:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-$ASAN_DEFAULT}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:suppressions=$SUPP/ubsan.supp}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$SUPP/lsan.supp:print_suppressions=0}"
mkdir -p "$FUZZ/corpus" "$FUZZ/artifacts" "$FUZZ/logs" "$FUZZ/dicts"

# Runs one target; its log ends with libFuzzer's final stats.
run_one() {
  local t="$1" corpus="$FUZZ/corpus/$1" seeds="$FUZZ/seeds/$1" dict="$FUZZ/dicts/$1.dict"
  mkdir -p "$corpus" "$FUZZ/artifacts/$t"
  local args=(-max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10
              -print_final_stats=1 -artifact_prefix="$FUZZ/artifacts/$t/")
  : > "$dict"
  for d in "$ROOT/tests/fuzz/dicts/$t.dict" "$FUZZ/seeds/$t.dict"; do
    if [ -f "$d" ]; then cat "$d" >> "$dict"; fi
  done
  if [ -s "$dict" ]; then args+=(-dict="$dict"); fi
  local dirs=("$corpus")
  if [ -d "$seeds" ]; then dirs+=("$seeds"); fi
  # A scratch working directory: libFuzzer and the targets write nothing into the checkout.
  local work
  work="$(mktemp -d)"
  set +e
  (cd "$work" && "$FUZZ/$t" "${args[@]}" "${dirs[@]}") > "$FUZZ/logs/$t.log" 2>&1
  echo $? > "$FUZZ/logs/$t.rc"
  set -e
  rm -rf "$work"
}

echo "== fuzzing ${#TARGETS[@]} targets for ${SECONDS_PER_TARGET} s each, $PARALLEL at a time"
start=$(date +%s)
running=0
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$PARALLEL" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

stat() {  # stat NAME LOG: libFuzzer's final stat::NAME
  sed -n "s/^stat::$1: *//p" "$2" | tail -1
}
failed=()
printf '\n%-26s %10s %8s %8s %8s  %s\n' target runs exec/s corpus cov result
for t in "${TARGETS[@]}"; do
  log="$FUZZ/logs/$t.log"
  rc="$(cat "$FUZZ/logs/$t.rc" 2>/dev/null || echo 1)"
  runs="$(stat number_of_executed_units "$log")"
  eps="$(stat average_exec_per_sec "$log")"
  cov="$( (grep -Eo 'cov: [0-9]+' "$log" || true) | tail -1 | cut -d' ' -f2)"
  corpus="$(find "$FUZZ/corpus/$t" -type f | wc -l)"
  result=ok
  if [ "$rc" != 0 ]; then
    why="$(grep -Eom1 'ERROR: [A-Za-z]+: [^ ]+( [^ ]+)?|FUZZ_CHECK failed|runtime error' "$log" \
           || echo see log)"
    result="FAILED (exit $rc: $why)"
    failed+=("$t")
  fi
  printf '%-26s %10s %8s %8s %8s  %s\n' "$t" "${runs:--}" "${eps:--}" "$corpus" "${cov:--}" "$result"
done
echo "== fuzzing took $(( $(date +%s) - start )) s; logs in $FUZZ/logs"
if [ ${#failed[@]} -gt 0 ]; then
  for t in "${failed[@]}"; do
    echo
    echo "---- $t: last lines of $FUZZ/logs/$t.log"
    tail -40 "$FUZZ/logs/$t.log"
    for a in "$FUZZ/artifacts/$t"/*; do
      if [ -f "$a" ]; then echo "replay: $FUZZ/$t $a"; fi
    done
  done
  exit 1
fi
