#!/usr/bin/env python3
"""Line and branch coverage of include/dmin/ from a --coverage build's .gcda files (used by tools/coverage).

Runs `gcov --json-format --stdout -b` on every .gcda under BUILD and merges what the objects say about
each header line: a line is covered when any object (any test executable, any template instantiation)
executed it. Branches are merged the same way by (line, index); the exception edges that every call
has ("throw" branches) are left out, as gcovr's --exclude-throw-branches does.

Lines unreachable by design carry a marker and are counted apart, not as covered:
    ... code ...  // cov-exempt: why it cannot run in a test
    // cov-exempt-begin: why            (every line up to the matching end)
    // cov-exempt-end
What gcov cannot see is not counted either way: a template that no test instantiates has no lines.

usage: coverage_report.py BUILD_DIR SOURCE_ROOT [--min PERCENT] [--jobs N]
Prints one row per header (lines, branches, uncovered line ranges) and the total; exits 1 when the
total line coverage is below --min.
"""
import argparse
import collections
import concurrent.futures
import json
import os
import subprocess
import sys

EXEMPT, BEGIN, END = "cov-exempt:", "cov-exempt-begin:", "cov-exempt-end"


def gcov_json(gcda):
    """The JSON documents gcov prints for one .gcda (one per line of its output)."""
    out = subprocess.run(["gcov", "--json-format", "--stdout", "-b", "-o", os.path.dirname(gcda), gcda],
                         cwd=os.path.dirname(gcda), capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def merge(build, root, jobs):
    """{header: {line: hit}}, {header: {(line, index): taken}} over every .gcda in build."""
    gcdas = [os.path.join(d, f) for d, _, fs in os.walk(build) for f in fs if f.endswith(".gcda")]
    if not gcdas:
        sys.exit(f"coverage: no .gcda files under {build}: build with --coverage and run the tests first")
    prefix = os.path.join(root, "include", "dmin") + os.sep
    lines, branches = collections.defaultdict(dict), collections.defaultdict(dict)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for docs in pool.map(gcov_json, gcdas):
            for doc in docs:
                for f in doc["files"]:
                    path = os.path.realpath(os.path.join(doc.get("current_working_directory", ""), f["file"]))
                    if not path.startswith(prefix):
                        continue
                    rel = os.path.relpath(path, root)
                    for ln in f["lines"]:
                        n = ln["line_number"]
                        lines[rel][n] = lines[rel].get(n, False) or ln["count"] > 0
                        real = [b for b in ln["branches"] if not b["throw"]]
                        for i, b in enumerate(real):
                            key = (n, i)
                            branches[rel][key] = branches[rel].get(key, False) or b["count"] > 0
    return lines, branches


def exempt_lines(path):
    """Line numbers marked unreachable by design (see the module doc)."""
    marked, inside = set(), False
    with open(path, encoding="utf-8") as f:
        for n, text in enumerate(f, 1):
            if BEGIN in text:
                inside = True
            if inside or EXEMPT in text:
                marked.add(n)
            if END in text:
                inside = False
    return marked


def ranges(numbers):
    """[3, 4, 5, 9] -> '3-5 9'."""
    out, numbers = [], sorted(numbers)
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(str(numbers[i]) if i == j else f"{numbers[i]}-{numbers[j]}")
        i = j + 1
    return " ".join(out)


def pct(part, whole):
    return 100.0 * part / whole if whole else 100.0


def report(root, lines, branches, min_pct):
    tot = collections.Counter()
    print(f"{'header':52} {'lines':>15} {'branches':>15}  uncovered lines")
    for rel in sorted(lines):
        exempt = exempt_lines(os.path.join(root, rel))
        counted = {n: hit for n, hit in lines[rel].items() if n not in exempt}
        hit = sum(counted.values())
        br = {k: t for k, t in branches[rel].items() if k[0] not in exempt}
        taken = sum(br.values())
        missed = [n for n, h in counted.items() if not h]
        tot.update(lines=len(counted), hit=hit, br=len(br), taken=taken,
                   exempt=len(exempt & set(lines[rel])))
        print(f"{rel:52} {hit:5}/{len(counted):<5} {pct(hit, len(counted)):5.1f}% "
              f"{taken:5}/{len(br):<5} {pct(taken, len(br)):5.1f}%  {ranges(missed)}")
    total = pct(tot["hit"], tot["lines"])
    print(f"{'total':52} {tot['hit']:5}/{tot['lines']:<5} {total:5.1f}% "
          f"{tot['taken']:5}/{tot['br']:<5} {pct(tot['taken'], tot['br']):5.1f}%  "
          f"({tot['exempt']} lines marked cov-exempt, not counted)")
    if total < min_pct:
        print(f"coverage: {total:.1f}% of lines is below the target {min_pct:g}%")
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("root")
    ap.add_argument("--min", type=float, default=0.0)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    root = os.path.realpath(a.root)
    lines, branches = merge(os.path.realpath(a.build), root, a.jobs)
    return report(root, lines, branches, a.min)


if __name__ == "__main__":
    sys.exit(main())
