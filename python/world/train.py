#!/usr/bin/python3
"""Train the reference DMIN module on the synthetic multi-interest world and export it for dmin.

    /usr/bin/python3 python/world/train.py [--out-dir examples/models] [--epochs 8] [--seed 0]

Writes to --out-dir:
  multi_interest_world.safetensors    the model, written by tools/dmin-export torch
  world_heldout.json                  {"samples", "labels", "predictions" (PyTorch float32 eval), "auc"}
  multi_interest_world.catalog.json   item -> category map and category names (used by rank_candidates)
  README.md                           how the files were generated, held-out AUC, sizes

Deterministic for a given seed (numpy + torch seeds, one torch thread by default).
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dmin_ref.model import DMIN  # noqa: E402
from dmin_ref.spec import build_spec  # noqa: E402
from world.generate import (AGE, CATE, CATE_HIST, FEATURES, GENDER, HOUR, ITEM, ITEM_HIST, USER_ID, World,  # noqa: E402
                            roc_auc, to_samples)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPORTER = os.path.join(REPO, "tools", "dmin-export")
MODEL_NAME = "multi_interest_world.safetensors"
HELDOUT_NAME = "world_heldout.json"
CATALOG_NAME = "multi_interest_world.catalog.json"

# Sizes of the shipped example: train / validation (epoch selection) / held-out (reported, shipped).
DEFAULTS = dict(train_users=16000, val_users=1000, heldout_users=500, per_user=4, heldout_per_user=2, epochs=4,
                batch_size=256, lr=2e-3, embedding_dim=8, num_heads=4)


# ----------------------------------------------------------------------------------------------
# model spec (FuxiCTR feature map + params, through the project's spec builder)

def _cat(name, vocab):
    return {name: OrderedDict([("source", "world"), ("type", "categorical"), ("padding_idx", 0), ("vocab_size", vocab)])}


def _seq(name, vocab, max_len, share):
    return {name: OrderedDict([("source", "world"), ("type", "sequence"), ("share_embedding", share), ("padding_idx", 0),
                               ("vocab_size", vocab), ("max_len", max_len)])}


def world_spec(world, embedding_dim=8, num_heads=4, provenance=None):
    """DMIN spec for the world: target (item_id, cate_id) / sequence (item_hist, cate_hist) sharing tables,
    user profile (user_id, age_level, gender), context hour; candidate features item_id, cate_id."""
    v = world.vocab_sizes()
    L = world.cfg["max_len"]
    fmap = OrderedDict([("dataset_id", "multi_interest_world"), ("num_fields", len(FEATURES)), ("labels", ["click"]),
                        ("features", [_cat(USER_ID, v[USER_ID]), _cat(AGE, v[AGE]), _cat(GENDER, v[GENDER]),
                                      _cat(HOUR, v[HOUR]), _cat(ITEM, v[ITEM]), _cat(CATE, v[CATE]),
                                      _seq(ITEM_HIST, v[ITEM], L, ITEM), _seq(CATE_HIST, v[CATE], L, CATE)])])
    params = OrderedDict([
        ("model", "DMIN"), ("task", "binary_classification"), ("embedding_dim", embedding_dim),
        ("num_heads", num_heads), ("target_field", (ITEM, CATE)), ("sequence_field", (ITEM_HIST, CATE_HIST)),
        ("neg_seq_field", None), ("dnn_hidden_units", [64, 32]), ("dnn_activations", "Dice"),
        ("attention_hidden_units", [32, 16]), ("attention_activation", "ReLU"), ("attention_dropout", 0),
        ("net_dropout", 0), ("use_pos_emb", True), ("pos_emb_dim", 4), ("use_behavior_refiner", True),
        ("layer_norm", True), ("batch_norm", False), ("bn_only_once", False), ("enable_sum_pooling", False),
        ("aux_loss_lambda", 0)])
    return build_spec(params, fmap, candidate_features=[ITEM, CATE], context_features=[HOUR],
                      provenance=provenance or OrderedDict())


# ----------------------------------------------------------------------------------------------
# training

def to_batch(cols, idx=None):
    """Columnar samples -> DMIN batch dict of int64 tensors."""
    return {f: torch.from_numpy(np.ascontiguousarray(cols[f] if idx is None else cols[f][idx]).astype(np.int64))
            for f in FEATURES}


def labels_of(cols, idx=None):
    y = cols["label"] if idx is None else cols["label"][idx]
    return torch.from_numpy(np.asarray(y, dtype=np.float32))


@torch.no_grad()
def predict_cols(model, cols, batch_size=2048):
    model.eval()
    n = len(cols[ITEM])
    out = [model(to_batch(cols, np.arange(i, min(n, i + batch_size)))) for i in range(0, n, batch_size)]
    return torch.cat(out).numpy()


@torch.no_grad()
def mean_loss(model, cols, batch_size=2048):
    p = torch.from_numpy(predict_cols(model, cols, batch_size))
    return float(F.binary_cross_entropy(p, labels_of(cols)))


@torch.no_grad()
def recalibrate_dice(model, cols, batches=40, batch_size=512, seed=0):
    """Running statistics of every Dice/BatchNorm as a plain average over training batches (the
    momentum-0.01 running averages lag the weights during a short training)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    if not bns:
        return
    rng = np.random.RandomState(seed)
    saved = [(m, m.momentum) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    n = len(cols[ITEM])
    for _ in range(batches):
        model(to_batch(cols, rng.randint(n, size=batch_size)))
    for m, mom in saved:
        m.momentum = mom
    model.eval()


def train_epoch(model, opt, cols, batch_size, rng):
    """One pass over cols in random order (BCE on the sigmoid output, as FuxiCTR). Returns the batch losses."""
    model.train()
    n = len(cols[ITEM])
    perm = rng.permutation(n)
    losses = []
    for i in range(0, n - batch_size + 1, batch_size):  # full batches only (Dice batch statistics)
        idx = perm[i:i + batch_size]
        p = model(to_batch(cols, idx))
        loss = F.binary_cross_entropy(p, labels_of(cols, idx))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


def train(model, train_cols, val_cols, epochs, batch_size, lr, seed, log=print):
    """Adam + BCE; keeps the epoch with the best validation AUC. Returns (best_auc, history)."""
    rng = np.random.RandomState(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_state, history = -1.0, None, []
    for ep in range(epochs):
        t0 = time.time()
        losses = train_epoch(model, opt, train_cols, batch_size, rng)
        recalibrate_dice(model, train_cols, seed=seed + ep)
        auc = roc_auc(val_cols["label"], predict_cols(model, val_cols))
        history.append(dict(epoch=ep + 1, train_loss=float(np.mean(losses)), val_auc=auc, seconds=time.time() - t0))
        log("epoch %d: train loss %.4f  val AUC %.4f  (%.1fs)" % (ep + 1, np.mean(losses), auc, time.time() - t0))
        if auc > best:
            best, best_state = auc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return best, history


# ----------------------------------------------------------------------------------------------
# export

def export(model, out_path, reference_samples):
    """state_dict + spec -> tools/dmin-export torch (reference pair from the held-out samples)."""
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state.pt")
        spec = os.path.join(tmp, "spec.json")
        ref = os.path.join(tmp, "reference_inputs.json")
        torch.save(model.state_dict(), state)
        with open(spec, "w") as fh:
            json.dump(model.spec, fh)
        with open(ref, "w") as fh:
            json.dump({"samples": reference_samples}, fh)
        cmd = [sys.executable, EXPORTER, "torch", "--module-state", state, "--spec", spec, "-o", out_path,
               "--reference-inputs", ref]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env)
        if p.returncode != 0:
            raise SystemExit("export failed: %s" % p.stderr.strip())
        return p.stdout.strip()


def _dump_compact(obj, path):
    with open(path, "w") as fh:
        json.dump(obj, fh, separators=(",", ":"))
        fh.write("\n")


def write_readme(path, info):
    s = info
    text = """# Shipped example model: the multi-interest world

Generated by `python/world/train.py` (do not edit by hand; re-run the command to regenerate):

```sh
/usr/bin/python3 python/world/train.py --out-dir examples/models --seed {seed} --epochs {epochs}
```

* **Data**: `python/world/generate.py`, a synthetic "multi-interest world" (seed {seed}). {n_items} items in
  {n_cats} categories (`cat_01` .. `cat_{n_cats:02d}`); each user has 2-4 weighted interests over categories and
  a behaviour sequence (most recent first, post-padded with 0 to {max_len}; about 7% empty and 18% with 1-4
  events) that interleaves items of those interests, drifts to a stale interest in older positions and
  has a few random events. Profile: `user_id` bucket, `age_level`, `gender`; context: `hour`. A click
  on a candidate follows the interest that matches its category (its weight), plus the item's quality,
  small profile/hour x category affinities and noise.
* **Model**: the PyTorch reference module (`python/dmin_ref`, FuxiCTR's DMIN) with target
  `(item_id, cate_id)` and sequence `(item_hist, cate_hist)` sharing the tables, E = {E}, D = {D},
  H = {H} interest heads, L = {max_len}, behaviour refiner, attention MLP [32, 16] ReLU, DNN [64, 32] Dice;
  {params} parameters. Roles: candidate `item_id`, `cate_id`; context `hour`; user the rest.
* **Training**: {n_train} samples ({train_users} users x {per_user} candidates), Adam lr {lr}, batch {batch},
  BCE, no auxiliary loss, {epochs} epochs, epoch kept by AUC on {n_val} validation samples (epoch {best_epoch});
  {train_cpu:.0f} s of CPU time with {threads} torch thread(s) ({train_seconds:.0f} s wall on a shared 2-core
  machine; torch {torch}).
* **Held-out AUC**: **{auc:.4f}** on {n_heldout} samples from {heldout_users} unseen users
  (the world's own click probabilities, noise included, reach {bayes_auc:.4f} on them).
* **Export**: `tools/dmin-export torch --module-state state.pt --spec spec.json -o {model}
  --reference-inputs <8 held-out samples>`.

| file | bytes | what |
| --- | --- | --- |
| `{model}` | {model_bytes} | dmin weights file (weights_format.md) |
| `{heldout}` | {heldout_bytes} | `{{"samples", "labels", "predictions", "auc"}}`: held-out samples in `dmin predict` form, labels, PyTorch float32 eval predictions, their AUC |
| `{catalog}` | {catalog_bytes} | item -> category and category names; `rank_candidates` uses it to build a realistic request |

`tests/test_world.cpp` scores every held-out sample with the C++ fast path and checks each
prediction against PyTorch (1e-5 relative + absolute) and the AUC.
""".format(**s)
    with open(path, "w") as fh:
        fh.write(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(REPO, "examples", "models"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--train-users", type=int, default=DEFAULTS["train_users"])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: tiny ops, and OpenMP spinning under CPU contention is very slow)")
    args = ap.parse_args(argv)

    t_start = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    d = DEFAULTS
    world = World(seed=args.seed)
    train_cols, _ = world.samples(args.train_users, d["per_user"], seed=1000 + args.seed)
    val_cols, _ = world.samples(d["val_users"], d["per_user"], seed=2000 + args.seed)
    held_cols, _ = world.samples(d["heldout_users"], d["heldout_per_user"], seed=3000 + args.seed)
    print("world: %d train, %d validation, %d held-out samples; positive rate %.3f (%.1fs)"
          % (len(train_cols[ITEM]), len(val_cols[ITEM]), len(held_cols[ITEM]), train_cols["label"].mean(),
             time.time() - t_start))

    prov = OrderedDict([("generator", "python/world/train.py"), ("world_seed", args.seed), ("epochs", args.epochs)])
    spec = world_spec(world, d["embedding_dim"], d["num_heads"], provenance=prov)
    model = DMIN(spec)
    t0, c0 = time.time(), time.process_time()
    best_val, history = train(model, train_cols, val_cols, args.epochs, d["batch_size"], d["lr"], args.seed)
    train_seconds, train_cpu = time.time() - t0, time.process_time() - c0
    best_epoch = max(history, key=lambda h: h["val_auc"])["epoch"]

    samples = to_samples(held_cols)
    labels = [int(y) for y in held_cols["label"]]
    preds = [float(np.float32(p)) for p in model.predict(samples)]
    auc = roc_auc(labels, preds)
    print("held-out AUC %.4f (validation %.4f, world optimum %.4f)"
          % (auc, best_val, roc_auc(held_cols["label"], held_cols["p_true"])))

    os.makedirs(args.out_dir, exist_ok=True)
    model_path = os.path.join(args.out_dir, MODEL_NAME)
    # reference pair: 8 held-out samples incl. an empty, a partial and a full history
    empty = [s for s in samples if s[ITEM_HIST][0] == 0][:1]
    full = [s for s in samples if s[ITEM_HIST][-1] != 0][:1]
    print(export(model, model_path, empty + full + samples[:6]))

    # the file must reproduce the trained module exactly (same tensors through the reference module)
    from dmin_ref.export import load_model
    again = [float(np.float32(p)) for p in load_model(model_path).predict(samples)]
    if again != preds:
        raise SystemExit("exported model does not reproduce the trained module's predictions")

    heldout_path = os.path.join(args.out_dir, HELDOUT_NAME)
    _dump_compact(OrderedDict([("samples", samples), ("labels", labels), ("predictions", preds), ("auc", auc)]),
                  heldout_path)
    catalog_path = os.path.join(args.out_dir, CATALOG_NAME)
    _dump_compact(OrderedDict([
        ("description", "multi-interest world (python/world/generate.py, seed %d): category of every item id "
                        "(index = item id, 0 = padding) and category names (index = cate id)" % args.seed),
        ("item_feature", ITEM), ("category_feature", CATE), ("item_history", ITEM_HIST),
        ("category_history", CATE_HIST), ("item_category", [int(c) for c in world.item_cat]),
        ("category_names", world.category_names())]), catalog_path)

    from dmin_ref.spec import count_parameters
    info = dict(seed=args.seed, epochs=args.epochs, n_items=world.cfg["n_items"], n_cats=world.cfg["n_cats"],
                max_len=world.cfg["max_len"], E=d["embedding_dim"], D=2 * d["embedding_dim"], H=d["num_heads"],
                params=count_parameters(spec), n_train=len(train_cols[ITEM]), train_users=args.train_users,
                per_user=d["per_user"], lr=d["lr"], batch=d["batch_size"], n_val=len(val_cols[ITEM]),
                best_epoch=best_epoch, train_seconds=train_seconds, train_cpu=train_cpu, threads=args.threads, torch=torch.__version__, auc=auc,
                n_heldout=len(samples), heldout_users=d["heldout_users"],
                bayes_auc=roc_auc(held_cols["label"], held_cols["p_true"]), model=MODEL_NAME,
                heldout=HELDOUT_NAME, catalog=CATALOG_NAME, model_bytes=os.path.getsize(model_path),
                heldout_bytes=os.path.getsize(heldout_path), catalog_bytes=os.path.getsize(catalog_path))
    write_readme(os.path.join(args.out_dir, "README.md"), info)
    for name in (MODEL_NAME, HELDOUT_NAME, CATALOG_NAME):
        print("  %-36s %8d bytes" % (name, os.path.getsize(os.path.join(args.out_dir, name))))
    print("total %.1fs (training %.1fs wall, %.1fs CPU)" % (time.time() - t_start, train_seconds, train_cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
