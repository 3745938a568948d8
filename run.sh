#!/usr/bin/env bash
# dmin's two commands (see README):
#   ./run.sh        install what is missing, build, run the main job (rank candidates with the shipped model)
#   ./run.sh test   install what is missing, build, run every test (C++ via CTest, Python via unittest)
set -euo pipefail
cd "$(dirname "$0")"

mode=${1:-main}
case "$mode" in main|test) ;; *) echo "usage: ./run.sh [main|test]" >&2; exit 2 ;; esac

# Debian packages dmin needs (nothing is downloaded at build or test time beyond these).
pkgs="cmake make g++ clang libclang-rt-14-dev libeigen3-dev libxsimd-dev nlohmann-json3-dev catch2 libbenchmark-dev
      python3 python3-torch python3-numpy python3-yaml"
missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "run.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "run.sh: missing packages; run this first, then re-run ./run.sh $mode:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

jobs=${DMIN_JOBS:-2}
build=${DMIN_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDMIN_WERROR=ON -DDMIN_RELIABILITY_TESTS=ON
cmake --build "$build" -j "$jobs"

if [ "$mode" = main ]; then
  exec "$build/examples/rank_candidates" examples/models/multi_interest_world.safetensors
fi
ctest --test-dir "$build" --output-on-failure -j "$jobs"
