"""Random-weight DMIN models at the three benchmark shapes, for bench_scorer and compare.py.

    /usr/bin/python3 python/bench/models.py --out DIR [--shapes small,paper,large] [--seed 7] [--force]

For each shape NAME it writes
  DIR/NAME.spec.json        the dmin spec (weights_format.md section 3), built from FuxiCTR-style
                            params + feature map with dmin_ref.spec.build_spec
  DIR/NAME.state.pt         torch.save(state_dict()) of dmin_ref.model.DMIN with random, non-trivial
                            weights (dmin_ref.fixtures.randomize_model: LSUV-scaled MLPs, Dice/BN
                            running statistics from random samples)
  DIR/NAME.safetensors      the dmin weights file, written by the exporter's own code path
                            (`tools/dmin-export torch --module-state NAME.state.pt --spec NAME.spec.json`)
  DIR/NAME.stamp.json       what was generated (shape, seed, generator hash): reruns skip up-to-date shapes

Shapes (candidate-role features = the target fields):
  small  FuxiCTR's DMIN_test on tiny_seq: E=8, target adgroup_id, click_sequence L=5, H=2, P=8,
         attention MLP [80,40] ReLU, DNN [64,32] Dice, the 14 tiny_seq categorical features
  paper  target (item_id, cate_id), E=16 -> D=32, H=4, L=50, P=8, attention [80,40] ReLU,
         DNN [512,128,64] Dice, 6 user/context categorical features
  large  target (item_id, cate_id), E=32 -> D=64, H=4, L=100, P=8, attention [80,40] ReLU,
         DNN [1024,512,256] Dice, 6 user/context categorical features
"""

import argparse
import hashlib
import json
import os
import sys
import time
from collections import OrderedDict

# Deterministic files: one BLAS / OpenMP thread (the calibration passes' rounding depends on it).
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)

SHAPES = ("small", "paper", "large")

# tiny_seq's feature_map.json (FuxiCTR tests/data/tiny_seq), as in tests/data/fuxictr/tiny_seq_trained.
_TINY_SEQ = [("userid", 26), ("adgroup_id", 96), ("pid", 4), ("cate_id", 49), ("campaign_id", 99),
             ("customer", 98), ("brand", 67), ("cms_segid", 11), ("cms_group_id", 11), ("final_gender_code", 4),
             ("age_level", 7), ("pvalue_level", 4), ("shopping_level", 5), ("occupation", 4)]


def _cat(name, vocab):
    return {name: OrderedDict([("source", ""), ("type", "categorical"), ("padding_idx", 0), ("vocab_size", vocab)])}


def _seq(name, vocab, max_len, share):
    return {name: OrderedDict([("source", ""), ("type", "sequence"), ("share_embedding", share), ("padding_idx", 0),
                               ("vocab_size", vocab), ("max_len", max_len)])}


def _fmap(dataset, features):
    return OrderedDict([("dataset_id", dataset), ("num_fields", len(features)), ("labels", ["clk"]),
                        ("features", features)])


def _params(**kw):
    p = OrderedDict([
        ("model", "DMIN"), ("task", "binary_classification"), ("neg_seq_field", None),
        ("attention_hidden_units", [80, 40]), ("attention_activation", "ReLU"), ("attention_dropout", 0),
        ("dnn_activations", "Dice"), ("net_dropout", 0), ("use_pos_emb", True), ("pos_emb_dim", 8),
        ("use_behavior_refiner", True), ("layer_norm", True), ("batch_norm", False), ("bn_only_once", False),
        ("enable_sum_pooling", False), ("aux_loss_lambda", 0)])
    p.update(kw)
    return p


def _taobao_like(E, L, users, items, cates):
    """6 user/context categorical features, the (item_id, cate_id) target, two behaviour sequences."""
    feats = [_cat("userid", users), _cat("age_level", 8), _cat("gender", 3), _cat("shopping_level", 4),
             _cat("pid", 4), _cat("hour", 25), _cat("item_id", items), _cat("cate_id", cates),
             _seq("item_hist", items, L, "item_id"), _seq("cate_hist", cates, L, "cate_id")]
    return _params(embedding_dim=E, num_heads=4, target_field=("item_id", "cate_id"),
                   sequence_field=("item_hist", "cate_hist")), _fmap("taobao_like_e%d_l%d" % (E, L), feats)


def shape_config(name):
    """(params, feature_map, candidate_features, context_features, description)."""
    if name == "small":
        fm = _fmap("tiny_seq", [_cat(n, v) for n, v in _TINY_SEQ] + [_seq("click_sequence", 96, 5, "adgroup_id")])
        p = _params(embedding_dim=8, num_heads=2, target_field="adgroup_id", sequence_field="click_sequence",
                    dnn_hidden_units=[64, 32])
        return p, fm, ["adgroup_id"], [], "FuxiCTR DMIN_test on tiny_seq: E=D=8, H=2, L=5, DNN [64,32]"
    if name == "paper":
        p, fm = _taobao_like(16, 50, users=100000, items=100000, cates=5000)
        p["dnn_hidden_units"] = [512, 128, 64]
        return p, fm, ["item_id", "cate_id"], ["pid", "hour"], \
            "target (item_id, cate_id) E=16 -> D=32, H=4, L=50, DNN [512,128,64]"
    if name == "large":
        p, fm = _taobao_like(32, 100, users=200000, items=200000, cates=10000)
        p["dnn_hidden_units"] = [1024, 512, 256]
        return p, fm, ["item_id", "cate_id"], ["pid", "hour"], \
            "target (item_id, cate_id) E=32 -> D=64, H=4, L=100, DNN [1024,512,256]"
    raise SystemExit("unknown shape %r (have: %s)" % (name, ", ".join(SHAPES)))


def _generator_hash():
    h = hashlib.sha256()
    ref_dir = os.path.join(PYTHON_DIR, "dmin_ref")
    files = [os.path.abspath(__file__)] + sorted(os.path.join(ref_dir, f) for f in os.listdir(ref_dir) if f.endswith(".py"))
    for p in files:
        with open(p, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


def paths(out_dir, name):
    base = os.path.join(out_dir, name)
    return OrderedDict([("spec", base + ".spec.json"), ("state", base + ".state.pt"),
                        ("model", base + ".safetensors"), ("stamp", base + ".stamp.json")])


def _up_to_date(out_dir, name, seed):
    p = paths(out_dir, name)
    if not all(os.path.isfile(x) for x in p.values()):
        return False
    try:
        with open(p["stamp"]) as fh:
            st = json.load(fh)
    except (OSError, ValueError):
        return False
    return st.get("seed") == seed and st.get("generator") == _generator_hash()


def generate_shape(name, out_dir, seed):
    import torch
    from dmin_ref.export import main as export_main
    from dmin_ref.fixtures import randomize_model
    from dmin_ref.model import DMIN
    from dmin_ref.samples import generate_samples
    from dmin_ref.spec import EXPORTER_VERSION, build_spec

    p = paths(out_dir, name)
    params, fm, cand, ctx, desc = shape_config(name)
    spec = build_spec(params, fm, candidate_features=cand, context_features=ctx,
                      provenance=OrderedDict([("exporter", EXPORTER_VERSION), ("source", "python/bench/models.py"),
                                              ("shape", name), ("seed", seed)]))
    torch.manual_seed(seed)
    model = DMIN(spec)
    calib = generate_samples(spec, n=128, seed=seed + 1)
    randomize_model(model, calib_samples=calib)
    with open(p["spec"] + ".tmp", "w") as fh:
        json.dump(spec, fh, indent=1)
    os.replace(p["spec"] + ".tmp", p["spec"])
    torch.save(model.state_dict(), p["state"] + ".tmp")
    os.replace(p["state"] + ".tmp", p["state"])
    # The exporter's command-line path (same as tools/dmin-export torch ...).
    rc = export_main(["torch", "--module-state", p["state"], "--spec", p["spec"], "-o", p["model"]])
    if rc:
        raise SystemExit("models.py: dmin-export failed for shape %s (status %s)" % (name, rc))
    stamp = OrderedDict([("shape", name), ("description", desc), ("seed", seed), ("generator", _generator_hash()),
                         ("torch", torch.__version__), ("dnn_input_dim", spec["dnn_input_dim"])])
    with open(p["stamp"], "w") as fh:
        json.dump(stamp, fh, indent=1)


def ensure(out_dir, shapes=SHAPES, seed=7, force=False, quiet=False):
    """Generate the shapes that are missing or stale; returns {shape: paths}."""
    os.makedirs(out_dir, exist_ok=True)
    todo = [s for s in shapes if force or not _up_to_date(out_dir, s, seed)]
    if todo:
        import torch
        torch.set_num_threads(1)
    for s in todo:
        t0 = time.time()
        generate_shape(s, out_dir, seed)
        if not quiet:
            print("models.py: %s -> %s (%.1f s)" % (s, paths(out_dir, s)["model"], time.time() - t0))
    return OrderedDict((s, paths(out_dir, s)) for s in shapes)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma list of %s" % "/".join(SHAPES))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--force", action="store_true", help="regenerate even if up to date")
    ap.add_argument("--stamp", help="touch this file when done (for build systems)")
    args = ap.parse_args(argv)
    shapes = [s for s in args.shapes.split(",") if s]
    for s in shapes:
        shape_config(s)
    ensure(args.out, shapes, seed=args.seed, force=args.force)
    if args.stamp:
        with open(args.stamp, "w") as fh:
            fh.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
