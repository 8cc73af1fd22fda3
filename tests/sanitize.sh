#!/usr/bin/env bash
# Builds the whole tree with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DDERMFED_SANITIZE=address,undefined, see cmake/sanitizers.cmake) in build-asan and runs
# ctest there: by default the unit tests. Non-zero on any test failure, which includes any
# sanitizer report (UBSan findings abort; ASan halts on the first error; LeakSanitizer checks
# at exit, with tests/sanitizers/lsan.supp for third-party leaks).
#
#   tests/sanitize.sh [--build-dir DIR] [--labels L] [--no-build] [CTEST_ARGS...]
#
#   --build-dir DIR  default build-asan
#   --labels L       ctest label regex (default unit; e.g. 'unit|integration')
#   --no-build       run the tests of the build as it is
#   CTEST_ARGS       passed to ctest (e.g. -R model_state)
#
# The compiler is CMake's default (CXX=clang++-14 to use clang instead), Release-like
# optimization with debug info (RelWithDebInfo) so reports have file:line. See docs/testing.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="$ROOT/build-asan"
LABELS=unit
BUILD=1
CTEST_ARGS=()
# deploy_files_test checks the packaging of release binaries (their ldd against the Docker
# images' package lists); instrumented binaries also link libasan/libubsan, so it cannot pass
# here and says nothing about memory safety.
EXCLUDE='^deploy_files_test$'
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD_DIR="$(cd "$ROOT" && realpath -m "$2")"; shift 2 ;;
    --labels) LABELS="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) CTEST_ARGS+=("$1"); shift ;;
  esac
done

start=$(date +%s)
if [ "$BUILD" = 1 ]; then
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    GENERATOR=()
    if command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi
    cmake -S "$ROOT" -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DDERMFED_SANITIZE=address,undefined -DDERMFED_BUILD_BENCH=OFF >/dev/null
  fi
  # Regenerate first, so that the test list below is the checkout's, not the last build's.
  cmake "$BUILD_DIR" >/dev/null
  # Only what the selected tests run: their executables and the binaries their scripts are
  # given (a sanitized build of everything takes hours on 2 cores).
  mapfile -t TARGETS < <(ctest --test-dir "$BUILD_DIR" -N -L "$LABELS" -E "$EXCLUDE" "${CTEST_ARGS[@]}" \
      --show-only=json-v1 | /usr/bin/python3 -c '
import json, os, sys
bin_dir = os.path.realpath(sys.argv[1]) + "/bin/"
for test in json.load(sys.stdin)["tests"]:
    command = test.get("command", [])
    if not command:  # an executable not built yet: dermfed_add_test names it after the test
        print(test["name"])
    required = [p["value"] for p in test.get("properties", []) if p["name"] == "REQUIRED_FILES"]
    required = [f for v in required for f in (v if isinstance(v, list) else v.split(";"))]
    for arg in command + required:
        if os.path.realpath(arg).startswith(bin_dir):
            print(os.path.basename(arg))
' "$BUILD_DIR" | sort -u)
  if [ ${#TARGETS[@]} -eq 0 ]; then TARGETS=(all); fi
  echo "== building ${#TARGETS[@]} targets: ${TARGETS[*]}"
  cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target "${TARGETS[@]}"
  echo "== sanitizer build took $(( $(date +%s) - start )) s"
fi

SUPP="$ROOT/tests/sanitizers"
# halt/abort on the first error, so a report fails the test that caused it; leaks are checked
# at exit (suppressions: third-party only). detect_odr_violation=0: Debian's static Abseil
# and Protobuf pieces are linked into several of our libraries.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_odr_violation=0:check_initialization_order=1:strict_init_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:suppressions=$SUPP/ubsan.supp}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$SUPP/lsan.supp:print_suppressions=0}"
export DERMFED_THREADS="${DERMFED_THREADS:-$(nproc)}"
cd "$BUILD_DIR"
tests_start=$(date +%s)
set +e
ctest --output-on-failure --timeout 1800 -L "$LABELS" -E "$EXCLUDE" "${CTEST_ARGS[@]}" | tee ctest-sanitize.log
rc=${PIPESTATUS[0]}
set -e
echo "== sanitized tests (-L '$LABELS') took $(( $(date +%s) - tests_start )) s"
exit "$rc"
