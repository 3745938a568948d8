"""Shared paths and helpers for the python test-suite."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(PYTHON_DIR)
TOOL = os.path.join(REPO, "tools", "dmin-export")
CASES_DIR = os.path.join(REPO, "tests", "data", "fuxictr")
CASES = ("tiny_seq_trained", "heads2_dice_bn", "heads4_prelu", "sum_pooling")

if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)


def case_files(case):
    d = os.path.join(CASES_DIR, case)
    ckpt = [f for f in os.listdir(d) if f.endswith(".model")][0]
    return {"dir": d, "checkpoint": os.path.join(d, ckpt), "feature_map": os.path.join(d, "feature_map.json"),
            "config": os.path.join(d, "model_config.yaml"), "params": os.path.join(d, "params.json"),
            "inputs": os.path.join(d, "inputs.json"), "expected": os.path.join(d, "expected.json"),
            "expid": os.path.splitext(ckpt)[0]}


def load_json(path):
    with open(path) as fh:
        return json.load(fh)


def run_tool(*args, inproc=False):
    """Run tools/dmin-export (or, with inproc, the same main() in this process);
    returns (returncode, stdout, stderr)."""
    if inproc:
        import contextlib
        import io

        from dmin_ref.export import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main([str(a) for a in args])
        return rc, out.getvalue(), err.getvalue()
    env = dict(os.environ)
    env.pop("DMIN_EXPORT_DEBUG", None)
    env.setdefault("OMP_NUM_THREADS", "2")
    p = subprocess.run([TOOL] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, env=env, timeout=300)
    return p.returncode, p.stdout, p.stderr
