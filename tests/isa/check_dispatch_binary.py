#!/usr/bin/env python3
"""What makes a multi-instruction-set program safe on a CPU with fewer features than its best backend
(cmake/dmin_multi_isa.cmake), checked on the linked program and its objects:

- no backend object has static constructors (.init_array): they would run AVX code at start-up,
  before dmin::dispatch::load asks the CPU;
- the program's functions that use ymm or zmm registers either belong to an instruction set's
  namespace (dmin's avx2_fma, avx512bw..., xsimd's architecture types), or are shared inline
  functions (the standard library's, dmin's string helpers) whose kept copy is the lowest one: no
  object compiled for a narrower set (the program's own baseline objects, the scalar backend, or
  for zmm also the AVX2 one) defines the function. Such an object's copy would have come first in
  the link (lowest set first); a wide copy kept instead would run on every backend's path. Which
  shared functions a backend emits out of line depends on the compiler's inlining (GCC 14 emits
  some that GCC 12 inlines), so the check asks the objects rather than listing names;
- some function uses AVX registers at all, so the check sees the backends.

usage: check_dispatch_binary.py --objdump OBJDUMP --nm NM --cxxfilt CXXFILT --binary PROG
                                --baseline OBJ... --backend NAME=OBJ...   (backends in link order;
                                an argument may hold several, separated by ';')
"""
import argparse
import re
import subprocess
import sys

ISA_NAMESPACE = re.compile(r"avx2_fma|avx512bw|avx512dq|avx512cd|avx512f|xsimd::avx|xsimd::fma3")
HEADER = re.compile(r"^[0-9a-f]+ <(.*)>:$")


def run(*cmd, stdin=None):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=True).stdout


def wide_functions(objdump, binary):
    """{mangled name: 1 for ymm, 2 for zmm} over the program's functions that use AVX registers."""
    wide, fn = {}, None
    for line in run(objdump, "-d", "--no-show-raw-insn", binary).splitlines():
        m = HEADER.match(line)
        if m:
            fn = m.group(1)
        elif fn and "%zmm" in line:
            wide[fn] = 2
        elif fn and "%ymm" in line:
            wide[fn] = max(wide.get(fn, 0), 1)
    return wide


def width_of_backend(name):
    """The widest registers a backend may use: 0 (scalar, baseline), 1 (ymm) or 2 (zmm)."""
    return 2 if name.startswith("avx512") else 1 if name.startswith("avx") else 0


def main():
    ap = argparse.ArgumentParser()
    for opt in ("--objdump", "--nm", "--cxxfilt", "--binary"):
        ap.add_argument(opt, required=True)
    ap.add_argument("--baseline", nargs="+", required=True)
    ap.add_argument("--backend", nargs="+", required=True)
    a = ap.parse_args()
    # CTest passes a generator expression's object list as one argument: split it on ';'.
    split = lambda args: [x for arg in args for x in arg.split(";") if x]  # noqa: E731
    a.baseline = split(a.baseline)
    backends = [b.split("=", 1) for b in split(a.backend)]

    errors = [f"{obj} has static constructors: they would run before the CPU check"
              for _, obj in backends if re.search(r"\.init_array|\.ctors", run(a.objdump, "-h", obj))]
    wide = wide_functions(a.objdump, a.binary)
    names = list(wide)
    demangled = dict(zip(names, run(a.cxxfilt, stdin="\n".join(names) + "\n").splitlines()))
    shared = {n: w for n, w in wide.items() if not ISA_NAMESPACE.search(demangled[n])}

    objects = [(0, obj) for obj in a.baseline] + [(width_of_backend(name), obj) for name, obj in backends]
    for width, obj in objects:
        defined = set(run(a.nm, "--defined-only", "--extern-only", "--format=posix", obj).split("\n"))
        defined = {line.split(" ", 1)[0] for line in defined if line}
        for n, w in shared.items():
            if width < w and n in defined:
                errors.append(f"kept the {'zmm' if w == 2 else 'ymm'} copy although the narrower {obj} defines it "
                              f"(the backends are not linked lowest first): {demangled[n][:300]}")
    if not wide:
        errors.append(f"no function of {a.binary} uses AVX registers: the check does not see the backends")
    for e in errors:
        print("check_dispatch_binary:", e)
    if errors:
        return 1
    print(f"{len(wide)} functions use AVX registers: {len(wide) - len(shared)} in an instruction set's namespace, "
          f"{len(shared)} shared ones only the wide backends define; no static constructors in the backends")
    return 0


if __name__ == "__main__":
    sys.exit(main())
