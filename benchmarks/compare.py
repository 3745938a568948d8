#!/usr/bin/python3
"""dmin vs PyTorch eager, TorchScript and ONNX Runtime on the same random weights and requests.

    /usr/bin/python3 benchmarks/compare.py --build BUILD_DIR [--shapes small,paper,large] [--quick]
                                           [--rounds R] [--ns 1,16,128,1024] [--no-ort] [--json OUT]

One run does everything, in this order:
  1. writes / reuses the random-weight models of python/bench/models.py in BUILD/benchmarks/models
     (torch state + spec -> `dmin-export torch` -> .safetensors), and prints dmin_model_info for each;
  2. measures this machine's single-core (and two-core) FP32 FMA peak with BUILD/benchmarks/fma_peak, at
     the start and the end, and the single-core peak again just before every 1-thread dmin measurement;
  3. builds, per shape and N, the request that `dmin bench --candidates N` times (same mt19937_64
     seed-42 recipe: full-length sequences, random ids) and feeds the same ids to every engine as N
     rows repeating the user (the way a batch engine must be fed);
  4. checks that PyTorch eager, TorchScript and ONNX Runtime agree with `dmin predict` on those
     rows to 1e-5 (absolute), and refuses to time an engine that does not;
  5. times, in R interleaved rounds, `dmin bench MODEL --candidates N --threads 1` (and --threads 2),
     PyTorch eager (torch.inference_mode), TorchScript (torch.jit.trace + freeze) and ONNX Runtime
     (npm onnxruntime-node, installed into BUILD/benchmarks/ort with --ignore-scripts), all with one
     intra-op thread; reports medians over rounds;
  6. prints per-candidate latency per engine, each engine's ratio to dmin, and each engine's time as a
     multiple of the floor = factored per-candidate FLOPs (dmin::count_flops) / measured peak (the median
     of the peaks of step 5; dmin's 1-thread multiples pair each round with the peak measured just before
     it, because the host's clock drifts), then the targets of the performance issue with PASS/FAIL.
Results also go to BUILD/benchmarks/compare/results.json (and results.md).

PyTorch must run on an optimised BLAS (Debian: libopenblas0-pthread): when the process maps Debian's
reference BLAS the script stops and says how to install one, unless --allow-reference-blas.
"""

import argparse
import copy
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import types
import warnings
from collections import OrderedDict

# One intra-op thread everywhere, before torch / OpenBLAS / OpenMP initialise.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "python", "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import models as bench_models  # noqa: E402  (python/bench/models.py)
import dmin_ref.model as dmin_ref_model  # noqa: E402
from dmin_ref.model import DMIN, Dice  # noqa: E402

warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")

NS_DEFAULT = (1, 16, 128, 1024)
ENGINES = ("dmin", "onnxruntime", "torchscript", "eager")
LABEL = OrderedDict([("dmin", "dmin (1 thread)"), ("dmin_t2", "dmin (2 threads)"), ("dmin_bf16", "dmin bf16 (1 thread)"),
                     ("onnxruntime", "ONNX Runtime"),
                     ("torchscript", "TorchScript"), ("eager", "PyTorch eager")])
TOL = 1e-5


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# the request `dmin bench` times (tools/bench_cli.hpp RandomRequest, fill 1.0, seed 42)

class MT19937_64:
    """std::mt19937_64."""

    def __init__(self, seed):
        self.mt = [0] * 312
        self.mt[0] = seed & 0xFFFFFFFFFFFFFFFF
        for i in range(1, 312):
            prev = self.mt[i - 1]
            self.mt[i] = (6364136223846793005 * (prev ^ (prev >> 62)) + i) & 0xFFFFFFFFFFFFFFFF
        self.idx = 312

    def _twist(self):
        mt = self.mt
        for i in range(312):
            x = (mt[i] & 0xFFFFFFFF80000000) | (mt[(i + 1) % 312] & 0x7FFFFFFF)
            xa = x >> 1
            if x & 1:
                xa ^= 0xB5026F5AA96619E9
            mt[i] = mt[(i + 156) % 312] ^ xa
        self.idx = 0

    def __call__(self):
        if self.idx >= 312:
            self._twist()
        y = self.mt[self.idx]
        self.idx += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & 0xFFFFFFFFFFFFFFFF


def bench_request(spec, n, seed=42):
    """(user dict, candidate dict name -> list of N values) exactly as dmin bench draws them."""
    rng = MT19937_64(seed)

    def rid(f):
        return 1 + rng() % max(1, f["vocab_size"] - 1)

    def rval():  # std::uniform_real_distribution<float>(-1, 1) with libstdc++ generate_canonical
        u = np.float32(rng()) / np.float32(2.0 ** 64)
        u = min(float(u), float(np.nextafter(np.float32(1), np.float32(0))))
        return float(np.float32(u) * np.float32(2.0) + np.float32(-1.0))

    user = OrderedDict()
    for f in spec["features"]:
        if f["role"] == "candidate":
            continue
        if f["type"] == "numeric":
            user[f["name"]] = rval()
        elif f["type"] == "categorical":
            user[f["name"]] = rid(f)
        else:
            user[f["name"]] = [rid(f) for _ in range(f["max_len"])]
    cands = OrderedDict((f["name"], []) for f in spec["features"] if f["role"] == "candidate")
    for _ in range(n):
        for f in spec["features"]:
            if f["role"] != "candidate":
                continue
            cands[f["name"]].append(rval() if f["type"] == "numeric" else rid(f))
    return user, cands


def request_rows(user, cands, n):
    rows = []
    for c in range(n):
        r = OrderedDict(user)
        for k, v in cands.items():
            r[k] = v[c]
        rows.append(r)
    return rows


def input_names(model):
    need = set(model._needed_features())
    return [f["name"] for f in model.spec["features"] if f["name"] in need]


def request_tensors(spec, names, user, cands, n):
    """N rows repeating the user: contiguous tensors in `names` order."""
    types_ = {f["name"]: f["type"] for f in spec["features"]}
    out = []
    for name in names:
        if name in cands:
            dt = torch.float32 if types_[name] == "numeric" else torch.long
            out.append(torch.tensor(cands[name], dtype=dt))
        elif types_[name] == "sequence":
            out.append(torch.tensor(user[name], dtype=torch.long).unsqueeze(0).repeat(n, 1).contiguous())
        elif types_[name] == "numeric":
            out.append(torch.full((n,), float(user[name]), dtype=torch.float32))
        else:
            out.append(torch.full((n,), int(user[name]), dtype=torch.long))
    return out


# ----------------------------------------------------------------------------------------------
# engines

class Positional(torch.nn.Module):
    """DMIN with positional tensor inputs (for torch.jit.trace and torch.onnx.export)."""

    def __init__(self, model, names):
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, *xs):
        return self.model(dict(zip(self.names, xs)))


def _dice_explicit(self, x):
    bn = self.bn
    p = torch.sigmoid((x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps))
    return p * x + self.alpha * (1 - p) * x


def onnx_copy(model):
    """A copy whose Dice normalisation is the explicit eval formula (BatchNorm1d(affine=False) in eval
    does not export with a dynamic batch in torch 1.13)."""
    m = copy.deepcopy(model).eval()
    for mod in m.modules():
        if isinstance(mod, Dice):
            mod.forward = types.MethodType(_dice_explicit, mod)
    return m


def _get_masks_constant(ids):
    """dmin_ref.model.get_masks with the eye / causal masks as constants: torch.eye(dtype=bool) exports as
    EyeLike on bool, which ONNX Runtime does not implement."""
    valid = ids != 0
    L = int(ids.shape[1])
    eye = torch.from_numpy(np.eye(L, dtype=bool))
    causal = torch.from_numpy(np.tril(np.ones((L, L), dtype=bool)))
    allowed = (valid.unsqueeze(1) | eye.unsqueeze(0)) & causal.unsqueeze(0)
    return valid, allowed


def export_onnx(model, names, example, path):
    saved = dmin_ref_model.get_masks
    dmin_ref_model.get_masks = _get_masks_constant
    try:
        with torch.no_grad():
            torch.onnx.export(Positional(onnx_copy(model), names).eval(), tuple(example), path,
                              input_names=names, output_names=["prob"], opset_version=14,
                              dynamic_axes=dict([(k, {0: "batch"}) for k in names] + [("prob", {0: "batch"})]),
                              do_constant_folding=True)
    finally:
        dmin_ref_model.get_masks = saved


def time_calls(fn, budget_s, min_iters, warmup=1, max_iters=100000):
    """(wall µs per call, thread CPU µs per call); torch runs its one intra-op thread in this thread."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < budget_s:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
        cpu.append((time.thread_time() - c0) * 1e6)
        if len(times) >= max_iters:
            break
    return times, cpu


class OrtServer:
    """One node process per (model, threads) running benchmarks/ort_runner.js."""

    def __init__(self, node, node_path, onnx_path, threads=1):
        env = dict(os.environ, NODE_PATH=node_path)
        self.p = subprocess.Popen([node, os.path.join(HERE, "ort_runner.js"), onnx_path, str(threads)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env, bufsize=1)
        hello = self._read()
        if not hello.get("ready"):
            raise RuntimeError("onnxruntime-node: %s" % hello.get("error", hello))
        self.version = hello.get("version", "")

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            err = self.p.stderr.read()
            raise RuntimeError("ort_runner.js exited: %s" % err.strip().splitlines()[-1:] if err else "no output")
        return json.loads(line)

    def run(self, inputs, budget_s, min_iters, warmup=1, return_output=False):
        self.p.stdin.write(json.dumps({"inputs": inputs, "budget_s": budget_s, "min_iters": min_iters,
                                       "warmup": warmup, "return_output": return_output}) + "\n")
        self.p.stdin.flush()
        r = self._read()
        if "error" in r:
            raise RuntimeError("onnxruntime: %s" % r["error"])
        return r

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.p.kill()


def ensure_ort(work):
    """(node, NODE_PATH) with onnxruntime-node installed under work/, or (None, reason)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None, "node/npm not found"
    mods = os.path.join(work, "node_modules")
    if not os.path.isfile(os.path.join(mods, "onnxruntime-node", "package.json")):
        os.makedirs(work, exist_ok=True)
        log("compare: npm install --ignore-scripts onnxruntime-node (into %s)" % work)
        r = subprocess.run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", work,
                            "onnxruntime-node"], capture_output=True, text=True)
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["?"]
            return None, "npm install onnxruntime-node failed: %s" % tail[0]
    return node, mods


# ----------------------------------------------------------------------------------------------
# dmin binaries

def run_json(cmd, timeout=600):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return json.loads(r.stdout.strip().splitlines()[-1])


def dmin_bench(build, model, n, threads, seconds, precision="float32"):
    return run_json([os.path.join(build, "dmin"), "bench", model, "--candidates", str(n), "--threads", str(threads),
                     "--seconds", "%g" % seconds, "--precision", precision])


def dmin_cpu(build, models_dir, shape, n, seconds):
    """bench_scorer request/<shape>/N:<n>/threads:1: (wall p50 µs, thread-CPU p50 µs) per request."""
    exe = os.path.join(build, "benchmarks", "bench_scorer")
    if not os.path.isfile(exe):
        return None
    args = [exe, "--models", models_dir, "--shape", shape, "--benchmark_filter=^request/%s/N:%d/threads:1" % (shape, n),
            "--benchmark_format=json"]
    # Google Benchmark 1.8+ wants the unit ("0.5s"; a bare number is deprecated there), 1.7 rejects it
    # as an unrecognised flag: try the current form first, the old one when the flag was the problem.
    for min_time in ("%gs" % seconds, "%g" % seconds):
        r = subprocess.run(args + ["--benchmark_min_time=" + min_time], capture_output=True, text=True, timeout=600)
        if r.returncode == 0 or "benchmark_min_time" not in r.stderr:
            break
    if r.returncode != 0:
        return None
    b = json.loads(r.stdout)["benchmarks"][0]
    return b["req_p50_us"], b["cpu_p50_us"]


def dmin_predict(build, model, rows, path):
    with open(path, "w") as fh:
        json.dump({"samples": rows}, fh, separators=(",", ":"))
    return np.asarray(run_json([os.path.join(build, "dmin"), "predict", model, path])["predictions"], dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# system facts

def system_info(build):
    info = OrderedDict()
    try:
        ls = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"Model name:\s*(.+)", ls)
        info["cpu"] = m.group(1).strip() if m else platform.processor()
        fam = re.search(r"CPU family:\s*(\d+)", ls)
        mod = re.search(r"\nModel:\s*(\d+)", ls)
        if fam and mod:
            info["cpu"] += " (family %s, model %s)" % (fam.group(1), mod.group(1))
        flags = re.search(r"Flags:\s*(.+)", ls)
        fl = flags.group(1).split() if flags else []
        info["isa"] = " ".join(x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                                          "avx512_bf16", "avx_vnni") if x in fl)
        info["cores"] = os.cpu_count()
    except OSError:
        info["cpu"] = platform.processor()
    cache = os.path.join(build, "CMakeCache.txt")
    if os.path.isfile(cache):
        txt = open(cache).read()

        def var(k):
            m = re.search(r"^%s:[A-Z]+=(.*)$" % re.escape(k), txt, re.M)
            return m.group(1) if m else ""
        cxx = var("CMAKE_CXX_COMPILER")
        bt = var("CMAKE_BUILD_TYPE")
        flags = " ".join(x for x in (var("CMAKE_CXX_FLAGS"), var("CMAKE_CXX_FLAGS_" + bt.upper())) if x)
        if var("DMIN_NATIVE") in ("ON", "1", "TRUE"):
            flags += " -march=native"
        try:
            ver = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            ver = cxx
        info["compiler"] = ver
        info["cxx_flags"] = "%s (CMAKE_BUILD_TYPE=%s)" % (flags.strip(), bt)
    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
    cfg = torch.__config__.show()
    m = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
    info["torch_blas_info"] = m.group(1) if m else "?"
    # Which BLAS the process actually mapped after a matmul (Debian's torch uses libblas.so.3).
    a = torch.randn(64, 64)
    (a @ a).sum().item()
    libs = set()
    with open("/proc/self/maps") as fh:
        for line in fh:
            p = line.split()[-1]
            if re.search(r"blas|mkl|lapack", os.path.basename(p)):
                libs.add(os.path.realpath(p))
    info["blas_loaded"] = sorted(libs)
    # Debian's torch calls whatever libblas.so.3 update-alternatives selects. Without an optimised BLAS
    # installed that is the reference (netlib) build in .../blas/: its sgemm is several times slower than
    # OpenBLAS's (paper shape, PyTorch eager per candidate at N=128: 1535 vs 202 µs on this project's
    # Zen 5 host), which would make the PyTorch columns a straw man.
    info["blas_reference"] = sorted(p for p in libs
                                    if os.path.basename(os.path.dirname(p)) == "blas" and os.path.basename(p).startswith("libblas.so"))
    info["torch_config"] = cfg
    return info


def cpu_busy_seconds():
    """System-wide busy CPU seconds (all processes) from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        idle = f[3] + (f[4] if len(f) > 4 else 0)
        return (sum(f[:8]) - idle) / hz
    except (OSError, ValueError, IndexError):
        return float("nan")


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return []


# ----------------------------------------------------------------------------------------------
# main

def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    if x >= 1000:
        return "%.0f" % x
    if x >= 100:
        return "%.1f" % x
    if x >= 10:
        return "%.2f" % x
    return ("%%.%dg" % digits) % x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="CMake build dir with dmin, benchmarks/fma_peak, benchmarks/dmin_model_info")
    ap.add_argument("--shapes", default="small,paper,large")
    ap.add_argument("--ns", default=",".join(map(str, NS_DEFAULT)), help="candidate counts")
    ap.add_argument("--quick", action="store_true", help="1 round, short timings (< 2 min)")
    ap.add_argument("--rounds", type=int, help="interleaved timing rounds (default 3, quick 1)")
    ap.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime")
    ap.add_argument("--json", help="results JSON (default BUILD/benchmarks/compare/results.json)")
    ap.add_argument("--allow-reference-blas", action="store_true",
                    help="time PyTorch even when it calls Debian's reference BLAS (the report says so)")
    args = ap.parse_args(argv)
    t_start = time.time()
    build = os.path.abspath(args.build)
    shapes = [s for s in args.shapes.split(",") if s]
    ns = [int(x) for x in args.ns.split(",") if x]
    rounds = args.rounds or (1 if args.quick else 3)
    budget = 0.15 if args.quick else 0.3         # seconds per (engine, shape, N, round), at least min_iters calls
    dmin_seconds = 0.25 if args.quick else 0.4
    min_iters = 2 if args.quick else 3
    work = os.path.join(build, "benchmarks", "compare")
    os.makedirs(work, exist_ok=True)
    for exe in ("dmin", "benchmarks/fma_peak", "benchmarks/dmin_model_info"):
        if not os.path.isfile(os.path.join(build, exe)):
            sys.exit("compare.py: %s/%s not found; build with: cmake -S %s -B %s -DCMAKE_BUILD_TYPE=Release "
                     "-DDMIN_BUILD_BENCHMARKS=ON && cmake --build %s -j2" % (build, exe, ROOT, build, build))
    torch.set_num_threads(1)
    results = OrderedDict([("loadavg_start", loadavg())])
    busy0, own0, wall0 = cpu_busy_seconds(), own_cpu_seconds(), time.time()
    sysinfo = system_info(build)
    results["system"] = sysinfo
    log("compare: torch.__config__.show():\n" + sysinfo["torch_config"].rstrip())
    log("compare: %s | %s | torch %s, BLAS %s" % (sysinfo.get("cpu"), sysinfo.get("isa"), sysinfo["torch"],
                                                  ", ".join(sysinfo["blas_loaded"]) or sysinfo["torch_blas_info"]))
    if sysinfo["blas_reference"] and not args.allow_reference_blas:
        sys.exit("compare.py: PyTorch calls Debian's reference BLAS (%s), an unoptimised build several times slower "
                 "than OpenBLAS: its columns would not be a fair peer. Install an optimised BLAS, which "
                 "update-alternatives then selects: sudo apt-get install libopenblas0-pthread; or pass "
                 "--allow-reference-blas to time it anyway (the report says so)." % ", ".join(sysinfo["blas_reference"]))

    # 1. models
    models_dir = os.path.join(build, "benchmarks", "models")
    paths = bench_models.ensure(models_dir, shapes)
    info = OrderedDict((s, run_json([os.path.join(build, "benchmarks", "dmin_model_info"), paths[s]["model"]]))
                       for s in shapes)
    results["models"] = info

    # 2. peak
    fma = os.path.join(build, "benchmarks", "fma_peak")
    peak1 = run_json([fma, "--seconds", "0.5" if args.quick else "1"])
    peak2 = run_json([fma, "--threads", "2", "--seconds", "0.5" if args.quick else "1"])
    log("compare: FMA peak 1 core %.1f GFLOP/s (ymm %.1f, zmm %.1f; wall %.1f), 2 cores %.1f (wall %.1f)" % (
        peak1["peak_gflops"], peak1["ymm_gflops"], peak1["zmm_gflops"], peak1.get("wall_gflops", 0),
        peak2["peak_gflops"], peak2.get("wall_gflops", 0)))

    # 3. engines per shape
    node, node_path = (None, "disabled (--no-ort)") if args.no_ort else ensure_ort(os.path.join(build, "benchmarks", "ort"))
    ort_note = None if node else node_path
    engines = OrderedDict()
    call_s = OrderedDict()  # (shape, engine, N) -> last per-call seconds
    requests = OrderedDict()
    checks = OrderedDict()
    skipped = OrderedDict()
    for s in shapes:
        spec = json.load(open(paths[s]["spec"]))
        state = torch.load(paths[s]["state"], map_location="cpu", weights_only=True)
        model = DMIN(spec)
        model.load_state_dict(state)
        model.eval()
        names = input_names(model)
        reqs = OrderedDict()
        for n in ns:
            user, cands = bench_request(spec, n)
            reqs[n] = dict(user=user, cands=cands, tensors=request_tensors(spec, names, user, cands, n))
        requests[s] = reqs
        eng = OrderedDict()
        skipped[s] = OrderedDict()
        eager = Positional(model, names).eval()

        def eager_fn(xs, m=eager):
            with torch.inference_mode():
                return m(*xs)
        eng["eager"] = eager_fn
        # TorchScript: trace on a 16-row request, freeze.
        try:
            ex = reqs[ns[min(1, len(ns) - 1)]]["tensors"]
            with torch.no_grad():
                traced = torch.jit.trace(Positional(copy.deepcopy(model).eval(), names).eval(), tuple(ex),
                                         check_trace=False)
                ts = torch.jit.freeze(traced.eval())

            def ts_fn(xs, m=ts):
                with torch.inference_mode():
                    return m(*xs)
            eng["torchscript"] = ts_fn
        except Exception as exc:  # noqa: BLE001
            skipped[s]["torchscript"] = "TorchScript trace failed: %s" % " ".join(str(exc).split())[:200]
        # ONNX Runtime
        if node:
            onnx_path = os.path.join(work, s + ".onnx")
            try:
                ex = reqs[ns[min(1, len(ns) - 1)]]["tensors"]
                export_onnx(model, names, ex, onnx_path)
                server = OrtServer(node, node_path, onnx_path, 1)
                results.setdefault("onnxruntime_version", server.version)
                feeds = OrderedDict()
                for n in ns:
                    fd = OrderedDict()
                    for name, t in zip(names, reqs[n]["tensors"]):
                        f = os.path.join(work, "%s.n%d.%s.bin" % (s, n, name))
                        arr = t.numpy()
                        arr.tofile(f)
                        fd[name] = {"file": f, "dims": list(arr.shape),
                                    "type": "int64" if arr.dtype == np.int64 else "float32"}
                    feeds[n] = fd
                eng["onnxruntime"] = (server, feeds)
            except Exception as exc:  # noqa: BLE001
                skipped[s]["onnxruntime"] = "ONNX export / session failed: %s" % " ".join(str(exc).split())[:300]
        else:
            skipped[s]["onnxruntime"] = ort_note
        engines[s] = eng

        # 4. agreement with dmin predict on the same rows
        checks[s] = OrderedDict()
        check_ns = [n for n in ns if not args.quick or n in (1, 128)] or ns[:1]
        for n in check_ns:
            rows = request_rows(reqs[n]["user"], reqs[n]["cands"], n)
            ref = dmin_predict(build, paths[s]["model"], rows, os.path.join(work, "%s.n%d.predict.json" % (s, n)))
            for e, fn in list(eng.items()):
                t0 = time.perf_counter()
                if e == "onnxruntime":
                    server, feeds = fn
                    got = np.asarray(server.run(feeds[n], 0.0, 1, warmup=0, return_output=True)["output"], dtype=np.float64)
                else:
                    got = fn(reqs[n]["tensors"]).double().numpy()
                call_s[(s, e, n)] = time.perf_counter() - t0
                diff = float(np.max(np.abs(got.reshape(-1) - ref))) if len(ref) else 0.0
                c = checks[s].setdefault(e, {"max_abs_diff": 0.0, "ns": []})
                c["max_abs_diff"] = max(c["max_abs_diff"], diff)
                c["ns"].append(n)
        for e, c in checks[s].items():
            c["ok"] = c["max_abs_diff"] <= TOL
            if not c["ok"]:
                skipped[s][e] = "disagrees with dmin predict: max |diff| %.3g > %g" % (c["max_abs_diff"], TOL)
                eng.pop(e, None)
        log("compare: %s: agreement with dmin predict (N=%s): %s" % (
            s, ",".join(map(str, check_ns)),
            ", ".join("%s %.2g%s" % (e, c["max_abs_diff"], "" if c["ok"] else " FAIL") for e, c in checks[s].items())))

    # 5. timing, interleaved rounds. Engines were run once per checked N by the agreement check; round 0
    # warms up once more (TorchScript's profiling executor optimises on its second call). Calls longer than
    # 2 s are timed once per round; --quick skips batch-engine points extrapolated to take > 1 s per call.
    timing = OrderedDict((s, OrderedDict((n, OrderedDict()) for n in ns)) for s in shapes)
    for r in range(rounds):
        for s in shapes:
            for n in ns:
                slot = timing[s][n]
                # The one-core FMA peak just before each 1-thread dmin measurement: this host's clock drifts by
                # several percent within minutes, and dmin's compute-bound time drifts with it, so each dmin
                # median is set against the peak of its own moment (see the report's peak line).
                pk = run_json([fma, "--seconds", "0.2"])
                slot.setdefault("peak", []).append(pk["peak_gflops"])
                js = dmin_bench(build, paths[s]["model"], n, 1, dmin_seconds)
                slot.setdefault("dmin", []).append(js["request_us"]["median"])
                slot.setdefault("dmin_p99", []).append(js["request_us"]["p99"])
                # bf16 precision (its own floor: the same FLOPs at the vdpbf16ps peak of the same moment), where
                # the CPU has AVX512_BF16; elsewhere bf16 only widens in registers and has no peak of its own.
                if pk.get("bf16_gflops"):
                    slot.setdefault("peak_bf16", []).append(pk["bf16_gflops"])
                    jb = dmin_bench(build, paths[s]["model"], n, 1, dmin_seconds, precision="bf16")
                    slot.setdefault("dmin_bf16", []).append(jb["request_us"]["median"])
                if n > 1:
                    js2 = dmin_bench(build, paths[s]["model"], n, 2, dmin_seconds)
                    slot.setdefault("dmin_t2", []).append(js2["request_us"]["median"])
                bc = dmin_cpu(build, models_dir, s, n, dmin_seconds)
                if bc:
                    slot.setdefault("cpu:dmin", []).append(bc[1])
                for e, fn in engines[s].items():
                    prev = [(m, call_s[(s, e, m)]) for m in ns if m < n and (s, e, m) in call_s]
                    est = prev[-1][1] * n / prev[-1][0] if prev else 0.0
                    if args.quick and est > 1.0:
                        skipped[s].setdefault(e + "@%d" % n, "N=%d not timed in --quick (about %.1f s per call)" % (n, est))
                        continue
                    last = call_s.get((s, e, n), est)
                    its = 1 if last > 2.0 else min_iters
                    warm = (2 if e == "torchscript" else 1) if r == 0 and last <= 2.0 else 0
                    if e == "onnxruntime":
                        server, feeds = fn
                        res = server.run(feeds[n], budget, its, warmup=warm)
                        t, tc = res["times_us"], res.get("cpu_us", [])
                    else:
                        xs = requests[s][n]["tensors"]
                        t, tc = time_calls(lambda: fn(xs), budget, its, warmup=warm)
                    slot.setdefault(e, []).append(median(t))
                    if tc:
                        slot.setdefault("cpu:" + e, []).append(median(tc))
                    call_s[(s, e, n)] = median(t) * 1e-6
            log("compare: round %d/%d %s done (%.0f s)" % (r + 1, rounds, s, time.time() - t_start))
    for s in shapes:
        for e, fn in engines[s].items():
            if e == "onnxruntime":
                fn[0].close()
    peak1b = run_json([fma, "--seconds", "0.5" if args.quick else "1"])
    adjacent = [p for s in shapes for n in ns for p in timing[s][n].get("peak", [])]
    # The floors use the median of the peaks measured next to dmin's measurements; the highest peak of the run
    # (start, end or adjacent) is reported alongside, as the strictest floor.
    peak = median(adjacent)   # per CPU second of the FMA thread
    peak_max = max([peak1["peak_gflops"], peak1b["peak_gflops"]] + adjacent)
    peak_2t = peak2["peak_gflops"]
    wall1 = max(peak1.get("wall_gflops", peak), peak1b.get("wall_gflops", peak))
    avail_2t = peak2.get("wall_gflops", peak_2t) / wall1 if wall1 else float("nan")
    results["loadavg_end"] = loadavg()
    wall = time.time() - wall0
    others = max(0.0, (cpu_busy_seconds() - busy0) - (own_cpu_seconds() - own0)) / wall if wall > 0 else float("nan")
    results["other_processes_cores"] = others
    results["peak"] = {"one_core": [peak1, peak1b], "two_cores": peak2, "adjacent_gflops": adjacent, "peak_gflops": peak,
                       "peak_gflops_max": peak_max, "peak_gflops_2t": peak_2t}

    def paired(s, n, flops, engine="dmin"):
        """dmin's per-round 1-thread medians as multiples of the floor at the peak measured just before each (dmin_bf16:
        the vdpbf16ps peak)."""
        peaks = timing[s][n].get("peak_bf16" if engine == "dmin_bf16" else "peak") or []
        return [t / n / (flops / (pk * 1e3)) for t, pk in zip(timing[s][n].get(engine) or [], peaks)]

    # 6. report
    out = []
    P = out.append
    P("# dmin vs PyTorch eager / TorchScript / ONNX Runtime\n")
    P("- CPU: %s, %s cores; ISA: %s" % (sysinfo.get("cpu"), sysinfo.get("cores"), sysinfo.get("isa")))
    P("- dmin: %s, %s; SIMD %s" % (sysinfo.get("compiler", "?"), sysinfo.get("cxx_flags", "?"),
                                   next(iter(info.values()))["simd"] if info else "?"))
    P("- PyTorch %s (BLAS_INFO=%s; BLAS mapped: %s), 1 intra-op thread; TorchScript = torch.jit.trace + freeze"
      % (sysinfo["torch"], sysinfo["torch_blas_info"], ", ".join(sysinfo["blas_loaded"]) or "none"))
    if sysinfo["blas_reference"]:
        P("- **PyTorch and TorchScript ran on Debian's reference BLAS** (`--allow-reference-blas`): several times slower "
          "than with OpenBLAS (`apt-get install libopenblas0-pthread`); their columns and the target against PyTorch "
          "eager are not a fair comparison")
    P("- ONNX Runtime: %s" % ("onnxruntime-node %s (CPU EP, intraOpNumThreads 1, graph optimisation all), model from "
                              "torch.onnx.export opset 14 with Dice written as its eval formula"
                              % results.get("onnxruntime_version", "?") if node else "skipped (%s)" % ort_note))
    P("- FP32 FMA peak (fma_peak: 12 chains, best of 10 rounds, per second of the thread's CPU time), measured just "
      "before each 1-thread dmin measurement: median %.1f GFLOP/s on one core (range %.1f–%.1f over %d measurements; "
      "start / end of the run, 1 s each: %.1f / %.1f, zmm; ymm %.1f); %.1f on two cores. The floors below use the "
      "median; dmin's multiples of the floor pair each round's median with the peak measured just before it (the "
      "host's clock drifts by several percent within minutes, and dmin's compute-bound time drifts with it). Per "
      "wall-clock second this run got %.1f on one core and %.1f with two threads (%.2f×: how much of the second core "
      "other processes left)"
      % (peak, min(adjacent), max(adjacent), len(adjacent), peak1["peak_gflops"], peak1b["peak_gflops"],
         max(peak1["ymm_gflops"], peak1b["ymm_gflops"]), peak_2t, wall1, peak2.get("wall_gflops", float("nan")), avail_2t))
    P("- load average at start / end: %s / %s; %d interleaved round(s), medians over rounds; every engine fed the same "
      "N rows (the `dmin bench` request: user with full-length sequences repeated, N random candidates)"
      % (" ".join(results["loadavg_start"]), " ".join(results["loadavg_end"]), rounds))
    P("- other processes used %.2f of the %s cores on average during the run (/proc/stat minus this run's own CPU time)"
      % (others, sysinfo.get("cores")))
    P("")
    summary = OrderedDict()
    for s in shapes:
        mi = info[s]
        fl = mi["flops"]
        floor_c = fl["per_candidate"] / (peak * 1e3)               # µs per candidate
        floor_req1 = (fl["user"] + fl["per_candidate"]) / (peak * 1e3)
        per = OrderedDict()
        for e in ("dmin", "dmin_t2", "dmin_bf16", "onnxruntime", "torchscript", "eager"):
            row = OrderedDict()
            for n in ns:
                v = timing[s][n].get(e)
                row[n] = median(v) / n if v else None
            if any(x is not None for x in row.values()):
                per[e] = row
        cpu = OrderedDict()
        for e in ("dmin", "onnxruntime", "torchscript", "eager"):
            row = OrderedDict((n, median(timing[s][n]["cpu:" + e]) / n if timing[s][n].get("cpu:" + e) else None)
                              for n in ns)
            if any(x is not None for x in row.values()):
                cpu[e] = row
        summary[s] = OrderedDict([("per_candidate_us", per), ("per_candidate_cpu_us", cpu), ("floor_us", floor_c),
                                  ("floor_request_n1_us", floor_req1), ("flops", fl)])
        P("## %s — D=%d, L=%d, H=%d, DNN %s; per candidate %.3f MFLOP factored, user %.3f MFLOP; floor %.3g µs/candidate"
          % (s, mi["D"], mi["L"], mi["H"], mi["dnn"], fl["per_candidate"] / 1e6, fl["user"] / 1e6, floor_c))
        P("")
        hdr = "| engine | " + " | ".join("N=%d" % n for n in ns) + " |"
        sep = "|---|" + "---:|" * len(ns)
        P("Per-candidate latency, µs (request median / N):\n")
        P(hdr)
        P(sep)
        for e, row in per.items():
            P("| %s | %s |" % (LABEL[e], " | ".join(fmt(row[n]) for n in ns)))
        P("")
        P("dmin request latency, µs, median / p99 (of `dmin bench`, median over rounds): %s\n" % ", ".join(
            "N=%d %s / %s" % (n, fmt(median(timing[s][n]["dmin"])), fmt(median(timing[s][n]["dmin_p99"])))
            for n in ns if timing[s][n].get("dmin")))
        P("Ratio to dmin (1 thread), higher = dmin faster; dmin (2 threads): 1-thread time / 2-thread time:\n")
        P(hdr)
        P(sep)
        for e, row in per.items():
            if e == "dmin":
                continue
            cells = []
            for n in ns:
                d = per["dmin"][n]
                if row[n] is None or not d:
                    cells.append("—")
                elif e == "dmin_t2":
                    cells.append("%.2f×" % (d / row[n]))
                elif e == "dmin_bf16":  # as a fraction of float32's time, the issue's measure
                    cells.append("%.2f× the time" % (row[n] / d))
                else:
                    cells.append("%.1f×" % (row[n] / d))
            P("| %s | %s |" % (LABEL[e], " | ".join(cells)))
        P("")
        P("Per-candidate time as a multiple of the floor (%.3g µs = %.3f MFLOP / %.1f GFLOP/s; 2 threads: / %.1f, both "
          "cores; dmin (1 thread): the median over rounds of each round against the peak measured just before it):\n"
          % (floor_c, fl["per_candidate"] / 1e6, peak, peak_2t))
        P(hdr)
        P(sep)
        for e, row in per.items():
            fc = fl["per_candidate"] / (peak_2t * 1e3) if e == "dmin_t2" else floor_c
            if e in ("dmin", "dmin_bf16"):  # each round against its own adjacent peak (bf16: the vdpbf16ps one)
                P("| %s | %s |" % (LABEL[e], " | ".join("%.2f×" % median(paired(s, n, fl["per_candidate"], e)) if row[n] else "—"
                                                        for n in ns)))
            else:
                P("| %s | %s |" % (LABEL[e], " | ".join("%.2f×" % (row[n] / fc) if row[n] else "—" for n in ns)))
        if "dmin_bf16" in per:
            bf = [p for n in ns for p in timing[s][n].get("peak_bf16", [])]
            P("")
            P("dmin bf16's floor: the same per-candidate FLOPs at the vdpbf16ps peak (fma_peak, 2 FLOP per product pair), "
              "median %.1f GFLOP/s measured just before each bf16 measurement: %.3g µs per candidate.\n"
              % (median(bf), fl["per_candidate"] / (median(bf) * 1e3)))
        P("")
        if cpu.get("dmin"):
            P("Per-candidate CPU time, µs (CPU time of the computing thread / N; immune to being preempted by other "
              "processes; the Python engines: median per call; dmin from bench_scorer: read once per ~1 ms batch of "
              "requests, because reading it is a system call that slows the requests after it, then the median "
              "over batches — a mean within each batch), ratio to dmin and multiple of the floor:\n")
            P("| engine | " + " | ".join("N=%d" % n for n in ns) + " |")
            P(sep)
            for e, row in cpu.items():
                cells = []
                for n in ns:
                    if row[n] is None:
                        cells.append("—")
                    elif e == "dmin":
                        cells.append("%s (%.2f× floor)" % (fmt(row[n]), row[n] / floor_c))
                    elif cpu["dmin"].get(n):
                        cells.append("%s (%.1f×)" % (fmt(row[n]), row[n] / cpu["dmin"][n]))
                    else:
                        cells.append(fmt(row[n]))
                P("| %s | %s |" % (LABEL[e].replace(" (1 thread)", ""), " | ".join(cells)))
            P("")
        if 1 in ns and per["dmin"].get(1):
            P("N=1 request: dmin %.1f µs = %.2f× the request floor (user + one candidate = %.3f MFLOP → %.2f µs)"
              % (per["dmin"][1], median(paired(s, 1, fl["user"] + fl["per_candidate"])),
                 (fl["user"] + fl["per_candidate"]) / 1e6, floor_req1))
        if skipped[s]:
            for e, why in skipped[s].items():
                P("- %s skipped: %s" % (LABEL.get(e.split("@")[0], e), why))
        P("- agreement with `dmin predict` (max |Δp| over N=%s): %s" % (
            ",".join(map(str, next(iter(checks[s].values()))["ns"])) if checks[s] else "-",
            ", ".join("%s %.2g" % (LABEL[e], c["max_abs_diff"]) for e, c in checks[s].items())))
        P("")

    # targets (wall clock decides; CPU time shown alongside because other processes share the cores)
    P("## Targets\n")
    P("Wall-clock medians decide \"met\"; for dmin's latency targets, the median over rounds of each round's multiple "
      "of the floor at the peak measured just before it, with the range over rounds and the multiple at the run's "
      "highest peak (%.1f GFLOP/s, the strictest floor) in parentheses. CPU-time figures (the "
      "computing thread's own CPU time, against the median peak) are shown in brackets.\n" % peak_max)
    P("| target | measured | met |")
    P("|---|---|---|")
    tgt = []

    def target(name, value, ok):
        tgt.append(OrderedDict([("target", name), ("measured", value), ("met", bool(ok))]))
        P("| %s | %s | %s |" % (name, value, "yes" if ok else "**no**"))

    def cpu_of(s, e, n):
        return summary[s]["per_candidate_cpu_us"].get(e, {}).get(n)

    def multiple(s, n, flops, cpu_floor):
        """dmin's multiple of the floor at N=n (the median paired multiple) and its text: the range over rounds, the
        multiple at the run's highest peak, and in brackets the CPU-time multiple of cpu_floor (µs) if measured."""
        v = paired(s, n, flops)
        x = median(v)
        rng = "rounds %.2f–%.2f×; " % (min(v), max(v)) if len(v) > 1 else ""
        strict = median(timing[s][n]["dmin"]) / n / (flops / (peak_max * 1e3))
        c = cpu_of(s, "dmin", n)
        return x, "%.2f× (%sstrictest %.2f×)%s" % (x, rng, strict, " [%.2f×]" % (c / cpu_floor) if c else "")

    for s in shapes:
        per = summary[s]["per_candidate_us"]
        floor_c = summary[s]["floor_us"]
        big = [n for n in ns if n >= 128]
        if big:
            fl = summary[s]["flops"]["per_candidate"]
            worst = max(multiple(s, n, fl, floor_c)[0] for n in big)
            target("%s, 1 thread, N≥128: per-candidate ≤ 1.3× floor (%.3g µs)" % (s, floor_c),
                   ", ".join("N=%d %s" % (n, multiple(s, n, fl, floor_c)[1]) for n in big), worst <= 1.3)
            if s == "paper":
                for e, need in (("onnxruntime", 7.0), ("eager", 14.0)):
                    have = [n for n in big if e in per and per[e][n]]
                    if have:
                        rat = [per[e][n] / per["dmin"][n] for n in have]
                        cells = []
                        for n, x in zip(have, rat):
                            c = " [%.1f×]" % (cpu_of(s, e, n) / cpu_of(s, "dmin", n)) \
                                if cpu_of(s, e, n) and cpu_of(s, "dmin", n) else ""
                            cells.append("N=%d %.1f×%s" % (n, x, c))
                        unfair = " (reference BLAS: not comparable)" if e == "eager" and sysinfo["blas_reference"] else ""
                        target("paper, N≥128: ≥%g× faster than %s%s" % (need, LABEL[e], unfair), ", ".join(cells),
                               min(rat) >= need)
                    else:
                        target("paper, N≥128: ≥%g× faster than %s" % (need, LABEL[e]), "not measured (%s)"
                               % skipped[s].get(e, "?"), False)
        if 1 in ns:
            fr = summary[s]["floor_request_n1_us"]
            fl = summary[s]["flops"]
            x, text = multiple(s, 1, fl["user"] + fl["per_candidate"], fr)
            target("%s, N=1 request ≤ 1.5× (user + 1 candidate FLOPs)/peak" % s,
                   "%.1f µs vs floor %.2f µs = %s" % (per["dmin"][1], fr, text), x <= 1.5)
        if 1024 in ns and "dmin_bf16" in per and s in ("paper", "large") and per["dmin_bf16"].get(1024):
            r = per["dmin_bf16"][1024] / per["dmin"][1024]
            xb = median(paired(s, 1024, summary[s]["flops"]["per_candidate"], "dmin_bf16"))
            target("%s, N=1024: bf16 per candidate ≤ 0.6× float32 (issue 20)" % s,
                   "%.2f× (bf16 at %.2f× its floor)" % (r, xb), r <= 0.6)
        if 1024 in ns and "dmin_t2" in per:
            sc = per["dmin"][1024] / per["dmin_t2"][1024]
            target("%s, 2 threads ≥ 1.8× 1-thread throughput at N=1024" % s,
                   "%.2f× (this run's 2-thread/1-thread FMA rate per wall second: %.2f×)" % (sc, avail_2t), sc >= 1.8)
        mi = info[s]
        ratio = mi["resident_bytes"] / mi["file_weight_bytes"]
        target("%s, model memory ≤ 1.1× weight bytes" % s,
               "resident %.3f MB / file weights %.3f MB = %.3f× (heap kept by load %.3f MB); scorer scratch %.1f KB"
               % (mi["resident_bytes"] / 1e6, mi["file_weight_bytes"] / 1e6, ratio, mi["model_heap_bytes"] / 1e6,
                  mi["scorer_heap_bytes"] / 1e3), ratio <= 1.1)
    P("")
    P("_compare.py finished in %.0f s_" % (time.time() - t_start))
    text = "\n".join(out)
    print(text)
    results["timing_us_request_median_per_round"] = OrderedDict(
        (s, OrderedDict((str(n), v) for n, v in d.items())) for s, d in timing.items())
    results["summary"] = OrderedDict(
        (s, OrderedDict([("per_candidate_us", OrderedDict((e, OrderedDict((str(n), v) for n, v in row.items()))
                                                          for e, row in d["per_candidate_us"].items())),
                         ("floor_us", d["floor_us"]), ("floor_request_n1_us", d["floor_request_n1_us"]),
                         ("flops", d["flops"])])) for s, d in summary.items())
    results["checks"] = checks
    results["skipped"] = skipped
    results["targets"] = tgt
    results["seconds"] = time.time() - t_start
    jpath = args.json or os.path.join(work, "results.json")
    with open(jpath, "w") as fh:
        json.dump(results, fh, indent=1, default=str)
    with open(os.path.splitext(jpath)[0] + ".md", "w") as fh:
        fh.write(text + "\n")
    log("compare: wrote %s" % jpath)
    return 0


if __name__ == "__main__":
    sys.exit(main())
