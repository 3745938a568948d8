"""Paths and helpers for the tests of the dmin extension (run by CTest: python.dmin*).

Environment: PYTHONPATH=<build>/python:<src>/python; DMIN_TEST_WORK = the C++ tests' fixture directory
(random/ and fuxictr/ models); DMIN_CLI = the dmin command-line tool (optional: its comparisons skip)."""
import json
import os
import subprocess
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WORK = os.environ.get("DMIN_TEST_WORK", "")
CLI = os.environ.get("DMIN_CLI", "")
CASES_DIR = os.path.join(REPO, "tests", "data", "fuxictr")
CASES = ("tiny_seq_trained", "heads2_dice_bn", "heads4_prelu", "sum_pooling")
WORLD_MODEL = os.path.join(REPO, "examples", "models", "multi_interest_world.safetensors")
# random fixture models (python/dmin_ref/fixtures.py): numeric features, two branches, regression
RANDOM = ("numeric_context", "two_branches", "strict_mask", "gelu_regression")


def fuxictr_model(case):
    return os.path.join(WORK, "fuxictr", case + ".safetensors")


def random_model(name):
    return os.path.join(WORK, "random", name + ".safetensors")


def load_json(path):
    with open(path) as fh:
        return json.load(fh)


def to_arrays(spec, samples):
    """Predict-form samples (list of {feature: value}) as predict() columns: int64 ids, float32 values,
    int64 sequences padded with 0 to max_len."""
    out = {}
    for f in spec["features"]:
        col = [s[f["name"]] for s in samples]
        if f["type"] == "numeric":
            out[f["name"]] = np.asarray(col, dtype=np.float32)
        elif f["type"] == "categorical":
            out[f["name"]] = np.asarray(col, dtype=np.int64)
        else:
            a = np.zeros((len(col), f["max_len"]), dtype=np.int64)
            for i, ids in enumerate(col):
                a[i, :len(ids)] = ids
            out[f["name"]] = a
    return out


def cli_predict(model_path, samples):
    """`dmin predict` on samples; float32 predictions (printed with 9 significant digits: exact)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"samples": samples}, fh)
    try:
        p = subprocess.run([CLI, "predict", model_path, fh.name], capture_output=True, text=True, timeout=300)
    finally:
        os.unlink(fh.name)
    if p.returncode != 0:
        raise AssertionError(p.stderr)
    return np.asarray(json.loads(p.stdout)["predictions"], dtype=np.float32)
