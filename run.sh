#!/usr/bin/env bash
# dmin's two commands (see README):
#   ./run.sh        install what the main job is missing, build the one example it runs and the Python
#                   module dmin, check that `import dmin` works, rank candidates with the shipped model
#   ./run.sh test   install what is missing, build everything (with the Python extension dmin), run every
#                   test (C++ via CTest, Python via unittest)
# Debian 12 and 13 alike: the package names below exist in both; the clang runtime is the one of the
# installed clang's major version (14 on Debian 12, 19 on Debian 13).
set -euo pipefail
cd "$(dirname "$0")"

mode=${1:-main}
case "$mode" in main|test) ;; *) echo "usage: ./run.sh [main|test]" >&2; exit 2 ;; esac

# Debian packages (nothing is downloaded at build or test time beyond these). The main job needs a
# compiler and the three header libraries, and for `import dmin` pybind11, Python's headers and numpy;
# tests and benchmarks need the rest.
main_pkgs="cmake make g++ libeigen3-dev libxsimd-dev nlohmann-json3-dev
           python3 python3-dev pybind11-dev python3-pybind11 python3-numpy"
test_pkgs="clang catch2 libbenchmark-dev python3-torch python3-yaml
           python3-dask python3-distributed python3-pandas"

updated=0
missing_of() {  # the packages among "$@" that are not installed
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
install() {  # install the missing ones among "$@" as root, or say how and stop
  local missing
  missing=$(missing_of "$@" | tr '\n' ' ')
  [ -n "${missing// }" ] || return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: missing packages; run this first, then re-run ./run.sh $mode:" >&2
    echo "  sudo apt-get install -y --no-install-recommends $missing" >&2
    exit 1
  fi
  echo "run.sh: installing $missing"
  export DEBIAN_FRONTEND=noninteractive
  [ "$updated" = 1 ] || { apt-get update -qq; updated=1; }
  # shellcheck disable=SC2086  # one word per package
  apt-get install -y -qq --no-install-recommends $missing
}
clang_major() {  # major version of the installed clang, else of the one apt would install
  if command -v clang >/dev/null; then
    clang --version | sed -n '1s/.*clang version \([0-9][0-9]*\).*/\1/p'
  else
    apt-cache depends clang 2>/dev/null | sed -n 's/^ *Depends: clang-\([0-9][0-9]*\)$/\1/p' | head -n 1
  fi
}

jobs=${DMIN_JOBS:-2}
build=${DMIN_BUILD_DIR:-build}
common=(-DCMAKE_BUILD_TYPE=Release -DDMIN_WERROR=ON)

if [ "$mode" = main ]; then
  # shellcheck disable=SC2086
  install $main_pkgs
  # A fresh build directory is configured without tests and benchmarks (their packages may be missing,
  # and configuring them costs time); one that ./run.sh test configured keeps them. Either way only
  # rank_candidates and the Python module are built.
  if [ -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" "${common[@]}" -DDMIN_BUILD_PYTHON=ON
  else
    cmake -S . -B "$build" "${common[@]}" -DDMIN_BUILD_TESTS=OFF -DDMIN_BUILD_BENCHMARKS=OFF -DDMIN_RELIABILITY_TESTS=OFF \
      -DDMIN_BUILD_PYTHON=ON
  fi
  cmake --build "$build" -j "$jobs" --target rank_candidates dmin_python
  # The module loads the shipped model with its self-test (the stored reference samples scored and
  # compared), so a module that imports but cannot score fails here, not in the user's first script.
  PYTHONPATH="$build/python" /usr/bin/python3 -c '
import sys, dmin
m = dmin.load(sys.argv[1])
print("run.sh: import dmin works with PYTHONPATH=%s/python (shipped model self-tested, %d parameters)"
      % (sys.argv[2], m.parameter_count))' \
    examples/models/multi_interest_world.safetensors "$build"
  exec "$build/examples/rank_candidates" examples/models/multi_interest_world.safetensors
fi

# libclang-rt-N-dev: the sanitizer and libFuzzer runtimes of the reliability sub-build, for clang N.
# Known up front when clang is installed (or apt's lists name its version), else after installing it.
major=$(clang_major)
# shellcheck disable=SC2086
install $main_pkgs $test_pkgs ${major:+libclang-rt-$major-dev}
if [ -z "$major" ]; then
  major=$(clang_major)
  [ -n "$major" ] || { echo "run.sh: cannot tell the clang version (clang --version)" >&2; exit 1; }
  install "libclang-rt-$major-dev"
fi

cmake -S . -B "$build" "${common[@]}" -DDMIN_BUILD_TESTS=ON -DDMIN_BUILD_BENCHMARKS=ON -DDMIN_RELIABILITY_TESTS=ON \
  -DDMIN_BUILD_PYTHON=ON
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"
