#!/usr/bin/env bash
# What one service translation unit pays for including dmin: wall time, CPU time and peak memory of
# compiling benchmarks/compile_cost_tu.cpp, at -O2 and at -O3 -march=native, as plain header-only
# use and with DMIN_EXTERN_TEMPLATES (dmin/extern_templates.hpp), plus the one instantiation TU that
# the latter needs once per program.
#   benchmarks/compile_cost.sh [CXX]     (default g++; run on an otherwise idle machine)
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${1:-g++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo '#include <dmin/instantiate.hpp>' > "$tmp/instances.cpp"
flags=(-std=c++17 -ffp-contract=off -Iinclude -isystem /usr/include/eigen3 -c -o "$tmp/out.o")
echo "| $($cxx --version | head -n 1) | flags | wall s | CPU s | peak MB |"
echo "|---|---|---|---|---|"
for opt in "-O2" "-O3 -march=native"; do
  for what in header-only extern instantiation; do
    src=benchmarks/compile_cost_tu.cpp def=()
    [ "$what" = extern ] && def=(-DDMIN_EXTERN_TEMPLATES)
    [ "$what" = instantiation ] && src=$tmp/instances.cpp
    # shellcheck disable=SC2086  # $opt is one or two flags
    /usr/bin/time -f "%e %U %M" -o "$tmp/t" "$cxx" $opt "${def[@]}" "${flags[@]}" "$src"
    read -r wall cpu kb < "$tmp/t"
    echo "| $what | $opt | $wall | $cpu | $((kb / 1024)) |"
  done
done
