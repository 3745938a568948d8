#!/usr/bin/env python3
"""Bounded libFuzzer run of one dmin fuzz target (CTest "reliability.fuzz.<target>", tests/fuzz/README.md).

Builds the seed corpus from the test fixtures (weights files, their specs and reference samples),
adds the committed corpus (tests/fuzz/corpus/<target>), runs the fuzzer for --seconds, and prints
one summary line with the number of executions. A finding fails the test and leaves the reproducer
under <work>/artifacts/<target>/; copy it to tests/fuzz/regressions/<target>/.
Only the standard library is used.
"""
import argparse
import glob
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import time

# Inputs of the request target: reference samples of these fixture models (the models the request and
# scorer targets load, in this order; see DMIN_FUZZ_MODELS in tests/reliability.cmake).
LOAD_SEED_MAX_BYTES = 40_000


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def fixture_files(fixtures):
    files = sorted(glob.glob(os.path.join(fixtures, "random", "*.safetensors")))
    files += sorted(glob.glob(os.path.join(fixtures, "fuxictr", "*.safetensors")))
    return [f for f in files if not f.endswith(".ref.safetensors")]


def write(dir_, name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(dir_, name), mode) as f:
        f.write(data)


def make_seeds(target, seeds, fixtures, data_dir, models):
    shutil.rmtree(seeds, ignore_errors=True)
    os.makedirs(seeds)
    if target == "load":
        for f in fixture_files(fixtures):
            if os.path.getsize(f) <= LOAD_SEED_MAX_BYTES:
                shutil.copy(f, os.path.join(seeds, os.path.basename(f)))
    elif target == "spec":
        for f in fixture_files(fixtures):
            write(seeds, os.path.basename(f) + ".spec.json", header(f)["__metadata__"]["spec"])
    elif target == "request":
        for f in models:
            ref = json.loads(header(f)["__metadata__"]["reference"])
            base = os.path.basename(f)
            write(seeds, base + ".all.json", json.dumps({"samples": ref["samples"]}))
            for i, s in enumerate(ref["samples"][:4]):
                write(seeds, "%s.%d.json" % (base, i), json.dumps({"samples": [s]}))
        for f in sorted(glob.glob(os.path.join(data_dir, "fuxictr", "*", "inputs.json"))):
            doc = json.load(open(f))
            write(seeds, os.path.basename(os.path.dirname(f)) + ".inputs.json",
                  json.dumps({"samples": doc["samples"][:3]}))
    elif target in ("scorer", "isa"):  # bytes decoded by tests/fuzz/scorer_input.hpp
        rng = random.Random(20240601)
        for i in range(24):
            n = rng.choice([16, 64, 256, 1024, 4096])
            write(seeds, "random_%02d.bin" % i, bytes(rng.randrange(256) for _ in range(n)))
    return len(os.listdir(seeds))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fuzzer", required=True)
    ap.add_argument("--target", required=True, choices=["load", "spec", "request", "scorer", "isa"])
    ap.add_argument("--source", required=True, help="tests/fuzz")
    ap.add_argument("--fixtures", required=True, help="DMIN_TEST_WORK (random/, fuxictr/)")
    ap.add_argument("--data", required=True, help="tests/data")
    ap.add_argument("--work", required=True, help="persistent work dir (corpus, artifacts, logs)")
    ap.add_argument("--models", required=True, help="colon-separated models of the request/scorer targets")
    ap.add_argument("--seconds", type=int, default=45)
    ap.add_argument("--rss-limit-mb", type=int, default=2560)
    args = ap.parse_args()

    t = args.target
    corpus = os.path.join(args.work, "corpus", t)  # grows across runs (first dir: libFuzzer writes here)
    seeds = os.path.join(args.work, "seeds", t)
    artifacts = os.path.join(args.work, "artifacts", t) + os.sep
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    models = [m for m in args.models.split(":") if m]
    nseeds = make_seeds(t, seeds, args.fixtures, args.data, models)
    dirs = [corpus, seeds]
    committed = os.path.join(args.source, "corpus", t)
    if os.path.isdir(committed) and os.listdir(committed):
        dirs.append(committed)
    scorer_corpus = os.path.join(args.source, "corpus", "scorer")
    if t == "isa" and os.path.isdir(scorer_corpus):  # the scorer's input format (scorer_input.hpp) seeds it too
        dirs.append(scorer_corpus)
    # tests/fuzz/regressions is replayed by its own tests (reliability.fuzz_regression.*), not seeded here:
    # a reproducer of a still-open bug would stop every run at startup.
    before = set(os.listdir(artifacts))
    cmd = [args.fuzzer, "-max_total_time=%d" % args.seconds, "-timeout=30", "-rss_limit_mb=%d" % args.rss_limit_mb,
           "-print_final_stats=1", "-artifact_prefix=" + artifacts]
    binary = t in ("scorer", "isa")  # the scorer input format: bytes, not JSON
    dict_path = os.path.join(args.source, "json.dict")
    if not binary and os.path.exists(dict_path):
        cmd.append("-dict=" + dict_path)
    if binary:
        cmd += ["-max_len=4096", "-len_control=0"]
    if t in ("spec", "request"):
        cmd += ["-max_len=16384"]
    cmd += dirs
    env = dict(os.environ, DMIN_FUZZ_MODELS=args.models,
               ASAN_OPTIONS="abort_on_error=1:detect_leaks=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    log_path = os.path.join(args.work, "%s.log" % t)
    print("$ " + " ".join(cmd), flush=True)
    start = time.time()
    with open(log_path, "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    elapsed = time.time() - start
    text = open(log_path, errors="replace").read()
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    execs = int(execs.group(1)) if execs else -1
    corpus_size = len(os.listdir(corpus))
    found = sorted(set(os.listdir(artifacts)) - before)
    print("fuzz %s: %d executions in %.0f s (%.0f/s), %d seeds, corpus %d files, exit %d, %d finding(s)"
          % (t, execs, elapsed, execs / max(elapsed, 1e-9), nseeds, corpus_size, rc, len(found)))
    if rc != 0 or found:
        tail = text.splitlines()[-60:]
        print("---- last lines of %s ----" % log_path)
        print("\n".join(tail))
        for f in found:
            print("reproducer: %s%s  ->  copy to tests/fuzz/regressions/%s/<descriptive-name>" % (artifacts, f, t))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
