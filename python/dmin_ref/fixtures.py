"""Random DMIN models + float64 reference data for the C++ tests.

    python3 python/dmin_ref/fixtures.py --out DIR [--quick] [--only NAME ...]

For each configuration NAME:
  DIR/NAME.safetensors      a normal dmin weights file (same writer as dmin-export; random, non-trivial
                            weights; reference pair = float32 eval predictions of the samples below)
  DIR/NAME.ref.safetensors  float64-computed intermediates (module .double() on the float32 weights),
                            stored as F32:  s<k>.b<i>.refined [L,D], s<k>.b<i>.z [H,L,D],
                            s<k>.b<i>.attn [H,L], s<k>.b<i>.interests [H,D], s<k>.dnn_input [F],
                            s<k>.logit [1], s<k>.prob [1];  __metadata__: samples (JSON list in predict
                            form), num_samples, config, predictions_f32 (JSON list)
  DIR/index.json            {"configs": [names...], "details": {name: {...}}}
"""

import argparse
import copy
import json
import os
import sys
import time
from collections import OrderedDict

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from dmin_ref import safetensors_io  # noqa: E402
from dmin_ref.export import atomic_write_bytes, write_dmin_file  # noqa: E402
from dmin_ref.model import DMIN, Dice, TargetAttention, make_batch  # noqa: E402
from dmin_ref.samples import generate_samples  # noqa: E402
from dmin_ref.spec import EXPORTER_VERSION, build_spec, dnn_layout  # noqa: E402


# ----------------------------------------------------------------------------------------------
# feature-map / params helpers (FuxiCTR shapes, so fixtures also exercise spec.build_spec)

def cat(name, vocab, **kw):
    d = OrderedDict([("source", ""), ("type", "categorical"), ("padding_idx", 0), ("vocab_size", vocab)])
    d.update(kw)
    return {name: d}


def seq(name, vocab, max_len, share=None, **kw):
    d = OrderedDict([("source", ""), ("type", "sequence")])
    if share:
        d["share_embedding"] = share
    d.update([("padding_idx", 0), ("vocab_size", vocab), ("max_len", max_len)])
    d.update(kw)
    return {name: d}


def num(name, **kw):
    d = OrderedDict([("source", ""), ("type", "numeric")])
    d.update(kw)
    return {name: d}


def meta(name):
    return {name: {"type": "meta"}}


def fmap(*features):
    return OrderedDict([("dataset_id", "fixtures"), ("num_fields", len(features)), ("labels", ["clk"]),
                        ("features", list(features))])


def params(**kw):
    p = OrderedDict([
        ("model", "DMIN"), ("task", "binary_classification"), ("embedding_dim", 8), ("num_heads", 2),
        ("target_field", "item_id"), ("sequence_field", "item_hist"), ("neg_seq_field", None),
        ("dnn_hidden_units", [32, 16]), ("dnn_activations", "Dice"), ("attention_hidden_units", [16, 8]),
        ("attention_activation", "ReLU"), ("attention_dropout", 0), ("net_dropout", 0), ("use_pos_emb", True),
        ("pos_emb_dim", 4), ("use_behavior_refiner", True), ("layer_norm", True), ("batch_norm", False),
        ("bn_only_once", False), ("enable_sum_pooling", False), ("aux_loss_lambda", 0)])
    p.update(kw)
    return p


def _simple_map(L, item_vocab=60, extra=()):
    return fmap(meta("user_key"), cat("userid", 30), cat("item_id", item_vocab), cat("cate_id", 20),
                *extra, seq("item_hist", item_vocab, L, share="item_id"))


def _tuple_map(L, item_vocab=80, cate_vocab=25, extra=()):
    return fmap(cat("userid", 30), cat("item_id", item_vocab), cat("cate_id", cate_vocab), *extra,
                seq("item_hist", item_vocab, L, share="item_id"), seq("cate_hist", cate_vocab, L, share="cate_id"))


TUPLE = ("item_id", "cate_id")
TUPLE_SEQ = ("item_hist", "cate_hist")


def configurations():
    """name -> dict(description, params, feature_map, options, big)."""
    C = OrderedDict()

    def add(name, description, p, fm, big=False, **options):
        C[name] = dict(description=description, params=p, feature_map=fm, options=options, big=big)

    add("tiny_seq_e8_h2_l5", "tiny_seq-like: E=8 H=2 L=5, shared table, attention MLP [80,40] ReLU, DNN [64,32] Dice",
        params(target_field="adgroup_id", sequence_field="click_sequence", pos_emb_dim=8,
               attention_hidden_units=[80, 40], dnn_hidden_units=[64, 32]),
        fmap(cat("userid", 26), cat("adgroup_id", 96), cat("pid", 4), cat("cate_id", 49), cat("brand", 67),
             cat("age_level", 7), seq("click_sequence", 96, 5, share="adgroup_id")))
    add("heads1", "H=1 (hd=D=8), L=6, attention activation Sigmoid, DNN PReLU",
        params(num_heads=1, attention_activation="Sigmoid", dnn_activations="PReLU", dnn_hidden_units=[24]),
        _simple_map(6))
    add("h8_d128_l20", "H=8, tuple target (item_id, cate_id) with E=64 -> D=128 (hd=16), L=20, ReLU DNN",
        params(embedding_dim=64, num_heads=8, target_field=TUPLE, sequence_field=TUPLE_SEQ, pos_emb_dim=8,
               attention_hidden_units=[64, 32], dnn_hidden_units=[128, 64], dnn_activations="ReLU"),
        _tuple_map(20, item_vocab=300, cate_vocab=40), big=True)
    add("l100_d32_h4", "L=100, E=D=32, H=4 (hd=8), Dice DNN",
        params(embedding_dim=32, num_heads=4, pos_emb_dim=8, attention_hidden_units=[32, 16],
               dnn_hidden_units=[64, 32]),
        _simple_map(100, item_vocab=500), big=True)
    add("tuple_bn_dice_dropout", "tuple target E=16 H=4 (D=32), batch_norm + Dice DNN, Dice attention MLP, "
        "net_dropout 0.1 and attention_dropout 0.2 (Sequential index shifts)",
        params(embedding_dim=16, num_heads=4, target_field=TUPLE, sequence_field=TUPLE_SEQ, pos_emb_dim=8,
               attention_hidden_units=[32, 16], attention_activation="Dice", dnn_hidden_units=[64, 32],
               dnn_activations="Dice", batch_norm=True, net_dropout=0.1, attention_dropout=0.2),
        _tuple_map(10))
    add("bn_only_once", "batch_norm + bn_only_once (BatchNorm1d(F) at dnn.mlp.0), net_dropout 0.2, "
        "attention_dropout 0.1, ReLU DNN [136, 72] (column panels of 64 with a ragged last one)",
        params(batch_norm=True, bn_only_once=True, net_dropout=0.2, attention_dropout=0.1, dnn_activations="ReLU",
               dnn_hidden_units=[136, 72]),
        _simple_map(8))
    add("two_branches", "two branches: tuple (item_id, cate_id) L=6 and brand L=9; random padding rows",
        params(target_field=[TUPLE, "brand"], sequence_field=[TUPLE_SEQ, "brand_hist"]),
        _tuple_map(6, extra=(cat("brand", 35), seq("brand_hist", 35, 9, share="brand"))),
        random_padding_rows=True)
    add("numeric_context", "numeric features (one candidate, one context with embedding_dim 4), categorical "
        "context feature, per-feature embedding_dim 6, meta feature, use_features reorder, feature_specs "
        "override of a pooling feature_encoder, neg_seq_field (not in the DNN)",
        params(neg_seq_field="neg_item_hist", use_features=[
            "hour", "userid", "age", "price", "ctx_score", "item_id", "item_hist", "neg_item_hist", "user_key"],
               feature_specs=[{"name": "item_hist", "feature_encoder": None}]),
        fmap(meta("user_key"), cat("userid", 30), cat("age", 9, embedding_dim=6), num("price"), cat("item_id", 60),
             cat("hour", 25), num("ctx_score", embedding_dim=4),
             seq("item_hist", 60, 7, share="item_id", feature_encoder="layers.MaskedAveragePooling()"),
             seq("neg_item_hist", 60, 7, share="item_id")),
        candidate_features=["price"], context_features=["hour", "ctx_score"])
    add("context_target", "tuple target whose second field (cate_id) is a context feature: a request-level "
        "part of every candidate's target embedding (Scorer::gather_target reads it from the request)",
        params(target_field=TUPLE, sequence_field=TUPLE_SEQ), _tuple_map(5), context_features=["cate_id"])
    add("plain_no_refiner", "use_behavior_refiner False, use_pos_emb False, layer_norm False; random padding rows",
        params(use_behavior_refiner=False, use_pos_emb=False, layer_norm=False), _simple_map(6),
        random_padding_rows=True)
    add("sum_pooling", "enable_sum_pooling with tuple target E=8 H=4 (D=16, hd=4); random padding rows "
        "(sum pooling includes them)",
        params(num_heads=4, target_field=TUPLE, sequence_field=TUPLE_SEQ, enable_sum_pooling=True,
               dnn_activations=["Dice", "ReLU"]),
        _tuple_map(6), random_padding_rows=True)
    add("strict_mask", "refiner_mask strict (torch 2.0.x semantics), H=2 L=8",
        params(), _simple_map(8), refiner_mask="strict")
    sweep = [
        ("act_sweep_1", ["relu", "SIGMOID", "tanh"], ["Softmax", "prelu", "Dice", "LeakyReLU"], "binary_classification"),
        ("act_sweep_2", ["ELU", "SELU", "CELU"], ["GELU", "SiLU", "Mish", "Softplus"], "binary_classification"),
        ("act_sweep_3", ["Softsign", "Hardswish", "Hardsigmoid"], ["Hardtanh", "ReLU6", "LogSigmoid", "Tanhshrink"],
         "binary_classification"),
        ("act_sweep_4", ["Softshrink", "Hardshrink", "PReLU"], ["Identity", "RReLU", None, "dice"], "regression"),
    ]
    for name, att, dnn, task in sweep:
        add(name, "activation sweep: attention %s, DNN %s, task %s" % (att, dnn, task),
            params(task=task, attention_hidden_units=[12, 10, 8], attention_activation=att,
                   dnn_hidden_units=[24, 20, 16, 12], dnn_activations=dnn),
            _simple_map(5))
    add("gelu_regression", "single-string GELU everywhere, regression (identity output), pos_emb_dim 3",
        params(task="regression", attention_activation="GELU", dnn_activations="GELU", pos_emb_dim=3),
        _simple_map(5))
    return C


# ----------------------------------------------------------------------------------------------
# random, non-trivial weights

def _perturb_(t, rel=0.1, floor=0.02):
    scale = rel * (float(t.abs().mean()) + floor)
    t.add_(torch.randn_like(t) * scale)


@torch.no_grad()
def _lsuv_(model, batch):
    model.eval()
    by_depth = []
    for ext in model.multi_interest_extractor:
        for ta in ext.target_attention:
            lins = [m for m in ta.attn_mlp.mlp if isinstance(m, nn.Linear)]
            for d, lin in enumerate(lins):
                while len(by_depth) <= d:
                    by_depth.append([])
                by_depth[d].append((lin, 1.5 if d == len(lins) - 1 else 1.0))
    dnn_lins = [m for m in model.dnn.mlp if isinstance(m, nn.Linear)][:-1]
    steps = by_depth + [[(lin, 1.0)] for lin in dnn_lins]
    for group in steps:
        captured = {}
        hooks = [lin.register_forward_hook(lambda mod, inp, out, i=i: captured.setdefault(i, out.detach()))
                 for i, (lin, _) in enumerate(group)]
        try:
            model(batch)
        finally:
            for h in hooks:
                h.remove()
        for i, (lin, target) in enumerate(group):
            out = captured[i].reshape(-1, captured[i].shape[-1])
            std = float(out.std(0).mean())
            if std > 1e-8:
                lin.weight.mul_(target / std)


@torch.no_grad()
def randomize_model(model, random_padding_rows=False, calib_samples=None):
    spec = model.spec
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Embedding):
            mod.weight.normal_(0.0, 0.5)
            if not random_padding_rows:
                mod.weight[0].zero_()
        elif isinstance(mod, nn.MultiheadAttention):
            _perturb_(mod.in_proj_weight)
            mod.in_proj_bias.normal_(0.0, 0.2)
        elif isinstance(mod, nn.Linear):
            _perturb_(mod.weight)
            if mod.bias is not None:
                mod.bias.copy_(torch.rand_like(mod.bias) * 0.4 - 0.2)
        elif isinstance(mod, nn.LayerNorm):
            mod.weight.copy_(1.0 + 0.2 * torch.randn_like(mod.weight))
            mod.bias.normal_(0.0, 0.2)
        elif isinstance(mod, nn.BatchNorm1d) and mod.affine:
            mod.weight.copy_(1.0 + 0.2 * torch.randn_like(mod.weight))
            mod.bias.normal_(0.0, 0.2)
        elif isinstance(mod, Dice):
            mod.alpha.copy_(torch.rand_like(mod.alpha) * 1.5 - 0.5)
        elif isinstance(mod, nn.PReLU):
            mod.weight.copy_(torch.rand_like(mod.weight) * 0.9 - 0.3)
        if isinstance(mod, TargetAttention) and mod.use_pos_emb:
            mod.pos_emb.normal_(0.0, 0.5)
    # data-driven scaling of the MLP Linears (LSUV-like): each hidden Linear's output gets a per-unit
    # std of ~1 over the calibration batch, attention scores ~1.5, so that signal survives deep/narrow
    # MLPs and saturating activations (Softmax, LogSigmoid, ...)
    if calib_samples:
        _lsuv_(model, make_batch(spec, calib_samples))
    # BatchNorm / Dice running statistics from train-mode passes over random samples
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    if bns and calib_samples:
        model.eval()
        saved = [(m, m.momentum) for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
            m.train()
        for i in range(0, len(calib_samples), 32):
            model(make_batch(spec, calib_samples[i:i + 32]))
        for m, mom in saved:
            m.momentum = mom
        model.eval()
        for m in bns:
            var = m.running_var
            floor = 0.1 * float(var.median()) + 1e-2
            var.clamp_(min=floor).mul_(torch.rand_like(var) * 0.7 + 0.7)
            m.running_mean.add_(torch.randn_like(m.running_mean) * 0.1 * var.sqrt())
            m.num_batches_tracked.fill_(len(calib_samples) // 32)
    model.eval()
    # rescale the output Linear so logits have std ~1.5 (not saturated, not flat)
    if calib_samples:
        layout = dnn_layout(spec)
        last = model.dnn.mlp[layout[-1][0]]
        logits = model(make_batch(spec, calib_samples), return_intermediates=True)["logit"].double()
        mean, std = float(logits.mean()), float(logits.std())
        k = min(max(1.5 / std, 0.05), 50.0) if std > 1e-8 else 1.0
        last.weight.mul_(k)
        last.bias.copy_((last.bias - mean) * k + 0.3)
    return model


# ----------------------------------------------------------------------------------------------
# generation

def reference_tensors(model, samples):
    """float64 intermediates (module .double() on the float32 weights), returned as float32 arrays."""
    m64 = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        out = m64(make_batch(model.spec, samples), return_intermediates=True)
    t = OrderedDict()
    for k in range(len(samples)):
        for i, br in enumerate(out["branches"]):
            t["s%d.b%d.refined" % (k, i)] = br["refined"][k]
            t["s%d.b%d.z" % (k, i)] = br["z"][k]
            t["s%d.b%d.attn" % (k, i)] = br["attn"][k]
            t["s%d.b%d.interests" % (k, i)] = br["interests"][k]
        t["s%d.dnn_input" % k] = out["dnn_input"][k]
        t["s%d.logit" % k] = out["logit"][k:k + 1]
        t["s%d.prob" % k] = out["prob"][k:k + 1]
    return OrderedDict((n, v.detach().cpu().numpy().astype(np.float32)) for n, v in t.items()), out


def generate_config(name, cfg, out_dir, seed, num_samples=8):
    torch.manual_seed(seed)
    opts = cfg["options"]
    spec = build_spec(cfg["params"], cfg["feature_map"], candidate_features=opts.get("candidate_features"),
                      context_features=opts.get("context_features"),
                      refiner_mask=opts.get("refiner_mask", "additive"),
                      provenance=OrderedDict([("exporter", EXPORTER_VERSION), ("source", "dmin_ref.fixtures"),
                                              ("torch", torch.__version__), ("config", name), ("seed", seed)]))
    model = DMIN(spec)
    samples = generate_samples(spec, n=num_samples, seed=seed)
    calib = generate_samples(spec, n=128, seed=seed + 1) + samples
    randomize_model(model, random_padding_rows=opts.get("random_padding_rows", False), calib_samples=calib)
    reference = write_dmin_file(os.path.join(out_dir, name + ".safetensors"), model, samples)
    tensors, out = reference_tensors(model, samples)
    meta = OrderedDict([("format", "dmin-reference"), ("config", name), ("num_samples", str(len(samples))),
                        ("samples", json.dumps(samples, separators=(",", ":"))),
                        ("predictions_f32", json.dumps(reference["predictions"])),
                        ("note", "float64 reference (module .double() on the float32 weights of %s.safetensors)"
                         % name)])
    atomic_write_bytes(os.path.join(out_dir, name + ".ref.safetensors"), safetensors_io.encode(tensors, meta))
    probs = out["prob"].numpy()
    return OrderedDict([("description", cfg["description"]), ("num_samples", len(samples)),
                        ("refiner_mask", spec["refiner_mask"]), ("task", spec["task"]),
                        ("num_branches", len(spec["branches"])), ("dnn_input_dim", spec["dnn_input_dim"]),
                        ("prob_range", [float(probs.min()), float(probs.max())])])


def generate(out_dir, quick=False, only=None, seed=1234):
    os.makedirs(out_dir, exist_ok=True)
    cfgs = configurations()
    names = [n for n in cfgs if (not quick or not cfgs[n]["big"]) and (not only or n in only)]
    if only:
        unknown = [n for n in only if n not in cfgs]
        if unknown:
            raise SystemExit("unknown configuration(s): %s (have: %s)" % (", ".join(unknown), ", ".join(cfgs)))
    details = OrderedDict()
    for j, name in enumerate(names):
        details[name] = generate_config(name, cfgs[name], out_dir, seed + 17 * list(cfgs).index(name))
    index = OrderedDict([("format", "dmin-fixtures"), ("version", 1), ("quick", bool(quick)), ("configs", names),
                         ("details", details)])
    atomic_write_bytes(os.path.join(out_dir, "index.json"), (json.dumps(index, indent=1) + "\n").encode())
    return index


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--quick", action="store_true", help="skip the largest configurations")
    ap.add_argument("--only", nargs="*", help="generate only these configurations")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    t0 = time.time()
    index = generate(args.out, quick=args.quick, only=args.only, seed=args.seed)
    print("fixtures: %d configurations in %s (%.1f s)" % (len(index["configs"]), args.out, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
