"""Parity between dmin and FuxiCTR on one evaluation set.

    python3 -m dmin.check MODEL.safetensors --fuxictr-predictions y_pred.npy --inputs inputs.npz \
        [--labels KEY_OR_NPY] [--tolerance T] [--no-selftest]

`inputs.npz` holds one array per feature, as FuxiCTR's NpzDataLoader feeds them (int ids [n], float
values [n], sequences [n, max_len]); keys that are not model features (labels, meta columns) are left
out. `y_pred.npy` is FuxiCTR's predictions for the same rows in the same order. Labels are either a
key of inputs.npz or a .npy file; with them both AUCs are printed. With --tolerance the exit status is
1 when max |Δp| exceeds it.
"""

import argparse
import sys

import numpy as np

import dmin


def roc_auc(labels, scores):
    """ROC AUC as the Mann-Whitney statistic, ties at average rank (numpy only). NaN with one class."""
    y = np.asarray(labels, dtype=np.float64).ravel() > 0.5
    s = np.asarray(scores, dtype=np.float64).ravel()
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    # the rank of a group of equal scores is the mean of the 1-based positions it spans
    last = np.cumsum(counts)
    avg_rank = last - (counts - 1) / 2.0
    ranks = avg_rank[inverse]
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def model_features(model, arrays):
    """The entries of `arrays` that are features of `model` (a dmin.Model), as a dict."""
    names = [f["name"] for f in model.spec["features"]]
    return {k: np.asarray(arrays[k]) for k in names if k in arrays}


def _load_labels(labels, arrays):
    if labels is None:
        return None
    if isinstance(labels, str):
        if labels in arrays:
            return np.asarray(arrays[labels])
        if labels.endswith(".npy"):
            return np.load(labels)
        raise dmin.Error("labels: %r is neither a key of the inputs nor a .npy file" % labels)
    return np.asarray(labels)


def parity(model, fuxictr_predictions, inputs, labels=None, self_test=True):
    """Scores `inputs` with dmin and compares with FuxiCTR's predictions.

    model: a dmin.Model or a path; fuxictr_predictions: an array or a .npy path; inputs: a dict of
    arrays or an .npz path; labels: None, an array, a key of inputs, or a .npy path.
    Returns {"n", "max_abs_diff", "mean_abs_diff", "auc_fuxictr", "auc_dmin", "predictions"} (the AUCs
    only when labels are given)."""
    if not isinstance(model, dmin.Model):
        model = dmin.load(model, self_test=self_test)
    arrays = np.load(inputs) if isinstance(inputs, str) else inputs
    ref = np.load(fuxictr_predictions) if isinstance(fuxictr_predictions, str) else fuxictr_predictions
    ref = np.asarray(ref, dtype=np.float64).ravel()
    pred = model.predict(model_features(model, arrays))
    if len(pred) != len(ref):
        raise dmin.Error("fuxictr predictions: %d rows, but the inputs have %d" % (len(ref), len(pred)))
    diff = np.abs(pred.astype(np.float64) - ref)
    out = {"n": len(pred), "max_abs_diff": float(diff.max()) if len(diff) else 0.0,
           "mean_abs_diff": float(diff.mean()) if len(diff) else 0.0, "predictions": pred}
    y = _load_labels(labels, arrays)
    if y is not None:
        if len(y) != len(pred):
            raise dmin.Error("labels: %d rows, but the inputs have %d" % (len(y), len(pred)))
        out["auc_fuxictr"] = roc_auc(y, ref)
        out["auc_dmin"] = roc_auc(y, pred)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m dmin.check", description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--fuxictr-predictions", required=True, help="y_pred.npy: FuxiCTR's predictions")
    ap.add_argument("--inputs", required=True, help="inputs.npz: one array per feature")
    ap.add_argument("--labels", help="a key of inputs.npz or a .npy file of 0/1 labels")
    ap.add_argument("--tolerance", type=float, help="exit 1 when max |dp| exceeds this")
    ap.add_argument("--no-selftest", action="store_true", help="load without replaying the stored reference pair")
    a = ap.parse_args(argv)
    try:
        r = parity(a.model, a.fuxictr_predictions, a.inputs, a.labels, self_test=not a.no_selftest)
    except (dmin.Error, OSError) as e:
        print("dmin.check: %s" % e, file=sys.stderr)
        return 2
    print("samples: %d" % r["n"])
    print("max |dp|: %.9g" % r["max_abs_diff"])
    print("mean |dp|: %.9g" % r["mean_abs_diff"])
    if "auc_dmin" in r:
        print("AUC fuxictr: %.9f" % r["auc_fuxictr"])
        print("AUC dmin: %.9f" % r["auc_dmin"])
    if a.tolerance is not None and r["max_abs_diff"] > a.tolerance:
        print("dmin.check: max |dp| %.9g exceeds the tolerance %g" % (r["max_abs_diff"], a.tolerance), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
