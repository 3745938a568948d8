"""The dmin model spec (weights_format.md section 3): building it from FuxiCTR params + feature_map,
validating it, and deriving the exact tensor key list / shapes (FuxiCTR state_dict names).

Everything here is plain Python (no torch) so the C++-facing contract can be checked cheaply.
All user-facing problems raise SpecError with a one-line message that names the param, feature
or tensor involved.
"""

import ast
import json
import math
from collections import OrderedDict

FORMAT_NAME = "dmin"
FORMAT_VERSION = "1"
EXPORTER_VERSION = "dmin-export 0.1.0"
EMB_PREFIX = "embedding_layer.embedding_layers."


class SpecError(ValueError):
    """A user-actionable problem with params, feature map, spec or tensors (one line)."""


# ----------------------------------------------------------------------------------------------
# activations

# FuxiCTR get_activation: these names match case-insensitively ...
_CI_ACTIVATIONS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax",
                   "prelu": "PReLU", "dice": "Dice"}
# ... everything else is getattr(torch.nn, name)() (exact, case-sensitive). These are the ones that
# make sense element-wise on a (N, units) matrix and are allowed by the dmin format.
TORCH_DEFAULT_ACTIVATIONS = ("LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Softplus",
                             "Softsign", "Hardswish", "Hardsigmoid", "Hardtanh", "ReLU6", "LogSigmoid",
                             "Tanhshrink", "Softshrink", "Hardshrink", "Identity", "RReLU")
CANONICAL_ACTIVATIONS = ("ReLU", "Sigmoid", "Tanh", "Softmax", "PReLU", "Dice") + TORCH_DEFAULT_ACTIVATIONS
PARAM_ACTIVATIONS = ("PReLU", "Dice")  # activations with tensors


def canonical_activation(name, where="activation"):
    """Map a FuxiCTR activation string to the canonical dmin name (None stays None)."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise SpecError("%s: expected an activation name string or null, got %r" % (where, name))
    low = name.lower()
    if low in _CI_ACTIVATIONS:
        return _CI_ACTIVATIONS[low]
    if name in TORCH_DEFAULT_ACTIVATIONS:
        return name
    raise SpecError("%s: unknown activation %r (FuxiCTR accepts relu/sigmoid/tanh/softmax/prelu/dice in any "
                    "case, or an exact torch.nn class name such as %s)" % (where, name, ", ".join(TORCH_DEFAULT_ACTIVATIONS[:6])))


def normalize_activations(value, hidden_units, where):
    """FuxiCTR MLP_Block rule: a single value is repeated per hidden layer; a list gives one per layer."""
    n = len(hidden_units)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise SpecError("%s: %d activations given for %d hidden layers %s" % (where, len(value), n, list(hidden_units)))
        return [canonical_activation(v, where) for v in value]
    return [canonical_activation(value, where)] * n


# ----------------------------------------------------------------------------------------------
# MLP_Block layout (REFERENCE_SEMANTICS 2.6 / weights_format "MLP rule")

def mlp_layout(input_dim, hidden_units, activations, dropout, batch_norm=False, bn_only_once=False, output_dim=1):
    """List of (index, kind, width, extra) in nn.Sequential order.

    kind: 'batchnorm' (width = features), 'linear' (width = (in, out)), 'act' (width = units,
    extra = canonical name), 'dropout' (extra = rate).  The output activation is not listed.
    """
    layers = []
    if batch_norm and bn_only_once:
        layers.append(("batchnorm", input_dim, None))
    prev = input_dim
    for units, act in zip(hidden_units, activations):
        layers.append(("linear", (prev, units), None))
        if batch_norm and not bn_only_once:
            layers.append(("batchnorm", units, None))
        if act is not None:
            layers.append(("act", units, act))
        if dropout > 0:
            layers.append(("dropout", units, dropout))
        prev = units
    if output_dim is not None:
        layers.append(("linear", (prev, output_dim), None))
    return [(i, k, w, e) for i, (k, w, e) in enumerate(layers)]


def mlp_tensor_shapes(prefix, layout, with_num_batches=False):
    """Tensor names/shapes of an MLP layout (prefix like 'dnn.mlp.')."""
    out = OrderedDict()
    for idx, kind, width, extra in layout:
        p = "%s%d." % (prefix, idx)
        if kind == "linear":
            fan_in, fan_out = width
            out[p + "weight"] = [fan_out, fan_in]
            out[p + "bias"] = [fan_out]
        elif kind == "batchnorm":
            for k in ("weight", "bias", "running_mean", "running_var"):
                out[p + k] = [width]
            if with_num_batches:
                out[p + "num_batches_tracked"] = []
        elif kind == "act" and extra == "Dice":
            out[p + "alpha"] = [width]
            out[p + "bn.running_mean"] = [width]
            out[p + "bn.running_var"] = [width]
            if with_num_batches:
                out[p + "bn.num_batches_tracked"] = []
        elif kind == "act" and extra == "PReLU":
            out[p + "weight"] = [width]
    return out


# ----------------------------------------------------------------------------------------------
# params handling

_INT_PARAMS = ("embedding_dim", "num_heads", "pos_emb_dim")
_FLOAT_PARAMS = ("net_dropout", "attention_dropout", "aux_loss_lambda")
_BOOL_PARAMS = ("use_behavior_refiner", "layer_norm", "use_pos_emb", "batch_norm", "bn_only_once",
                "enable_sum_pooling")
_UNITS_PARAMS = ("dnn_hidden_units", "attention_hidden_units")
_ACT_PARAMS = ("dnn_activations", "attention_activation")

# must be given explicitly (they change the network in ways a checkpoint cannot always reveal)
REQUIRED_PARAMS = ("embedding_dim", "target_field", "sequence_field", "num_heads", "dnn_hidden_units",
                   "dnn_activations", "attention_hidden_units", "attention_activation")
# FuxiCTR 2.3.10 DMIN.__init__ defaults for the rest
PARAM_DEFAULTS = OrderedDict([
    ("task", "binary_classification"), ("net_dropout", 0), ("attention_dropout", 0),
    ("neg_seq_field", ("neg_click_history", "neg_cate_history")), ("enable_sum_pooling", False),
    ("use_pos_emb", True), ("pos_emb_dim", 8), ("use_behavior_refiner", True), ("aux_loss_lambda", 0),
    ("batch_norm", True), ("bn_only_once", False), ("layer_norm", True)])


def _literal(value):
    """Parse a stringified Python literal as printed by FuxiCTR's 'Params:' log (else return as is)."""
    if isinstance(value, str):
        s = value.strip()
        if s in ("None", "null"):
            return None
        if s in ("True", "False"):
            return s == "True"
        try:
            return ast.literal_eval(s)
        except (ValueError, SyntaxError):
            return value
    return value


def _coerce_param(key, value):
    if key in _INT_PARAMS:
        v = _literal(value)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool):
            raise SpecError("param %s: expected an integer, got %r" % (key, value))
        return v
    if key in _FLOAT_PARAMS:
        v = _literal(value)
        if v is None:
            v = 0
        if isinstance(v, list):
            raise SpecError("param %s: per-layer dropout lists are not supported, give one rate (got %r)" % (key, value))
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise SpecError("param %s: expected a number, got %r" % (key, value))
        return float(v)
    if key in _BOOL_PARAMS:
        v = _literal(value)
        if v is None:
            v = False
        if isinstance(v, int) and not isinstance(v, bool) and v in (0, 1):
            v = bool(v)
        if not isinstance(v, bool):
            raise SpecError("param %s: expected true/false, got %r" % (key, value))
        return v
    if key in _UNITS_PARAMS:
        v = _literal(value)
        if isinstance(v, tuple):
            v = list(v)
        if not isinstance(v, list) or not all(isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in v):
            raise SpecError("param %s: expected a list of positive integers, got %r" % (key, value))
        return v
    if key in _ACT_PARAMS:
        if isinstance(value, str) and value.strip().startswith("["):
            return _literal(value)
        if isinstance(value, str) and value.strip() == "None":
            return None
        return value
    if key in ("use_features", "feature_specs"):
        v = _literal(value) if isinstance(value, str) else value
        return v
    return value


def parse_field_groups(value, param):
    """FuxiCTR target_field / sequence_field / neg_seq_field -> list of groups (tuples of names).

    A string or tuple is one group; a list holds several groups (one DMIN branch each); a tuple
    element is a multi-field group (embeddings concatenated).  Strings like "('a', 'b')" and
    "['a', 'b']" (from FuxiCTR's Params log) are parsed as the literal they print.
    """
    if value is None:
        return None
    if isinstance(value, str):
        s = value.strip()
        if s in ("None", "null"):
            return None
        if s.startswith("(") or s.startswith("["):
            try:
                value = ast.literal_eval(s)
            except (ValueError, SyntaxError):
                raise SpecError("param %s: cannot parse %r as a tuple/list of field names" % (param, value))
        else:
            return [(s,)]
    if isinstance(value, tuple):
        return [_group(value, param)]
    if isinstance(value, list):
        groups = []
        for el in value:
            if isinstance(el, str):
                s = el.strip()
                if s.startswith("("):
                    try:
                        el = ast.literal_eval(s)
                    except (ValueError, SyntaxError):
                        raise SpecError("param %s: cannot parse %r" % (param, el))
                    groups.append(_group(el, param))
                else:
                    groups.append((s,))
            elif isinstance(el, tuple):
                groups.append(_group(el, param))
            elif isinstance(el, list):
                raise SpecError("param %s: nested list %r is not valid in FuxiCTR (a list is not a dict key); "
                                "write a multi-field group as a tuple: !!python/tuple %s" % (param, el, el))
            else:
                raise SpecError("param %s: invalid element %r" % (param, el))
        if not groups:
            raise SpecError("param %s: empty list" % param)
        return groups
    raise SpecError("param %s: expected a field name, a tuple or a list, got %r" % (param, value))


def _group(tup, param):
    if not tup or not all(isinstance(x, str) for x in tup):
        raise SpecError("param %s: a field group must be a non-empty tuple of names, got %r" % (param, tup))
    return tuple(tup)


def resolve_params(raw):
    """Coerce types, check required params, fill FuxiCTR defaults. Returns a new dict."""
    if not isinstance(raw, dict):
        raise SpecError("params must be a mapping, got %s" % type(raw).__name__)
    p = dict(raw)
    model = p.get("model")
    if model is not None and str(model) != "DMIN":
        raise SpecError("param model: expected DMIN, got %r" % (model,))
    for key in REQUIRED_PARAMS:
        if key not in p or (p[key] is None and key not in _ACT_PARAMS):
            raise SpecError("param %s is missing (required to rebuild the DMIN network)" % key)
    for key, default in PARAM_DEFAULTS.items():
        if key not in p:
            p[key] = default
    for key in list(p.keys()):
        p[key] = _coerce_param(key, p[key])
    task = p.get("task")
    if task not in ("binary_classification", "regression"):
        raise SpecError("param task: expected binary_classification or regression, got %r" % (task,))
    return p


# ----------------------------------------------------------------------------------------------
# feature map

def load_feature_map(path):
    with open(path, "r") as fh:
        try:
            fm = json.load(fh, object_pairs_hook=OrderedDict)
        except ValueError as exc:
            raise SpecError("feature map %s: not valid JSON (%s)" % (path, exc))
    return fm


def resolve_feature_specs(feature_map, params):
    """FeatureMap.load semantics: ordered features, then use_features, then feature_specs overrides."""
    if not isinstance(feature_map, dict) or not isinstance(feature_map.get("features"), list):
        raise SpecError("feature map: missing 'features' list")
    feats = OrderedDict()
    for entry in feature_map["features"]:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise SpecError("feature map: each element of 'features' must be a single-key object, got %r" % (entry,))
        for name, spec in entry.items():
            if not isinstance(spec, dict):
                raise SpecError("feature map: spec of feature %r is not an object" % name)
            feats[name] = OrderedDict(spec)
    use = params.get("use_features")
    if use:
        if not isinstance(use, (list, tuple)):
            raise SpecError("param use_features: expected a list of feature names, got %r" % (use,))
        missing = [f for f in use if f not in feats]
        if missing:
            raise SpecError("param use_features: feature %r is not in the feature map" % missing[0])
        feats = OrderedDict((f, feats[f]) for f in use)
    overrides = params.get("feature_specs")
    if overrides:
        if not isinstance(overrides, list):
            raise SpecError("param feature_specs: expected a list of {name: ..., key: value} objects")
        for col in overrides:
            if not isinstance(col, dict) or "name" not in col:
                raise SpecError("param feature_specs: each entry needs a 'name', got %r" % (col,))
            names = col["name"] if isinstance(col["name"], list) else [col["name"]]
            for name in names:
                if name not in feats:
                    raise SpecError("param feature_specs: feature %r is not in the feature map" % (name,))
                for k, v in col.items():
                    if k != "name":
                        feats[name][k] = v
    return feats


# ----------------------------------------------------------------------------------------------
# spec construction

def _flatten_groups(groups):
    return [f for g in (groups or []) for f in g]


def build_spec(raw_params, feature_map, candidate_features=None, context_features=None,
               refiner_mask="additive", provenance=None):
    """Build the dmin spec (OrderedDict) from FuxiCTR params and a loaded feature_map.json dict."""
    params = resolve_params(raw_params)
    E = params["embedding_dim"]
    H = params["num_heads"]
    if E < 1:
        raise SpecError("param embedding_dim must be >= 1, got %d" % E)
    if E == 1:
        raise SpecError("param embedding_dim 1 makes FuxiCTR sum-pool every sequence (LR mode); DMIN cannot run with it")
    if H < 1:
        raise SpecError("param num_heads must be >= 1, got %d" % H)
    targets = parse_field_groups(params["target_field"], "target_field")
    sequences = parse_field_groups(params["sequence_field"], "sequence_field")
    negs = parse_field_groups(params.get("neg_seq_field"), "neg_seq_field")
    if targets is None or sequences is None:
        raise SpecError("params target_field and sequence_field must not be null")
    if len(targets) != len(sequences):
        raise SpecError("params target_field (%d groups) and sequence_field (%d groups) must have the same number "
                        "of branches" % (len(targets), len(sequences)))
    neg_names = set(_flatten_groups(negs))

    feats = resolve_feature_specs(feature_map, params)
    features = OrderedDict((n, s) for n, s in feats.items() if s.get("type") != "meta")

    # --- embedding tables in FuxiCTR build order (share_embedding only to an earlier feature)
    table_of = OrderedDict()
    dims = {}
    vocab_of = {}
    for name, fs in features.items():
        ftype = fs.get("type")
        if ftype not in ("categorical", "sequence", "numeric"):
            raise SpecError("feature %r: type %r is not supported by the dmin format "
                            "(categorical, sequence, numeric)" % (name, ftype))
        enc = fs.get("feature_encoder")
        if enc:
            if ftype == "sequence":
                raise SpecError("feature %r: feature_encoder %r pools the sequence and DMIN needs it raw; set "
                                "feature_specs: [{name: %s, feature_encoder: null}] as the DMIN configs do"
                                % (name, enc, name))
            raise SpecError("feature %r: feature_encoder %r is not supported by the dmin format" % (name, enc))
        if fs.get("pretrained_emb"):
            raise SpecError("feature %r: pretrained_emb is not supported by the dmin format" % name)
        share = fs.get("share_embedding")
        if share and share in table_of:
            table_of[name] = table_of[share]
            dims[name] = dims[share]
            owner_vocab = vocab_of.get(share)
            if (owner_vocab is None) != (ftype == "numeric"):
                raise SpecError("feature %r: share_embedding %r between numeric and categorical features" % (name, share))
            if fs.get("vocab_size") is not None and int(fs["vocab_size"]) != owner_vocab:
                raise SpecError("feature %r: vocab_size %s differs from the vocab_size %d of the shared table of %r"
                                % (name, fs.get("vocab_size"), owner_vocab, share))
            vocab_of[name] = owner_vocab
            continue
        table_of[name] = EMB_PREFIX + name + ".weight"
        d = fs.get("embedding_dim", E)
        if not isinstance(d, int) or isinstance(d, bool) or d < 1:
            raise SpecError("feature %r: invalid embedding_dim %r" % (name, d))
        dims[name] = d
        if ftype in ("categorical", "sequence"):
            vs = fs.get("vocab_size")
            if not isinstance(vs, int) or isinstance(vs, bool) or vs < 1:
                raise SpecError("feature %r: missing or invalid vocab_size %r" % (name, vs))
            vocab_of[name] = vs
        else:
            vocab_of[name] = None

    # --- branches
    branches = []
    branch_dims = []
    for bi, (tg, sg) in enumerate(zip(targets, sequences)):
        if len(tg) != len(sg):
            raise SpecError("branch %d: target group %r and sequence group %r have different sizes" % (bi, tg, sg))
        for f in tg + sg:
            if f not in features:
                raise SpecError("branch %d: field %r is not a (non-meta) feature of the feature map" % (bi, f))
        for f in tg:
            if features[f]["type"] != "categorical":
                raise SpecError("target field %r: type %r, expected categorical" % (f, features[f]["type"]))
        for f in sg:
            if features[f]["type"] != "sequence":
                raise SpecError("sequence field %r: type %r, expected sequence" % (f, features[f]["type"]))
        for f in tg + sg:
            if dims[f] != E:
                raise SpecError("field %r: embedding dim %d differs from embedding_dim %d (DMIN uses the global "
                                "embedding_dim for target/sequence fields)" % (f, dims[f], E))
        L = features[sg[0]].get("max_len")
        if not isinstance(L, int) or isinstance(L, bool) or L < 1:
            raise SpecError("sequence field %r: missing or invalid max_len %r" % (sg[0], L))
        for f in sg[1:]:
            if features[f].get("max_len") != L:
                raise SpecError("sequence field %r: max_len %r differs from %r of %r in the same group"
                                % (f, features[f].get("max_len"), L, sg[0]))
        D = E * len(tg)
        if D % H:
            raise SpecError("branch %d: model_dim %d (embedding_dim %d x %d fields) is not divisible by num_heads %d"
                            % (bi, D, E, len(tg), H))
        branches.append(OrderedDict([("target", list(tg)), ("sequence", list(sg))]))
        branch_dims.append(D)

    # --- roles
    all_targets = set(_flatten_groups(targets))
    cand = set(candidate_features or [])
    ctx = set(context_features or [])
    for lst, what in ((cand, "candidate"), (ctx, "context")):
        for f in lst:
            if f not in features:
                raise SpecError("%s feature %r is not a (non-meta) feature of the feature map" % (what, f))
            if features[f]["type"] == "sequence":
                raise SpecError("%s feature %r is a sequence; sequence features always have role user" % (what, f))
    both = cand & ctx
    if both:
        raise SpecError("feature %r is listed as both candidate and context" % sorted(both)[0])

    # --- features
    spec_features = []
    for name, fs in features.items():
        ftype = fs["type"]
        if name in ctx:
            role = "context"
        elif name in cand or name in all_targets:
            role = "candidate"
        else:
            role = "user"
        if ftype == "sequence":
            role = "user"
        entry = OrderedDict([("name", name), ("type", ftype), ("role", role)])
        if ftype in ("categorical", "sequence"):
            entry["vocab_size"] = vocab_of[name]
        entry["dim"] = dims[name]
        if ftype == "sequence":
            entry["max_len"] = fs.get("max_len")
        if ftype in ("categorical", "sequence"):
            entry["padding_idx"] = fs.get("padding_idx")
            oov = fs.get("oov_idx", vocab_of[name] - 1)
            entry["oov_idx"] = oov
        entry["table"] = table_of[name]
        entry["in_dnn"] = (ftype != "sequence") and (name not in neg_names)
        spec_features.append(entry)
    attn_units = params["attention_hidden_units"]
    dnn_units = params["dnn_hidden_units"]
    spec = OrderedDict([
        ("model", "DMIN"),
        ("task", params["task"]),
        ("embedding_dim", E),
        ("features", spec_features),
        ("branches", branches),
        ("num_heads", H),
        ("use_behavior_refiner", params["use_behavior_refiner"]),
        ("layer_norm", params["layer_norm"]),
        ("use_pos_emb", params["use_pos_emb"]),
        ("pos_emb_dim", params["pos_emb_dim"]),
        ("refiner_mask", refiner_mask),
        ("attention_hidden_units", list(attn_units)),
        ("attention_activations", normalize_activations(params["attention_activation"], attn_units,
                                                        "param attention_activation")),
        ("attention_dropout", params["attention_dropout"]),
        ("dnn_hidden_units", list(dnn_units)),
        ("dnn_activations", normalize_activations(params["dnn_activations"], dnn_units, "param dnn_activations")),
        ("net_dropout", params["net_dropout"]),
        ("batch_norm", params["batch_norm"]),
        ("bn_only_once", params["bn_only_once"]),
        ("enable_sum_pooling", params["enable_sum_pooling"]),
        ("dnn_input_dim", None),
        ("provenance", OrderedDict(provenance or {})),
    ])
    if spec["use_pos_emb"] and spec["pos_emb_dim"] < 1:
        raise SpecError("param pos_emb_dim must be >= 1 when use_pos_emb is true")
    F = compute_dnn_input_dim(spec)
    # FuxiCTR's own width formula (sum_emb_out_dim + per-branch extras - neg_seq fields)
    fx = 0
    for name, fs in features.items():
        fx += fs.get("emb_output_dim", fs.get("embedding_dim", E))
    for D in branch_dims:
        fx += D * (H - 1) + (2 * D if spec["enable_sum_pooling"] else 0)
    if negs is not None:
        fx -= E * len(neg_names)
    if fx != F:
        raise SpecError("DNN input width: FuxiCTR builds its first DNN layer for %d inputs but the concatenation is %d "
                        "wide (every sequence feature must belong to a branch or to neg_seq_field; check "
                        "neg_seq_field/use_features)" % (fx, F))
    spec["dnn_input_dim"] = F
    validate_spec(spec)
    return spec


def compute_dnn_input_dim(spec):
    E = spec["embedding_dim"]
    H = spec["num_heads"]
    F = 0
    for br in spec["branches"]:
        D = E * len(br["target"])
        F += H * D + (2 * D if spec["enable_sum_pooling"] else 0)
    for f in spec["features"]:
        if f["in_dnn"]:
            F += f["dim"]
    return F


# ----------------------------------------------------------------------------------------------
# validation of a spec (e.g. one given to `dmin-export torch --spec`, or read back from a file)

_SPEC_KEYS = ("model", "task", "embedding_dim", "features", "branches", "num_heads", "use_behavior_refiner",
              "layer_norm", "use_pos_emb", "pos_emb_dim", "refiner_mask", "attention_hidden_units",
              "attention_activations", "attention_dropout", "dnn_hidden_units", "dnn_activations", "net_dropout",
              "batch_norm", "bn_only_once", "enable_sum_pooling", "dnn_input_dim")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def validate_spec(spec):
    """Check the rules of weights_format.md section 3. Raises SpecError; returns the spec."""
    if not isinstance(spec, dict):
        raise SpecError("spec is not a JSON object")
    for k in _SPEC_KEYS:
        if k not in spec:
            raise SpecError("spec: missing field %s" % k)
    if spec["model"] != "DMIN":
        raise SpecError("spec: model must be DMIN, got %r" % (spec["model"],))
    if spec["task"] not in ("binary_classification", "regression"):
        raise SpecError("spec: task must be binary_classification or regression, got %r" % (spec["task"],))
    for k in ("embedding_dim", "num_heads", "pos_emb_dim", "dnn_input_dim"):
        if not _is_int(spec[k]) or spec[k] < (0 if k == "pos_emb_dim" else 1):
            raise SpecError("spec: %s must be a positive integer, got %r" % (k, spec[k]))
    for k in ("use_behavior_refiner", "layer_norm", "use_pos_emb", "batch_norm", "bn_only_once", "enable_sum_pooling"):
        if not isinstance(spec[k], bool):
            raise SpecError("spec: %s must be true/false, got %r" % (k, spec[k]))
    if spec["use_pos_emb"] and spec["pos_emb_dim"] < 1:
        raise SpecError("spec: pos_emb_dim must be >= 1 when use_pos_emb is true")
    if spec["refiner_mask"] not in ("additive", "strict"):
        raise SpecError("spec: refiner_mask must be 'additive' or 'strict', got %r" % (spec["refiner_mask"],))
    for k in ("attention_dropout", "net_dropout"):
        v = spec[k]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not (0 <= v < 1):
            raise SpecError("spec: %s must be a number in [0, 1), got %r" % (k, v))
    for uk, ak in (("attention_hidden_units", "attention_activations"), ("dnn_hidden_units", "dnn_activations")):
        units = spec[uk]
        if not isinstance(units, list) or not all(_is_int(u) and u > 0 for u in units):
            raise SpecError("spec: %s must be a list of positive integers" % uk)
        acts = spec[ak]
        if not isinstance(acts, list) or len(acts) != len(units):
            raise SpecError("spec: %s must list one activation per hidden layer (%d)" % (ak, len(units)))
        for a in acts:
            if a is not None and a not in CANONICAL_ACTIVATIONS:
                raise SpecError("spec: %s: %r is not a canonical activation name" % (ak, a))
    feats = spec["features"]
    if not isinstance(feats, list) or not feats:
        raise SpecError("spec: features must be a non-empty list")
    byname = OrderedDict()
    tables = {}
    for f in feats:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
            raise SpecError("spec: every feature needs a name")
        n = f["name"]
        if n in byname:
            raise SpecError("spec: duplicate feature name %r" % n)
        byname[n] = f
        t = f.get("type")
        if t not in ("categorical", "numeric", "sequence"):
            raise SpecError("spec: feature %r: type must be categorical, numeric or sequence, got %r" % (n, t))
        if f.get("role") not in ("user", "context", "candidate"):
            raise SpecError("spec: feature %r: role must be user, context or candidate, got %r" % (n, f.get("role")))
        if t == "sequence" and f["role"] != "user":
            raise SpecError("spec: feature %r: a sequence feature has role user, got %r" % (n, f["role"]))
        if not _is_int(f.get("dim")) or f["dim"] < 1:
            raise SpecError("spec: feature %r: dim must be a positive integer" % n)
        if not isinstance(f.get("in_dnn"), bool):
            raise SpecError("spec: feature %r: in_dnn must be true/false" % n)
        if t == "sequence" and f["in_dnn"]:
            raise SpecError("spec: feature %r: a sequence feature cannot be in_dnn" % n)
        if not isinstance(f.get("table"), str) or not f["table"].startswith(EMB_PREFIX):
            raise SpecError("spec: feature %r: table must name an %s<feature>.weight tensor" % (n, EMB_PREFIX))
        if t in ("categorical", "sequence"):
            vs = f.get("vocab_size")
            if not _is_int(vs) or vs < 1:
                raise SpecError("spec: feature %r: vocab_size must be a positive integer" % n)
            oov = f.get("oov_idx")
            if oov is not None and (not _is_int(oov) or not 0 <= oov < vs):
                raise SpecError("spec: feature %r: oov_idx %r outside [0, %d)" % (n, oov, vs))
            shape = [vs, f["dim"]]
        else:
            shape = [f["dim"], 1]
        if t == "sequence" and (not _is_int(f.get("max_len")) or f["max_len"] < 1):
            raise SpecError("spec: feature %r: max_len must be a positive integer" % n)
        prev = tables.get(f["table"])
        if prev is not None and prev[1] != shape:
            raise SpecError("spec: feature %r: table %s has shape %s for %r but %s here" % (n, f["table"], prev[1], prev[0], shape))
        if prev is None:
            owner = f["table"][len(EMB_PREFIX):-len(".weight")] if f["table"].endswith(".weight") else None
            if owner is None or (owner != n and owner not in byname):
                raise SpecError("spec: feature %r: table %s must be its own or an earlier feature's table" % (n, f["table"]))
            tables[f["table"]] = (n, shape)
    E = spec["embedding_dim"]
    H = spec["num_heads"]
    brs = spec["branches"]
    if not isinstance(brs, list) or not brs:
        raise SpecError("spec: branches must be a non-empty list")
    for bi, br in enumerate(brs):
        tg, sg = br.get("target"), br.get("sequence")
        if not isinstance(tg, list) or not isinstance(sg, list) or not tg or len(tg) != len(sg):
            raise SpecError("spec: branch %d: target and sequence must be non-empty lists of the same length" % bi)
        for fname in tg + sg:
            if fname not in byname:
                raise SpecError("spec: branch %d: unknown feature %r" % (bi, fname))
            if byname[fname]["dim"] != E:
                raise SpecError("spec: branch %d: feature %r has dim %d, expected embedding_dim %d"
                                % (bi, fname, byname[fname]["dim"], E))
        for fname in tg:
            if byname[fname]["type"] != "categorical":
                raise SpecError("spec: branch %d: target %r must be categorical" % (bi, fname))
        for fname in sg:
            if byname[fname]["type"] != "sequence":
                raise SpecError("spec: branch %d: sequence %r must be a sequence feature" % (bi, fname))
            if byname[fname]["max_len"] != byname[sg[0]]["max_len"]:
                raise SpecError("spec: branch %d: sequence %r has max_len %d, %r has %d"
                                % (bi, fname, byname[fname]["max_len"], sg[0], byname[sg[0]]["max_len"]))
        if (E * len(tg)) % H:
            raise SpecError("spec: branch %d: D = %d is not divisible by num_heads %d" % (bi, E * len(tg), H))
    F = compute_dnn_input_dim(spec)
    if spec["dnn_input_dim"] != F:
        raise SpecError("spec: dnn_input_dim %d != %d computed from branches and in_dnn features"
                        % (spec["dnn_input_dim"], F))
    return spec


# ----------------------------------------------------------------------------------------------
# tensor layout

def branch_geometry(spec, i):
    br = spec["branches"][i]
    E, H = spec["embedding_dim"], spec["num_heads"]
    D = E * len(br["target"])
    L = feature_by_name(spec)[br["sequence"][0]]["max_len"]
    return D, H, D // H, L


def feature_by_name(spec):
    return OrderedDict((f["name"], f) for f in spec["features"])


def attention_mlp_layout(spec, D):
    return mlp_layout(4 * D, spec["attention_hidden_units"], spec["attention_activations"],
                      spec["attention_dropout"], batch_norm=False, bn_only_once=False)


def dnn_layout(spec):
    return mlp_layout(spec["dnn_input_dim"], spec["dnn_hidden_units"], spec["dnn_activations"],
                      spec["net_dropout"], batch_norm=spec["batch_norm"], bn_only_once=spec["bn_only_once"])


def expected_tensor_shapes(spec, with_aliases=False, with_num_batches=False):
    """OrderedDict tensor name -> shape, in FuxiCTR state_dict order.

    Default: exactly the tensors a dmin file stores (tables once, no num_batches_tracked).
    with_aliases / with_num_batches: the full FuxiCTR state_dict key list (minus aux_net).
    """
    out = OrderedDict()
    for f in spec["features"]:
        shape = [f["vocab_size"], f["dim"]] if f["type"] != "numeric" else [f["dim"], 1]
        own = EMB_PREFIX + f["name"] + ".weight"
        if with_aliases:
            out[own] = shape
        elif f["table"] not in out:
            out[f["table"]] = shape
    nb = len(spec["branches"])
    geo = [branch_geometry(spec, i) for i in range(nb)]
    if spec["use_behavior_refiner"]:
        for i in range(nb):
            D = geo[i][0]
            p = "behavior_refiner.%d." % i
            out[p + "attention.in_proj_weight"] = [3 * D, D]
            out[p + "attention.in_proj_bias"] = [3 * D]
            out[p + "attention.out_proj.weight"] = [D, D]
            out[p + "attention.out_proj.bias"] = [D]
            out[p + "ffn.0.weight"] = [2 * D, D]
            out[p + "ffn.0.bias"] = [2 * D]
            out[p + "ffn.2.weight"] = [D, 2 * D]
            out[p + "ffn.2.bias"] = [D]
            if spec["layer_norm"]:
                out[p + "layer_norm.weight"] = [D]
                out[p + "layer_norm.bias"] = [D]
    for i in range(nb):
        D, H, hd, L = geo[i]
        p = "multi_interest_extractor.%d." % i
        out[p + "W_qkv.weight"] = [3 * D, D]
        for h in range(H):
            out[p + "W_o.%d.weight" % h] = [D, hd]
        if spec["layer_norm"]:
            for h in range(H):
                out[p + "layer_norm.%d.weight" % h] = [D]
                out[p + "layer_norm.%d.bias" % h] = [D]
        for h in range(H):
            q = p + "ffn.%d." % h
            out[q + "0.weight"] = [2 * D, D]
            out[q + "0.bias"] = [2 * D]
            out[q + "2.weight"] = [D, 2 * D]
            out[q + "2.bias"] = [D]
        layout = attention_mlp_layout(spec, D)
        for h in range(H):
            q = p + "target_attention.%d." % h
            if spec["use_pos_emb"]:
                P = spec["pos_emb_dim"]
                out[q + "pos_emb"] = [L, P]
                out[q + "W_proj.weight"] = [D, D + P]
                out[q + "W_proj.bias"] = [D]
            out.update(mlp_tensor_shapes(q + "attn_mlp.mlp.", layout, with_num_batches))
    out.update(mlp_tensor_shapes("dnn.mlp.", dnn_layout(spec), with_num_batches))
    return out


def check_tensor_shapes(spec, tensors, source="file"):
    """tensors: mapping name -> object with .shape. Checks the exact key set and shapes."""
    expected = expected_tensor_shapes(spec)
    problems = []
    for name, shape in expected.items():
        if name not in tensors:
            problems.append("%s is missing tensor %s (expected shape %s)" % (source, name, shape))
        else:
            found = [int(d) for d in tensors[name].shape]
            if found != list(shape):
                problems.append("tensor %s: expected shape %s, found %s" % (name, list(shape), found))
    for name in tensors:
        if name not in expected:
            problems.append("%s has unexpected tensor %s %s not used by the spec"
                            % (source, name, [int(d) for d in tensors[name].shape]))
    if problems:
        more = " (and %d more problems)" % (len(problems) - 1) if len(problems) > 1 else ""
        raise SpecError(problems[0] + more)


def spec_to_json(spec):
    return json.dumps(spec, separators=(",", ":"), ensure_ascii=False)


def count_parameters(spec):
    """Trainable parameter count as FuxiCTR's count_parameters logs it (shared tables once, no buffers)."""
    total = 0
    for name, shape in expected_tensor_shapes(spec).items():
        if name.endswith("running_mean") or name.endswith("running_var"):
            continue
        total += int(math.prod(shape)) if shape else 1
    return total
