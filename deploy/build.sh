#!/usr/bin/env bash
# Configures and builds dermfed into ${BUILD_DIR:-build} (Release, ccache when installed).
# Extra arguments are passed to `cmake --build` (e.g. --target dermfed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"
# Paths relative to the checkout in ccache's hash, so another clone (CI's) hits the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
GENERATOR=()
if command -v ninja >/dev/null && [ ! -f "$BUILD_DIR/Makefile" ]; then GENERATOR=(-G Ninja); fi
cmake -S "$ROOT" -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" \
  ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" "$@"
