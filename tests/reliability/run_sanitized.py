#!/usr/bin/env python3
"""Runs a sanitizer build of dmin's Catch2 tests (CTest "reliability.asan_ubsan", "reliability.tsan").

Each test case runs in its own process, so one sanitizer report (they abort: halt_on_error, no
recovery, no suppressions) fails that test case and the others still run; the summary names every
failing case. The binary gets its own work directory in which random/ and fuxictr/ link to the
shared fixtures, so the files tests write there (broken_*.safetensors, ...) never race with the
normal test binary running in parallel.
"""
import argparse
import os
import subprocess
import sys
import time


def catch_escape(name):
    for ch in "\\,[]":
        name = name.replace(ch, "\\" + ch)
    return name


def list_cases(exe, filter, env):
    """The test case names, one per line: Catch2 2's --list-test-names-only (whose exit status is the
    count), else Catch2 3's spelling of it, which 2 does not know."""
    for flags in (["--list-test-names-only"], ["--list-tests", "--verbosity", "quiet"]):
        p = subprocess.run([exe] + flags + ([filter] if filter else []), env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True)
        if "Unrecognised token" not in p.stdout + p.stderr:
            return [line for line in p.stdout.splitlines() if line.strip()]
    return []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--exe", required=True)
    ap.add_argument("--fixtures", required=True, help="DMIN_TEST_WORK of the main build")
    ap.add_argument("--work", required=True, help="private work dir for this run")
    ap.add_argument("--name", required=True)
    ap.add_argument("filter", nargs="?", default="", help="Catch2 test spec selecting the cases (default: all)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    for sub in ("random", "fuxictr"):
        link = os.path.join(args.work, sub)
        if os.path.islink(link) or os.path.exists(link):
            os.remove(link)
        os.symlink(os.path.join(os.path.abspath(args.fixtures), sub), link)
    env = dict(os.environ, DMIN_TEST_WORK=args.work,
               ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:"
                            "detect_stack_use_after_return=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
               TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1")
    cases = list_cases(args.exe, args.filter, env)
    print("%s: %d test cases from %s" % (args.name, len(cases), args.exe), flush=True)
    start = time.time()
    failed = []
    for case in cases:
        t0 = time.time()
        p = subprocess.run([args.exe, catch_escape(case)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, errors="replace")
        ok = p.returncode == 0
        print("  %-6s %5.1f s  %s" % ("ok" if ok else "FAILED", time.time() - t0, case), flush=True)
        if not ok:
            failed.append(case)
            print(p.stdout[-20000:], flush=True)
    print("%s: %d/%d test cases passed in %.0f s%s" % (args.name, len(cases) - len(failed), len(cases), time.time() - start,
                                                       "" if not failed else "; FAILED: " + " | ".join(failed)), flush=True)
    return 0 if cases and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
