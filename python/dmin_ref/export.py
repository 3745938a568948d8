"""dmin-export: write dmin weights files (weights_format.md) from FuxiCTR checkpoints or from the
project's own reference module.

    dmin-export fuxictr --checkpoint RUN.model --feature-map feature_map.json
                        (--config model_config.yaml [--expid EXPID] | --params params.json)
                        -o model.safetensors [--candidate-features a,b] [--context-features c,d]
                        [--refiner-mask additive|strict] [--vocab feature_vocab.json]
                        [--reference-inputs inputs.json] [--num-reference N]
    dmin-export torch   --module-state state.pt --spec spec.json -o model.safetensors
                        [--refiner-mask additive|strict] [--vocab ...] [--reference-inputs ...]
    dmin-export verify  model.safetensors      (re-run the stored reference pair)

Errors: one line on stderr, exit status 2, no output file (written to a temp file and renamed).
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
from collections import OrderedDict

import numpy as np

from . import safetensors_io
from .samples import generate_samples, normalize_sample, select_reference_samples
from .spec import (EMB_PREFIX, EXPORTER_VERSION, FORMAT_NAME, FORMAT_VERSION, SpecError, build_spec,
                   check_tensor_shapes, dnn_layout, expected_tensor_shapes, load_feature_map, spec_to_json,
                   validate_spec)

DEFAULT_TOLERANCE = 1e-5
DEFAULT_NUM_REFERENCE = 8


class ExportError(Exception):
    """One-line, user-actionable export failure."""


# ----------------------------------------------------------------------------------------------
# inputs

def load_yaml_params(config_path, expid=None):
    """FuxiCTR-style experiment params from a model_config.yaml (Base merged under the expid)."""
    import yaml

    paths = []
    if os.path.isdir(config_path):
        cand = os.path.join(config_path, "model_config.yaml")
        if os.path.isfile(cand):
            paths.append(cand)
        sub = os.path.join(config_path, "model_config")
        if os.path.isdir(sub):
            paths += sorted(os.path.join(sub, f) for f in os.listdir(sub) if f.endswith((".yaml", ".yml")))
        if not paths:
            raise ExportError("config directory %s has no model_config.yaml" % config_path)
    else:
        paths.append(config_path)
    data = OrderedDict()
    for p in paths:
        try:
            with open(p, "r") as fh:
                loaded = yaml.load(fh, Loader=yaml.FullLoader)
        except OSError as exc:
            raise ExportError("cannot read config %s: %s" % (p, exc.strerror or exc))
        except yaml.YAMLError as exc:
            raise ExportError("config %s is not valid YAML: %s" % (p, " ".join(str(exc).split())))
        if not isinstance(loaded, dict):
            raise ExportError("config %s: expected a mapping of experiment ids to params" % p)
        data.update(loaded)
    exps = [k for k in data if k != "Base"]
    if expid is None:
        if len(exps) != 1:
            raise ExportError("config has %d experiments (%s); pass --expid" % (len(exps), ", ".join(map(str, exps[:8]))))
        expid = exps[0]
    if expid not in data:
        raise ExportError("experiment id %r not found in the config (available: %s)" % (expid, ", ".join(map(str, exps[:8]))))
    params = OrderedDict()
    if isinstance(data.get("Base"), dict):
        params.update(data["Base"])
    if not isinstance(data[expid], dict):
        raise ExportError("config entry %r is not a mapping of params" % expid)
    params.update(data[expid])
    params.setdefault("model_id", expid)
    return params, expid


def load_json_params(path):
    try:
        with open(path, "r") as fh:
            params = json.load(fh, object_pairs_hook=OrderedDict)
    except OSError as exc:
        raise ExportError("cannot read params %s: %s" % (path, exc.strerror or exc))
    except ValueError as exc:
        raise ExportError("params %s is not valid JSON: %s" % (path, exc))
    if not isinstance(params, dict):
        raise ExportError("params %s: expected a JSON object" % path)
    return params


def _read_json(path, what):
    try:
        with open(path, "r") as fh:
            return json.load(fh, object_pairs_hook=OrderedDict)
    except OSError as exc:
        raise ExportError("cannot read %s %s: %s" % (what, path, exc.strerror or exc))
    except ValueError as exc:
        raise ExportError("%s %s is not valid JSON: %s" % (what, path, exc))


def load_state_file(path, what="checkpoint"):
    """torch.load(map_location='cpu') of a state_dict file -> OrderedDict name -> tensor."""
    import torch

    if not os.path.isfile(path):
        raise ExportError("%s %s does not exist" % (what, path))
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch < 1.13 has no weights_only
            obj = torch.load(path, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unpickling/zip failure
        raise ExportError("%s %s: cannot load a state_dict with torch.load (%s)"
                          % (what, path, " ".join(str(exc).split())[:200]))
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        raise ExportError("%s %s: expected a state_dict (mapping of names to tensors)" % (what, path))
    return OrderedDict(obj)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_name_list(value):
    if not value:
        return []
    return [x.strip() for x in value.split(",") if x.strip()]


# ----------------------------------------------------------------------------------------------
# checkpoint -> module

def _shape(t):
    return [int(d) for d in t.shape]


def load_checked_state(model, state, source="checkpoint", allow_missing_alias=False):
    """Check a state_dict against the rebuilt module and load it (strict).

    Drops aux_net.* keys; tolerates missing num_batches_tracked (and, if allow_missing_alias,
    missing alias keys of shared tables).  Raises ExportError naming the first problem.
    """
    import torch

    ref = model.state_dict()
    feats = OrderedDict((f["name"], f) for f in model.spec["features"])
    state = OrderedDict((k, v) for k, v in state.items() if not k.startswith("aux_net."))
    alias_owner = {}
    for name, f in feats.items():
        own = EMB_PREFIX + name + ".weight"
        if f["table"] != own:
            alias_owner[own] = f["table"]
    dnn_first = dnn_layout(model.spec)[0]
    dnn_first_key = "dnn.mlp.0.weight" if dnn_first[1] == "linear" else "dnn.mlp.0.running_mean"
    F = model.spec["dnn_input_dim"]

    problems = []
    for k, v in ref.items():
        if k not in state:
            if k.endswith("num_batches_tracked"):
                continue
            if allow_missing_alias and k in alias_owner and alias_owner[k] in state:
                continue
            problems.append("%s is missing tensor %s (expected shape %s)" % (source, k, _shape(v)))
    for k, v in state.items():
        if k not in ref:
            problems.append("%s has unexpected tensor %s %s that the params do not produce" % (source, k, _shape(v)))
    for k, v in state.items():
        if k in ref and _shape(v) != _shape(ref[k]):
            if k == dnn_first_key:
                found_in = _shape(v)[-1] if _shape(v) else None
                problems.append("DNN input width: the params give %d inputs (tensor %s expected shape %s) but the %s "
                                "has shape %s, i.e. %s inputs" % (F, k, _shape(ref[k]), source, _shape(v), found_in))
            else:
                problems.append("tensor %s: expected shape %s from the params, found %s in the %s"
                                % (k, _shape(ref[k]), _shape(v), source))
    if problems:
        more = " (and %d more problems)" % (len(problems) - 1) if len(problems) > 1 else ""
        raise ExportError(problems[0] + more)

    new = OrderedDict()
    for k, cur in ref.items():
        if k in state:
            v = state[k]
        elif k in alias_owner:
            v = state[alias_owner[k]]
        else:  # num_batches_tracked
            v = cur
        if k.endswith("num_batches_tracked"):
            new[k] = v.to(torch.long)
            continue
        if not v.is_floating_point():
            raise ExportError("tensor %s: expected a floating point tensor, found %s" % (k, v.dtype))
        v = v.detach().to(torch.float32)
        if not torch.isfinite(v).all():
            raise ExportError("tensor %s contains non-finite values" % k)
        new[k] = v
    for own, table in alias_owner.items():
        if own in state and table in state and not torch.equal(state[own].float(), state[table].float()):
            raise ExportError("tensors %s and %s should be one shared table (share_embedding) but differ" % (own, table))
    model.load_state_dict(new, strict=True)
    return model


# ----------------------------------------------------------------------------------------------
# reference pair, vocab, file writing

def reference_pair(model, samples, tolerance=DEFAULT_TOLERANCE):
    preds = model.predict(samples)
    return OrderedDict([("samples", samples), ("predictions", [float(np.float32(p)) for p in preds]),
                        ("tolerance", tolerance)])


def choose_reference_samples(spec, reference_inputs=None, n=DEFAULT_NUM_REFERENCE, seed=0):
    if reference_inputs is None:
        return generate_samples(spec, n=n, seed=seed)
    data = _read_json(reference_inputs, "reference inputs")
    samples = data.get("samples") if isinstance(data, dict) else data
    if not isinstance(samples, list) or not samples:
        raise ExportError("reference inputs %s: expected {\"samples\": [...]} or a non-empty list" % reference_inputs)
    picked = select_reference_samples(spec, samples, n=n)
    out = []
    for i, s in enumerate(picked):
        if not isinstance(s, dict):
            raise ExportError("reference inputs %s: sample %d is not an object" % (reference_inputs, i))
        try:
            out.append(normalize_sample(spec, s, where="reference inputs sample %d" % i))
        except ValueError as exc:
            raise ExportError(str(exc))
    return out


def build_vocab(spec, vocab_path):
    """Embed FuxiCTR feature_vocab.json entries (weights_format section 5); may update oov_idx."""
    data = _read_json(vocab_path, "vocab")
    if not isinstance(data, dict):
        raise ExportError("vocab %s: expected an object feature -> {token: index}" % vocab_path)
    out = OrderedDict()
    for f in spec["features"]:
        if f["type"] == "numeric" or f["name"] not in data:
            continue
        entry = data[f["name"]]
        if isinstance(entry, dict) and "tokens" in entry and isinstance(entry["tokens"], dict):
            entry = entry["tokens"]
        if not isinstance(entry, dict):
            raise ExportError("vocab %s: entry of feature %r is not an object token -> index" % (vocab_path, f["name"]))
        tokens = OrderedDict()
        for tok, idx in entry.items():
            if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < f["vocab_size"]:
                raise ExportError("vocab %s: feature %r token %r has index %r outside [0, %d)"
                                  % (vocab_path, f["name"], tok, idx, f["vocab_size"]))
            tokens[str(tok)] = idx
        oov = tokens.get("__OOV__", f.get("oov_idx"))
        pad = tokens.get("__PAD__", 0)
        f["oov_idx"] = oov
        out[f["name"]] = OrderedDict([("tokens", tokens), ("oov_idx", oov), ("pad_idx", pad)])
    if not out:
        raise ExportError("vocab %s has no entry for any categorical/sequence feature of the model" % vocab_path)
    return out


def atomic_write_bytes(path, data):
    path = os.path.abspath(path)
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        raise ExportError("output directory %s does not exist" % d)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def encode_dmin(spec, tensors, reference, vocab=None, dtype="F32"):
    validate_spec(spec)
    check_tensor_shapes(spec, tensors, source="module")
    ordered = OrderedDict((k, tensors[k]) for k in expected_tensor_shapes(spec))
    meta = OrderedDict([("format", FORMAT_NAME), ("format_version", FORMAT_VERSION), ("spec", spec_to_json(spec)),
                        ("reference", json.dumps(reference, separators=(",", ":"), ensure_ascii=False))])
    if vocab:
        meta["vocab"] = json.dumps(vocab, separators=(",", ":"), ensure_ascii=False)
    return safetensors_io.encode(ordered, meta, dtype)


def round_to_bf16_(model):
    """Rounds every floating parameter and buffer of `model` to bf16 in place (nearest even, kept in its
    own dtype): the values a BF16 file holds, so that the reference pair computed next describes them."""
    import torch

    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.bfloat16).to(t.dtype))


def write_dmin_file(path, model, samples, vocab=None, tolerance=DEFAULT_TOLERANCE, dtype="F32"):
    """Write `model` (a dmin_ref DMIN in any mode) with a float32 eval reference pair; atomic. With
    dtype="BF16" the tensors are stored as bf16 (half the bytes): the model's weights are rounded first
    (in place), and the pair is computed from the rounded weights."""
    if dtype == "BF16":
        round_to_bf16_(model)
    reference = reference_pair(model, samples, tolerance)
    data = encode_dmin(model.spec, model.dmin_tensors(), reference, vocab, dtype)
    atomic_write_bytes(path, data)
    return reference


def read_dmin_file(path):
    """-> (spec, tensors, reference, vocab). Validates format, spec and tensor set/shapes."""
    try:
        tensors, meta = safetensors_io.read_file(path)
    except OSError as exc:
        raise ExportError("cannot read %s: %s" % (path, exc.strerror or exc))
    if not meta or meta.get("format") != FORMAT_NAME:
        raise ExportError("%s: __metadata__ format is not %r" % (path, FORMAT_NAME))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ExportError("%s: unknown format_version %r" % (path, meta.get("format_version")))
    spec = json.loads(meta["spec"], object_pairs_hook=OrderedDict)
    validate_spec(spec)
    check_tensor_shapes(spec, tensors)
    reference = json.loads(meta["reference"], object_pairs_hook=OrderedDict) if "reference" in meta else None
    vocab = json.loads(meta["vocab"], object_pairs_hook=OrderedDict) if "vocab" in meta else None
    return spec, tensors, reference, vocab


def load_model(path, dtype=None):
    """DMIN reference module (eval mode) from a dmin weights file."""
    from .model import model_from_tensors

    spec, tensors, _, _ = read_dmin_file(path)
    m = model_from_tensors(spec, tensors)
    if dtype is not None:
        m = m.to(dtype)
    return m


# ----------------------------------------------------------------------------------------------
# commands

def _provenance(source, **extra):
    import torch

    p = OrderedDict([("exporter", EXPORTER_VERSION), ("source", source), ("torch", torch.__version__)])
    for k, v in extra.items():
        if v is not None:
            p[k] = v
    return p


def export_fuxictr(checkpoint, feature_map, out, config=None, expid=None, params=None, candidate_features=None,
                   context_features=None, refiner_mask="additive", vocab=None, reference_inputs=None,
                   num_reference=DEFAULT_NUM_REFERENCE, dtype="F32"):
    from .model import DMIN

    if (config is None) == (params is None):
        raise ExportError("give exactly one of --config (with --expid) or --params")
    if config is not None:
        raw, expid = load_yaml_params(config, expid)
    else:
        raw = load_json_params(params)
    if not os.path.isfile(feature_map):
        raise ExportError("feature map %s does not exist" % feature_map)
    fm = load_feature_map(feature_map)
    if not os.path.isfile(checkpoint):
        raise ExportError("checkpoint %s does not exist" % checkpoint)
    prov = _provenance("fuxictr", checkpoint=os.path.basename(checkpoint), checkpoint_sha256=sha256_file(checkpoint),
                       expid=expid if config is not None else raw.get("model_id"),
                       dataset_id=fm.get("dataset_id") if isinstance(fm, dict) else None,
                       params=os.path.basename(config if config is not None else params))
    spec = build_spec(raw, fm, candidate_features=candidate_features, context_features=context_features,
                      refiner_mask=refiner_mask, provenance=prov)
    vocab_obj = build_vocab(spec, vocab) if vocab else None
    model = DMIN(spec)
    load_checked_state(model, load_state_file(checkpoint, "checkpoint"), source="checkpoint")
    model.eval()
    samples = choose_reference_samples(spec, reference_inputs, n=num_reference)
    return write_dmin_file(out, model, samples, vocab=vocab_obj, dtype=dtype)


def export_torch(module_state, spec_path, out, refiner_mask=None, vocab=None, reference_inputs=None,
                 num_reference=DEFAULT_NUM_REFERENCE, dtype="F32"):
    from .model import DMIN

    spec = _read_json(spec_path, "spec")
    if isinstance(spec, dict) and "spec" in spec and isinstance(spec["spec"], dict):
        spec = spec["spec"]
    validate_spec(spec)
    if refiner_mask:
        spec["refiner_mask"] = refiner_mask
    prov = OrderedDict(spec.get("provenance") or {})
    prov.update(_provenance("torch", module_state=os.path.basename(module_state)))
    spec["provenance"] = prov
    vocab_obj = build_vocab(spec, vocab) if vocab else None
    model = DMIN(spec)
    load_checked_state(model, load_state_file(module_state, "module state"), source="module state",
                       allow_missing_alias=True)
    model.eval()
    samples = choose_reference_samples(spec, reference_inputs, n=num_reference)
    return write_dmin_file(out, model, samples, vocab=vocab_obj, dtype=dtype)


def verify_file(path):
    """Re-run the stored reference pair with the reference module; returns max |diff|."""
    model = load_model(path)
    spec, _, reference, _ = read_dmin_file(path)
    if not reference:
        raise ExportError("%s has no reference pair" % path)
    preds = model.predict(reference["samples"])
    ref = np.asarray(reference["predictions"], dtype=np.float64)
    diff = np.abs(preds - ref)
    tol = reference.get("tolerance", DEFAULT_TOLERANCE)
    bad = diff > tol + tol * np.abs(ref)
    if bad.any():
        i = int(np.argmax(diff))
        raise ExportError("%s: reference sample %d predicted %.9g, file says %.9g" % (path, i, preds[i], ref[i]))
    return float(diff.max()) if len(diff) else 0.0


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ExportError(" ".join(str(message).split()))


def build_parser():
    p = _Parser(prog="dmin-export", description="Write dmin weights files (weights_format.md).")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True
    fx = sub.add_parser("fuxictr", help="convert a FuxiCTR DMIN checkpoint")
    fx.add_argument("--checkpoint", required=True, help="FuxiCTR <model_id>.model (torch.save(state_dict))")
    fx.add_argument("--feature-map", required=True, help="feature_map.json of the dataset")
    g = fx.add_mutually_exclusive_group(required=True)
    g.add_argument("--config", help="model_config.yaml (or a config directory)")
    g.add_argument("--params", help="resolved params as JSON (e.g. from the run log)")
    fx.add_argument("--expid", help="experiment id in --config (default: the only one)")
    fx.add_argument("-o", "--output", required=True)
    fx.add_argument("--candidate-features", default="", help="comma list of role=candidate features (target fields are candidates by default)")
    fx.add_argument("--context-features", default="", help="comma list of role=context features")
    fx.add_argument("--refiner-mask", choices=("additive", "strict"), default="additive")
    fx.add_argument("--vocab", help="FuxiCTR feature_vocab.json to embed")
    fx.add_argument("--reference-inputs", help="inputs JSON ({\"samples\": [...]}) for the reference pair")
    fx.add_argument("--num-reference", type=int, default=DEFAULT_NUM_REFERENCE)
    fx.add_argument("--dtype", choices=("f32", "bf16"), default="f32", help="tensor dtype in the file (bf16: half the bytes)")
    tp = sub.add_parser("torch", help="export the dmin_ref reference module's state_dict")
    tp.add_argument("--module-state", required=True, help="torch.save(model.state_dict()) of dmin_ref.model.DMIN")
    tp.add_argument("--spec", required=True, help="spec JSON (weights_format.md section 3)")
    tp.add_argument("-o", "--output", required=True)
    tp.add_argument("--refiner-mask", choices=("additive", "strict"), default=None)
    tp.add_argument("--vocab")
    tp.add_argument("--reference-inputs")
    tp.add_argument("--num-reference", type=int, default=DEFAULT_NUM_REFERENCE)
    tp.add_argument("--dtype", choices=("f32", "bf16"), default="f32", help="tensor dtype in the file (bf16: half the bytes)")
    vp = sub.add_parser("verify", help="check a dmin file's reference pair with the reference module")
    vp.add_argument("file")
    return p


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "num_reference", 1) < 1:
            raise ExportError("--num-reference must be >= 1")
        if args.command == "fuxictr":
            ref = export_fuxictr(args.checkpoint, args.feature_map, args.output, config=args.config, expid=args.expid,
                                 params=args.params, candidate_features=parse_name_list(args.candidate_features),
                                 context_features=parse_name_list(args.context_features),
                                 refiner_mask=args.refiner_mask, vocab=args.vocab,
                                 reference_inputs=args.reference_inputs, num_reference=args.num_reference,
                                 dtype=args.dtype.upper())
            print("dmin-export: wrote %s (%d reference samples)" % (args.output, len(ref["samples"])))
        elif args.command == "torch":
            ref = export_torch(args.module_state, args.spec, args.output, refiner_mask=args.refiner_mask,
                               vocab=args.vocab, reference_inputs=args.reference_inputs,
                               num_reference=args.num_reference, dtype=args.dtype.upper())
            print("dmin-export: wrote %s (%d reference samples)" % (args.output, len(ref["samples"])))
        else:
            d = verify_file(args.file)
            print("dmin-export: %s OK (reference max |diff| %.3g)" % (args.file, d))
        return 0
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.stderr.write("dmin-export: error: interrupted\n")
        return 2
    except (ExportError, SpecError, safetensors_io.SafetensorsError) as exc:
        sys.stderr.write("dmin-export: error: %s\n" % " ".join(str(exc).split()))
        return 2
    except Exception as exc:  # noqa: BLE001 - keep the one-line contract for anything unexpected
        if os.environ.get("DMIN_EXPORT_DEBUG"):
            raise
        sys.stderr.write("dmin-export: error: %s: %s (set DMIN_EXPORT_DEBUG=1 for a traceback)\n"
                         % (type(exc).__name__, " ".join(str(exc).split())))
        return 2


if __name__ == "__main__":
    sys.exit(main())
