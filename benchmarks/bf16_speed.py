#!/usr/bin/python3
"""bf16_speed.py: dmin's per-candidate time in bf16 and float32 precision, side by side, with both floors.

    benchmarks/bf16_speed.py --build BUILD [--models DIR] [--shapes small,paper,large] [--ns 1,128,1024]
                             [--rounds 3] [--seconds 1]

For every shape and N, in interleaved rounds: fma_peak (0.2 s: the float32 FMA peak and the vdpbf16ps peak
of this moment), then `dmin bench --precision float32` and `--precision bf16` (1 thread). Prints a markdown
table: per-candidate µs (median over rounds of the request medians / N), bf16 / float32, and each as a
multiple of its floor = factored per-candidate FLOPs (dmin_model_info) / the peak measured just before it
(float32: FMA peak; bf16: vdpbf16ps peak, 2 FLOP per product pair). Models: BUILD/benchmarks/models
(made by compare.py; --models to use another directory).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="CMake build dir with dmin and benchmarks/fma_peak, dmin_model_info")
    ap.add_argument("--models", help="directory with SHAPE.safetensors (default BUILD/benchmarks/models)")
    ap.add_argument("--shapes", default="small,paper,large")
    ap.add_argument("--ns", default="1,128,1024")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.0, help="dmin bench --seconds per measurement")
    a = ap.parse_args()
    models = a.models or os.path.join(a.build, "benchmarks", "models")
    dmin, fma = os.path.join(a.build, "dmin"), os.path.join(a.build, "benchmarks", "fma_peak")
    shapes, ns = a.shapes.split(","), [int(x) for x in a.ns.split(",")]
    path = {s: os.path.join(models, s + ".safetensors") for s in shapes}
    flops = {s: run_json([os.path.join(a.build, "benchmarks", "dmin_model_info"), path[s]])["flops"] for s in shapes}
    t = {(s, n, p): [] for s in shapes for n in ns for p in ("float32", "bf16")}
    peaks = {(s, n): [] for s in shapes for n in ns}
    for r in range(a.rounds):
        for s in shapes:
            for n in ns:
                pk = run_json([fma, "--seconds", "0.2"])
                peaks[(s, n)].append((pk["peak_gflops"], pk.get("bf16_gflops", 0.0)))
                for p in ("float32", "bf16"):
                    js = run_json([dmin, "bench", path[s], "--candidates", str(n), "--seconds", "%g" % a.seconds,
                                   "--precision", p])
                    t[(s, n, p)].append(js["request_us"]["median"] / n)
        print("round %d/%d done" % (r + 1, a.rounds), file=sys.stderr)
    med = statistics.median
    print("| shape | N | float32 µs/cand | bf16 µs/cand | bf16 / float32 | float32 × its floor | bf16 × its floor |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for s in shapes:
        pc = flops[s]["per_candidate"]
        for n in ns:
            f, b = med(t[(s, n, "float32")]), med(t[(s, n, "bf16")])
            # Each round's time against the peak measured just before it (the host's clock drifts).
            xf = med(x / (pc / (pk[0] * 1e3)) for x, pk in zip(t[(s, n, "float32")], peaks[(s, n)]))
            xb = med(x / (pc / (pk[1] * 1e3)) for x, pk in zip(t[(s, n, "bf16")], peaks[(s, n)])) if peaks[(s, n)][0][1] else float("nan")
            print("| %s | %d | %.3f | %.3f | %.2f× | %.2f× | %.2f× |" % (s, n, f, b, b / f, xf, xb))
    pk = [p for v in peaks.values() for p in v]
    print("\nPeaks (median of %d, GFLOP/s per core): float32 FMA %.1f, vdpbf16ps %.1f; per-candidate MFLOP: %s"
          % (len(pk), med(p[0] for p in pk), med(p[1] for p in pk),
             ", ".join("%s %.3f" % (s, flops[s]["per_candidate"] / 1e6) for s in shapes)))


if __name__ == "__main__":
    main()
