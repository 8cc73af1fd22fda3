#!/usr/bin/env bash
# Installs every Debian (bookworm) package that dermfed's build, tests and demo need.
# Non-interactive and idempotent: when everything is already installed it changes nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev                                   # LibTorch 1.13 (CPU)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libssl-dev
  libgtest-dev libgmock-dev
  libcli11-dev nlohmann-json3-dev                # command line, JSON
  libturbojpeg0-dev libpng-dev                   # image codecs
  libtomlplusplus-dev libsqlite3-dev             # config files, coordinator state
  libcpp-httplib-dev libjs-chart.js              # the coordinator's HTTPS dashboard
  chromium                                       # the dashboard's browser test (tests only)
  python3 python3-torch python3-torchvision      # parity fixtures (tests only)
  python3-prometheus-client curl                 # /metrics parsed by Prometheus' parser (tests only)
  clang-14 libclang-rt-14-dev                    # libFuzzer targets, tests/fuzz (tests only)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
