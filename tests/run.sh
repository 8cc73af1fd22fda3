#!/usr/bin/env bash
# README command 2: installs what is missing, builds everything, runs every test with ctest.
# Non-zero on any failure. Set DERMFED_REQUIRE_PARITY=1 to also fail when the parity tests
# are skipped (CI does).  Extra arguments go to ctest (e.g. -L unit).
#
# Then every libFuzzer target (tests/fuzz) runs for DERMFED_FUZZ_SECONDS (default 10) each,
# from its generated seed corpus, in a clang build in build-fuzz (docs/testing.md);
# DERMFED_FUZZ_SECONDS=0 leaves fuzzing out. Without clang/libFuzzer the fuzz step is
# skipped with a message, or fails when DERMFED_REQUIRE_FUZZ=1 (CI sets it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
start=$(date +%s)
deploy/install-deps.sh
deploy/build.sh
built=$(date +%s)
echo "== build took $((built - start)) s"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
cd "$BUILD_DIR"
export DERMFED_THREADS="${DERMFED_THREADS:-$(nproc)}"
set +e
ctest --output-on-failure --timeout 900 "$@" | tee ctest.log
rc=${PIPESTATUS[0]}
set -e
echo "== tests took $(( $(date +%s) - built )) s"
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
if [ "${DERMFED_REQUIRE_PARITY:-0}" = "1" ] && grep -q "parity.*\*\*\*Skipped" ctest.log; then
  echo "tests/run.sh: parity tests were skipped, but DERMFED_REQUIRE_PARITY=1" >&2
  exit 1
fi

FUZZ_SECONDS="${DERMFED_FUZZ_SECONDS:-10}"
if [ "$FUZZ_SECONDS" != 0 ]; then
  CLANG="$(command -v clang++-14 || command -v clang++ || true)"
  LIBFUZZER="$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null | head -1 || true)"
  if [ -z "$CLANG" ] || [ -z "$LIBFUZZER" ]; then
    echo "tests/run.sh: fuzzing skipped: no clang++ with libFuzzer (clang-14 libclang-rt-14-dev)" >&2
    if [ "${DERMFED_REQUIRE_FUZZ:-0}" = "1" ]; then exit 1; fi
  else
    fuzz_start=$(date +%s)
    "$ROOT/tests/fuzz/run_fuzz.sh" --seconds "$FUZZ_SECONDS" --parallel "$(nproc)" \
      --build-dir "${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
    echo "== fuzz build and runs took $(( $(date +%s) - fuzz_start )) s"
  fi
fi
